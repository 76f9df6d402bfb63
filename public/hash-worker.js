// The SHA-256 of a File, off the page's main thread (a dedicated Worker): the page asks the
// server with it whether the content is already uploaded, and declares it with the upload.
// Up to 64 MiB, Web Crypto's digest of the whole file; larger files are read as a stream and
// hashed piece by piece with hash-wasm, so memory stays flat.
// Message in: a File. Message out: {sha256: "<64 hex digits>"} or {error: "<sentence>"}.
const WHOLE_FILE_LIMIT = 64 * 1024 * 1024;

const hex = (buffer) =>
  Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');

async function streamed(file) {
  importScripts('/vendor/hash-wasm/sha256.umd.min.js');
  const hasher = await self.hashwasm.createSHA256();
  hasher.init();
  const reader = file.stream().getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    hasher.update(value);
  }
  return hasher.digest('hex');
}

self.onmessage = async (event) => {
  const file = event.data;
  try {
    // Web Crypto exists only in secure contexts (HTTPS, localhost).
    const sha256 =
      file.size <= WHOLE_FILE_LIMIT && self.crypto && self.crypto.subtle
        ? hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()))
        : await streamed(file);
    self.postMessage({ sha256 });
  } catch (e) {
    self.postMessage({ error: String(e && e.message ? e.message : e) });
  }
};

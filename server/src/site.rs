//! The site's static files: hashed names found at start-up, and how long browsers keep each
//! file.
//!
//! `cargo leptos build` (with `hash-files` on) names the page's js, wasm and css
//! `parley.<hash>.<ext>` and writes the hashes to `hash.txt` beside the binary it builds;
//! Leptos reads that file on every render to name them in the page. A file whose name changes
//! with its content can be kept by browsers for good (`immutable`); everything else is
//! revalidated or kept briefly. Precompressed variants (`.br`, `.gz`, made by
//! `cargo leptos build --release --precompress`) are served by the file handler when the
//! browser accepts them; a site built without them (`cargo leptos build --release` alone) is
//! not sent uncompressed: each text or wasm file is compressed on its first request (brotli or
//! gzip, as the browser accepts, at a fast level, once per file and encoding whatever the number
//! of requests at once) and kept in memory ([`COMPRESSED_MEMORY`] in all).

use std::path::{Path, PathBuf};

use tower_http::compression::{
    predicate::{Predicate, SizeAbove},
    CompressionLayer, CompressionLevel,
};

use axum::{
    body::Body,
    extract::{Request, State},
    http::{header, HeaderValue, Response, Uri},
};
use leptos::prelude::LeptosOptions;

/// `Cache-Control` of a file whose name carries its content's hash: a year, never revalidated.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of other static files (the vendored scripts, the hash worker): an hour.
pub const BRIEFLY: &str = "public, max-age=3600";

/// The hash file's name, as cargo-leptos writes it.
const HASH_FILE: &str = "hash.txt";

/// Turns Leptos's hashed names on when a hash file that matches the site is found: beside the
/// binary (where `cargo leptos build` puts it) or in the site root (where the Debian package
/// puts it). Without one, the names are read off the site's package folder itself (the newest
/// `parley.<hash>.js`, `.wasm` and `.css`), so that a site copied without `hash.txt` still
/// works; only a site with plain names uses plain names.
pub fn use_hashed_names(options: &mut LeptosOptions) {
    let beside_binary =
        std::env::current_exe().ok().and_then(|exe| exe.parent().map(|dir| dir.join(HASH_FILE)));
    let in_site = Path::new(options.site_root.as_ref()).join(HASH_FILE);
    let found = beside_binary
        .into_iter()
        .chain([in_site])
        .find(|path| matches_site(path, options))
        .or_else(|| hashes_of_site(options));
    options.hash_files = found.is_some();
    if let Some(path) = found {
        tracing::debug!(hash_file = %path.display(), "hashed asset names");
        options.hash_file = path.to_string_lossy().as_ref().into();
    }
}

/// The hashed files of a site's package folder, as cargo-leptos names them: `(kind in the
/// hash file, name before the hash, extension)`. With `--split`, the lazy-loaded modules' loader
/// and manifest are hashed too (Leptos's `HydrationScripts` reads them as `split` and
/// `manifest`).
const HASHED: [(&str, Option<&str>, &str); 5] = [
    ("js", None, "js"),
    ("wasm", None, "wasm"),
    ("css", None, "css"),
    ("split", Some("__wasm_split"), "js"),
    ("manifest", Some("__wasm_split_manifest"), "json"),
];

/// A hash file written from the hashed names in the site's package folder (in the temporary
/// folder, one per process), when it has a js and a wasm file of that form.
fn hashes_of_site(options: &LeptosOptions) -> Option<PathBuf> {
    let pkg = Path::new(options.site_root.as_ref()).join(options.site_pkg_dir.as_ref());
    let mut newest: std::collections::HashMap<&str, (std::time::SystemTime, String)> =
        std::collections::HashMap::new();
    for entry in std::fs::read_dir(&pkg).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((kind, hash)) = HASHED.iter().find_map(|(kind, stem, ext)| {
            let prefix = format!("{}.", stem.unwrap_or(options.output_name.as_ref()));
            let (hash, found) = name.strip_prefix(&prefix)?.rsplit_once('.')?;
            (found == *ext && !hash.is_empty() && !hash.contains('.'))
                .then(|| (*kind, hash.to_string()))
        }) else {
            continue;
        };
        let changed = entry.metadata().and_then(|m| m.modified()).ok()?;
        if newest.get(kind).is_none_or(|(at, _)| changed > *at) {
            newest.insert(kind, (changed, hash));
        }
    }
    if !(newest.contains_key("js") && newest.contains_key("wasm")) {
        return None;
    }
    let text: String = newest.iter().map(|(kind, (_, hash))| format!("{kind}: {hash}\n")).collect();
    let path = std::env::temp_dir().join(format!("parley-{}-{HASH_FILE}", std::process::id()));
    std::fs::write(&path, text).ok()?;
    Some(path)
}

/// Whether `hash_file` names a js file the site has.
fn matches_site(hash_file: &PathBuf, options: &LeptosOptions) -> bool {
    let Ok(hashes) = std::fs::read_to_string(hash_file) else { return false };
    let js = hashes.lines().find_map(|l| l.trim().strip_prefix("js:")).map(str::trim);
    js.is_some_and(|hash| {
        Path::new(options.site_root.as_ref())
            .join(options.site_pkg_dir.as_ref())
            .join(format!("{}.{hash}.js", options.output_name))
            .is_file()
    })
}

/// The static files and the not-found page (Leptos's handler), with `Cache-Control` on every
/// file served: [`IMMUTABLE`] for the package directory's files when their names are hashed
/// (cargo-leptos hashes every file it writes there: the page's js, wasm and css, and the
/// lazy-loaded modules), [`BRIEFLY`] for the rest.
pub async fn files(uri: Uri, State(options): State<LeptosOptions>, req: Request) -> Response<Body> {
    let hashed =
        options.hash_files && uri.path().starts_with(&format!("/{}/", options.site_pkg_dir));
    let plain_get = matches!(*req.method(), axum::http::Method::GET | axum::http::Method::HEAD)
        && !req.headers().contains_key(header::RANGE);
    let accept = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
    let wanted = accept.and_then(chosen_encoding).filter(|_| plain_get);
    let head = *req.method() == axum::http::Method::HEAD;
    let found = match wanted {
        Some(encoding) => compressed(&uri, &options, encoding, head).await,
        None => None,
    };
    let mut res = match found {
        Some(res) => res,
        None => {
            let serve = leptos_axum::file_and_error_handler::<LeptosOptions, _>(app::shell);
            serve(uri, State(options), req).await
        }
    };
    if res.status().is_success() {
        let policy = if hashed { IMMUTABLE } else { BRIEFLY };
        res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    }
    res
}

/// Most memory the files compressed on request keep, bytes (the whole site, compressed, is
/// well under 1 MiB in a release build).
pub const COMPRESSED_MEMORY: u64 = 64 << 20;

/// Largest file compressed on request, bytes.
const COMPRESS_AT_MOST: u64 = 16 << 20;

/// A file compressed on request: its path, encoding, and length and time of change (a file
/// replaced on disk is compressed again).
type CompressedKey = (PathBuf, &'static str, u64, std::time::SystemTime);

/// The files compressed on request, shared by every request of the process.
fn compressed_files() -> &'static moka::sync::Cache<CompressedKey, bytes::Bytes> {
    static FILES: std::sync::OnceLock<moka::sync::Cache<CompressedKey, bytes::Bytes>> =
        std::sync::OnceLock::new();
    FILES.get_or_init(|| {
        moka::sync::Cache::builder()
            .max_capacity(COMPRESSED_MEMORY)
            .weigher(|_, body: &bytes::Bytes| u32::try_from(body.len()).unwrap_or(u32::MAX))
            .build()
    })
}

/// The `Content-Type` of a file Parley compresses, by extension; `None` for the others (images
/// and the like are compressed already).
fn compressible_type(path: &Path) -> Option<&'static str> {
    Some(match path.extension()?.to_str()? {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// The encoding to send for `accept` (an `Accept-Encoding`): brotli, else gzip, else none.
fn chosen_encoding(accept: &str) -> Option<&'static str> {
    let offered = |name: &str| {
        accept.split(',').any(|item| {
            let mut fields = item.split(';').map(str::trim);
            fields.next() == Some(name) && !fields.any(|f| f.replace(' ', "") == "q=0")
        })
    };
    if offered("br") {
        Some("br")
    } else if offered("gzip") {
        Some("gzip")
    } else {
        None
    }
}

/// `bytes` compressed with `encoding`: brotli at quality 5 or gzip at level 6 — fast enough for
/// a first request to wait for (a 1.2 MB wasm: well under a second), most of the gain of the
/// slowest levels.
fn compress(bytes: &[u8], encoding: &str) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    if encoding == "br" {
        let mut out = Vec::with_capacity(bytes.len() / 3);
        let params = brotli::enc::BrotliEncoderParams { quality: 5, ..Default::default() };
        brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
        Ok(out)
    } else {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        encoder.write_all(bytes)?;
        encoder.finish()
    }
}

/// The answer, compressed with `encoding` (the body left out for a `HEAD`), for a static file
/// built without a precompressed variant; `None` to let the file handler answer (a
/// precompressed variant exists, the file is not text or wasm, too big, or missing).
async fn compressed(
    uri: &Uri,
    options: &LeptosOptions,
    encoding: &'static str,
    head: bool,
) -> Option<Response<Body>> {
    let relative = uri.path().trim_start_matches('/');
    if relative.is_empty() || relative.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
        return None;
    }
    let path = Path::new(options.site_root.as_ref()).join(relative);
    let content_type = compressible_type(&path)?;
    let suffix = if encoding == "br" { "br" } else { "gz" };
    let mut precompressed = path.clone().into_os_string();
    precompressed.push(format!(".{suffix}"));
    if tokio::fs::metadata(&precompressed).await.is_ok() {
        return None;
    }
    let meta = tokio::fs::metadata(&path).await.ok().filter(|m| m.is_file())?;
    if meta.len() > COMPRESS_AT_MOST {
        return None;
    }
    let key = (path.clone(), encoding, meta.len(), meta.modified().ok()?);
    // Off the async workers; `get_with` runs one compression per key however many ask at once.
    let body = tokio::task::spawn_blocking(move || {
        compressed_files().try_get_with(key, || {
            let bytes = std::fs::read(&path)?;
            compress(&bytes, encoding).map(bytes::Bytes::from)
        })
    })
    .await
    .ok()?
    .map_err(|e| tracing::warn!(error = %e, "a static file could not be compressed"))
    .ok()?;
    let length = body.len();
    let body = if head { Body::empty() } else { Body::from(body) };
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_ENCODING, encoding)
        .header(header::CONTENT_LENGTH, length)
        .header(header::VARY, "accept-encoding")
        .body(body)
        .ok()
}

/// Smallest dynamic response compressed, bytes: below it the headers outweigh the gain.
const COMPRESS_ABOVE_BYTES: u16 = 1024;

/// Brotli or gzip (as the browser accepts) for the dynamic answers it helps — HTML pages and
/// JSON answers of server functions over 1 KiB — at the fastest level, so
/// that no request costs much CPU. Never the chat's answer stream (`application/octet-stream`:
/// a compressor would hold back its lines) nor static files (served precompressed, or not
/// at all: compressing them on every request would let a visitor spend the server's CPU).
pub fn compression() -> CompressionLayer<impl Predicate> {
    use axum::http::{Extensions, HeaderMap, StatusCode, Version};
    let dynamic = |_: StatusCode, _: Version, headers: &HeaderMap, _: &Extensions| {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html") || t.starts_with("application/json"))
    };
    CompressionLayer::new()
        .quality(CompressionLevel::Fastest)
        .compress_when(SizeAbove::new(COMPRESS_ABOVE_BYTES).and(dynamic))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_are_read_off_the_site_without_a_hash_file() {
        let root = tempfile::tempdir().unwrap();
        let pkg = root.path().join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        let mut options = LeptosOptions::builder()
            .output_name("parley")
            .site_root(root.path().display().to_string())
            .build();
        use_hashed_names(&mut options);
        assert!(!options.hash_files, "an empty site: plain names");
        for name in [
            "parley.AbC-1.js",
            "parley.dEf_2.wasm",
            "parley.ghi3.css",
            "parley.ghi3.css.br",
            "__wasm_split.Sp1.js",
            "__wasm_split_manifest.Mf2.json",
            "split_start_123.Ch3.wasm",
        ] {
            std::fs::write(pkg.join(name), b"x").unwrap();
        }
        use_hashed_names(&mut options);
        assert!(options.hash_files);
        let hashes = std::fs::read_to_string(options.hash_file.as_ref()).unwrap();
        assert_eq!(hashes.lines().count(), 5, "{hashes}");
        for line in ["js: AbC-1", "wasm: dEf_2", "css: ghi3", "split: Sp1", "manifest: Mf2"] {
            assert!(hashes.lines().any(|l| l == line), "{line} in {hashes}");
        }
    }

    #[test]
    fn encodings_follow_what_the_browser_accepts() {
        assert_eq!(chosen_encoding("gzip, deflate, br, zstd"), Some("br"));
        assert_eq!(chosen_encoding("gzip"), Some("gzip"));
        assert_eq!(chosen_encoding("br;q=0, gzip"), Some("gzip"));
        assert_eq!(chosen_encoding("identity"), None);
        assert_eq!(chosen_encoding("brotli-ish"), None);
    }

    #[test]
    fn compressed_files_come_back_whole() {
        let text = "let answer = 42;\n".repeat(1000);
        let br = compress(text.as_bytes(), "br").unwrap();
        let mut back = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut back).unwrap();
        assert_eq!(back, text.as_bytes());
        assert!(br.len() < text.len() / 10, "{} bytes", br.len());
        let gz = compress(text.as_bytes(), "gzip").unwrap();
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back)
            .unwrap();
        assert_eq!(back, text);
    }
}

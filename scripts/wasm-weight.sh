#!/usr/bin/env bash
# The weight the page sends before it is interactive: builds the browser's wasm as the release
# site has it (profile wasm-release, wasm-bindgen, wasm-opt -Oz, as `cargo leptos build
# --release` does), compresses it with brotli at the highest quality (as `--precompress` does)
# and fails when it passes the limit, printing its size either way, so that weight never creeps
# in unseen. Usage: scripts/wasm-weight.sh [LIMIT_BYTES]   (default 400000: 400 KB)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
limit="${1:-400000}"
out=target/wasm-weight
rm -rf "$out" && mkdir -p "$out"

cargo build -p frontend --lib --target wasm32-unknown-unknown --profile wasm-release \
  --target-dir target/front --quiet
wasm-bindgen --target web --no-typescript --out-dir "$out" --out-name parley \
  target/front/wasm32-unknown-unknown/wasm-release/frontend.wasm
wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals -o "$out/parley.opt.wasm" "$out/parley_bg.wasm"
raw=$(stat -c %s "$out/parley.opt.wasm")
brotli=$(node -e '
  const zlib = require("zlib");
  const data = require("fs").readFileSync(process.argv[1]);
  const packed = zlib.brotliCompressSync(data, { params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
  console.log(packed.length);' "$out/parley.opt.wasm")
echo "the page's wasm: $raw bytes, $brotli bytes with brotli (limit $limit)"
rm -rf "$out"
if [ "$brotli" -gt "$limit" ]; then
  echo "the brotli-compressed wasm ($brotli bytes) is past $limit bytes: something heavy came in" >&2
  exit 1
fi

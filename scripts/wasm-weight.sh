#!/usr/bin/env bash
# The weight the page sends before it is interactive: builds the release site's front end as
# `cargo leptos build --release --split` does (profile wasm-release, wasm-bindgen, wasm-opt,
# the `#[lazy]` functions split into modules of their own, loaded when first called) into a
# site root of its own, compresses each wasm module with brotli at the highest quality (as
# `--precompress` does), prints every size, and fails when the module loaded before
# hydration passes the limit, so that weight never creeps in unseen.
# Usage: scripts/wasm-weight.sh [LIMIT_BYTES]   (default 400000: 400 KB)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
limit="${1:-400000}"
out=target/wasm-weight
rm -rf "$out" && mkdir -p "$out"

LEPTOS_SITE_ROOT="$out/site" cargo leptos build --release --split --frontend-only >"$out/build.log" 2>&1 \
  || { cat "$out/build.log" >&2; exit 1; }
brotli_size() {
  node -e '
    const zlib = require("zlib");
    const data = require("fs").readFileSync(process.argv[1]);
    const packed = zlib.brotliCompressSync(data, { params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
    console.log(packed.length);' "$1"
}
main=""
for wasm in "$out"/site/pkg/*.wasm; do
  name=$(basename "$wasm")
  raw=$(stat -c %s "$wasm")
  brotli=$(brotli_size "$wasm")
  case "$name" in
    parley.*) main=$brotli; echo "the page's wasm (before hydration): $raw bytes, $brotli bytes with brotli (limit $limit)" ;;
    *) echo "  loaded when first used: $name: $raw bytes, $brotli bytes with brotli" ;;
  esac
done
rm -rf "$out"
if [ -z "$main" ]; then
  echo "no parley.*.wasm was built" >&2
  exit 1
fi
if [ "$main" -gt "$limit" ]; then
  echo "the brotli-compressed wasm ($main bytes) is past $limit bytes: something heavy came in" >&2
  exit 1
fi

#!/usr/bin/env bash
# Benchmark (not a test): the first and a repeat visit of a release build (precompressed,
# hashed assets) in Debian's chromium — bytes before hydration and time to hydration, wired and
# on "Fast 4G" with a 4× slower CPU (end2end/tests/first-visit.spec.ts) — and the wasm's size,
# raw and compressed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
cargo leptos build --release --precompress --split
for f in target/site/pkg/*.wasm; do
  printf 'wasm %s: %d bytes raw, %d brotli, %d gzip\n' "$(basename "$f")" \
    "$(stat -c %s "$f")" "$(stat -c %s "$f.br")" "$(stat -c %s "$f.gz")"
done
data=$(mktemp -d /tmp/parley-first-visit.XXXXXX)
PARLEY_LISTEN=127.0.0.1:3430 PARLEY_DATA_DIR="$data" GEMINI_API_KEY= LEPTOS_SITE_ROOT=target/site \
  PARLEY_LOG=warn LEPTOS_OUTPUT_NAME=parley target/release/parley &
server=$!
trap 'kill $server; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -fs http://127.0.0.1:3430/healthz >/dev/null && break; sleep 0.1; done
cd end2end
PARLEY_FIGURES_URL=http://127.0.0.1:3430 npx playwright test first-visit --reporter=list

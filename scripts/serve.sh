#!/usr/bin/env bash
# Builds Parley and serves it at http://127.0.0.1:3000 (PARLEY_LISTEN to change), as a visitor
# should get it: the release build, its static files precompressed (brotli, gzip).
#   scripts/serve.sh [--dev] [parley flags…]
#   --dev   the quick debug build instead (a 6 MB wasm: for working on Parley, not for visitors)
# Without GEMINI_API_KEY the built-in Gemini emulator answers ("Offline demo").
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
if [ "${1:-}" = "--dev" ]; then
  profile=debug
  shift
fi
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
if [ "$profile" = release ]; then
  cargo leptos build --release --precompress --split
else
  cargo leptos build --split
fi
exec "target/$profile/parley" "$@"

#!/usr/bin/env bash
# Builds Parley and serves it at http://127.0.0.1:3000 (PARLEY_LISTEN to change).
# Without GEMINI_API_KEY the built-in Gemini emulator answers ("Offline demo").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
cargo leptos build
exec target/debug/parley "$@"

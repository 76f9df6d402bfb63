#!/usr/bin/env bash
# Runs every test: Rust unit and integration tests (gemini ↔ emulator, server functions), a
# short run of each fuzz target, Google's Python SDK against the emulator, then the Playwright
# suite in Debian's headless chromium against the real server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> Rust tests"
# Packages are named rather than --workspace: with `frontend` in the same build, cargo would
# unify app's `hydrate` feature into the server build.
cargo test -p gemini -p gemini-emulator -p parley
# cargo leptos test would skip the app crate's server-side tests: run them explicitly.
cargo test -p app --features ssr

echo "==> fuzz targets, 20 s each (scripts/fuzz.sh 10m for a real run)"
scripts/fuzz.sh 20s sse forbidden upload_target import

echo "==> building the site and the standalone emulator"
cargo build -p gemini-emulator --bin gemini-emulator
cargo leptos build

echo "==> Google's google-genai SDK against the emulator"
target/sdk-venv/bin/python emulator/sdk-tests/google_genai_sdk.py --emulator target/debug/gemini-emulator

echo "==> Playwright (end2end/)"
cd end2end
npx playwright test

#!/usr/bin/env bash
# Runs every check and test: formatting (rustfmt, leptosfmt), clippy and rustdoc (no broken or
# private links in the docs) with warnings denied,
# Rust unit and integration tests (gemini ↔ emulator, the file lifecycle, the whole server over
# HTTP, the abuse cases, replicas on PostgreSQL and S3, metrics and logs), a short run of each
# fuzz target, the weight of the release wasm (scripts/wasm-weight.sh), the Debian package,
# the container image and compose.yaml (scripts/test-container.sh), Google's Python SDK
# against the emulator, then the Playwright suite in Debian's headless
# chromium against the real server.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --browser
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> style: rustfmt, leptosfmt, clippy (server and browser builds), rustdoc"
cargo fmt --all --check
leptosfmt --check app/src
# Packages are named rather than --workspace: with `frontend` in the same build, cargo would
# unify app's `hydrate` feature into the server build.
cargo clippy -p gemini -p gemini-emulator -p parley-protocol -p parley-store -p parley-files -p parley-chat -p parley --all-targets -- -D warnings
cargo clippy -p app --features ssr --all-targets -- -D warnings
# The browser build, in cargo-leptos's own target directory (it builds the same crates there).
cargo clippy -p app -p frontend --features app/hydrate --target wasm32-unknown-unknown --target-dir target/front -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --keep-going -p gemini -p gemini-emulator -p parley-protocol -p parley-store -p parley-files -p parley-chat -p parley
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p app --features ssr

echo "==> services for the tests: PostgreSQL, S3 (moto)"
services=$(mktemp -d /tmp/parley-test-services.XXXXXX)
chmod 755 "$services" # the PostgreSQL cluster inside belongs to `postgres` when run as root
root=$PWD
trap '"$root/scripts/postgres.sh" stop "$services/postgres"; "$root/scripts/s3.sh" stop "$services/s3"; rm -rf "$services"' EXIT
PARLEY_TEST_DATABASE_URL=$(scripts/postgres.sh start "$services/postgres" 54321)
AWS_ENDPOINT=$(scripts/s3.sh start "$services/s3" 54322 parley-test)
export PARLEY_TEST_DATABASE_URL PARLEY_TEST_REQUIRE_SERVICES=1 AWS_ENDPOINT
export PARLEY_TEST_S3_BUCKET=parley-test AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test

echo "==> Rust tests"
cargo test -p gemini -p gemini-emulator -p parley-protocol -p parley-store -p parley-files -p parley-chat -p parley
# cargo leptos test would skip the app crate's server-side tests: run them explicitly.
cargo test -p app --features ssr

echo "==> fuzz targets, 20 s each (scripts/fuzz.sh 10m for a real run)"
scripts/fuzz.sh 20s sse forbidden upload_target import

echo "==> building the site and the standalone emulator"
cargo build -p gemini-emulator --bin gemini-emulator
cargo leptos build --split

echo "==> weight: the release site's wasm, brotli-compressed, at most 400 KB"
scripts/wasm-weight.sh 400000

echo "==> the Debian package (from the debug build): contents, unit, unpacked and run"
scripts/test-package.sh

echo "==> the container image and compose.yaml (Podman): built, started, smoke-tested, stopped"
scripts/test-container.sh

echo "==> Google's google-genai SDK against the emulator"
target/sdk-venv/bin/python emulator/sdk-tests/google_genai_sdk.py --emulator target/debug/gemini-emulator

echo "==> Playwright (end2end/)"
cd end2end
npx playwright test

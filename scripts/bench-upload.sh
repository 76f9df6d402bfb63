#!/usr/bin/env bash
# Benchmark (not a test): upload throughput of the gemini client versus curl's resumable
# upload to the same release-built emulator, and the client's peak RSS for a 1 GiB upload.
# Needs curl and ~1.3 GB of free space in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p gemini-emulator --bin gemini-emulator
GEMINI_EMULATOR_BIN="$PWD/target/release/gemini-emulator" cargo bench -p gemini --bench upload

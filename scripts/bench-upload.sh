#!/usr/bin/env bash
# Benchmarks (not tests), on release builds with the release emulator:
#  - the gemini client's upload throughput versus curl's resumable upload, and its peak RSS
#    for a 1 GiB upload (gemini/benches/upload.rs);
#  - an upload through parley (relayed while it arrives) versus curl straight to the emulator,
#    a re-attached file, and parley's peak RSS for a 1 GiB upload (server/benches/upload.rs).
# Needs curl and ~2.5 GB of free space in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p gemini-emulator --bin gemini-emulator
export GEMINI_EMULATOR_BIN="$PWD/target/release/gemini-emulator"
cargo bench -p gemini --bench upload
cargo bench -p parley --bench upload

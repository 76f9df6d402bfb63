#!/usr/bin/env bash
# Builds Parley's Debian package with cargo-deb: target/debian/parley_<version>_amd64.deb,
# holding /usr/bin/parley, the site under /usr/share/parley/site, the systemd unit
# parley.service and the conffile /etc/parley/parley.env ([package.metadata.deb] in
# server/Cargo.toml; the unit and env file are in packaging/).
#
#   scripts/package.sh           the release site (brotli and gzip variants beside each file)
#                                and binary (cargo leptos build --release --precompress --split)
#   scripts/package.sh --debug   the debug build already in target/ (what the tests package)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
mkdir -p target/debian
case "${1:-}" in
  --debug)
    # cargo-deb takes the binary from `target/release/` of the target directory: give it one
    # that holds the debug binary.
    [ -x target/debug/parley ] && [ -d target/site/pkg ] || {
      echo "package.sh --debug: build first (cargo leptos build --split)" >&2; exit 2; }
    stage=$(mktemp -d /tmp/parley-package.XXXXXX)
    trap 'rm -rf "$stage"' EXIT
    mkdir -p "$stage/release"
    cp target/debug/parley "$stage/release/parley"
    # The hashed asset names (server/src/site.rs looks for them in the site too).
    cp target/debug/hash.txt target/site/hash.txt
    CARGO_TARGET_DIR="$stage" cargo deb -p parley --no-build --fast --output target/debian/
    ;;
  "")
    cargo leptos build --release --precompress --split
    cp target/release/hash.txt target/site/hash.txt
    cargo deb -p parley --no-build --output target/debian/
    ;;
  *) echo "package.sh: unknown option $1" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Long runs of the property tests (proptest; cargo-fuzz needs a nightly toolchain, which this
# project does not install). Each target runs, again and again with fresh random seeds, for
# MINUTES (default 10); prints the cases run, their rate, and stops at the first failure.
# `scripts/test.sh` runs the same properties briefly (256 cases each).
#
#   scripts/fuzz.sh [MINUTES] [TARGET...]
#
# Targets: sse, forbidden, upload_target, import, multipart.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
minutes="${1:-10}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(sse forbidden upload_target import multipart)

command_for() {
  case "$1" in
    sse) echo "cargo test -q -p gemini --lib generate::properties::" ;;
    forbidden) echo "cargo test -q -p gemini --lib error::properties::" ;;
    upload_target) echo "cargo test -q -p gemini --lib upload::properties::" ;;
    import) echo "cargo test -q -p app --features ssr --lib transcript::properties::" ;;
    multipart) echo "cargo test -q -p parley tests::hardening::any_multipart_body_gets_a_clear_answer" ;;
    *) echo "unknown target $1" >&2; exit 2 ;;
  esac
}

# Cases per run: large for the pure functions, smaller for whole-server HTTP.
cases_for() { [ "$1" = multipart ] && echo 2000 || echo 20000; }

for target in "${targets[@]}"; do
  cmd="$(command_for "$target")"
  cases="$(cases_for "$target")"
  $cmd --no-run >/dev/null 2>&1 || $cmd -- --list >/dev/null   # build once
  start=$(date +%s)
  runs=0
  while [ $(( $(date +%s) - start )) -lt $(( minutes * 60 )) ]; do
    if ! PROPTEST_CASES="$cases" $cmd >/tmp/parley-fuzz-"$target".log 2>&1; then
      echo "$target: FAILED after $runs runs; see /tmp/parley-fuzz-$target.log"
      exit 1
    fi
    runs=$((runs + 1))
  done
  elapsed=$(( $(date +%s) - start ))
  total=$(( runs * cases ))
  echo "$target: $total cases per property in ${elapsed} s ($(( total / (elapsed > 0 ? elapsed : 1) )) per s), no failure"
done

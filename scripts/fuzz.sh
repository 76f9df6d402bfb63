#!/usr/bin/env bash
# Fuzzing, one target after another, each for DURATION (`30s`, `10m`; default 10m); prints the
# executions and their rate, and stops at the first failure.
#
#   scripts/fuzz.sh [DURATION] [TARGET...]
#
# Coverage-guided (cargo fuzz, libFuzzer, nightly; `fuzz/`): sse, forbidden, upload_target,
# import. Their corpora grow in target/fuzz-corpus/, seeded from fuzz/seeds/; a crash is saved
# in fuzz/artifacts/ and can be replayed with `cargo +nightly fuzz run TARGET FILE`.
# Property-based (proptest, fresh seeds each run): multipart — whole request bodies sent to the
# real server, which a libFuzzer target cannot hold. `scripts/test.sh` runs every target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
duration="${1:-10m}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(sse forbidden upload_target import multipart)

case "$duration" in
  *m) seconds=$(( ${duration%m} * 60 )) ;;
  *s) seconds=${duration%s} ;;
  *) seconds=$(( duration * 60 )) ;;
esac

nightly=$(rustup toolchain list | grep -m1 '^nightly' | cut -d' ' -f1)

libfuzzer() {
  local target="$1" log="/tmp/parley-fuzz-$1-$$.log"
  mkdir -p "target/fuzz-corpus/$target"
  if ! cargo "+$nightly" fuzz run --target-dir target/fuzz "$target" "target/fuzz-corpus/$target" "fuzz/seeds/$target" \
      -- -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -30 "$log"
    echo "$target: CRASHED; see $log and fuzz/artifacts/$target/"
    exit 1
  fi
  local execs rate
  # -a: libFuzzer's log may hold bytes of the inputs it reports.
  execs=$(grep -a -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
  rate=$(grep -a -m1 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
  echo "$target: $execs executions in ${seconds} s ($rate per s), corpus $(ls "target/fuzz-corpus/$target" | wc -l) inputs, no crash"
}

proptest_multipart() {
  local cmd="cargo test -q -p parley tests::hardening::any_multipart_body_gets_a_clear_answer"
  local cases=2000 runs=0 start
  $cmd --no-run >/dev/null 2>&1 || true # build once
  start=$(date +%s)
  while [ $(( $(date +%s) - start )) -lt "$seconds" ]; do
    if ! PROPTEST_CASES="$cases" $cmd >"/tmp/parley-fuzz-multipart-$$.log" 2>&1; then
      echo "multipart: FAILED after $runs runs; see /tmp/parley-fuzz-multipart-$$.log"
      exit 1
    fi
    runs=$((runs + 1))
  done
  local elapsed=$(( $(date +%s) - start ))
  local total=$(( runs * cases ))
  echo "multipart: $total cases in ${elapsed} s ($(( total / (elapsed > 0 ? elapsed : 1) )) per s), no failure"
}

for target in "${targets[@]}"; do
  case "$target" in
    sse | forbidden | upload_target | import) libfuzzer "$target" ;;
    multipart) proptest_multipart ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
  esac
done

#!/usr/bin/env bash
# test_bench_progress.sh BENCH: on a terminal, coronet_bench writes one progress line per second
# of the measured window to stderr; into a pipe or file it writes none, so logs stay clean.
set -euo pipefail
bench=$1
command -v script >/dev/null || { echo "test_bench_progress: no script(1): skipped"; exit 77; }
args="--proto tcp --connections 5 --duration 3 --warmup 0.5"
# script(1) gives the program a pseudo-terminal and copies what it writes there.
tty_out=$(timeout 60 script -qec "$bench $args" /dev/null)
for second in 1 2; do
  grep -q "coronet_bench: $second/3 s .* msg/s" <<<"$tty_out" || {
    printf '%s\n' "$tty_out"; echo "test_bench_progress: no progress line for second $second" >&2; exit 1; }
done
grep -q "coronet_bench: warming up for 0.5 s" <<<"$tty_out" || {
  echo "test_bench_progress: no warm-up line" >&2; exit 1; }
piped_err=$(timeout 60 "$bench" $args 2>&1 >/dev/null)
if grep -q "msg/s" <<<"$piped_err"; then
  printf '%s\n' "$piped_err"; echo "test_bench_progress: progress lines on a pipe" >&2; exit 1
fi
echo "test_bench_progress: ok"

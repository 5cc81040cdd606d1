#!/usr/bin/env bash
# metrics.sh [BIN]: what observing costs. Two copies of the same echo_server (BIN:
# build/release/bin), one thread each, without and with --metrics (runtime_options::observe:
# counters per operation and the suspended-operation records), run side by side on CPU 0,
# each driven by its own coronet_bench on CPU 1 over the same seconds. Both meet the same
# moment of this noisy machine, so the ratio of their rates is steady where runs one after
# the other differ by 10-30% (RUNS=15 of those gave on/off ratios from 0.75 to 1.29). With
# the two servers sharing CPU 0, which they keep busy, each one's msg/s follows its CPU time
# per message. Cells: ping-pong of 64 B at 100 and 1,000 connections, a 64 KiB flood on 10.
# One line per cell and server with the median msg/s, the runs, p50, p99 and the server's CPU
# time per message; then, per cell, the ratios on/off of msg/s and of CPU per message in each
# round, and their medians.
#   RUNS (5), DURATION seconds per run (5), CELLS ("pingpong 64 100;pingpong 64 1000;flood
#   65536 10": MODE SIZE CONNECTIONS, separated by ";")
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/release/bin}
runs=${RUNS:-5}
duration=${DURATION:-5}
IFS=';' read -r -a cells <<<"${CELLS:-pingpong 64 100;pingpong 64 1000;flood 65536 10}"

say() { echo "metrics.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a whole number >= 1"
[[ $duration =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DURATION must be seconds, not '$duration'"
for program in "$bin/echo_server" "$bin/coronet_bench"; do
  [ -x "$program" ] || die "$program not found: make release first"
done
command -v taskset >/dev/null || die "taskset not found (Debian package util-linux)"

# shellcheck source=benchmarks/echo_servers.sh
. "$root/benchmarks/echo_servers.sh"

# Starts echo_server for `variant` on CPU 0: sets pid_<variant> and address_<variant>.
start_variant() {
  local variant=$1 args=() address="" pid
  [ "$variant" = on ] && args=(--metrics 127.0.0.1:0)
  taskset -c 0 "$bin/echo_server" --threads 1 --tcp 127.0.0.1:0 "${args[@]}" \
    >"$work/ready-$variant" 2>"$work/server-$variant.err" &
  pid=$!
  for _ in $(seq 50); do
    address=$(sed -n 's/^listening tcp //p' "$work/ready-$variant")
    [ -n "$address" ] && break
    sleep 0.1
  done
  [ -n "$address" ] || die "echo_server printed no ready line: $(cat "$work/server-$variant.err")"
  printf -v "pid_$variant" '%s' "$pid"
  printf -v "address_$variant" '%s' "$address"
}

pid_off="" pid_on=""
stop_variants() {
  local pid
  for pid in $pid_off $pid_on; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $pid_off $pid_on; do wait "$pid" || die "echo_server did not exit cleanly"; done
  pid_off="" pid_on=""
}
trap 'for p in $pid_off $pid_on; do kill -KILL "$p" 2>/dev/null || true; done; cleanup' EXIT

for run in $(seq "$runs"); do
  say "run $run of $runs"
  for cell in "${cells[@]}"; do
    read -r mode size connections <<<"$cell"
    start_variant off
    start_variant on
    benches=()
    for variant in off on; do
      pid_var="pid_$variant" address_var="address_$variant"
      taskset -c 1 "$bin/coronet_bench" --proto tcp --mode "$mode" --size "$size" \
        --connections "$connections" --duration "$duration" --warmup 1 \
        --target "${!address_var}" --server-pid "${!pid_var}" \
        --json "$work/$variant-${cell// /-}-$run.json" >"$work/bench-$variant.out" &
      benches+=($!)
    done
    for bench in "${benches[@]}"; do
      wait "$bench" || die "coronet_bench failed ($cell): $(tail -n 3 "$work"/bench-*.out)"
    done
    stop_variants
  done
done

summary_header metrics
for cell in "${cells[@]}"; do
  for variant in off on; do
    summary_row "$cell" "$variant" "$work/$variant-${cell// /-}-"*.json
  done
done
echo
printf '%-22s %-44s %7s  %-44s %7s\n' cell "on/off msg/s per round" median \
  "on/off server CPU per message per round" median
for cell in "${cells[@]}"; do
  rates="" cpus=""
  for run in $(seq "$runs"); do
    off="$work/off-${cell// /-}-$run.json" on="$work/on-${cell// /-}-$run.json"
    rates+=$(awk -v a="$(field "$on" '"msgs_per_sec":\([0-9.e+]*\),')" \
      -v b="$(field "$off" '"msgs_per_sec":\([0-9.e+]*\),')" 'BEGIN {printf "%.3f\n", a / b}')$'\n'
    cpus+=$(awk -v a="$(field "$on" '"server_cpu_s_per_msg":\([0-9.e+-]*\),')" \
      -v b="$(field "$off" '"server_cpu_s_per_msg":\([0-9.e+-]*\),')" \
      'BEGIN {printf "%.3f\n", a / b}')$'\n'
  done
  # shellcheck disable=SC2086 # one word per round
  printf '%-22s %-44s %7s  %-44s %7s\n' "$cell" "$(printf '%s ' $rates)" \
    "$(median <<<"${rates%$'\n'}")" "$(printf '%s ' $cpus)" "$(median <<<"${cpus%$'\n'}")"
done

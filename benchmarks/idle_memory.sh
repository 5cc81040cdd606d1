#!/usr/bin/env bash
# idle_memory.sh [BIN_DIR]: what each echo server holds in memory per idle connection
# (BIN_DIR: build/release/bin). Each server in SERVERS runs with one thread; coronet_bench
# --mode idle opens CONNECTIONS TCP connections to it, makes one 64-byte round trip on each and
# holds them all silent for a few seconds. The figure is the server's RSS in that window minus
# its RSS before the first connect, divided by CONNECTIONS: user-space memory only, since the
# kernel's socket buffers are not in a process's RSS. RUNS rounds, the servers interleaved in
# each; one line per run, then the median per server.
#   SERVERS (default "coronet asio asio-coro epoll"; NAME=PATH adds any program with echo_server's
#   command line, such as an older build), CONNECTIONS (10000), RUNS (3)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/release/bin}
read -r -a servers <<<"${SERVERS:-coronet asio asio-coro epoll}"
connections=${CONNECTIONS:-10000}
runs=${RUNS:-3}

say() { echo "idle_memory.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[[ $connections =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a whole number >= 1"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a whole number >= 1"
# shellcheck source=benchmarks/echo_servers.sh
. "$root/benchmarks/echo_servers.sh"
check_servers "${servers[@]}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# One run against one server: prints its line and sets `figure` (bytes per connection).
figure=""
measure() {
  local server=$1
  start_server "$server" 10

  "$bin/coronet_bench" --mode idle --target "$address" --server-pid "$server_pid" \
    --connections "$connections" --size 64 --warmup 2 --duration 2 \
    --json "$work/bench.json" >"$work/bench.out" ||
    die "coronet_bench failed against $server: $(tail -n 5 "$work/bench.out")"
  stop_server "$server"

  local per before window
  per=$(sed -n 's/.*"server_bytes_per_connection":[[:space:]]*\([-0-9.e+]*\).*/\1/p' "$work/bench.json")
  before=$(tr -d '\n ' <"$work/bench.json" | sed -n 's/.*"server_rss_kib":{"before":\([0-9]*\),"window":\([0-9]*\)}.*/\1/p')
  window=$(tr -d '\n ' <"$work/bench.json" | sed -n 's/.*"server_rss_kib":{"before":\([0-9]*\),"window":\([0-9]*\)}.*/\2/p')
  [ -n "$per" ] && [ -n "$before" ] && [ -n "$window" ] || die "no memory figures for $server"
  printf '%-10s RSS %7d KiB before, %7d KiB with %d idle connections: %6.0f bytes each\n' \
    "$(server_name "$server")" "$before" "$window" "$connections" "$per"
  figure=$(printf '%.0f' "$per")
}

declare -A figures
for run in $(seq "$runs"); do
  say "run $run of $runs"
  for server in "${servers[@]}"; do
    measure "$server"
    figures[$(server_name "$server")]+="$figure "
  done
done
echo "median of $runs runs, bytes of server RSS per idle connection ($connections connections):"
for server in "${servers[@]}"; do
  n=$(server_name "$server")
  median=$(tr ' ' '\n' <<<"${figures[$n]}" | sed '/^$/d' | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}')
  printf '%-10s %6d   (runs: %s)\n' "$n" "$median" "${figures[$n]% }"
done

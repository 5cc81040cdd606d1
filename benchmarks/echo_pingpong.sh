#!/usr/bin/env bash
# echo_pingpong.sh [BIN_DIR]: TCP ping-pong through echo_server, measured with echo_client.
# With one server thread: server pinned to CPU 0, client to CPU 1. With THREADS > 1 nothing is
# pinned (server threads and client share the cores). For each connection count, RUNS runs
# interleaved; the median msg/s is reported with the server's CPU time per message.
#   CONNECTIONS (default "100 1000"), RUNS (default 3), DURATION seconds (default 5), SIZE (64),
#   THREADS (echo_server --threads, default 1), PLACEMENT (round-robin or reuse-port)
set -euo pipefail

bin=${1:-build/release/bin}
connections_list=${CONNECTIONS:-100 1000}
runs=${RUNS:-3}
duration=${DURATION:-5}
size=${SIZE:-64}
threads=${THREADS:-1}
placement=${PLACEMENT:-round-robin}
server_cpus=0 client_cpus=1
if [ "$threads" -gt 1 ]; then server_cpus=0-1 client_cpus=0-1; fi
ticks=$(getconf CLK_TCK)

one_run() {  # one_run CONNECTIONS -> "msgs_per_sec user_us_per_msg sys_us_per_msg"
  local work server ready address before after messages rate
  work=$(mktemp -d)
  taskset -c "$server_cpus" "$bin/echo_server" --tcp 127.0.0.1:0 --threads "$threads" \
    --placement "$placement" >"$work/ready" 2>/dev/null &
  server=$!
  for _ in $(seq 200); do [ -s "$work/ready" ] && break; sleep 0.05; done
  read -r ready <"$work/ready"
  address=${ready#listening tcp }
  before=$(awk '{print $14, $15}' "/proc/$server/stat")
  taskset -c "$client_cpus" "$bin/echo_client" --target "$address" --connections "$1" --duration "$duration" \
    --size "$size" >"$work/client"
  after=$(awk '{print $14, $15}' "/proc/$server/stat")
  kill -TERM "$server"; wait "$server"
  messages=$(awk '/^messages echoed/ {print $3}' "$work/client")
  rate=$(awk '/^throughput/ {print $2}' "$work/client")
  grep -q '^result *ok' "$work/client" || { cat "$work/client" >&2; exit 1; }
  rm -rf "$work"
  awk -v b="$before" -v a="$after" -v m="$messages" -v r="$rate" -v t="$ticks" 'BEGIN {
    split(b, x, " "); split(a, y, " ");
    printf "%s %.2f %.2f\n", r, (y[1] - x[1]) / t * 1e6 / m, (y[2] - x[2]) / t * 1e6 / m }'
}

median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

printf '%-12s %12s %18s %18s\n' connections "msg/s" "server user us/msg" "server sys us/msg"
declare -A results
for run in $(seq "$runs"); do
  for c in $connections_list; do results[$c]+="$(one_run "$c")"$'\n'; done
done
for c in $connections_list; do
  rate=$(printf '%s' "${results[$c]}" | awk '{print $1}' | median)
  user=$(printf '%s' "${results[$c]}" | awk '{print $2}' | median)
  sys=$(printf '%s' "${results[$c]}" | awk '{print $3}' | median)
  printf '%-12s %12s %18s %18s\n' "$c" "$rate" "$user" "$sys"
done

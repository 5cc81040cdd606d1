#!/usr/bin/env bash
# c100k.sh [BIN_DIR]: CONNECTIONS (100,000) concurrent TCP connections to one echo_server run
# as WORKERS prefork processes (--workers, one thread each), opened by CLIENTS coronet_bench
# processes in idle mode, each from source addresses of its own (127.0.0.2, 127.0.0.3, ...).
# A process here holds at most about 20,000 descriptors, so neither side fits in one process.
# Each connection makes one checked 64-byte round trip, then stays open and silent.
#
# It reports:
#   - time to open: from the first client's start until the workers hold every connection
#     (their descriptors in /proc/PID/fd, counted every 0.1 s; once all are there, their
#     sockets are counted again for the spread and for "held at once");
#   - the server's RSS (parent and workers) before the first connect and with every
#     connection open, and the difference per connection;
#   - how many connections each worker holds;
#   - each client's proof: every connection opened, with its own local endpoint and
#     descriptor, one round trip each, no error (coronet_bench exits 0 only then).
# Exit 0 when all of that holds and the server then stops cleanly on SIGTERM; 1 otherwise.
#   CONNECTIONS (100000), WORKERS (8), CLIENTS (8), HOLD (seconds each client keeps its
#   connections once it has opened them: 20; every client must have opened all of its own
#   within that time for all to be open at once)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/release/bin}
connections=${CONNECTIONS:-100000}
workers=${WORKERS:-8}
clients=${CLIENTS:-8}
hold=${HOLD:-20}

say() { echo "c100k.sh: $*" >&2; }
die() { say "$*"; exit 1; }

for n in connections workers clients hold; do
  [[ ${!n} =~ ^[1-9][0-9]*$ ]] || die "${n^^} must be a whole number >= 1"
done
[ "$clients" -le "$connections" ] || die "more CLIENTS than CONNECTIONS"
for program in echo_server coronet_bench; do
  [ -x "$bin/$program" ] || die "$bin/$program not found: make release"
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d)
server_pid=""
client_pids=()
cleanup() {
  local pid
  for pid in "${client_pids[@]}" $server_pid; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf -- "$work"
}
trap cleanup EXIT

now() { date +%s.%N; }
# The server's processes: the parent and its workers.
server_pids() { echo "$server_pid" $(pgrep -P "$server_pid" || true); }
rss_kib() {
  local pid total=0 kib
  for pid in $(server_pids); do
    kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}
# Counted while the clients connect: cheap enough to poll every 0.1 s.
descriptors() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
# Counted once all are open: sockets only, whatever else a process opens for a moment.
sockets() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -lname 'socket:*' 2>/dev/null | wc -l; }

# The server, and its sockets with no connection yet.
"$bin/echo_server" --workers "$workers" --threads 1 --tcp 127.0.0.1:0 --log-level warn \
  >"$work/ready" 2>"$work/server.err" &
server_pid=$!
address=""
for _ in $(seq 100); do
  address=$(sed -n 's/^listening tcp //p' "$work/ready")
  [ -n "$address" ] && break
  kill -0 "$server_pid" 2>/dev/null || die "echo_server exited early: $(tail -n 5 "$work/server.err")"
  sleep 0.1
done
[[ $address == 127.0.0.1:* ]] || die "echo_server printed no ready line on 127.0.0.1"
read -r -a worker_pids <<<"$(pgrep -P "$server_pid" | tr '\n' ' ')"
[ "${#worker_pids[@]}" -eq "$workers" ] || die "expected $workers workers, found ${#worker_pids[@]}"
declare -A base base_sockets
for pid in "${worker_pids[@]}"; do
  base[$pid]=$(descriptors "$pid")
  base_sockets[$pid]=$(sockets "$pid")
done
rss_before=$(rss_kib)

# The clients: client k takes its share of the connections and enough source addresses for
# them, after client k-1's.
ports=$(awk '{print $2 - $1 + 1}' /proc/sys/net/ipv4/ip_local_port_range)
per_address=$((ports * 9 / 10))
next_source=2
started=$(now)
for k in $(seq 0 $((clients - 1))); do
  share=$((connections / clients + (k < connections % clients ? 1 : 0)))
  sources=$(((share + per_address - 1) / per_address))
  [ $((next_source + sources - 1)) -le 254 ] || die "more source addresses than 127.0.0.2-254 offer"
  "$bin/coronet_bench" --mode idle --target "$address" --connections "$share" --size 64 \
    --sources "$sources" --first-source "127.0.0.$next_source" --warmup "$hold" --duration 1 \
    --json "$work/client$k.json" >"$work/client$k.out" 2>"$work/client$k.err" &
  client_pids+=($!)
  next_source=$((next_source + sources))
done

# Until the workers hold every connection (or every client has ended).
held() {
  local pid total=0
  for pid in "${worker_pids[@]}"; do total=$((total + $(descriptors "$pid") - base[$pid])); done
  echo "$total"
}
opened_at=""
while :; do
  count=$(held)
  if [ "$count" -ge "$connections" ]; then
    opened_at=$(now)
    break
  fi
  running=0
  for pid in "${client_pids[@]}"; do kill -0 "$pid" 2>/dev/null && running=1; done
  [ "$running" -eq 1 ] || break
  sleep 0.1
done
[ -n "$opened_at" ] || say "the workers never held all $connections connections at once (at most $count seen last)"

# With all open: let the last round trips finish, then the memory and the spread.
if [ -n "$opened_at" ]; then
  sleep 1
  rss_open=$(rss_kib)
  spread=()
  still=0
  for pid in "${worker_pids[@]}"; do
    spread+=("$(($(sockets "$pid") - base_sockets[$pid]))")
    still=$((still + spread[-1]))
  done
fi

failed=0
for k in "${!client_pids[@]}"; do
  if ! wait "${client_pids[$k]}"; then
    say "client $k failed: $(grep -E '^(sockets|errors)' "$work/client$k.out" | tr '\n' ' ')$(tail -n 3 "$work/client$k.err")"
    failed=1
  fi
done
client_pids=()
kill -TERM "$server_pid"
if ! wait "$server_pid"; then
  say "echo_server did not exit cleanly on SIGTERM: $(tail -n 5 "$work/server.err")"
  failed=1
fi
server_pid=""
[ -n "$opened_at" ] || exit 1

open_s=$(awk -v a="$started" -v b="$opened_at" 'BEGIN {printf "%.1f", b - a}')
echo "c100k: $connections connections from $clients coronet_bench processes (127.0.0.2-127.0.0.$((next_source - 1))) to echo_server --workers $workers"
echo "  time to open all:     $open_s s"
echo "  held at once:         $still connections, by worker: ${spread[*]}"
awk -v b="$rss_before" -v o="$rss_open" -v n="$connections" 'BEGIN {
  printf "  server RSS:           %.1f MiB before, %.1f MiB with all open: %.0f bytes per connection\n",
         b / 1024, o / 1024, (o - b) * 1024 / n }'
if [ "$failed" -eq 0 ] && [ "$still" -ge "$connections" ]; then
  echo "  clients:              every connection opened with its own local endpoint and descriptor, one round trip each, 0 errors"
  echo "c100k: PASS"
else
  echo "c100k: FAIL"
  exit 1
fi

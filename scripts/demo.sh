#!/usr/bin/env bash
# demo.sh [BIN_DIR]: what `make demo` runs. Starts echo_server on TCP, UDP and a Unix socket
# (free loopback ports, a temporary socket file), then measures it with coronet_bench: many
# concurrent TCP connections, then UDP sockets, then Unix connections, a few seconds each, every
# reply checked. Prints each results table with its per-socket proof, counts the server's own
# descriptors mid-run, stops the server with SIGTERM and checks that everything exited 0.
#   DEMO_CONNECTIONS (default 1000), DEMO_UDP_SOCKETS (default 100), DEMO_DURATION seconds
#   (default 3), DEMO_SIZE bytes (default 64)
set -euo pipefail

bin=${1:-build/bin}
connections=${DEMO_CONNECTIONS:-1000}
udp_sockets=${DEMO_UDP_SOCKETS:-100}
duration=${DEMO_DURATION:-3}
size=${DEMO_SIZE:-64}

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "demo: FAILED: $*" >&2
  [ -s "$work/server.log" ] && { echo "--- echo_server's log:" >&2; cat "$work/server.log" >&2; }
  exit 1
}

# One thread per core, and enough descriptors for the connections (the bench raises its own).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$bin/echo_server" --tcp 127.0.0.1:0 --udp 127.0.0.1:0 --unix "$work/echo.sock" \
  >"$work/ready" 2>"$work/server.log" &
server=$!
for _ in $(seq 200); do
  [ "$(wc -l <"$work/ready")" -ge 3 ] && break
  kill -0 "$server" 2>/dev/null || fail "echo_server exited before it was ready"
  sleep 0.05
done
tcp=$(awk '$2 == "tcp" {print $3}' "$work/ready")
udp=$(awk '$2 == "udp" {print $3}' "$work/ready")
[ -n "$tcp" ] && [ -n "$udp" ] || fail "echo_server printed no ready lines"
echo "demo: echo_server (pid $server, one thread per core) says:"
sed 's/^/  /' "$work/ready"
echo

# bench PROTO CONNECTIONS TARGET: one measured run, its table on stdout.
bench() {
  echo "demo: coronet_bench --proto $1 --connections $2 --target $3 (${duration} s after a 1 s warm-up)"
  "$bin/coronet_bench" --proto "$1" --mode pingpong --connections "$2" --size "$size" \
    --duration "$duration" --warmup 1 --target "$3" --server-pid "$server" &
  local client=$!
  # Mid-run, the server's side of the proof: its open descriptors.
  sleep "$(awk "BEGIN { print 1 + $duration / 2 }")"
  local fds
  fds=$(find "/proc/$server/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
  wait "$client" || fail "coronet_bench --proto $1 reported errors"
  echo "demo: mid-run, echo_server held $fds open descriptors (its listeners, UDP sockets, epoll"
  echo "      and stdio, plus one per connection when the protocol has connections)"
  echo
}

bench tcp "$connections" "$tcp"
bench udp "$udp_sockets" "$udp"
bench unix 100 "$work/echo.sock"

kill -TERM "$server"
status=0
wait "$server" || status=$?
server=""
[ "$status" -eq 0 ] || fail "echo_server exited with status $status after SIGTERM"
[ -e "$work/echo.sock" ] && fail "echo_server left its socket file behind"
echo "demo: echo_server stopped by SIGTERM, exit status 0, socket file removed"
echo "demo: ok"

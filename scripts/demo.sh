#!/usr/bin/env bash
# demo.sh [BIN_DIR]: what `make demo` runs. Starts echo_server on a free loopback port, drives
# it with echo_client over many concurrent connections for a few seconds (every reply checked
# against what that connection sent), shows that each connection has its own socket, then stops
# the server with SIGTERM and checks that it exits 0.
#   DEMO_CONNECTIONS (default 1000), DEMO_DURATION seconds (default 3), DEMO_SIZE bytes (default 64)
set -euo pipefail

bin=${1:-build/bin}
connections=${DEMO_CONNECTIONS:-1000}
duration=${DEMO_DURATION:-3}
size=${DEMO_SIZE:-64}

work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill -KILL "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/echo_server" --tcp 127.0.0.1:0 >"$work/ready" 2>"$work/server.log" &
server=$!
for _ in $(seq 200); do
  [ -s "$work/ready" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.05
done
read -r ready <"$work/ready" || { echo "demo: echo_server printed no ready line" >&2; exit 1; }
address=${ready#listening tcp }
echo "demo: echo_server (pid $server) says: $ready"
echo "demo: $connections concurrent connections, ${duration}s of ${size}-byte ping-pong, every reply checked"
echo

"$bin/echo_client" --target "$address" --connections "$connections" --duration "$duration" \
                   --size "$size" &
client=$!
# Halfway through, count the server's open descriptors: one socket per connection.
sleep "$(awk "BEGIN { print $duration / 2 }")"
server_fds=$(find "/proc/$server/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
client_status=0
wait "$client" || client_status=$?
echo
echo "demo: echo_server held $server_fds open descriptors mid-run (its $connections connections, the listener, epoll and stdio)"

kill -TERM "$server"
server_status=0
wait "$server" || server_status=$?
server=""
echo "demo: echo_server stopped by SIGTERM, exit status $server_status"
if [ "$client_status" -ne 0 ] || [ "$server_status" -ne 0 ]; then
  echo "demo: FAILED" >&2
  cat "$work/server.log" >&2
  exit 1
fi
echo "demo: ok"

#!/usr/bin/env bash
# instructions.sh [BIN_DIR]: instructions each echo server executes per message, counted by
# valgrind's callgrind, which does not depend on the machine's noise (BIN_DIR: build/release/bin).
# Each server in SERVERS runs alone (one thread) under callgrind while coronet_bench drives it
# with CONNECTIONS TCP connections of 64-byte ping-pong for DURATION seconds, no warm-up; the
# server's total instruction count, connection setup included, is divided by the messages
# echoed. Prints one line per server and, with OUT set, writes each callgrind profile there
# (callgrind_annotate OUT/<server>.callgrind shows where the instructions go).
#   SERVERS (default "coronet asio epoll"; NAME=PATH adds any program with echo_server's
#   command line, such as an older build), CONNECTIONS (1000), DURATION seconds (8), OUT
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/release/bin}
read -r -a servers <<<"${SERVERS:-coronet asio epoll}"
connections=${CONNECTIONS:-1000}
duration=${DURATION:-8}

say() { echo "instructions.sh: $*" >&2; }
die() { say "$*"; exit 1; }

command -v valgrind >/dev/null || die "valgrind not found (Debian package valgrind)"
[[ $connections =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a whole number >= 1"
[[ $duration =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DURATION must be seconds, not '$duration'"
program() {
  case $1 in
    coronet) echo "$bin/echo_server" ;;
    asio) echo "$bin/asio_echo_server" ;;
    epoll) echo "$bin/epoll_echo_server" ;;
    *=*) echo "${1#*=}" ;;
    *) die "unknown server '$1': coronet, asio, epoll or NAME=PATH" ;;
  esac
}
name() { echo "${1%%=*}"; }
for server in "${servers[@]}"; do
  [ -x "$(program "$server")" ] || die "$(program "$server") not found: make release"
done
[ -x "$bin/coronet_bench" ] || die "$bin/coronet_bench not found: make release"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT

for server in "${servers[@]}"; do
  profile="$work/$(name "$server").callgrind"
  valgrind --tool=callgrind --callgrind-out-file="$profile" \
    "$(program "$server")" --tcp 127.0.0.1:0 --threads 1 >"$work/ready" 2>"$work/server.err" &
  server_pid=$!
  address=""
  for _ in $(seq 600); do  # valgrind starts slowly: up to 60 s
    address=$(sed -n 's/^listening tcp //p' "$work/ready")
    [ -n "$address" ] && break
    kill -0 "$server_pid" 2>/dev/null || die "$server exited early: $(tail -n 5 "$work/server.err")"
    sleep 0.1
  done
  [[ $address == 127.0.0.1:* ]] || die "$server printed no ready line on 127.0.0.1"

  "$bin/coronet_bench" --target "$address" --connections "$connections" --size 64 \
    --duration "$duration" --warmup 0 --json "$work/bench.json" >"$work/bench.out" ||
    die "coronet_bench failed against $server: $(tail -n 5 "$work/bench.out")"
  kill -TERM "$server_pid"
  wait "$server_pid" || die "$server did not exit cleanly on SIGTERM"
  server_pid=""

  messages=$(sed -n 's/.*"messages":[[:space:]]*\([0-9]*\).*/\1/p' "$work/bench.json")
  total=$(sed -n 's/^totals:[[:space:]]*\([0-9]*\).*/\1/p' "$profile")
  [ -n "$messages" ] && [ "$messages" -gt 0 ] && [ -n "$total" ] ||
    die "no message count or instruction total for $server"
  printf '%-8s %12s instructions / %9s messages = %6d per message\n' \
    "$(name "$server")" "$total" "$messages" "$((total / messages))"
  if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$profile" "$OUT/"; fi
done

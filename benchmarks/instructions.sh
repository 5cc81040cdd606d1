#!/usr/bin/env bash
# instructions.sh [BIN_DIR]: instructions each echo server executes per message, counted by
# valgrind's callgrind, which does not depend on the machine's noise (BIN_DIR: build/release/bin).
# Each server in SERVERS runs alone (one thread) under callgrind while coronet_bench drives it
# with CONNECTIONS TCP connections of 64-byte ping-pong for DURATION seconds, no warm-up; the
# server's total instruction count, connection setup included, is divided by the messages
# echoed. Prints one line per server and, with OUT set, writes each callgrind profile there
# (callgrind_annotate OUT/<server>.callgrind shows where the instructions go).
#   SERVERS (default "coronet asio asio-coro epoll"; NAME=PATH adds any program with echo_server's
#   command line, such as an older build), CONNECTIONS (1000), DURATION seconds (8), OUT
#   MARGINAL=SECONDS: run each server a second time for that long and also print the marginal
#   count, (instructions of the longer run - the shorter's) / (messages likewise), which leaves
#   out connection setup and teardown, the same in both runs.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/release/bin}
read -r -a servers <<<"${SERVERS:-coronet asio asio-coro epoll}"
connections=${CONNECTIONS:-1000}
duration=${DURATION:-8}

say() { echo "instructions.sh: $*" >&2; }
die() { say "$*"; exit 1; }

command -v valgrind >/dev/null || die "valgrind not found (Debian package valgrind)"
[[ $connections =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a whole number >= 1"
[[ $duration =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DURATION must be seconds, not '$duration'"
# shellcheck source=benchmarks/echo_servers.sh
. "$root/benchmarks/echo_servers.sh"
check_servers "${servers[@]}"
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Runs `server` under callgrind for `seconds` of ping-pong: sets total and messages.
measure() {
  local server=$1 seconds=$2 profile
  profile="$work/$(server_name "$server").callgrind"
  # valgrind starts slowly: up to 60 s for the ready line
  start_server "$server" 60 valgrind --tool=callgrind --callgrind-out-file="$profile"

  "$bin/coronet_bench" --target "$address" --connections "$connections" --size 64 \
    --duration "$seconds" --warmup 0 --json "$work/bench.json" >"$work/bench.out" ||
    die "coronet_bench failed against $server: $(tail -n 5 "$work/bench.out")"
  stop_server "$server"

  messages=$(sed -n 's/.*"messages":[[:space:]]*\([0-9]*\).*/\1/p' "$work/bench.json")
  total=$(sed -n 's/^totals:[[:space:]]*\([0-9]*\).*/\1/p' "$profile")
  [ -n "$messages" ] && [ "$messages" -gt 0 ] && [ -n "$total" ] ||
    die "no message count or instruction total for $server"
  if [ -n "${OUT:-}" ]; then mkdir -p "$OUT" && cp "$profile" "$OUT/"; fi
}

for server in "${servers[@]}"; do
  measure "$server" "$duration"
  printf '%-8s %12s instructions / %9s messages = %6d per message' \
    "$(server_name "$server")" "$total" "$messages" "$((total / messages))"
  if [ -n "${MARGINAL:-}" ]; then
    first_total=$total first_messages=$messages
    measure "$server" "$MARGINAL"
    [ "$messages" -ne "$first_messages" ] || die "both runs of $server echoed as many messages"
    printf '; marginal %6d per message' \
      "$(((total - first_total) / (messages - first_messages)))"
  fi
  printf '\n'
done

#!/usr/bin/env bash
# test_demo.sh DEMO_SCRIPT BIN_DIR: `make demo`'s script, run small: it must finish with
# "demo: ok", show each protocol's results table with its per-socket proof, and exit 0.
set -euo pipefail
demo=$1 bin=$2
out=$(DEMO_CONNECTIONS=200 DEMO_UDP_SOCKETS=20 DEMO_DURATION=1 timeout 60 "$demo" "$bin" 2>&1) || {
  printf '%s\n' "$out"; echo "test_demo: the demo failed" >&2; exit 1; }
printf '%s\n' "$out"
check() { grep -qF -- "$1" <<<"$out" || { echo "test_demo: missing: $1" >&2; exit 1; }; }
check "coronet_bench: tcp ping-pong, 200 connections"
check "opened 200 of 200, unique local endpoints 200, unique fds 200"
check "coronet_bench: udp ping-pong, 20 connections"
check "opened 20 of 20, unique local endpoints 20, unique fds 20"
check "coronet_bench: unix ping-pong, 100 connections"
check "echo_server stopped by SIGTERM, exit status 0, socket file removed"
[ "$(grep -c '^result *ok$' <<<"$out")" -eq 3 ] || { echo "test_demo: not three ok results" >&2; exit 1; }
check "demo: ok"

#!/usr/bin/env bash
# io_uring.sh [EPOLL_BIN [URING_BIN]]: echo_server on Asio's epoll reactor (the release preset,
# build/release/bin) against echo_server on Asio's io_uring backend (the uring preset,
# build/uring/bin), both with one thread pinned to CPU 0, driven by the epoll build's
# coronet_bench on CPU 1: TCP ping-pong of 64 B at 100 and 1,000 connections, UDP ping-pong of
# 64 B at 100 sockets, TCP flood of 64 KiB on 10 connections. RUNS rounds (3), the two servers
# interleaved in each cell; one line per cell and server with the median msg/s, the runs, p50,
# p99 and the server's CPU time per message.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
epoll_bin=${1:-$root/build/release/bin}
uring_bin=${2:-$root/build/uring/bin}
runs=${RUNS:-3}

say() { echo "io_uring.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a whole number >= 1"
for program in "$epoll_bin/echo_server" "$epoll_bin/coronet_bench" "$uring_bin/echo_server"; do
  [ -x "$program" ] || die "$program not found: make release, and cmake --preset uring && cmake --build --preset uring"
done
command -v taskset >/dev/null || die "taskset not found (Debian package util-linux)"

# The work directory, and its removal at exit with a server left running.
# shellcheck source=benchmarks/echo_servers.sh
. "$root/benchmarks/echo_servers.sh"

cells=("tcp pingpong 64 100" "tcp pingpong 64 1000" "udp pingpong 64 100" "tcp flood 65536 10")
for run in $(seq "$runs"); do
  say "run $run of $runs"
  for cell in "${cells[@]}"; do
    read -r proto mode size connections <<<"$cell"
    for backend in epoll uring; do
      bin=$epoll_bin
      [ "$backend" = uring ] && bin=$uring_bin
      taskset -c 0 "$bin/echo_server" --threads 1 --tcp 127.0.0.1:0 --udp 127.0.0.1:0 \
        >"$work/ready" 2>"$work/server.err" &
      server_pid=$!
      for _ in $(seq 50); do grep -q '^listening udp' "$work/ready" && break; sleep 0.1; done
      address=$(sed -n "s/^listening $proto //p" "$work/ready")
      [ -n "$address" ] || die "$backend echo_server printed no ready line"
      taskset -c 1 "$epoll_bin/coronet_bench" --proto "$proto" --mode "$mode" --size "$size" \
        --connections "$connections" --duration 5 --warmup 1 --target "$address" \
        --server-pid "$server_pid" --json "$work/$backend-${cell// /-}-$run.json" >/dev/null ||
        die "coronet_bench failed against the $backend echo_server ($cell)"
      kill -TERM "$server_pid"
      wait "$server_pid" || die "the $backend echo_server did not exit cleanly"
      server_pid=""
    done
  done
done

# One line per cell and backend: medians over the runs, read from each run's JSON.
summary_header server
for cell in "${cells[@]}"; do
  for backend in epoll uring; do
    summary_row "$cell" "$backend" "$work/$backend-${cell// /-}-"*.json
  done
done

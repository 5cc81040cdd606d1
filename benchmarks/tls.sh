#!/usr/bin/env bash
# tls.sh [BIN]: TLS against plain TCP on the same echo_server (BIN: build/release/bin), one
# thread pinned to CPU 0, serving both a --tcp and a --tls listener, driven by coronet_bench on
# CPU 1 (one thread): ping-pong of 64 B and 4 KiB at 100 connections, a 64 KiB flood on 10
# connections, and connect mode on 10 connections (each connects again and again: one
# connection, with its TLS handshake, plus one round trip of 64 B per message, so msg/s is
# handshakes per second). The certificate is a fresh P-256 one signed by a throwaway CA, and
# coronet_bench verifies it. RUNS rounds (3), TCP and TLS interleaved in each cell; one line
# per cell and transport with the median msg/s, the runs, p50, p99 and the server's CPU time
# per message.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/release/bin}
runs=${RUNS:-3}

say() { echo "tls.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a whole number >= 1"
for program in "$bin/echo_server" "$bin/coronet_bench"; do
  [ -x "$program" ] || die "$program not found: make release first"
done
command -v taskset >/dev/null || die "taskset not found (Debian package util-linux)"
command -v openssl >/dev/null || die "openssl not found (Debian package openssl)"

# The work directory, and its removal at exit with a server left running.
# shellcheck source=benchmarks/echo_servers.sh
. "$root/benchmarks/echo_servers.sh"

# A CA and a server certificate for 127.0.0.1, made for this run only.
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$work/ca.key" -out "$work/ca.pem" -days 1 \
  -subj "/CN=coronet bench CA" 2>/dev/null
openssl req "${ec[@]}" -keyout "$work/key.pem" -out "$work/server.csr" -subj "/CN=localhost" \
  2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/cert.pem" 2>/dev/null

cells=("pingpong 64 100" "pingpong 4096 100" "flood 65536 10" "connect 64 10")
for run in $(seq "$runs"); do
  say "run $run of $runs"
  for cell in "${cells[@]}"; do
    read -r mode size connections <<<"$cell"
    for transport in tcp tls; do
      taskset -c 0 "$bin/echo_server" --threads 1 --tcp 127.0.0.1:0 --tls 127.0.0.1:0 \
        --cert "$work/cert.pem" --key "$work/key.pem" >"$work/ready" 2>"$work/server.err" &
      server_pid=$!
      for _ in $(seq 50); do grep -q '^listening tls' "$work/ready" && break; sleep 0.1; done
      address=$(sed -n "s/^listening $transport //p" "$work/ready")
      [ -n "$address" ] || die "echo_server printed no ready line: $(cat "$work/server.err")"
      tls_args=()
      [ "$transport" = tls ] && tls_args=(--tls --tls-ca "$work/ca.pem")
      taskset -c 1 "$bin/coronet_bench" --proto tcp --mode "$mode" --size "$size" \
        --connections "$connections" --duration 5 --warmup 1 --target "$address" \
        "${tls_args[@]}" --server-pid "$server_pid" \
        --json "$work/$transport-${cell// /-}-$run.json" >/dev/null ||
        die "coronet_bench failed over $transport ($cell)"
      kill -TERM "$server_pid"
      wait "$server_pid" || die "echo_server did not exit cleanly"
      server_pid=""
    done
  done
done

# One line per cell and transport: medians over the runs, read from each run's JSON.
summary_header over
for cell in "${cells[@]}"; do
  for transport in tcp tls; do
    summary_row "$cell" "$transport" "$work/$transport-${cell// /-}-"*.json
  done
done

#!/usr/bin/env bash
# test_bench_sources.sh BENCH: coronet_bench spreads connections over 127.0.0.x by itself once
# one address's ephemeral ports would run out. Shown at small scale in a private network
# namespace whose ephemeral port range is cut to 1,000 ports: 3,000 TCP connections and 2,000
# UDP sockets then need several source addresses, and would fail with "Cannot assign requested
# address" on one. (At the default range the same happens beyond ~25,000 per address.)
# Exits 77 (skipped) where a network namespace cannot be made.
set -euo pipefail
bench=$1
unshare -n true 2>/dev/null || { echo "test_bench_sources: cannot unshare -n here: skipped"; exit 77; }

exec unshare -n bash -s "$bench" <<'INNER'
set -euo pipefail
bench=$1
ip link set lo up
sysctl -qw net.ipv4.ip_local_port_range="40000 40999"
check() {  # check OUTPUT TEXT
  grep -qF -- "$2" <<<"$1" || { printf '%s\n' "$1"; echo "test_bench_sources: missing: $2" >&2; exit 1; }
}
tcp=$("$bench" --proto tcp --connections 3000 --duration 1 --warmup 0.2 2>&1) || {
  printf '%s\n' "$tcp"; echo "test_bench_sources: tcp run failed" >&2; exit 1; }
check "$tcp" "opened 3,000 of 3,000, unique local endpoints 3,000, unique fds 3,000, source addresses 4"
check "$tcp" "errors                  0 "
udp=$("$bench" --proto udp --connections 2000 --duration 1 --warmup 0.2 2>&1) || {
  printf '%s\n' "$udp"; echo "test_bench_sources: udp run failed" >&2; exit 1; }
check "$udp" "opened 2,000 of 2,000, unique local endpoints 2,000, unique fds 2,000, source addresses 3"
printf '%s\n' "$tcp" "$udp"
INNER

#!/usr/bin/env bash
# run_bench.sh [BIN_DIR]: the benchmark matrix behind `make bench` (BIN_DIR: build/release/bin).
# Five echo servers, coronet-1t and coronet-2t (echo_server --threads 1 / 2), asio
# (asio_echo_server --threads 1: callbacks), asio-coro (asio_echo_server --coroutines --threads
# 1) and epoll (epoll_echo_server --threads 1), are each driven by coronet_bench over loopback
# through every cell:
#   tcp-pingpong-64-N and tcp-pingpong-4096-N for N = 1, 100, 1000, 10000 connections,
#   tcp-flood-65536-1, tcp-flood-65536-10, udp-pingpong-64-1 and udp-pingpong-64-100.
# Every measurement gets a fresh server pinned to SERVER_CPUS and the client pinned to
# CLIENT_CPUS. Within run k every cell goes through every server in turn, so that drift of the
# machine hits them all alike. Each measurement's JSON lands in OUT_DIR/<date>-runs/<server>/;
# bench_report then takes the median of the runs and writes OUT_DIR/<date>.json, the charts
# OUT_DIR/<date>-throughput.png and OUT_DIR/<date>-p99.png, and the table in README, and prints
# the table. A failed coronet_bench run is kept and reported, and the matrix goes on; the exit
# status is then 1.
#   RUNS (default 3), DURATION seconds (5), WARMUP seconds (1),
#   SERVERS (default "coronet-1t coronet-2t asio asio-coro epoll"),
#   CELLS (default: all, names as above),
#   SERVER_CPUS, CLIENT_CPUS (taskset lists; default 0 and 1, or the first and second half of
#   the CPUs when there are 4 or more), OUT_DIR (default benchmarks/results),
#   README (default benchmarks/README.md; empty: the README is left alone)
set -euo pipefail

all_servers=(coronet-1t coronet-2t asio asio-coro epoll)
all_cells=(tcp-pingpong-64-1 tcp-pingpong-64-100 tcp-pingpong-64-1000 tcp-pingpong-64-10000
           tcp-pingpong-4096-1 tcp-pingpong-4096-100 tcp-pingpong-4096-1000 tcp-pingpong-4096-10000
           tcp-flood-65536-1 tcp-flood-65536-10 udp-pingpong-64-1 udp-pingpong-64-100)
knobs=(RUNS DURATION WARMUP SERVERS CELLS SERVER_CPUS CLIENT_CPUS OUT_DIR README)

say() { echo "run_bench.sh: $*" >&2; }
die() { say "$*"; exit 1; }

# `value` as the shell would need it typed: bare when that is safe, else in single quotes.
shell_quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:,=+@%-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# The command as typed: the knobs that were set, the script, its arguments.
recorded_command() {
  local out="" knob arg
  for knob in "${knobs[@]}"; do
    if [ -n "${!knob+set}" ]; then out+="$knob=$(shell_quote "${!knob}") "; fi
  done
  out+=$(shell_quote "$0")
  for arg in "$@"; do out+=" $(shell_quote "$arg")"; done
  printf '%s' "$out"
}

command_line=$(recorded_command "$@")
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-build/release/bin}
runs=${RUNS:-3}
duration=${DURATION:-5}
warmup=${WARMUP:-1}
read -r -a servers <<<"${SERVERS:-${all_servers[*]}}"
read -r -a cells <<<"${CELLS:-${all_cells[*]}}"
out_dir=${OUT_DIR:-$root/benchmarks/results}
readme=${README-$root/benchmarks/README.md}

cpus=$(nproc)
if [ "$cpus" -ge 4 ]; then
  default_server_cpus="0-$((cpus / 2 - 1))" default_client_cpus="$((cpus / 2))-$((cpus - 1))"
elif [ "$cpus" -ge 2 ]; then
  default_server_cpus=0 default_client_cpus=1
else
  default_server_cpus=0 default_client_cpus=0
fi
server_cpus=${SERVER_CPUS:-$default_server_cpus}
client_cpus=${CLIENT_CPUS:-$default_client_cpus}

# ---- checks before anything runs

[[ $runs =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a whole number >= 1, not '$runs'"
[[ $duration =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "DURATION must be seconds, not '$duration'"
[[ $warmup =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "WARMUP must be seconds, not '$warmup'"
[ ${#servers[@]} -gt 0 ] || die "SERVERS is empty"
[ ${#cells[@]} -gt 0 ] || die "CELLS is empty"
for server in "${servers[@]}"; do
  [[ " ${all_servers[*]} " == *" $server "* ]] ||
    die "unknown server '$server' in SERVERS; the servers are: ${all_servers[*]}"
done
for cell in "${cells[@]}"; do
  [[ " ${all_cells[*]} " == *" $cell "* ]] ||
    die "unknown cell '$cell' in CELLS; the cells are: ${all_cells[*]}"
done
[ "$cpus" -ge 2 ] || say "warning: one CPU: server and client share it"
command -v taskset >/dev/null || die "taskset not found (Debian package util-linux)"

server_program() {
  case $1 in
    coronet-1t | coronet-2t) echo echo_server ;;
    asio | asio-coro) echo asio_echo_server ;;
    epoll) echo epoll_echo_server ;;
  esac
}
server_threads() { if [ "$1" = coronet-2t ]; then echo 2; else echo 1; fi; }
# The options that pick a program's style, if any.
server_style() { if [ "$1" = asio-coro ]; then echo --coroutines; fi; }

for program in coronet_bench bench_report $(for s in "${servers[@]}"; do server_program "$s"; done); do
  [ -x "$bin/$program" ] || die "$bin/$program not found: build the release preset first (make release)"
done
"$bin/coronet_bench" --help >/dev/null 2>&1 || die "$bin/coronet_bench --help fails: is it built?"

# 10,000 connections need as many descriptors in the server and in the client.
hard_limit=$(ulimit -Hn)
if [ "$hard_limit" = unlimited ]; then ulimit -n 1048576 2>/dev/null || true; else ulimit -n "$hard_limit"; fi
file_limit=$(ulimit -n)
if [ "$file_limit" != unlimited ] && [ "$file_limit" -lt 25000 ]; then
  say "warning: the open file limit is $file_limit (hard limit $hard_limit), below 25000:" \
    "the 10,000-connection cells may fail; raise the hard limit (limits.conf, or ulimit -Hn as root)"
fi

# ---- the plan and its time

date=$(date +%F)
runs_dir=$out_dir/$date-runs
model=$(sed -n '/^model name/{s/^model name[[:space:]]*:[[:space:]]*//p;q}' /proc/cpuinfo)
machine="$cpus cores, ${model:-$(uname -m)}, Linux $(uname -r)"

# Seconds one measurement takes besides warmup and duration: starting and stopping the server
# and coronet_bench, and opening and closing the connections (measured on the 2-core machine).
overhead() { awk -v n="$1" 'BEGIN { printf "%.2f", 0.4 + n * 0.0001 }'; }

estimate=0
for cell in "${cells[@]}"; do
  estimate=$(awk -v e="$estimate" -v o="$(overhead "${cell##*-}")" -v d="$duration" -v w="$warmup" \
    -v n="$((runs * ${#servers[@]}))" 'BEGIN { print e + n * (o + d + w) }')
done
total=$((runs * ${#cells[@]} * ${#servers[@]}))
say "$total measurements (runs $runs x cells ${#cells[@]} x servers ${#servers[@]})," \
  "$duration s + $warmup s warmup each: about $(awk -v s="$estimate" 'BEGIN {
    if (s < 120) printf "%.0f s", s; else printf "%.0f minutes", s / 60 }')"
say "server on CPUs $server_cpus, client on CPUs $client_cpus; runs in $runs_dir"

if [ -e "$runs_dir" ]; then
  say "replacing the earlier runs of today in $runs_dir"
  rm -rf -- "$runs_dir"
fi
mkdir -p "$runs_dir"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT

# ---- one measurement

# Whether process $1 still runs (a zombie waiting for `wait` does not).
running() {
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state%% *}" != Z ]
}

# Starts server $1 pinned to SERVER_CPUS; sets server_pid, tcp_address and udp_address once
# both ready lines are out.
start_server() {
  local name=$1 program threads style ready="$work/ready" tenths=0
  program=$(server_program "$name")
  threads=$(server_threads "$name")
  read -r -a style <<<"$(server_style "$name")"
  taskset -c "$server_cpus" "$bin/$program" ${style[@]+"${style[@]}"} --tcp 127.0.0.1:0 \
    --udp 127.0.0.1:0 --threads "$threads" >"$ready" 2>"$work/server.err" &
  server_pid=$!
  tcp_address="" udp_address=""
  while :; do
    # Only whole lines: the file ends with a newline.
    if [ -s "$ready" ] && [ -z "$(tail -c 1 "$ready")" ]; then
      tcp_address=$(sed -n 's/^listening tcp //p' "$ready")
      udp_address=$(sed -n 's/^listening udp //p' "$ready")
      if [ -n "$tcp_address" ] && [ -n "$udp_address" ]; then break; fi
    fi
    if ! running "$server_pid"; then
      local status=0
      wait "$server_pid" || status=$?
      server_pid=""
      die "$name ($program) exited with status $status before its ready lines; it said:" \
        "$(tail -n 5 "$work/server.err")"
    fi
    if [ "$tenths" -ge 100 ]; then
      die "$name ($program) printed no ready lines within 10 s (stdout: $(head -c 200 "$ready"))"
    fi
    sleep 0.1
    tenths=$((tenths + 1))
  done
  # All traffic stays on loopback.
  [[ $tcp_address == 127.0.0.1:* && $udp_address == 127.0.0.1:* ]] ||
    die "$name is not on 127.0.0.1: '$tcp_address' '$udp_address'"
}

# SIGTERM, then up to 5 s for the server to exit; SIGKILL after that.
stop_server() {
  local name=$1 status=0 tenths=0 killed=""
  kill -TERM "$server_pid" 2>/dev/null || true
  while running "$server_pid"; do
    if [ "$tenths" -ge 50 ]; then
      say "$name did not exit within 5 s of SIGTERM: killed with SIGKILL"
      kill -KILL "$server_pid" 2>/dev/null || true
      killed=yes
      break
    fi
    sleep 0.1
    tenths=$((tenths + 1))
  done
  wait "$server_pid" 2>/dev/null || status=$?
  server_pid=""
  if [ -z "$killed" ] && [ "$status" -ne 0 ]; then
    say "$name exited with status $status after SIGTERM: $(tail -n 3 "$work/server.err")"
  fi
}

# 75 -> "75 s", 150 -> "3 min"
in_minutes() { if [ "$1" -lt 120 ]; then echo "$1 s"; else echo "$((($1 + 59) / 60)) min"; fi; }

# 162450.7 -> 162,451
thousands() {
  awk -v v="$1" 'BEGIN {
    s = sprintf("%.0f", v); out = ""
    while (length(s) > 3) { out = "," substr(s, length(s) - 2) out; s = substr(s, 1, length(s) - 3) }
    print s out }'
}

failures=()
done_count=0
started=$SECONDS

measure() {  # measure SERVER CELL RUN
  local server=$1 cell=$2 k=$3 proto mode size connections target json status=0 rate left
  IFS=- read -r proto mode size connections <<<"$cell"
  json=$runs_dir/$server/$cell-run$k.json
  mkdir -p "$runs_dir/$server"
  start_server "$server"
  if [ "$proto" = tcp ]; then target=$tcp_address; else target=$udp_address; fi
  taskset -c "$client_cpus" "$bin/coronet_bench" --proto "$proto" --mode "$mode" \
    --connections "$connections" --size "$size" --duration "$duration" --warmup "$warmup" \
    --target "$target" --server-pid "$server_pid" --json "$json" \
    >"$work/bench.out" 2>"$work/bench.err" || status=$?
  stop_server "$server"

  done_count=$((done_count + 1))
  rate=$(sed -n '/"msgs_per_sec"/{s/.*"msgs_per_sec": *\([-0-9.eE+]*\).*/\1/p;q}' "$json" 2>/dev/null || true)
  left=$(((SECONDS - started) * (total - done_count) / done_count))
  printf 'run_bench.sh: [%*d/%d] run %d/%d %-24s %-11s %10s msg/s   (about %s left)\n' \
    "${#total}" "$done_count" "$total" "$k" "$runs" "$cell" "$server" \
    "$(if [ -n "$rate" ]; then thousands "$rate"; else echo n/a; fi)" "$(in_minutes "$left")" >&2
  if [ "$status" -ne 0 ]; then
    failures+=("$server $cell run $k: coronet_bench exit $status")
    say "FAILED: coronet_bench exited with $status ($server, $cell, run $k); it said:"
    tail -n 5 "$work/bench.err" >&2 || true
    if [ ! -s "$json" ]; then
      rm -f -- "$json"
      say "  (it wrote no JSON: this run is missing from the report)"
    else
      say "  (its JSON is kept in $json and counted in the report)"
    fi
  fi
}

for k in $(seq "$runs"); do
  for cell in "${cells[@]}"; do
    for server in "${servers[@]}"; do measure "$server" "$cell" "$k"; done
  done
done
say "the matrix took $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"

# ---- the report

report=("$runs_dir" --out-json "$out_dir/$date.json" --servers "$(IFS=,; echo "${servers[*]}")"
        --date "$date" --command "$command_line" --machine "$machine" --print)
if command -v gnuplot >/dev/null; then
  report+=(--charts "$out_dir" --stem "$date")
else
  say "warning: gnuplot is not installed (Debian: gnuplot-nox): no charts"
fi
if [ -n "$readme" ]; then report+=(--readme "$readme"); fi
"$bin/bench_report" "${report[@]}"
say "results: $out_dir/$date.json${readme:+, table in $readme}"

if [ ${#failures[@]} -gt 0 ]; then
  say "${#failures[@]} of $total measurements failed:"
  printf '  %s\n' "${failures[@]}" >&2
  exit 1
fi

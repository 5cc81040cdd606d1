# echo_servers.sh: sourced by instructions.sh and idle_memory.sh, which measure one echo server
# at a time on 127.0.0.1 with one thread (io_uring.sh, tls.sh and metrics.sh take only `work`
# and its cleanup, and the summary table). It sets up `work` (a temporary directory, removed at exit along with
# a server left running) and defines:
#   server_program SPEC   the program of SPEC: coronet, coronet-metrics (echo_server observing,
#                         with --metrics), asio, asio-coro, epoll (in $bin) or NAME=PATH
#   server_style SPEC     the options that pick its style (asio-coro: --coroutines,
#                         coronet-metrics: --metrics 127.0.0.1:0), if any
#   server_name SPEC      its name in the output
#   check_servers SPEC... that every program exists, and coronet_bench too
#   start_server SPEC SECONDS [PREFIX...]
#                         starts it (behind PREFIX, say valgrind) and waits up to SECONDS for
#                         its ready line: sets server_pid and address (HOST:PORT)
#   stop_server SPEC      SIGTERM, and it must exit 0
#   summary_header LABEL  the header of a table of runs, LABEL naming the second column
#   summary_row CELL NAME FILE...
#                         one row of it: the median msg/s over coronet_bench's JSON FILEs (the
#                         runs of one cell and server), each run's, and the medians of p50, p99
#                         and the server's CPU time per message in µs
# The sourcing script defines say() and die(), and sets bin.

server_program() {
  case $1 in
    coronet | coronet-metrics) echo "$bin/echo_server" ;;
    asio | asio-coro) echo "$bin/asio_echo_server" ;;
    epoll) echo "$bin/epoll_echo_server" ;;
    *=*) echo "${1#*=}" ;;
    *) return 1 ;;
  esac
}

server_style() {
  case $1 in
    asio-coro) echo --coroutines ;;
    coronet-metrics) echo --metrics 127.0.0.1:0 ;;
  esac
}

server_name() { echo "${1%%=*}"; }

check_servers() {
  local server program
  for server in "$@"; do
    program=$(server_program "$server") || die "unknown server '$server': coronet, coronet-metrics, asio, asio-coro, epoll or NAME=PATH"
    [ -x "$program" ] || die "$program not found: make release"
  done
  [ -x "$bin/coronet_bench" ] || die "$bin/coronet_bench not found: make release"
}

work=$(mktemp -d)
server_pid=""
address=""
cleanup() {
  if [ -n "$server_pid" ]; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf -- "$work"
}
trap cleanup EXIT

start_server() {
  local server=$1 seconds=$2 style
  shift 2
  read -r -a style <<<"$(server_style "$server")"
  "$@" "$(server_program "$server")" ${style[@]+"${style[@]}"} --tcp 127.0.0.1:0 --threads 1 \
    >"$work/ready" 2>"$work/server.err" &
  server_pid=$!
  address=""
  for _ in $(seq "$((seconds * 10))"); do
    address=$(sed -n 's/^listening tcp //p' "$work/ready")
    [ -n "$address" ] && break
    kill -0 "$server_pid" 2>/dev/null || die "$server exited early: $(tail -n 5 "$work/server.err")"
    sleep 0.1
  done
  [[ $address == 127.0.0.1:* ]] || die "$server printed no ready line on 127.0.0.1"
}

stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || die "$1 did not exit cleanly on SIGTERM"
  server_pid=""
}

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
# The value of the JSON field that the sed pattern $2 captures, from file $1.
field() { { tr -d '\n ' <"$1"; echo; } | sed -n "s/.*$2.*/\1/p"; }

summary_header() {
  printf '%-22s %-6s %10s  %-30s %9s %9s %14s\n' cell "$1" "msg/s" runs "p50 us" "p99 us" \
    "server us/msg"
}

summary_row() {
  local cell=$1 name=$2 rates p50 p99 cpu f
  shift 2
  rates=$(for f in "$@"; do field "$f" '"msgs_per_sec":\([0-9.e+]*\),'; done)
  p50=$(for f in "$@"; do field "$f" '"p50":\([0-9.e+]*\),'; done | median)
  p99=$(for f in "$@"; do field "$f" '"p99":\([0-9.e+]*\),'; done | median)
  cpu=$(for f in "$@"; do field "$f" '"server_cpu_s_per_msg":\([0-9.e+-]*\),'; done | median)
  # shellcheck disable=SC2086 # one word per run
  printf '%-22s %-6s %10.0f  %-30s %9.0f %9.0f %14.2f\n' "$cell" "$name" \
    "$(median <<<"$rates")" "$(printf '%.0f ' $rates)" "$p50" "$p99" \
    "$(awk -v c="$cpu" 'BEGIN {print c * 1e6}')"
}

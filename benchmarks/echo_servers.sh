# echo_servers.sh: sourced by instructions.sh and idle_memory.sh, which measure one echo server
# at a time on 127.0.0.1 with one thread (io_uring.sh and tls.sh take only `work` and its
# cleanup). It sets up `work` (a temporary directory, removed at exit along with a server left
# running) and defines:
#   server_program SPEC   the program of SPEC: coronet, asio, asio-coro, epoll (in $bin) or
#                         NAME=PATH
#   server_style SPEC     the options that pick its style (asio-coro: --coroutines), if any
#   server_name SPEC      its name in the output
#   check_servers SPEC... that every program exists, and coronet_bench too
#   start_server SPEC SECONDS [PREFIX...]
#                         starts it (behind PREFIX, say valgrind) and waits up to SECONDS for
#                         its ready line: sets server_pid and address (HOST:PORT)
#   stop_server SPEC      SIGTERM, and it must exit 0
# The sourcing script defines say() and die(), and sets bin.

server_program() {
  case $1 in
    coronet) echo "$bin/echo_server" ;;
    asio | asio-coro) echo "$bin/asio_echo_server" ;;
    epoll) echo "$bin/epoll_echo_server" ;;
    *=*) echo "${1#*=}" ;;
    *) return 1 ;;
  esac
}

server_style() { if [ "$1" = asio-coro ]; then echo --coroutines; fi; }

server_name() { echo "${1%%=*}"; }

check_servers() {
  local server program
  for server in "$@"; do
    program=$(server_program "$server") || die "unknown server '$server': coronet, asio, asio-coro, epoll or NAME=PATH"
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

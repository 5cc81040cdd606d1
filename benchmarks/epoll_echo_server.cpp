// epoll_echo_server: writes every byte it receives back to its sender, in order, until the peer
// closes; over UDP, sends every datagram back to its sender unchanged. Hand-written straight
// on Linux: one edge-triggered (EPOLLET) epoll loop per thread, no library between the code
// and the kernel, and no coronet.
//
// Why it exists: it is the baseline coronet is benchmarked against, the practical limit of an
// echo server on this kernel. Whatever coronet (or plain Asio) costs on top of it shows up as
// the gap between this server and theirs in `make bench`.
//
// Run:    build/bin/epoll_echo_server --tcp 127.0.0.1:7000 --unix /tmp/echo.sock
//         (add --udp 127.0.0.1:7000 for UDP, --threads 4 to choose the threads; port 0 picks a
//         free port, which the ready lines show)
// Pair:   build/bin/coronet_bench --proto tcp --target 127.0.0.1:7000 --connections 100
//         (or --proto udp --target 127.0.0.1:7000, --proto unix --target /tmp/echo.sock;
//         nc 127.0.0.1 7000, nc -u 127.0.0.1 7000, nc -U /tmp/echo.sock)
// Stop:   Ctrl-C or SIGTERM: every thread stops, open connections are closed at once (no grace
//         period), the socket files it created are removed, exit 0.
//
// Options:
//   --tcp ADDR, --udp ADDR, --unix PATH   what to serve (repeatable, at least one). ADDR is
//                        127.0.0.1:7000 or [::1]:7000 (numeric hosts only); PATH is /path,
//                        unix:/path or @name (Linux abstract name).
//   --threads N          event loops, one thread and one epoll instance each (default: one per
//                        hardware thread).
// Each --tcp is one SO_REUSEPORT listener per thread on the same port, the kernel spreading
// connections over them; each --udp likewise one SO_REUSEPORT socket per thread. Each --unix is
// one listener in every thread's epoll with EPOLLEXCLUSIVE, so a new connection wakes one
// thread, which accepts it.
//
// Ready lines, on stdout once everything is bound, one per listener in command-line order:
//   listening tcp 127.0.0.1:41234
//   listening udp [::1]:41235
//   listening unix /tmp/echo.sock
//
// Exit codes: 0 after SIGINT/SIGTERM; 1 when an address cannot be bound (one line on stderr);
// 2 for a command-line mistake, a malformed ADDR included (usage on stderr).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

constexpr const char* program_name = "epoll_echo_server";

// One read of a stream, one datagram: 64 KiB holds the largest UDP payload whole.
constexpr std::size_t buffer_size = 64 * 1024;
// How much one socket may do in one turn of its loop before the others get theirs. Edge
// triggering means "until EAGAIN", so a socket that still has work is put back on the loop's
// list and finished after the other ready sockets, rather than starving them.
constexpr int reads_per_turn = 16;  // up to 1 MiB of one connection
constexpr int accepts_per_turn = 64;
constexpr int datagrams_per_turn = 64;
// While accept() fails for want of descriptors, it is retried this often instead of spinning.
constexpr int starved_retry_ms = 100;

std::string error_text(int error) { return std::system_category().message(error); }

// One line on stderr, written at once so that lines from two threads do not interleave.
void log_line(const std::string& text) {
  const std::string line = std::string(program_name) + ": " + text + "\n";
  if (::write(STDERR_FILENO, line.data(), line.size()) < 0) {
    // Nowhere left to report it.
  }
}

// A setup failure: the message names the address and the reason; main prints it, exits 1.
struct setup_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- addresses ---------------------------------------------------------------------------

struct ip_address {
  sockaddr_storage storage{};
  socklen_t length = 0;

  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
};

// HOST:PORT with a numeric IPv4 host, or [IPv6]:PORT. Returns nullopt and sets `why` otherwise.
std::optional<ip_address> parse_ip(const std::string& text, std::string& why) {
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      why = "expected [IPv6]:PORT";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
      why = "no port (expected HOST:PORT)";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoul(port) > 65535) {
    why = "bad port '" + port + "' (expected 0 to 65535)";
    return std::nullopt;
  }
  const auto port_number = htons(static_cast<std::uint16_t>(std::stoul(port)));
  ip_address out;
  if (text.front() == '[') {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = port_number;
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) != 1) {
      why = "'" + host + "' is not a numeric IPv6 address";
      return std::nullopt;
    }
    out.length = sizeof(sockaddr_in6);
  } else {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
    v4->sin_family = AF_INET;
    v4->sin_port = port_number;
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) != 1) {
      why = "'" + host + "' is not a numeric IPv4 address";
      return std::nullopt;
    }
    out.length = sizeof(sockaddr_in);
  }
  return out;
}

// 127.0.0.1:7000 or [::1]:7000.
std::string to_string(const ip_address& address) {
  std::array<char, INET6_ADDRSTRLEN> host{};
  if (address.family() == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, host.data(), host.size());
    return "[" + std::string(host.data()) + "]:" + std::to_string(ntohs(v6->sin6_port));
  }
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address.storage);
  ::inet_ntop(AF_INET, &v4->sin_addr, host.data(), host.size());
  return std::string(host.data()) + ":" + std::to_string(ntohs(v4->sin_port));
}

// /path, unix:/path or @name, without the unix: prefix.
std::string unix_path(std::string text) {
  if (text.rfind("unix:", 0) == 0) text.erase(0, 5);
  return text;
}

// ---- binding -----------------------------------------------------------------------------

// What the command line asked to listen on, in its order.
struct listen_request {
  enum class kind { tcp, udp, unix_stream } what;
  std::string text;
};

// Every socket bound at startup, closed (and the socket files removed) when this goes away:
// at exit, and also when a later bind fails.
struct bound_sockets {
  std::vector<int> fds;
  std::vector<std::string> files;

  bound_sockets() = default;
  bound_sockets(const bound_sockets&) = delete;
  bound_sockets& operator=(const bound_sockets&) = delete;
  ~bound_sockets() {
    for (int fd : fds) ::close(fd);
    for (const auto& file : files) ::unlink(file.c_str());
  }
};

// A non-blocking socket, kept in `sockets` so that it is closed on every way out.
int open_socket(bound_sockets& sockets, int family, int type, const std::string& label) {
  const int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw setup_error("cannot open a socket for " + label + ": " + error_text(errno));
  sockets.fds.push_back(fd);
  return fd;
}

void set_flag(int fd, int level, int option, const std::string& label) {
  const int on = 1;
  if (::setsockopt(fd, level, option, &on, sizeof on) != 0) {
    throw setup_error("cannot set up " + label + ": " + error_text(errno));
  }
}

ip_address local_address(int fd) {
  ip_address out;
  out.length = sizeof out.storage;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&out.storage), &out.length);
  return out;
}

// One SO_REUSEPORT socket of `type` per thread on `where`: the first binds what was asked
// (perhaps port 0), the others the port it got. Returns the sockets and the bound address.
std::vector<int> bind_reuse_port(bound_sockets& sockets, int type, ip_address where,
                                 unsigned threads, const std::string& kind, ip_address& bound) {
  const std::string label = kind + " " + to_string(where);
  std::vector<int> out;
  for (unsigned k = 0; k < threads; ++k) {
    const int fd = open_socket(sockets, where.family(), type, label);
    // TIME_WAIT connections of an earlier run must not keep a restarted server from its port.
    if (type == SOCK_STREAM) set_flag(fd, SOL_SOCKET, SO_REUSEADDR, label);
    set_flag(fd, SOL_SOCKET, SO_REUSEPORT, label);
    if (type == SOCK_DGRAM) {
      // The same 4 MiB receive buffer echo_server asks for (capped by net.core.rmem_max).
      const int bytes = 4 << 20;
      (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
    }
    if (::bind(fd, where.get(), where.length) != 0) {
      throw setup_error("cannot bind " + label + ": " + error_text(errno));
    }
    if (type == SOCK_STREAM && ::listen(fd, SOMAXCONN) != 0) {
      throw setup_error("cannot listen on " + label + ": " + error_text(errno));
    }
    if (k == 0) {
      bound = local_address(fd);
      where = bound;
    }
    out.push_back(fd);
  }
  return out;
}

// A listening Unix stream socket at `path` (@name: abstract). A socket file nobody listens on
// any more (left by a server that crashed) is replaced; any other file is an error, left alone.
int bind_unix(bound_sockets& sockets, const std::string& path) {
  const std::string label = "unix " + path;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    throw setup_error("cannot bind " + label + ": longer than " +
                      std::to_string(sizeof address.sun_path - 1) + " bytes");
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  const bool abstract = path.front() == '@';
  if (abstract) address.sun_path[0] = '\0';
  const auto length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
  const auto* raw = reinterpret_cast<const sockaddr*>(&address);

  struct stat status {};
  if (!abstract && ::lstat(path.c_str(), &status) == 0) {
    if (!S_ISSOCK(status.st_mode)) {
      throw setup_error("cannot bind " + label + ": the file exists and is not a socket");
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int connected = probe < 0 ? -1 : ::connect(probe, raw, length);
    const int error = errno;
    if (probe >= 0) ::close(probe);
    if (connected == 0 || error == EAGAIN) {  // EAGAIN: it listens, its backlog is full
      throw setup_error("cannot bind " + label + ": " + error_text(EADDRINUSE) +
                        " (a server listens on it)");
    }
    if (error == ECONNREFUSED) ::unlink(path.c_str());  // stale
  }
  const int fd = open_socket(sockets, AF_UNIX, SOCK_STREAM, label);
  if (::bind(fd, raw, length) != 0) {
    throw setup_error("cannot bind " + label + ": " + error_text(errno));
  }
  if (!abstract) sockets.files.push_back(path);
  if (::listen(fd, SOMAXCONN) != 0) {
    throw setup_error("cannot listen on " + label + ": " + error_text(errno));
  }
  return fd;
}

// ---- the event loop ----------------------------------------------------------------------

// What an epoll event's data.ptr points to. No virtual functions: the loop switches on `what`.
struct pollable {
  enum class role : std::uint8_t { wake, tcp_listener, unix_listener, udp, connection };

  explicit pollable(role r, int descriptor) : what(r), fd(descriptor) {}

  role what;
  int fd;                 // -1 once a connection is closed (and waits to be freed)
  bool put_back = false;  // on its loop's list of sockets that still have work
};

struct listener : pollable {
  listener(role r, int descriptor, std::string name)
      : pollable(r, descriptor), label(std::move(name)) {}
  std::string label;     // "tcp 127.0.0.1:7000", for the log
  bool starved = false;  // accept() failed for want of descriptors; retried on a timer
};

struct connection : pollable {
  connection(int descriptor, bool is_tcp) : pollable(role::connection, descriptor), tcp(is_tcp) {}

  bool tcp;
  bool peer_closing = false;  // epoll said the peer has shut down its side (EPOLLRDHUP)
  bool peer_done = false;     // read end of file: the peer sends no more
  // The bytes one send() could not take. At most one read's worth, since nothing more is read
  // until they are gone; allocated at the first partial send only and kept after.
  std::unique_ptr<char[]> pending;
  std::size_t pending_begin = 0;
  std::size_t pending_end = 0;
  // The loop's list of open connections, to close them when it stops.
  connection* previous = nullptr;
  connection* next = nullptr;
};

// Logs one line when accept() first runs out of descriptors, and again only after a later
// accept() succeeded: one line per episode, whichever thread meets it.
std::atomic<bool> starvation_reported{false};

// One thread's loop: its epoll instance and every socket registered in it. Built on the main
// thread before the loop thread starts; from then on touched by that thread only.
class event_loop {
 public:
  explicit event_loop(int wake_fd)
      : epoll_(::epoll_create1(EPOLL_CLOEXEC)),
        wake_(pollable::role::wake, wake_fd),
        buffer_(std::make_unique<char[]>(buffer_size)) {
    if (epoll_ < 0) throw setup_error("cannot create an epoll instance: " + error_text(errno));
    // Level-triggered: once the stop is signalled every epoll_wait returns at once, forever.
    add(wake_, EPOLLIN);
  }
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;
  ~event_loop() {
    while (open_ != nullptr) close_connection(*open_);
    free_closed();
    if (epoll_ >= 0) ::close(epoll_);
  }

  // `fd` is owned by the caller and outlives the loop. `shared`: the same listener is in every
  // loop, and a new connection should wake one of them, not all.
  void add_listener(int fd, bool is_unix, const std::string& label, bool shared) {
    listeners_.push_back(std::make_unique<listener>(
        is_unix ? pollable::role::unix_listener : pollable::role::tcp_listener, fd, label));
    add(*listeners_.back(), EPOLLIN | EPOLLET | (shared ? EPOLLEXCLUSIVE : 0U));
  }

  void add_udp(int fd) {
    udp_.push_back(std::make_unique<pollable>(pollable::role::udp, fd));
    add(*udp_.back(), EPOLLIN | EPOLLET);
  }

  // Serves until the wake descriptor becomes readable.
  void run() {
    std::array<epoll_event, 256> events{};
    for (;;) {
      const int timeout = !again_.empty() ? 0 : !starved_.empty() ? starved_retry_ms : -1;
      const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0) {
        if (errno == EINTR) continue;
        log_line("epoll_wait: " + error_text(errno) + "; stopping");
        ::kill(::getpid(), SIGTERM);  // main stops every loop and exits
        return;
      }
      // What was put back last turn goes after this turn's events; what is put back during
      // this turn waits for the next.
      again_now_.swap(again_);
      for (int i = 0; i < n; ++i) {
        auto* p = static_cast<pollable*>(events[static_cast<std::size_t>(i)].data.ptr);
        if (p->what == pollable::role::wake) return;
        serve(*p, events[static_cast<std::size_t>(i)].events);
      }
      for (pollable* p : again_now_) {
        p->put_back = false;
        if (p->fd >= 0) serve(*p, 0);
      }
      again_now_.clear();
      if (!starved_.empty()) {
        const auto starved = starved_;  // accept_all() edits starved_
        for (listener* l : starved) accept_all(*l);
      }
      free_closed();
    }
  }

 private:
  void add(pollable& p, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.ptr = &p;
    if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, p.fd, &event) != 0) {
      throw setup_error("cannot add a socket to epoll: " + error_text(errno));
    }
  }

  void serve(pollable& p, std::uint32_t events) {
    switch (p.what) {
      case pollable::role::tcp_listener:
      case pollable::role::unix_listener: accept_all(static_cast<listener&>(p)); break;
      case pollable::role::udp: echo_datagrams(p); break;
      case pollable::role::connection: {
        auto& c = static_cast<connection&>(p);
        if ((events & EPOLLERR) != 0) {
          close_connection(c);  // reset or failed: nothing more to echo
        } else {
          if ((events & (EPOLLRDHUP | EPOLLHUP)) != 0) c.peer_closing = true;
          echo(c);
        }
        break;
      }
      case pollable::role::wake: break;
    }
  }

  // Finishes `p`'s work after the other ready sockets have had their turn.
  void put_back(pollable& p) {
    if (p.put_back) return;
    p.put_back = true;
    again_.push_back(&p);
  }

  void accept_all(listener& l) {
    for (int turn = 0; turn < accepts_per_turn; ++turn) {
      const int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        const int error = errno;
        switch (error) {
          case EAGAIN:  // all taken (by this loop, or another for a shared listener)
            return;
          case EINTR:
          case ECONNABORTED:  // the client gave up while it waited in the backlog
          case EPROTO:
          case ENETDOWN:
          case ENOPROTOOPT:
          case EHOSTDOWN:
          case ENONET:
          case EHOSTUNREACH:
          case EOPNOTSUPP:
          case ENETUNREACH: continue;  // accept(2): errors of that one connection
          default: starve(l, error); return;
        }
      }
      if (l.starved) recover(l);
      if (l.what == pollable::role::tcp_listener) {
        const int on = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      }
      auto* c = new connection(fd, l.what == pollable::role::tcp_listener);
      c->next = open_;
      if (open_ != nullptr) open_->previous = c;
      open_ = c;
      // Both directions, edge-triggered, once for the connection's life: no epoll_ctl per
      // message. Bytes that arrived before this are reported at once.
      epoll_event event{};
      event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
      event.data.ptr = c;
      if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
        log_line("cannot add a connection to epoll: " + error_text(errno));
        close_connection(*c);
      }
    }
    put_back(l);  // there may be more
  }

  // Out of descriptors (EMFILE, ENFILE) or memory: the connections wait in the kernel's
  // backlog, and accept() is retried every starved_retry_ms rather than in a busy loop.
  void starve(listener& l, int error) {
    if (l.starved) return;
    l.starved = true;
    starved_.push_back(&l);
    if (!starvation_reported.exchange(true)) {
      log_line("accept on " + l.label + ": " + error_text(error) + "; retrying every " +
               std::to_string(starved_retry_ms) + " ms");
    }
  }

  void recover(listener& l) {
    l.starved = false;
    starved_.erase(std::remove(starved_.begin(), starved_.end(), &l), starved_.end());
    starvation_reported.store(false);
  }

  void echo_datagrams(pollable& socket) {
    for (int turn = 0; turn < datagrams_per_turn; ++turn) {
      sockaddr_storage peer{};
      socklen_t peer_length = sizeof peer;
      const auto got = ::recvfrom(socket.fd, buffer_.get(), buffer_size, 0,
                                  reinterpret_cast<sockaddr*>(&peer), &peer_length);
      if (got < 0) {
        if (errno == EAGAIN) return;
        continue;  // EINTR, or an ICMP error that an earlier sendto caused: not this datagram's
      }
      // A datagram the kernel cannot take now is lost, as UDP allows.
      (void)::sendto(socket.fd, buffer_.get(), static_cast<std::size_t>(got), 0,
                     reinterpret_cast<const sockaddr*>(&peer), peer_length);
    }
    put_back(socket);
  }

  // Reads until EAGAIN (or a short read) and sends every read back. Nothing more is read while a
  // send is pending: the peer's own send blocks instead (backpressure), and no byte is dropped.
  void echo(connection& c) {
    if (c.pending_begin != c.pending_end && !flush(c)) return;
    if (!c.peer_done) {
      for (int turn = 0;; ++turn) {
        if (turn == reads_per_turn) {
          put_back(c);
          return;
        }
        const auto got = ::recv(c.fd, buffer_.get(), buffer_size, 0);
        if (got > 0) {
          if (!send_back(c, static_cast<std::size_t>(got))) return;
          // A short read emptied the socket's queue (TCP and Unix streams copy all they hold),
          // and whatever arrives later is a new edge: skip the recv that would say EAGAIN, as
          // nginx does. Not once the peer's FIN may have come with the data: its edge has passed.
          if (static_cast<std::size_t>(got) < buffer_size && !c.peer_closing) return;
          continue;
        }
        if (got == 0) {
          c.peer_done = true;
          break;
        }
        if (errno == EAGAIN) return;
        if (errno == EINTR) continue;
        close_connection(c);  // reset
        return;
      }
    }
    // The peer has finished and everything it sent went back: answer its FIN with ours.
    ::shutdown(c.fd, SHUT_WR);
    close_connection(c);
  }

  // Sends the `size` bytes just read into buffer_. Returns false when the connection cannot
  // go on now: the rest is pending (wait for EPOLLOUT) or the connection was closed.
  bool send_back(connection& c, std::size_t size) {
    std::size_t sent = 0;
    while (sent < size) {
      const auto n = ::send(c.fd, buffer_.get() + sent, size - sent, MSG_NOSIGNAL);
      if (n >= 0) {
        sent += static_cast<std::size_t>(n);
      } else if (errno == EAGAIN) {
        if (!c.pending) c.pending = std::make_unique<char[]>(buffer_size);
        std::memcpy(c.pending.get(), buffer_.get() + sent, size - sent);
        c.pending_begin = 0;
        c.pending_end = size - sent;
        return false;
      } else if (errno != EINTR) {
        close_connection(c);
        return false;
      }
    }
    return true;
  }

  // Sends what is pending. Returns true when all of it is gone.
  bool flush(connection& c) {
    while (c.pending_begin < c.pending_end) {
      const auto n = ::send(c.fd, c.pending.get() + c.pending_begin,
                            c.pending_end - c.pending_begin, MSG_NOSIGNAL);
      if (n >= 0) {
        c.pending_begin += static_cast<std::size_t>(n);
      } else if (errno == EAGAIN) {
        return false;
      } else if (errno != EINTR) {
        close_connection(c);
        return false;
      }
    }
    c.pending_begin = c.pending_end = 0;
    return true;
  }

  // Closes at once (close() also takes it out of epoll); the memory goes at the end of the
  // turn, since the list of put-back sockets may still point at it.
  void close_connection(connection& c) {
    ::close(c.fd);
    c.fd = -1;
    if (c.previous != nullptr) c.previous->next = c.next;
    if (c.next != nullptr) c.next->previous = c.previous;
    if (open_ == &c) open_ = c.next;
    closed_.push_back(&c);
  }

  void free_closed() {
    for (connection* c : closed_) delete c;
    closed_.clear();
  }

  int epoll_;
  pollable wake_;
  std::unique_ptr<char[]> buffer_;  // every read and datagram of this loop lands here
  std::vector<std::unique_ptr<listener>> listeners_;
  std::vector<std::unique_ptr<pollable>> udp_;
  connection* open_ = nullptr;
  std::vector<pollable*> again_;      // put back during this turn
  std::vector<pollable*> again_now_;  // put back during the last turn, served in this one
  std::vector<listener*> starved_;
  std::vector<connection*> closed_;
};

// Before any socket is opened: a server holds one descriptor per connection.
void raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  raise_open_file_limit();

  CLI::App app("hand-written epoll echo server: the baseline coronet is measured against",
               program_name);
  std::vector<std::string> tcp_addresses;
  std::vector<std::string> udp_addresses;
  std::vector<std::string> unix_paths;
  const unsigned hardware = std::thread::hardware_concurrency();
  unsigned threads = hardware == 0 ? 1 : hardware;
  const CLI::Validator ip_check(
      [](std::string& text) {
        std::string why;
        return parse_ip(text, why) ? std::string() : "'" + text + "': " + why;
      },
      "ADDR");
  const CLI::Validator path_check(
      [](std::string& text) {
        return unix_path(text).empty() ? std::string("an empty path") : std::string();
      },
      "PATH");
  // One value per occurrence, so that a stray word is an error rather than another address.
  auto* tcp_option =
      app.add_option("--tcp", tcp_addresses, "TCP on ADDR (127.0.0.1:0, [::1]:7000); repeatable")
          ->type_name("ADDR")
          ->allow_extra_args(false)
          ->check(ip_check);
  auto* udp_option = app.add_option("--udp", udp_addresses, "UDP on ADDR; repeatable")
                         ->type_name("ADDR")
                         ->allow_extra_args(false)
                         ->check(ip_check);
  auto* unix_option =
      app.add_option("--unix", unix_paths,
                     "Unix stream socket at PATH (unix:PATH, @NAME: abstract); repeatable")
          ->type_name("PATH")
          ->allow_extra_args(false)
          ->check(path_check);
  app.add_option("--threads", threads, "event loop threads (default: one per hardware thread)")
      ->check(CLI::Range(1U, 1024U));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << program_name << ": " << e.what() << "\n\n" << app.help();
    return 2;
  }
  std::vector<listen_request> requests;
  std::size_t next_tcp = 0, next_udp = 0, next_unix = 0;
  for (const CLI::Option* option : app.parse_order()) {
    using kind = listen_request::kind;
    if (option == tcp_option) requests.push_back({kind::tcp, tcp_addresses.at(next_tcp++)});
    if (option == udp_option) requests.push_back({kind::udp, udp_addresses.at(next_udp++)});
    if (option == unix_option) {
      requests.push_back({kind::unix_stream, unix_path(unix_paths.at(next_unix++))});
    }
  }
  if (requests.empty()) {
    std::cerr << program_name << ": no listener: give at least one --tcp, --udp or --unix\n\n"
              << app.help();
    return 2;
  }

  // Blocked before any thread starts, so that every thread inherits the mask and the signals
  // wait for sigwait() below; a signal that comes early waits too instead of killing us.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // sends use MSG_NOSIGNAL anyway

  // Declared before the loops, so closed after them.
  bound_sockets sockets;
  std::vector<std::unique_ptr<event_loop>> loops;
  std::vector<std::string> ready_lines;
  const int wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  try {
    if (wake < 0) throw setup_error("cannot create an eventfd: " + error_text(errno));
    sockets.fds.push_back(wake);
    for (unsigned k = 0; k < threads; ++k) loops.push_back(std::make_unique<event_loop>(wake));
    for (const auto& request : requests) {
      using kind = listen_request::kind;
      if (request.what == kind::unix_stream) {
        const int fd = bind_unix(sockets, request.text);
        for (auto& loop : loops) loop->add_listener(fd, true, "unix " + request.text, true);
        ready_lines.push_back("listening unix " + request.text);
        continue;
      }
      std::string why;
      const auto where = parse_ip(request.text, why).value();  // checked by the parser
      const bool tcp = request.what == kind::tcp;
      const std::string kind_name = tcp ? "tcp" : "udp";
      ip_address bound;
      const auto fds = bind_reuse_port(sockets, tcp ? SOCK_STREAM : SOCK_DGRAM, where, threads,
                                       kind_name, bound);
      const std::string label = kind_name + " " + to_string(bound);
      for (unsigned k = 0; k < threads; ++k) {
        if (tcp) {
          loops[k]->add_listener(fds[k], false, label, false);
        } else {
          loops[k]->add_udp(fds[k]);
        }
      }
      ready_lines.push_back("listening " + label);
    }
  } catch (const setup_error& e) {
    log_line(e.what());
    return 1;  // `sockets` closes what was bound and removes the socket files
  }

  // Only once everything is bound, so that a failure prints nothing on stdout.
  for (const auto& line : ready_lines) std::cout << line << '\n';
  std::cout.flush();

  std::vector<std::thread> running;
  bool started_all = true;
  try {
    for (auto& loop : loops) running.emplace_back([&l = *loop] { l.run(); });
  } catch (const std::system_error& e) {
    log_line(std::string("cannot start a thread: ") + e.what());
    started_all = false;
    ::raise(SIGTERM);  // pending, blocked: the sigwait below returns at once
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  const std::uint64_t one = 1;
  if (::write(wake, &one, sizeof one) < 0) log_line("cannot wake the loops: " + error_text(errno));
  for (auto& t : running) t.join();
  loops.clear();  // closes every connection, then `sockets` closes the rest and removes files
  return started_all ? 0 : 1;
}

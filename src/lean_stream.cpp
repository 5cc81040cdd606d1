#include "coronet/lean_stream.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/native_endpoint.hpp"
#include "coronet/error.hpp"

namespace coronet {
namespace {

constexpr std::uint8_t immediate_limit = 32;

std::error_code system_error(int value) noexcept { return {value, std::system_category()}; }

// One send(2) or recv(2) that never waits, again after EINTR: the bytes moved, or -1 with
// `error` (EAGAIN for a socket not ready).
template <class Io>
ssize_t now(Io io, int& error) noexcept {
  for (;;) {
    const ssize_t n = io();
    if (n >= 0) return n;
    if (errno != EINTR) {
      error = errno == EWOULDBLOCK ? EAGAIN : errno;
      return -1;
    }
  }
}

template <class Endpoint>
endpoint read_end(int fd, int (*get)(int, sockaddr*, socklen_t*)) noexcept {
  Endpoint native;
  socklen_t size = static_cast<socklen_t>(native.capacity());
  if (get(fd, native.data(), &size) != 0) return endpoint();
  native.resize(size);
  return detail::from_native(native);
}

endpoint end_of(int fd, int (*get)(int, sockaddr*, socklen_t*)) noexcept {
  sockaddr_storage any{};
  socklen_t size = sizeof(any);
  if (get(fd, reinterpret_cast<sockaddr*>(&any), &size) != 0) return endpoint();
  if (any.ss_family == AF_UNIX) return read_end<asio::local::stream_protocol::endpoint>(fd, get);
  return read_end<asio::ip::tcp::endpoint>(fd, get);
}

}  // namespace

// The timer of an operation with a limit. Shared with the timer's handler, which finds the
// operation gone (null) when it ended first.
class lean_stream::deadline {
 public:
  explicit deadline(asio::io_context& context) : timer(context) {}
  asio::steady_timer timer;
  operation* op = nullptr;
};

lean_stream::lean_stream(asio::io_context& context, int fd) {
  register_with(context);  // throws before taking the descriptor
  fd_ = fd;
  std::error_code ec;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  token_ = readiness_->add(fd, *this, ec);
  if (ec) {
    fd_ = -1;
    throw std::system_error(ec, "cannot register a lean_stream");
  }
}

void lean_stream::register_with(asio::io_context& context) {
  readiness_ = &detail::readiness::of(context);
}

lean_stream::lean_stream(lean_stream&& other) noexcept
    : readiness_(other.readiness_),
      token_(std::exchange(other.token_, 0)),
      counters_(std::move(other.counters_)),
      waits_(std::move(other.waits_)),
      timeout_(other.timeout_),
      fd_(std::exchange(other.fd_, -1)),
      readable_(other.readable_),
      writable_(other.writable_),
      read_ended_(other.read_ended_),
      write_ended_(other.write_ended_) {
  if (token_ != 0) readiness_->move_target(token_, *this);
}

lean_stream& lean_stream::operator=(lean_stream&& other) noexcept {
  if (this != &other) {
    close();
    readiness_ = other.readiness_;
    token_ = std::exchange(other.token_, 0);
    counters_ = std::move(other.counters_);
    waits_ = std::move(other.waits_);
    timeout_ = other.timeout_;
    fd_ = std::exchange(other.fd_, -1);
    readable_ = other.readable_;
    writable_ = other.writable_;
    read_ended_ = other.read_ended_;
    write_ended_ = other.write_ended_;
    if (token_ != 0) readiness_->move_target(token_, *this);
  }
  return *this;
}

lean_stream::~lean_stream() { close(); }

void lean_stream::forget_registration() noexcept {
  if (token_ != 0) readiness_->remove(std::exchange(token_, 0));
}

void lean_stream::close() noexcept {
  if (fd_ < 0) return;
  forget_registration();
  ::close(std::exchange(fd_, -1));
  // Whatever waits on this stream (another task) ends, resumed from the context's queue.
  if (reader_ != nullptr) reader_->orphan();
  if (writer_ != nullptr) writer_->orphan();
}

void lean_stream::on_readable(std::uint32_t events) noexcept {
  readable_ = true;
  if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_ended_ = true;
  if (reader_ != nullptr) reader_->ready();
}

void lean_stream::on_writable(std::uint32_t events) noexcept {
  writable_ = true;
  if ((events & (EPOLLHUP | EPOLLERR)) != 0) write_ended_ = true;
  if (writer_ != nullptr) writer_->ready();
}

lean_stream::operation lean_stream::make(op_kind kind, asio::mutable_buffer buffer,
                                         call_timeout limit, source_location where) noexcept {
  return operation(*this, kind, buffer, limit.value_or(timeout_), where);
}

lean_stream::operation lean_stream::recv(asio::mutable_buffer buffer, call_timeout limit,
                                         source_location where) noexcept {
  return make(op_kind::recv_some, buffer, limit, where);
}

lean_stream::operation lean_stream::recv_exact(asio::mutable_buffer buffer, call_timeout limit,
                                               source_location where) noexcept {
  return make(op_kind::recv_all, buffer, limit, where);
}

lean_stream::operation lean_stream::send(asio::const_buffer data, call_timeout limit,
                                         source_location where) noexcept {
  // The buffer is only read: a send never writes through it.
  return make(op_kind::send_some, {const_cast<void*>(data.data()), data.size()}, limit, where);
}

lean_stream::operation lean_stream::send_all(asio::const_buffer data, call_timeout limit,
                                             source_location where) noexcept {
  return make(op_kind::send_all, {const_cast<void*>(data.data()), data.size()}, limit, where);
}

io_result lean_stream::try_recv(asio::mutable_buffer buffer) noexcept {
  int error = 0;
  const ssize_t n =
      now([&] { return ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT); }, error);
  std::error_code ec;
  if (n < 0) {
    ec = fd_ < 0 ? system_error(EBADF) : system_error(error);
    if (error == EAGAIN) drained();
  } else if (n == 0 && buffer.size() > 0) {
    ec = make_error_code(errc::eof);
  }
  const std::size_t bytes = n > 0 ? static_cast<std::size_t>(n) : 0;
  if (counters_) counters_->add_received(bytes);
  detail::observe_received(ec, bytes);
  return {bytes, ec};
}

io_result lean_stream::try_send(asio::const_buffer data) noexcept {
  int error = 0;
  const ssize_t n = now(
      [&] { return ::send(fd_, data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL); }, error);
  std::error_code ec;
  if (n < 0) {
    ec = system_error(error);
    if (error == EAGAIN) filled();
  }
  const std::size_t bytes = n > 0 ? static_cast<std::size_t>(n) : 0;
  if (counters_) counters_->add_sent(bytes);
  detail::observe_sent(ec, bytes);
  return {bytes, ec};
}

result<void> lean_stream::shutdown(shutdown_type what) noexcept {
  const int how = what == shutdown_type::receive ? SHUT_RD
                  : what == shutdown_type::send  ? SHUT_WR
                                                 : SHUT_RDWR;
  if (::shutdown(fd_, how) != 0) return system_error(errno);
  return {};
}

endpoint lean_stream::local_endpoint() const noexcept { return end_of(fd_, ::getsockname); }
endpoint lean_stream::remote_endpoint() const noexcept { return end_of(fd_, ::getpeername); }

task<result<lean_stream>> lean_stream::connect(asio::io_context& context, endpoint peer,
                                               call_timeout limit) {
  const int family = peer.is_unix_domain() ? AF_UNIX : peer.is_v6() ? AF_INET6 : AF_INET;
  const int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) co_return system_error(errno);
  int started;
  if (peer.is_unix_domain()) {
    const auto native =
        detail::to_native(peer, detail::protocol_tag<asio::local::stream_protocol>{});
    started = ::connect(fd, native.data(), static_cast<socklen_t>(native.size()));
  } else {
    const auto native = peer.tcp();
    started = ::connect(fd, native.data(), static_cast<socklen_t>(native.size()));
  }
  const int error = started == 0 ? 0 : errno;
  if (started != 0 && error != EINPROGRESS && error != EAGAIN) {
    ::close(fd);
    co_return system_error(error);
  }
  lean_stream stream;
  try {
    stream = lean_stream(context, fd);
  } catch (const std::system_error& e) {
    ::close(fd);
    co_return e.code();
  }
  if (started != 0) {
    stream.writable_ = false;  // until the connection is made
    auto made = co_await stream.make(op_kind::connect, {}, limit, source_location::current());
    if (!made) co_return made.error();
  }
  co_return std::move(stream);
}

// ---- lean_stream::operation

lean_stream::operation::~operation() {
  // A task destroyed while it waits (its context shut down): the stream must not resume it.
  if (pending_) finish();
}

bool lean_stream::operation::suspend(std::coroutine_handle<> waiter,
                                     detail::task_chain* chain) noexcept {
  chain_ = chain;
  if (chain_ != nullptr && chain_->cancelled) {
    error_ = system_error(ECANCELED);
    return false;
  }
  if (step()) {
    // Over without waiting: go on at once, but not for ever.
    if (++stream_->in_a_row_ < immediate_limit) return false;
    stream_->in_a_row_ = 0;
    stream_->readiness_->resume_later(waiter);
    return true;
  }
  stream_->in_a_row_ = 0;
  waiter_ = waiter;
  pending_ = true;
  (is_receive() ? stream_->reader_ : stream_->writer_) = this;
  if (chain_ != nullptr) chain_->waiting = this;
  if (!limit_.is_none()) {
    deadline_ = std::make_shared<deadline>(stream_->context());
    deadline_->op = this;
    deadline_->timer.expires_after(limit_.value());
    deadline_->timer.async_wait([d = deadline_](std::error_code) {
      if (d->op != nullptr) d->op->expire();
    });
  }
  const auto kind = is_receive()                ? detail::wait_kind::recv
                    : kind_ == op_kind::connect ? detail::wait_kind::connect
                                                : detail::wait_kind::send;
  wait_ = stream_->waits_.begin(is_receive() ? detail::wait_side::receive : detail::wait_side::send,
                                kind, stream_->fd_, where_);
  return true;
}

bool lean_stream::operation::step() noexcept {
  lean_stream& s = *stream_;
  if (s.fd_ < 0) {
    error_ = system_error(ECANCELED);
    return true;
  }
  switch (kind_) {
    case op_kind::recv_some:
    case op_kind::recv_all: {
      if (buffer_.size() == done_) return true;
      while (s.readable_) {
        int error = 0;
        const std::size_t want = buffer_.size() - done_;
        const ssize_t n =
            now([&] { return ::recv(s.fd_, static_cast<char*>(buffer_.data()) + done_, want, 0); },
                error);
        if (n > 0) {
          done_ += static_cast<std::size_t>(n);
          // A short read emptied the socket: epoll's next edge says when more arrives.
          if (static_cast<std::size_t>(n) < want) s.drained();
          if (kind_ == op_kind::recv_some || done_ == buffer_.size()) return true;
        } else if (n == 0) {
          error_ = make_error_code(errc::eof);
          return true;
        } else if (error == EAGAIN) {
          s.drained();
        } else {
          error_ = system_error(error);
          return true;
        }
      }
      return false;
    }
    case op_kind::send_some:
    case op_kind::send_all: {
      if (buffer_.size() == done_) return true;
      while (s.writable_) {
        int error = 0;
        const std::size_t want = buffer_.size() - done_;
        const ssize_t n = now(
            [&] {
              return ::send(s.fd_, static_cast<const char*>(buffer_.data()) + done_, want,
                            MSG_NOSIGNAL);
            },
            error);
        if (n >= 0) {
          done_ += static_cast<std::size_t>(n);
          if (static_cast<std::size_t>(n) < want) s.filled();
          if (kind_ == op_kind::send_some || done_ == buffer_.size()) return true;
        } else if (error == EAGAIN) {
          s.filled();
        } else {
          error_ = system_error(error);
          return true;
        }
      }
      return false;
    }
    case op_kind::connect: {
      if (!s.writable_) return false;
      int error = 0;
      socklen_t size = sizeof(error);
      if (::getsockopt(s.fd_, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
      if (error != 0) error_ = system_error(error);
      return true;
    }
  }
  return true;
}

void lean_stream::operation::ready() noexcept {
  if (!step()) return;  // a spurious edge: wait for the next one
  finish();
  waiter_.resume();
}

void lean_stream::operation::cancel() noexcept {
  if (!pending_) return;
  error_ = system_error(ECANCELED);
  auto* readiness = stream_->readiness_;
  finish();
  readiness->resume_later(waiter_);
}

void lean_stream::operation::orphan() noexcept {
  if (!pending_) return;
  error_ = system_error(ECANCELED);
  auto* readiness = stream_->readiness_;
  finish();
  stream_ = nullptr;
  readiness->resume_later(waiter_);
}

void lean_stream::operation::expire() noexcept {
  if (!pending_) return;
  error_ = system_error(ETIMEDOUT);
  finish();
  waiter_.resume();
}

void lean_stream::operation::finish() noexcept {
  pending_ = false;
  auto& mine = is_receive() ? stream_->reader_ : stream_->writer_;
  if (mine == this) mine = nullptr;
  if (chain_ != nullptr && chain_->waiting == this) chain_->waiting = nullptr;
  if (deadline_) {
    deadline_->op = nullptr;
    deadline_->timer.cancel();
    deadline_.reset();
  }
  wait_.reset();
}

io_result lean_stream::operation::await_resume() noexcept {
  if (kind_ == op_kind::connect) return {0, error_};
  if (stream_ == nullptr) return {done_, error_};
  if (is_receive()) {
    if (stream_->counters_) stream_->counters_->add_received(done_);
    detail::observe_received(error_, done_);
  } else {
    if (stream_->counters_) stream_->counters_->add_sent(done_);
    detail::observe_sent(error_, done_);
  }
  return {done_, error_};
}

}  // namespace coronet

#include "coronet/lean_stream.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/steady_timer.hpp>

#include "coronet/detail/io.hpp"
#include "coronet/detail/native_endpoint.hpp"
#include "coronet/error.hpp"

namespace coronet {
namespace {

std::error_code system_error(int value) noexcept { return {value, std::system_category()}; }

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

// The timer of an operation with a limit. Owned by the timer's handler, which finds the
// operation gone (null) when it ended first.
class lean_stream::deadline {
 public:
  explicit deadline(asio::io_context& context) : timer(context) {}
  asio::steady_timer timer;
  operation* op = nullptr;
};

lean_stream::lean_stream(asio::io_context& context, int fd)
    : readiness_(&detail::readiness::of(context)),  // may throw: the descriptor stays the caller's
      fd_(fd) {
  std::error_code ec;
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  token_ = readiness_->add(fd, *this, ec);
  if (ec) {
    fd_ = -1;
    throw std::system_error(ec, "cannot register a lean_stream");
  }
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

void lean_stream::on_ready(std::uint32_t events) noexcept {
  if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
    readable_ = true;
    if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) read_ended_ = true;
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0) {
    writable_ = true;
    if ((events & (EPOLLHUP | EPOLLERR)) != 0) write_ended_ = true;
  }
  if (reader_ != nullptr && readable_) {
    if (writer_ == nullptr || !writable_) {
      reader_->ready();  // this stream may be gone now
      return;
    }
    // Both sides wait and both may go on: the reader's task may close or destroy the stream,
    // which its slot then says.
    detail::readiness* const readiness = readiness_;
    const detail::readiness::token slot = token_;
    reader_->ready();
    if (!readiness->is_current(slot)) return;
  }
  if (writer_ != nullptr && writable_) writer_->ready();
}

// The readiness set's batch loop, here rather than in readiness.cpp so that on_ready(), and the
// waiting operation's system call and completion, are inlined into it (flatten): a ready
// socket costs no call until its task resumes.
[[gnu::flatten]] void detail::readiness::dispatch(int n) noexcept {
  for (int k = 0; k < n; ++k) {
    const epoll_event& event = events_[static_cast<std::size_t>(k)];
    const token t = event.data.u64;
    // Not a stream closed by a task resumed earlier in this batch.
    if (is_current(t)) slots_[static_cast<std::uint32_t>(t)].target->on_ready(event.events);
  }
}

void lean_stream::count_observed(bool received, std::size_t bytes, int error) noexcept {
  const std::error_code ec = error == 0 ? std::error_code() : operation::error_code(error);
  if (received) {
    detail::observe_received(ec, bytes);
  } else {
    detail::observe_sent(ec, bytes);
  }
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
  const auto start = [fd](const auto& native) {
    return ::connect(fd, native.data(), static_cast<socklen_t>(native.size()));
  };
  const int started =
      peer.is_unix_domain()
          ? start(detail::to_native(peer, detail::protocol_tag<asio::local::stream_protocol>{}))
          : start(peer.tcp());
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
    auto made = co_await operation(stream, op_kind::connect, asio::mutable_buffer(), limit,
                                   source_location::current());
    if (!made) co_return made.error();
  }
  co_return std::move(stream);
}

// ---- lean_stream::operation

std::error_code lean_stream::operation::error_code(int error) noexcept {
  if (error == eof) return make_error_code(errc::eof);
  return system_error(error);
}

void lean_stream::operation::start_deadline() noexcept {
  auto owned = std::make_unique<deadline>(stream_->context());
  deadline_ = owned.get();
  deadline_->op = this;
  deadline_->timer.expires_after(limit_);
  // The handler owns the timer: it runs once, expired or cancelled (or is destroyed with the
  // context), after the operation may be gone, which finish() tells it by clearing `op`.
  deadline_->timer.async_wait([d = std::move(owned)](std::error_code) {
    if (d->op != nullptr) d->op->expire();
  });
}

[[gnu::noinline]] void lean_stream::operation::stop_deadline() noexcept {
  deadline_->op = nullptr;
  deadline_->timer.cancel();
  deadline_ = nullptr;
}

void lean_stream::operation::observe_wait() noexcept {
  const auto kind = is_receive()                ? detail::wait_kind::recv
                    : kind_ == op_kind::connect ? detail::wait_kind::connect
                                                : detail::wait_kind::send;
  wait_ = stream_->waits_.begin(is_receive() ? detail::wait_side::receive : detail::wait_side::send,
                                kind, stream_->fd_, where_);
}

bool lean_stream::operation::receive_step() noexcept {
  lean_stream& s = *stream_;
  char* const data = static_cast<char*>(buffer_.data());
  const std::size_t size = buffer_.size();
  if (size == done_) return true;
  while (s.readable_) {  // true at first: step() looked
    const std::size_t want = size - done_;
    const ssize_t n =
        detail::nonblocking_call([&] { return ::recv(s.fd_, data + done_, want, 0); }, error_);
    if (n > 0) {
      done_ += static_cast<std::size_t>(n);
      // A short read emptied the socket: epoll's next edge says when more arrives.
      if (static_cast<std::size_t>(n) < want) s.drained();
      if (kind_ == op_kind::recv_some || done_ == size) return true;
    } else if (n == 0) {
      error_ = eof;
      return true;
    } else if (error_ == EAGAIN) {
      error_ = 0;
      s.drained();
    } else {
      return true;
    }
  }
  return false;
}

bool lean_stream::operation::send_step() noexcept {
  lean_stream& s = *stream_;
  const char* const data = static_cast<const char*>(buffer_.data());
  const std::size_t size = buffer_.size();
  if (size == done_) return true;
  while (s.writable_) {
    const std::size_t want = size - done_;
    const ssize_t n = detail::nonblocking_call(
        [&] { return ::send(s.fd_, data + done_, want, MSG_NOSIGNAL); }, error_);
    if (n >= 0) {
      done_ += static_cast<std::size_t>(n);
      if (static_cast<std::size_t>(n) < want) s.filled();
      if (kind_ == op_kind::send_some || done_ == size) return true;
    } else if (error_ == EAGAIN) {
      error_ = 0;
      s.filled();
    } else {
      return true;
    }
  }
  return false;
}

bool lean_stream::operation::connect_step() noexcept {
  if (!stream_->writable_) return false;
  socklen_t length = sizeof(error_);
  if (::getsockopt(stream_->fd_, SOL_SOCKET, SO_ERROR, &error_, &length) != 0) error_ = errno;
  return true;
}

void lean_stream::operation::abandon() noexcept { finish(); }

void lean_stream::operation::ready() noexcept {
  // Not step(): a stream closed or a chain cancelled while this waited has ended it already
  // (orphan(), cancel()), so the socket is open and the chain goes on.
  const bool over = is_receive()                ? receive_step()
                    : kind_ == op_kind::connect ? connect_step()
                                                : send_step();
  if (!over) return;  // a spurious edge: wait for the next one
  settle();
  finish();
  waiter_.resume();
}

void lean_stream::operation::cancel() noexcept {
  if (!pending_) return;
  error_ = ECANCELED;
  settle();
  auto* readiness = stream_->readiness_;
  finish();
  readiness->resume_later(waiter_);
}

void lean_stream::operation::orphan() noexcept {
  if (!pending_) return;
  error_ = ECANCELED;
  auto* readiness = stream_->readiness_;
  finish();
  stream_ = nullptr;
  readiness->resume_later(waiter_);
}

void lean_stream::operation::expire() noexcept {
  if (!pending_) return;
  error_ = ETIMEDOUT;
  settle();
  finish();
  waiter_.resume();
}

}  // namespace coronet

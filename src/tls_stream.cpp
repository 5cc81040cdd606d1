#include "coronet/tls_stream.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <array>
#include <tuple>
#include <type_traits>
#include <utility>

#include <asio/async_result.hpp>
#include <asio/read.hpp>
#include <asio/ssl/error.hpp>
#include <asio/write.hpp>

#include "coronet/detail/timed.hpp"

namespace coronet {

// GCC 12 destroys an aggregate temporary twice when it has a non-trivial destructor and is
// built inside a co_await expression: `co_await tls_stream::connect(ep, tls, {.limit = 5s})`.
static_assert(std::is_trivially_destructible_v<tls_connect_options>);

namespace {

// What a client sends as SNI and checks the server's certificate against: a host name goes
// in both; an IP address only in the check, since SNI carries names alone (RFC 6066).
void expect_server_name(SSL* ssl, const std::string& name, bool verify) {
  std::error_code not_an_address;
  (void)asio::ip::make_address(name, not_an_address);
  if (!not_an_address) {
    if (verify) ::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(ssl), name.c_str());
    return;
  }
  // SSL_set_tlsext_host_name() is a macro with a C cast; this is what it expands to.
  ::SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));
  if (verify) ::SSL_set1_host(ssl, name.c_str());
}

bool is_openssl_error(const std::error_code& ec) {
  return ec.category() == asio::error::get_ssl_category() ||
         ec == asio::ssl::error::unexpected_result ||
         ec == asio::ssl::error::unspecified_system_error;
}

}  // namespace

tls_stream::tls_stream(tcp_stream stream, tls_context context, std::string server_name)
    : context_(std::move(context)),
      stream_(std::move(stream.asio_socket()), context_.asio_context()),
      local_(stream.local_endpoint().tcp()),
      remote_(stream.remote_endpoint().tcp()),
      timeout_(stream.get_timeout()) {
  if (!context_.is_server()) {
    if (server_name.empty()) server_name = remote_.address().to_string();
    expect_server_name(stream_.native_handle(), server_name, context_.verifies_peer());
  }
}

tls_stream::tls_stream(tls_stream&&) noexcept = default;
tls_stream& tls_stream::operator=(tls_stream&&) noexcept = default;
tls_stream::~tls_stream() = default;

asio::awaitable<result<tls_stream>> tls_stream::connect(endpoint remote, tls_context context,
                                                        tls_connect_options options,
                                                        source_location where) {
  if (context.is_server()) co_return std::make_error_code(std::errc::invalid_argument);
  const detail::deadline until(options.limit);
  auto tcp = co_await tcp_stream::connect(
      remote, connect_options{.local = options.local, .limit = options.limit}, where);
  if (!tcp) co_return tcp.error();
  tls_stream stream(std::move(*tcp), std::move(context), std::string(options.server_name));
  if (auto shaken = co_await stream.handshake(until.remaining(), where); !shaken) {
    co_return shaken.error();
  }
  co_return std::move(stream);
}

asio::awaitable<result<tls_stream>> tls_stream::connect(std::string host_port, tls_context context,
                                                        tls_connect_options options,
                                                        source_location where) {
  if (context.is_server()) co_return std::make_error_code(std::errc::invalid_argument);
  auto target = host_port::parse(host_port);
  if (!target) co_return target.error();
  std::string server_name =
      options.server_name.empty() ? target->host : std::string(options.server_name);
  const detail::deadline until(options.limit);
  auto tcp = co_await tcp_stream::connect(
      std::move(host_port), connect_options{.local = options.local, .limit = options.limit}, where);
  if (!tcp) co_return tcp.error();
  tls_stream stream(std::move(*tcp), std::move(context), std::move(server_name));
  if (auto shaken = co_await stream.handshake(until.remaining(), where); !shaken) {
    co_return shaken.error();
  }
  co_return std::move(stream);
}

asio::awaitable<result<void>> tls_stream::handshake(call_timeout limit, source_location where) {
  return finish_handshake(limit_for(limit), detail::wait_side::receive, where);
}

asio::awaitable<result<void>> tls_stream::finish_handshake(timeout limit, detail::wait_side side,
                                                           source_location where) {
  const detail::deadline until(limit);
  while (stage_ == stage::running) {
    // Another operation (a reader's, say, while this is a writer's) runs it: wait for its end.
    if (!handshake_waiters_) {
      handshake_waiters_ = std::make_unique<asio::steady_timer>(
          get_executor(), asio::steady_timer::time_point::max());
    }
    detail::wait_scope waiting(waits_, side, detail::wait_kind::handshake, native_handle(), where);
    auto [ec] = co_await detail::with_limit(
        [&](auto token) { return handshake_waiters_->async_wait(std::move(token)); },
        until.remaining());
    if (stage_ == stage::running) {  // this wait was cut off, not ended by the handshake
      co_return ec == std::errc::timed_out ? std::make_error_code(std::errc::timed_out)
                                           : std::make_error_code(std::errc::operation_canceled);
    }
  }
  if (stage_ == stage::established) co_return result<void>();
  if (stage_ == stage::failed) co_return handshake_error_;
  co_return co_await run_handshake(until.remaining(), side, where);
}

asio::awaitable<result<void>> tls_stream::run_handshake(timeout limit, detail::wait_side side,
                                                        source_location where) {
  stage_ = stage::running;
  detail::wait_scope waiting(waits_, side, detail::wait_kind::handshake, native_handle(), where);
  const auto role =
      context_.is_server() ? asio::ssl::stream_base::server : asio::ssl::stream_base::client;
  auto [ec] = co_await detail::with_limit(
      [&](auto token) { return stream_.async_handshake(role, std::move(token)); }, limit);
  if (ec) {
    handshake_error_ = handshake_error(ec);
    stage_ = stage::failed;
  } else {
    stage_ = stage::established;
  }
  if (handshake_waiters_) handshake_waiters_->cancel();
  co_return handshake_error_;
}

std::error_code tls_stream::handshake_error(const std::error_code& ec) {
  if (!is_openssl_error(ec) && ec != asio::ssl::error::stream_truncated && ec != asio::error::eof) {
    return detail::to_coronet_error(ec);  // timed out, cancelled, reset
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    ssl_error_ = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
  }
  const long verified = ::SSL_get_verify_result(stream_.native_handle());
  if (context_.verifies_peer() && verified != X509_V_OK &&
      ERR_GET_REASON(ssl_error_) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    verify_result_ = verified;
    switch (verified) {
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH: return make_error_code(errc::tls_host_name_mismatch);
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID: return make_error_code(errc::tls_certificate_expired);
      default: return make_error_code(errc::tls_certificate_untrusted);
    }
  }
  return make_error_code(errc::tls_handshake_failed);
}

std::error_code tls_stream::io_error(const std::error_code& ec) {
  if (!ec) return ec;
  if (ec == asio::ssl::error::stream_truncated) return make_error_code(errc::tls_truncated);
  if (is_openssl_error(ec)) {
    if (ec.category() == asio::error::get_ssl_category()) {
      ssl_error_ = static_cast<unsigned long>(static_cast<unsigned int>(ec.value()));
    }
    return make_error_code(errc::tls_protocol_error);
  }
  return detail::to_coronet_error(ec);
}

std::error_code tls_stream::send_error(const std::error_code& ec) {
  const auto error = io_error(ec);
  // OpenSSL has already made (and numbered) the record the cut-off write was sending: the
  // peer would see the next record out of sequence.
  if (stage_ == stage::established &&
      (error == std::errc::operation_canceled || error == std::errc::timed_out)) {
    send_interrupted_ = true;
  }
  return error;
}

io_result tls_stream::counted_received(const std::error_code& ec, std::size_t n) {
  if (counters_) counters_->add_received(n);
  auto error = io_error(ec);
  detail::observe_received(error, n);
  return io_result(n, error);
}

io_result tls_stream::counted_sent(const std::error_code& ec, std::size_t n) {
  if (counters_) counters_->add_sent(n);
  auto error = send_error(ec);
  detail::observe_sent(error, n);
  return io_result(n, error);
}

// The handshake if it is still to come, then the operation `start(token)` starts, both within
// `limit`. A failed handshake's error comes back as the operation's, with no bytes. The wait is
// recorded on `side`: a handshake, then a receive or a send.
template <class Start>
asio::awaitable<std::tuple<std::error_code, std::size_t>> tls_stream::after_handshake(
    Start start, call_timeout limit, detail::wait_side side, source_location where) {
  const detail::deadline until(limit_for(limit));
  if (stage_ != stage::established) {
    if (auto shaken = co_await finish_handshake(until.remaining(), side, where); !shaken) {
      co_return std::tuple(shaken.error(), std::size_t{0});
    }
  }
  const auto kind =
      side == detail::wait_side::receive ? detail::wait_kind::recv : detail::wait_kind::send;
  detail::wait_scope waiting(waits_, side, kind, native_handle(), where);
  co_return co_await detail::with_limit(std::move(start), until.remaining());
}

asio::awaitable<io_result> tls_stream::send(asio::const_buffer data, call_timeout limit,
                                            source_location where) {
  if (send_interrupted_) co_return make_error_code(errc::tls_send_interrupted);
  auto [ec, n] = co_await after_handshake(
      [&](auto token) { return stream_.async_write_some(data, std::move(token)); }, limit,
      detail::wait_side::send, where);
  co_return counted_sent(ec, n);
}

asio::awaitable<io_result> tls_stream::send_all(asio::const_buffer data, call_timeout limit,
                                                source_location where) {
  if (send_interrupted_) co_return make_error_code(errc::tls_send_interrupted);
  auto [ec, n] = co_await after_handshake(
      [&](auto token) { return asio::async_write(stream_, data, std::move(token)); }, limit,
      detail::wait_side::send, where);
  co_return counted_sent(ec, n);
}

asio::awaitable<io_result> tls_stream::recv(asio::mutable_buffer buffer, call_timeout limit,
                                            source_location where) {
  auto [ec, n] = co_await after_handshake(
      [&](auto token) { return stream_.async_read_some(buffer, std::move(token)); }, limit,
      detail::wait_side::receive, where);
  co_return counted_received(ec, n);
}

asio::awaitable<io_result> tls_stream::recv_exact(asio::mutable_buffer buffer, call_timeout limit,
                                                  source_location where) {
  auto [ec, n] = co_await after_handshake(
      [&](auto token) { return asio::async_read(stream_, buffer, std::move(token)); }, limit,
      detail::wait_side::receive, where);
  co_return counted_received(ec, n);
}

asio::awaitable<result<void>> tls_stream::shutdown(call_timeout limit, source_location where) {
  if (send_interrupted_) co_return make_error_code(errc::tls_send_interrupted);
  const detail::deadline until(limit_for(limit));
  if (stage_ != stage::established) {
    if (auto shaken = co_await finish_handshake(until.remaining(), detail::wait_side::send, where);
        !shaken) {
      co_return shaken.error();
    }
  }
  if ((::SSL_get_shutdown(stream_.native_handle()) & SSL_SENT_SHUTDOWN) != 0) {
    co_return result<void>();  // sent already
  }
  // Asio's shutdown sends close_notify and then reads until the peer's, discarding any data
  // still on its way: a bidirectional close. This one only sends, as TCP's half-close does,
  // and leaves the rest to recv(). OpenSSL's SSL_shutdown() returns once close_notify is
  // queued if the peer's is marked received, so the mark is set around the call and put
  // back before anything else can read. The call happens when Asio starts the operation,
  // within the initiation below; what is left is the write of the queued record.
  detail::wait_scope waiting(waits_, detail::wait_side::send, detail::wait_kind::shutdown,
                             native_handle(), where);
  auto [ec] = co_await detail::with_limit(
      [&](auto token) {
        return asio::async_initiate<decltype(token), void(std::error_code)>(
            [this](auto handler) {
              SSL* ssl = stream_.native_handle();
              const int received = ::SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN;
              ::SSL_set_shutdown(ssl, SSL_RECEIVED_SHUTDOWN);
              stream_.async_shutdown(std::move(handler));
              ::SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | received);
            },
            token);
      },
      until.remaining());
  co_return send_error(ec);
}

void tls_stream::close() noexcept {
  std::error_code ignored;
  stream_.lowest_layer().close(ignored);
}

std::string_view tls_stream::protocol() const noexcept {
  if (stage_ != stage::established) return {};
  return ::SSL_get_version(const_cast<tls_stream*>(this)->stream_.native_handle());
}

std::string_view tls_stream::cipher() const noexcept {
  if (stage_ != stage::established) return {};
  return ::SSL_get_cipher_name(const_cast<tls_stream*>(this)->stream_.native_handle());
}

std::string tls_stream::failure_detail() const {
  if (verify_result_ != X509_V_OK) {
    return std::string("certificate verify failed: ") +
           ::X509_verify_cert_error_string(verify_result_);
  }
  if (ssl_error_ != 0) {
    if (const char* reason = ::ERR_reason_error_string(ssl_error_)) return reason;
    std::array<char, 256> text{};
    ::ERR_error_string_n(ssl_error_, text.data(), text.size());
    return text.data();
  }
  if (handshake_error_ == errc::tls_handshake_failed) {
    return "the connection ended during the handshake";
  }
  return {};
}

}  // namespace coronet

#include "coronet/unix_listener.hpp"

#include <sys/socket.h>

#include <utility>

#include "detail/unix_bind.hpp"

namespace coronet {

unix_listener::unix_listener(asio::local::stream_protocol::acceptor acceptor, const endpoint& local,
                             detail::socket_file file)
    : basic_listener(std::move(acceptor), local), file_(std::move(file)) {}

unix_listener unix_listener::bind(const asio::any_io_executor& executor, const endpoint& local,
                                  unix_listen_options options) {
  asio::local::stream_protocol::acceptor acceptor(executor);
  auto file =
      detail::open_and_bind_unix(acceptor, asio::local::stream_protocol(), local, SOCK_STREAM);
  std::error_code ec;
  acceptor.listen(options.backlog, ec);
  if (ec) detail::throw_setup_error(ec, "listen on", local.to_string());
  return unix_listener(std::move(acceptor), local, std::move(file));
}

unix_listener unix_listener::bind(asio::io_context& context, const endpoint& local,
                                  unix_listen_options options) {
  return bind(context.get_executor(), local, options);
}

void unix_listener::close() noexcept {
  file_.remove();
  basic_listener::close();
}

}  // namespace coronet

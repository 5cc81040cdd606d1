#include "coronet/unix_seqpacket_listener.hpp"

#include <sys/socket.h>

#include <utility>

#include "detail/unix_bind.hpp"

namespace coronet {

unix_seqpacket_listener::unix_seqpacket_listener(
    asio::basic_socket_acceptor<asio::generic::seq_packet_protocol> acceptor, const endpoint& local,
    detail::socket_file file)
    : basic_listener(std::move(acceptor), local), file_(std::move(file)) {}

unix_seqpacket_listener unix_seqpacket_listener::bind(const asio::any_io_executor& executor,
                                                      const endpoint& local,
                                                      unix_listen_options options) {
  asio::basic_socket_acceptor<asio::generic::seq_packet_protocol> acceptor(executor);
  auto file = detail::open_and_bind_unix(acceptor, asio::generic::seq_packet_protocol(AF_UNIX, 0),
                                         local, SOCK_SEQPACKET);
  std::error_code ec;
  acceptor.listen(options.backlog, ec);
  if (ec) detail::throw_setup_error(ec, "listen on", local.to_string());
  return unix_seqpacket_listener(std::move(acceptor), local, std::move(file));
}

unix_seqpacket_listener unix_seqpacket_listener::bind(asio::io_context& context,
                                                      const endpoint& local,
                                                      unix_listen_options options) {
  return bind(context.get_executor(), local, options);
}

void unix_seqpacket_listener::close() noexcept {
  file_.remove();
  basic_listener::close();
}

}  // namespace coronet

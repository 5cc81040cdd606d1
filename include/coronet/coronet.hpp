#pragma once
// coronet: coroutine sockets on standalone Asio. Include this for everything.

#include "coronet/basic_socket.hpp"
#include "coronet/endpoint.hpp"
#include "coronet/error.hpp"
#include "coronet/log.hpp"
#include "coronet/result.hpp"
#include "coronet/shutdown_type.hpp"
#include "coronet/socket_option.hpp"
#include "coronet/spawn.hpp"
#include "coronet/tcp_listener.hpp"
#include "coronet/tcp_stream.hpp"

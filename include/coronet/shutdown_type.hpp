#pragma once

namespace coronet {

/// Which direction of a stream shutdown() closes: SHUT_RD, SHUT_WR or SHUT_RDWR.
enum class shutdown_type {
  receive,  ///< no more receiving; what arrives later is discarded
  send,     ///< half-close: the peer reads eof once it has read everything sent before
  both,
};

}  // namespace coronet

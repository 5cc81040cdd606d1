#pragma once
// The rules for the file a Unix-domain socket binds to:
// - a stale socket file (nobody accepts on it any more) is replaced;
// - a socket file in use is std::errc::address_in_use;
// - any other existing file is coronet::errc::not_a_socket_file, and is never deleted;
// - the file a socket created is removed when that socket closes, if it is still the same file.

#include <sys/types.h>

#include <string>
#include <system_error>

#include "coronet/endpoint.hpp"

namespace coronet::detail {

// Applies the rules above before binding `local` (a no-op for abstract names). `socket_type`
// (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET) is used to probe whether a socket file is in use.
std::error_code clear_stale_socket_file(const endpoint& local, int socket_type);

// The socket file a bind created. Removed on destruction or remove(), but only while the path
// still names that file: never one that another process has put there since.
class socket_file {
 public:
  socket_file() noexcept = default;
  // Records the file now at `local`'s path; call right after a successful bind.
  explicit socket_file(const endpoint& local);
  socket_file(socket_file&& other) noexcept;
  socket_file& operator=(socket_file&& other) noexcept;
  socket_file(const socket_file&) = delete;
  socket_file& operator=(const socket_file&) = delete;
  ~socket_file() { remove(); }

  void remove() noexcept;

 private:
  std::string path_;  // empty: nothing to remove
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

}  // namespace coronet::detail

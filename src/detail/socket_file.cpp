#include "coronet/detail/socket_file.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "coronet/error.hpp"

namespace coronet::detail {
namespace {

std::error_code errno_code(int value) noexcept { return {value, std::system_category()}; }

// Whether something accepts on the socket file at `path`: connect to it without blocking.
// Refused means a stale file left by a process that is gone.
bool socket_in_use(const std::string& path, int socket_type) {
  const int probe = ::socket(AF_UNIX, socket_type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (probe < 0) return true;  // cannot tell: leave the file alone
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  const int error = rc == 0 ? 0 : errno;
  ::close(probe);
  // ECONNREFUSED: no socket behind the file. Anything else (connected, EAGAIN with a full
  // backlog, EPROTOTYPE for a socket of another type) means a live socket.
  return error != ECONNREFUSED;
}

}  // namespace

std::error_code clear_stale_socket_file(const endpoint& local, int socket_type) {
  if (!local.is_unix_domain() || local.is_abstract()) return {};
  const std::string path(local.path());
  struct stat status {};
  if (::lstat(path.c_str(), &status) != 0) {
    return errno == ENOENT ? std::error_code() : errno_code(errno);
  }
  if (!S_ISSOCK(status.st_mode)) return make_error_code(errc::not_a_socket_file);
  if (socket_in_use(path, socket_type)) return errno_code(EADDRINUSE);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return errno_code(errno);
  return {};
}

socket_file::socket_file(const endpoint& local) {
  if (!local.is_unix_domain() || local.is_abstract() || local.path().empty()) return;
  struct stat status {};
  const std::string path(local.path());
  if (::lstat(path.c_str(), &status) != 0) return;
  path_ = path;
  device_ = status.st_dev;
  inode_ = status.st_ino;
}

socket_file::socket_file(socket_file&& other) noexcept
    : path_(std::exchange(other.path_, {})), device_(other.device_), inode_(other.inode_) {}

socket_file& socket_file::operator=(socket_file&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
    device_ = other.device_;
    inode_ = other.inode_;
  }
  return *this;
}

void socket_file::remove() noexcept {
  if (path_.empty()) return;
  struct stat status {};
  if (::lstat(path_.c_str(), &status) == 0 && S_ISSOCK(status.st_mode) &&
      status.st_dev == device_ && status.st_ino == inode_) {
    ::unlink(path_.c_str());
  }
  path_.clear();
}

}  // namespace coronet::detail

#include "coronet/open_file_limit.hpp"

#include <sys/resource.h>

#include <cerrno>
#include <system_error>

namespace coronet {

result<std::size_t> open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return std::error_code(errno, std::system_category());
  return static_cast<std::size_t>(limit.rlim_cur);
}

result<std::size_t> raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return std::error_code(errno, std::system_category());
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      return std::error_code(errno, std::system_category());
    }
  }
  return static_cast<std::size_t>(limit.rlim_cur);
}

}  // namespace coronet

#pragma once
// The outcome of an operation, as a value: the `connect_ex` habit.
//
// Every coronet I/O operation returns one of these instead of throwing. An expected failure
// (eof, reset, refused, timed out) is an error_code the caller tests; `value()` is the
// throwing form for those who prefer exceptions:
//
//     auto r = co_await stream.recv(asio::buffer(buf));
//     if (!r) { if (r.error() == coronet::errc::eof) ...; }   // value form
//     std::size_t n = (co_await stream.recv(asio::buffer(buf))).value();  // throwing form

#include <cstddef>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

namespace coronet {

/// Either a T or the error_code that says why there is none.
///
/// Thread safety: a value type: const methods are safe from any thread on a shared object (as
/// far as T's are); modifying it, or its value through a non-const accessor, needs exclusive
/// access.
template <class T>
class [[nodiscard]] result {
 public:
  /// A successful result holding `value`.
  result(T value) : value_(std::move(value)) {}  // NOLINT(google-explicit-constructor)

  /// A failed result; `error` must not be zero.
  result(std::error_code error) noexcept : error_(error) {}  // NOLINT(google-explicit-constructor)

  /// True when the operation succeeded.
  explicit operator bool() const noexcept { return value_.has_value(); }
  bool has_value() const noexcept { return value_.has_value(); }

  /// Why the operation failed; a zero error_code on success.
  const std::error_code& error() const noexcept { return error_; }

  /// The value; throws std::system_error(error()) when there is none.
  T& value() & { return check(), *value_; }
  const T& value() const& { return check(), *value_; }
  T&& value() && { return check(), std::move(*value_); }

  /// The value without a check: only after testing the result.
  T& operator*() & noexcept { return *value_; }
  const T& operator*() const& noexcept { return *value_; }
  T&& operator*() && noexcept { return std::move(*value_); }
  T* operator->() noexcept { return &*value_; }
  const T* operator->() const noexcept { return &*value_; }

 private:
  void check() const {
    if (!value_) throw std::system_error(error_);
  }

  std::optional<T> value_;
  std::error_code error_;
};

/// The outcome of an operation that returns nothing but may fail.
/// Thread safety: as result<T>.
template <>
class [[nodiscard]] result<void> {
 public:
  result() noexcept = default;
  result(std::error_code error) noexcept : error_(error) {}  // NOLINT(google-explicit-constructor)

  explicit operator bool() const noexcept { return !error_; }
  bool has_value() const noexcept { return !error_; }
  const std::error_code& error() const noexcept { return error_; }

  /// Throws std::system_error(error()) on failure.
  void value() const {
    if (error_) throw std::system_error(error_);
  }

 private:
  std::error_code error_;
};

/// The outcome of an operation that moves bytes: how many moved, and the error that stopped it.
///
/// `bytes()` is meaningful on failure too: a `send_all()` cut off by a reset reports what
/// reached the socket before it, a `recv_exact()` hitting eof reports what it had read.
///
/// Thread safety: a value type: const methods are safe from any thread on a shared object;
/// assigning to one needs exclusive access.
class [[nodiscard]] io_result {
 public:
  /// A success that moved `bytes`.
  io_result(std::size_t bytes) noexcept : bytes_(bytes) {}  // NOLINT(google-explicit-constructor)

  io_result(std::size_t bytes, std::error_code error) noexcept
      : bytes_(bytes), value_(error.value()), category_(error ? &error.category() : nullptr) {}

  /// A failure before any byte moved.
  io_result(std::error_code error) noexcept  // NOLINT(google-explicit-constructor)
      : io_result(0, error) {}

  /// True when the operation completed without error.
  explicit operator bool() const noexcept { return category_ == nullptr; }
  bool has_value() const noexcept { return category_ == nullptr; }

  /// Why the operation failed; a zero error_code on success.
  std::error_code error() const noexcept {
    return category_ == nullptr ? std::error_code() : std::error_code(value_, *category_);
  }

  /// Bytes moved, whether or not the operation failed.
  std::size_t bytes() const noexcept { return bytes_; }

  /// Bytes moved; throws std::system_error(error()) on failure.
  std::size_t value() const {
    if (category_ != nullptr) throw std::system_error(error());
    return bytes_;
  }

 private:
  // The error kept as its two parts, the category null on success: a success (every message
  // of a busy server) is made and tested without reading std::system_category().
  std::size_t bytes_;
  int value_ = 0;
  const std::error_category* category_ = nullptr;
};

}  // namespace coronet

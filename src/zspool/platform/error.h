// Folder platform/: the bottom layer, OS code only. Error values (this file), the page-source
// interface the pool takes memory from (page_source.h), the export macro (export.h); internal/:
// the OS page source, arenas and mincore (os.h), the spin-then-block mutex. Includes nothing
// above it.
//
// zspool error values, shared by every layer.
//
// Nothing in zspool throws across its API or aborts on bad input: each fallible call returns an
// `Error` or a `Result<T>` (a value or an Error). The C API maps them to negative errno values.
#pragma once

#include <cassert>
#include <cstdint>
#include <string_view>
#include <utility>

#include "zspool/platform/export.h"

namespace zspool {

// X-macro: one line per error, so the enum, its names and its errno mapping cannot drift.
//   X(enumerator, errno value for the C API, one-line message)
#define ZSPOOL_ERRORS(X)                                                                 \
  X(ok, 0, "success")                                                                    \
  X(invalid_argument, 22 /*EINVAL*/, "invalid argument")                                 \
  X(too_large, 28 /*ENOSPC*/, "object larger than the pool's maximum size")              \
  X(out_of_memory, 12 /*ENOMEM*/, "out of memory")                                       \
  X(invalid_handle, 22 /*EINVAL*/, "handle was never issued by this pool")               \
  X(stale_handle, 22 /*EINVAL*/, "handle already freed (double free or use after free)") \
  X(not_mapped, 22 /*EINVAL*/, "handle is not mapped")                                   \
  X(out_of_bounds, 34 /*ERANGE*/, "access past the end of the object")                   \
  X(busy, 16 /*EBUSY*/, "resource busy")                                                 \
  X(not_found, 2 /*ENOENT*/, "nothing to act on")                                        \
  X(evict_failed, 11 /*EAGAIN*/, "eviction handler failed")                              \
  X(io_error, 5 /*EIO*/, "I/O error")                                                    \
  X(checksum_mismatch, 74 /*EBADMSG*/, "stored data failed its checksum")                \
  X(limit_reached, 28 /*ENOSPC*/, "memory limit reached")                                \
  X(corrupt_data, 74 /*EBADMSG*/, "compressed data is corrupt")                          \
  X(unsupported, 95 /*EOPNOTSUPP*/, "operation not supported by this configuration")     \
  X(no_space, 28 /*ENOSPC*/, "no space left on the backing file's device")

enum class Error : std::uint8_t {
#define ZSPOOL_ERROR_ENUM(name, errno_value, message) name,
  ZSPOOL_ERRORS(ZSPOOL_ERROR_ENUM)
#undef ZSPOOL_ERROR_ENUM
};

// The one-line message for an error ("success" for Error::ok).
ZSPOOL_API std::string_view error_message(Error e) noexcept;
// The enumerator's name, e.g. "stale_handle".
ZSPOOL_API std::string_view error_name(Error e) noexcept;
// The positive errno value the C API negates (0 for Error::ok).
ZSPOOL_API int error_errno(Error e) noexcept;

// A value of type T, or an Error explaining why there is none. T must be default-constructible
// and cheap to move (handles, sizes, pointers, small guards).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)), error_(Error::ok) {}  // NOLINT: implicit on purpose
  Result(Error error) : value_(), error_(error) { assert(error != Error::ok); }  // NOLINT

  bool ok() const noexcept { return error_ == Error::ok; }
  explicit operator bool() const noexcept { return ok(); }
  Error error() const noexcept { return error_; }

  T& value() & {
    assert(ok());
    return value_;
  }
  const T& value() const& {
    assert(ok());
    return value_;
  }
  T&& value() && {
    assert(ok());
    return std::move(value_);
  }
  T& operator*() & { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T value_or(T fallback) const { return ok() ? value_ : fallback; }

 private:
  T value_;
  Error error_;
};

}  // namespace zspool

#include "zspool/platform/error.h"

namespace zspool {

std::string_view error_message(Error e) noexcept {
  switch (e) {
#define ZSPOOL_ERROR_MESSAGE(name, errno_value, message) \
  case Error::name:                                      \
    return message;
    ZSPOOL_ERRORS(ZSPOOL_ERROR_MESSAGE)
#undef ZSPOOL_ERROR_MESSAGE
  }
  return "unknown error";
}

std::string_view error_name(Error e) noexcept {
  switch (e) {
#define ZSPOOL_ERROR_NAME(name, errno_value, message) \
  case Error::name:                                   \
    return #name;
    ZSPOOL_ERRORS(ZSPOOL_ERROR_NAME)
#undef ZSPOOL_ERROR_NAME
  }
  return "unknown";
}

int error_errno(Error e) noexcept {
  switch (e) {
#define ZSPOOL_ERROR_ERRNO(name, errno_value, message) \
  case Error::name:                                    \
    return errno_value;
    ZSPOOL_ERRORS(ZSPOOL_ERROR_ERRNO)
#undef ZSPOOL_ERROR_ERRNO
  }
  return 22;
}

}  // namespace zspool

#pragma once

#include <cstddef>

namespace eddy::storage {

/// Writes all `n` bytes to `fd`, retrying short writes and EINTR. False on an error (errno set).
bool WriteAll(int fd, const char* data, size_t n);

}  // namespace eddy::storage

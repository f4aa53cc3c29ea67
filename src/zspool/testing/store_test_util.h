// What the store's tests share: making a store (the error named on failure), checking that a
// page reads back, and a scratch file that is removed. Test-only: needs GoogleTest.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "zspool/store/store.h"

namespace zspool::test {

inline std::unique_ptr<Store> make_store(StoreOptions o) {
  auto s = Store::create(std::move(o));
  EXPECT_TRUE(s.ok()) << error_name(s.error());
  return s.ok() ? std::move(*s) : nullptr;
}

// Page `index` reads without error and holds `want` (one page of the store's size).
inline bool reads_back(Store& s, std::uint64_t index, const std::vector<std::byte>& want) {
  std::vector<std::byte> got(want.size());
  return s.read(index, got) == Error::ok && got == want;
}

// An empty file made with mkstemp under $TMPDIR (a backing file's target), removed at the end.
struct TempFile {
  std::string path;
  TempFile() {
    std::string p = (std::filesystem::temp_directory_path() / "zspool-test-XXXXXX").string();
    const int fd = ::mkstemp(p.data());
    if (fd >= 0) ::close(fd);
    path = p;
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

}  // namespace zspool::test

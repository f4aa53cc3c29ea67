// What the end-to-end tests of the zspool binary share: running it, describing a run for a
// failure message, the one-line-error check, and a scratch directory. Test-only: needs
// GoogleTest and the ZSPOOL_BINARY_DIR definition every test target gets.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "zspool/testing/subprocess.h"

namespace zspool::test {

inline constexpr const char* kZspool = ZSPOOL_BINARY_DIR "/zspool";

inline Outcome run_zspool(const std::vector<std::string>& args) {
  bool started = false;
  Outcome o = run_program(kZspool, args, &started);
  EXPECT_TRUE(started) << "cannot run " << kZspool;
  return o;
}

inline std::string describe(const std::vector<std::string>& args, const Outcome& o) {
  return describe_run("zspool", args, o);
}

// One line on stderr, "zspool: ..." naming `mentions`, the given exit status, no signal.
inline Outcome expect_one_line_error(const std::vector<std::string>& args, int status,
                                     const std::string& mentions) {
  const Outcome o = run_zspool(args);
  EXPECT_TRUE(o.exited) << describe(args, o);
  EXPECT_EQ(o.status, status) << describe(args, o);
  EXPECT_EQ(o.err_lines(), 1u) << describe(args, o);
  EXPECT_EQ(o.err.rfind("zspool: ", 0), 0u) << describe(args, o);
  EXPECT_NE(o.err.find(mentions), std::string::npos) << describe(args, o);
  return o;
}

// A scratch directory (mkdtemp under $TMPDIR), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "zspool_e2e_XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The whole file ("" if it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace zspool::test

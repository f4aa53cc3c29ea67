// End-to-end: `zspool train-dict`, and the dictionary it writes used as a compressor spec.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "zspool/testing/cli_test_util.h"
#include "zspool/workload/rng.h"

namespace zspool::test {
namespace {

namespace fs = std::filesystem;

// Source-like text: the same boilerplate around numbers that differ.
std::string source_text(std::uint64_t seed, std::size_t bytes) {
  std::string text;
  std::uint64_t s = seed;
  while (text.size() < bytes) {
    s = splitmix64_at(s);
    text += "static inline int zspool_function_" + std::to_string(s % 10000) +
            "(struct zspool_pool *pool, unsigned long handle) { return " + std::to_string(s % 97) +
            "; }\n#define ZSPOOL_FLAG_" + std::to_string(s % 5000) + " (1UL << " +
            std::to_string(s % 64) + ")\n";
  }
  return text.substr(0, bytes);
}

class TrainDictTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directory(dir_ / "src");
    for (int f = 0; f < 8; ++f)
      write_file(dir_ / ("src/file" + std::to_string(f) + ".h"), source_text(f, 64 << 10));
  }
  std::vector<std::string> train_args(const std::string& out) const {
    return {"train-dict", "--input", dir_ / "src", "-o", out, "--dict-size", "8K"};
  }
  static std::string contents(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  TempDir dir_;
};

TEST_F(TrainDictTest, WritesADictionaryAReplayCanUse) {
  const std::string dict = dir_ / "h.dict";
  const auto args = train_args(dict);
  const Outcome o = run_zspool(args);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(args, o);
  EXPECT_EQ(o.out.rfind("dictionary " + dict + ": ", 0), 0u) << o.out;
  ASSERT_TRUE(fs::is_regular_file(dict));
  EXPECT_LE(fs::file_size(dict), 8u << 10);

  // The data file is the training data itself; pages 0..31 written, then read back.
  write_file(dir_ / "data", source_text(3, 32 * 4096));
  std::string trace;
  for (int p = 0; p < 32; ++p) trace += "write " + std::to_string(p) + "\n";
  for (int p = 0; p < 32; ++p) trace += "read " + std::to_string(p) + "\n";
  write_file(dir_ / "trace", trace);
  for (const std::vector<std::string>& how :
       {std::vector<std::string>{"--compressor", "zstd:dict=" + dict},
        std::vector<std::string>{"--compressor", "zstd:5:dict=" + dict},
        std::vector<std::string>{"--compressor", "lz4:dict=" + dict},
        std::vector<std::string>{"--compressor", "lz4", "--recompress-with", "lz4:dict=" + dict}}) {
    std::vector<std::string> replay = {"replay", dir_ / "trace", "--data", dir_ / "data"};
    replay.insert(replay.end(), how.begin(), how.end());
    const Outcome r = run_zspool(replay);
    EXPECT_TRUE(r.exited && r.status == 0) << describe(replay, r);
    EXPECT_NE(r.out.find("reads 32 verified 32 mismatches 0"), std::string::npos) << r.out;
  }
}

TEST_F(TrainDictTest, NeverOverwritesAFileUnlessForcedAndNeverANonRegularOne) {
  const std::string existing = dir_ / "existing";
  write_file(existing, "keep me");
  expect_one_line_error(train_args(existing), 2, "exists; not overwritten (--force replaces it)");
  EXPECT_EQ(contents(existing), "keep me");

  fs::create_symlink(existing, dir_ / "link");
  auto forced = train_args(dir_ / "link");
  forced.push_back("--force");
  expect_one_line_error(forced, 2, "not a regular file");
  EXPECT_EQ(contents(existing), "keep me");
  forced = train_args("/dev/null");
  forced.push_back("--force");
  expect_one_line_error(forced, 2, "-o /dev/null: exists and is not a regular file");
  forced = train_args(dir_ / "src/file0.h");
  forced.push_back("--force");
  expect_one_line_error(forced, 2, "inside " + (dir_ / "src") + ", one of the inputs");
  forced = train_args(dir_ / "src/new.dict");
  expect_one_line_error(forced, 2, "one of the inputs");
  forced = {"train-dict", "--input", dir_ / "src/file1.h", "-o", dir_ / "src/file1.h", "--force"};
  expect_one_line_error(forced, 2, "it is " + (dir_ / "src/file1.h") + ", one of the inputs");

  forced = train_args(existing);
  forced.push_back("--force");
  const Outcome o = run_zspool(forced);
  ASSERT_TRUE(o.exited && o.status == 0) << describe(forced, o);
  EXPECT_NE(contents(existing), "keep me");
}

TEST_F(TrainDictTest, BadArgumentsAndBadDictionaries) {
  expect_one_line_error({"train-dict", "-o", dir_ / "x"}, 2, "--input is required");
  expect_one_line_error({"train-dict", "--input", dir_ / "src"}, 2, "--output is required");
  auto args = train_args(dir_ / "x");
  args.back() = "100";
  expect_one_line_error(args, 2, "--dict-size");
  write_file(dir_ / "zeros", std::string(64 << 10, '\0'));
  expect_one_line_error({"train-dict", "--input", dir_ / "zeros", "-o", dir_ / "z"}, 2,
                        "no page to train on");
  EXPECT_FALSE(fs::exists(dir_ / "z"));
  // A file that is not a dictionary is refused as a compressor spec, naming it.
  expect_one_line_error({"run", "--compressor", "zstd:dict=" + (dir_ / "src/file1.h")}, 2,
                        "not a zstd dictionary");
}

}  // namespace
}  // namespace zspool::test

// End to end: `zspool soak` runs every store operation with faults and finds no errors.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace {

struct Ran {
  int status = -1;
  std::string out;
};

Ran run(const std::string& args) {
  Ran r;
  const std::string cmd = std::string(ZSPOOL_BINARY_DIR) + "/zspool " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) r.out += buf;
  r.status = pclose(p);
  return r;
}

TEST(Soak, MixesEveryOperationWithFaultsAndFindsNoErrors) {
  const Ran r = run("soak --seconds 2 --threads 3 --pages 1024 --limit 1M --fault-every 500 --json");
  ASSERT_TRUE(WIFEXITED(r.status)) << "no signal";
  EXPECT_EQ(WEXITSTATUS(r.status), 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_GT(j["ops"].get<std::uint64_t>(), 1000u);
  EXPECT_GT(j["verified"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["faults_injected"].get<std::uint64_t>(), 0u);
  EXPECT_GT(j["written_back_pages"].get<std::uint64_t>(), 0u) << "the limit forces writeback";
}

TEST(Soak, BadArgumentsAreOneLineErrors) {
  EXPECT_EQ(WEXITSTATUS(run("soak --threads 0").status), 2);
  EXPECT_EQ(WEXITSTATUS(run("soak --limit 12Q").status), 2);
}

}  // namespace

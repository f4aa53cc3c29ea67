// End-to-end tests of the zspool binary: each runs ZSPOOL_BINARY_DIR/zspool in a child process
// and checks its exit status, stdout and stderr.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "zspool/core/size_class.h"
#include "zspool/testing/cli_test_util.h"

namespace zspool::tools {
namespace {

using test::describe;
using test::Outcome;
using test::run_zspool;

// Runs of spaces collapsed to one: table rows compared without their column padding.
std::string squeeze_spaces(const std::string& row) {
  std::string out;
  for (char c : row)
    if (c != ' ' || out.empty() || out.back() != ' ') out.push_back(c);
  return out;
}

// ---- classes ---------------------------------------------------------------------------------

nlohmann::json classes_json(const std::vector<std::string>& extra_args) {
  std::vector<std::string> args = {"classes", "--json"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  const Outcome o = run_zspool(args);
  EXPECT_TRUE(o.exited && o.status == 0) << describe(args, o);
  EXPECT_EQ(o.err, "");
  return nlohmann::json::parse(o.out);  // throws unless stdout is exactly one JSON value
}

struct Geometry {
  std::vector<std::string> args;
  std::uint32_t page_size;
  std::uint32_t max_chain;
  std::size_t classes;
  std::uint32_t huge_class_size;
};

TEST(ClassesVerb, JsonMatchesLinuxFigures) {
  const Geometry cases[] = {
      {{}, 4096, 8, 119, 3625},
      {{"--max-chain", "4"}, 4096, 4, 69, 3257},
      {{"--max-chain", "16"}, 4096, 16, 192, 3833},
      {{"--max-chain", "8", "--page-size", "4K"}, 4096, 8, 119, 3625},
  };
  for (const Geometry& g : cases) {
    const nlohmann::json j = classes_json(g.args);
    ASSERT_TRUE(j.is_object());
    EXPECT_EQ(j["page_size"], g.page_size);
    EXPECT_EQ(j["max_chain"], g.max_chain);
    EXPECT_EQ(j["huge_class_size"], g.huge_class_size);
    EXPECT_EQ(j["classes"].size(), g.classes);
  }
}

// Every row equals the library's table, in ascending size, for several geometries.
TEST(ClassesVerb, JsonRowsEqualTheSizeClassTable) {
  for (const std::string page_size : {"4096", "16K", "64K"}) {
    const nlohmann::json j = classes_json({"--page-size", page_size, "--max-chain", "8"});
    const auto table = SizeClassTable::make(j["page_size"].get<std::uint32_t>(), 8);
    ASSERT_TRUE(table.ok());
    ASSERT_EQ(j["classes"].size(), table->classes().size());
    for (std::size_t i = 0; i < table->classes().size(); ++i) {
      const SizeClass& c = table->classes()[i];
      const nlohmann::json& row = j["classes"][i];
      ASSERT_EQ(row.size(), 6u);
      EXPECT_EQ(row["index"], i);
      EXPECT_EQ(row["size"], c.size);
      EXPECT_EQ(row["pages_per_zspage"], c.pages_per_zspage);
      EXPECT_EQ(row["objs_per_zspage"], c.objs_per_zspage);
      EXPECT_EQ(row["huge"], c.huge);
      EXPECT_EQ(row["waste_bytes"], c.tail_waste(table->page_size()));
      if (i > 0) {
        EXPECT_GT(row["size"], j["classes"][i - 1]["size"]);
      }
    }
  }
  EXPECT_EQ(classes_json({"--page-size", "64K"})["page_size"], 65536);
}

TEST(ClassesVerb, TableHasAHeaderAndOneRowPerClass) {
  const Outcome o = run_zspool({"classes"});
  ASSERT_TRUE(o.exited && o.status == 0) << describe({"classes"}, o);
  std::istringstream lines(o.out);
  std::string header, columns, row;
  std::getline(lines, header);
  std::getline(lines, columns);
  EXPECT_EQ(header, "page_size 4096  max_chain 8  classes 119  huge_class_size 3625");
  EXPECT_NE(columns.find("waste%"), std::string::npos);
  std::vector<std::string> rows;
  while (std::getline(lines, row)) rows.push_back(row);
  ASSERT_EQ(rows.size(), 119u);
  // index size pages objs huge waste waste%
  EXPECT_EQ(squeeze_spaces(rows.front()), " 0 32 1 128 - 0 0.00");
  EXPECT_EQ(squeeze_spaces(rows.back()), " 118 4096 1 1 yes 0 0.00");
}

// ---- usage errors ----------------------------------------------------------------------------

// One line on stderr, "zspool: ...", exit status 2, nothing on stdout, no signal.
void expect_usage_error(const std::vector<std::string>& args, const std::string& mentions) {
  const Outcome o = run_zspool(args);
  EXPECT_TRUE(o.exited) << describe(args, o);
  EXPECT_EQ(o.status, 2) << describe(args, o);
  EXPECT_EQ(o.err_lines(), 1u) << describe(args, o);
  EXPECT_EQ(o.err.rfind("zspool: ", 0), 0u) << describe(args, o);
  EXPECT_NE(o.err.find(mentions), std::string::npos) << describe(args, o);
  EXPECT_EQ(o.out, "") << describe(args, o);
}

TEST(UsageErrors, BadGeometry) {
  expect_usage_error({"classes", "--page-size", "3000"}, "--page-size");
  expect_usage_error({"classes", "--page-size", "128K"}, "--page-size");
  expect_usage_error({"classes", "--page-size", "lots"}, "--page-size");
  expect_usage_error({"classes", "--page-size", "99999999999999999999999"}, "too large");
  expect_usage_error({"classes", "--page-size"}, "--page-size");
  expect_usage_error({"classes", "--max-chain", "0"}, "--max-chain");
  expect_usage_error({"classes", "--max-chain", "17"}, "--max-chain");
  expect_usage_error({"classes", "--max-chain", "-1"}, "--max-chain");
  expect_usage_error({"classes", "--max-chain", "eight"}, "--max-chain");
}

TEST(UsageErrors, UnknownOptionsVerbsAndArguments) {
  expect_usage_error({"classes", "--bogus"}, "unknown option '--bogus'");
  expect_usage_error({"--bogus"}, "unknown option '--bogus'");
  expect_usage_error({"frobnicate"}, "unknown verb 'frobnicate'");
  expect_usage_error({"classes", "extra"}, "unexpected argument 'extra'");
}

TEST(UsageErrors, NoVerbPrintsHelpOnStderr) {
  const Outcome o = run_zspool({});
  EXPECT_TRUE(o.exited);
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.out, "");
  EXPECT_NE(o.err.find("Usage: zspool"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("classes"), std::string::npos) << o.err;
}

// ---- help and version ------------------------------------------------------------------------

TEST(Help, TopLevelListsEveryVerb) {
  const Outcome o = run_zspool({"--help"});
  EXPECT_TRUE(o.exited && o.status == 0) << describe({"--help"}, o);
  EXPECT_NE(o.out.find("Verbs:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("classes"), std::string::npos) << o.out;
  EXPECT_EQ(o.err, "");
}

TEST(Help, EveryVerbHasHelp) {
  const Outcome top = run_zspool({"--help"});
  const std::string verbs = top.out.substr(top.out.find("Verbs:"));
  std::istringstream lines(verbs);
  std::string line;
  std::getline(lines, line);  // "Verbs:"
  int checked = 0;
  while (std::getline(lines, line) && !line.empty()) {
    const std::string verb = line.substr(line.find_first_not_of(' '));
    const std::string name = verb.substr(0, verb.find(' '));
    const Outcome o = run_zspool({name, "--help"});
    EXPECT_TRUE(o.exited && o.status == 0) << describe({name, "--help"}, o);
    EXPECT_NE(o.out.find("Usage: zspool " + name), std::string::npos) << o.out;
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

TEST(Help, ClassesDescribesItsOptions) {
  const Outcome o = run_zspool({"classes", "--help"});
  EXPECT_TRUE(o.exited && o.status == 0);
  for (const char* option : {"--page-size", "--max-chain", "--json"})
    EXPECT_NE(o.out.find(option), std::string::npos) << option;
}

TEST(Version, MatchesTheProjectVersion) {
  std::ifstream cmake(ZSPOOL_SOURCE_DIR "/CMakeLists.txt");
  const std::string text((std::istreambuf_iterator<char>(cmake)), std::istreambuf_iterator<char>());
  const std::string anchor = "project(zspool VERSION ";
  const std::size_t at = text.find(anchor);
  ASSERT_NE(at, std::string::npos);
  const std::size_t from = at + anchor.size();
  const std::string version = text.substr(from, text.find_first_not_of("0123456789.", from) - from);
  ASSERT_FALSE(version.empty());
  const Outcome o = run_zspool({"--version"});
  EXPECT_TRUE(o.exited && o.status == 0);
  EXPECT_EQ(o.out, "zspool " + version + "\n");
}

}  // namespace
}  // namespace zspool::tools

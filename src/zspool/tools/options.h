// Command-line options shared by several verbs, so each verb spells them the same way.
//
//   add_size_option      a byte count given as "4096", "4K", "64M", "1.5G" (see size_arg.h)
//   add_geometry_options --page-size and --max-chain, the pool geometry every verb that builds
//                        a size-class table takes; validated at parse time, so a bad value is a
//                        usage error ("zspool: --max-chain: ...") before the verb runs.
#pragma once

#include <cstdint>
#include <string>

#include "zspool/core/size_class.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace zspool::tools {

// Adds `name` (e.g. "--limit") taking a size; `target` keeps its value unless the option is
// given, and its current value is shown as the default in --help.
CLI::Option* add_size_option(CLI::App& app, const std::string& name, std::uint64_t& target,
                             const std::string& description);

struct PoolGeometry {
  std::uint64_t page_size = kMinPageSize;   // a power of two in [kMinPageSize, kMaxPageSize]
  std::uint32_t max_chain = kDefaultChain;  // 1 .. kMaxChain
};

// Adds --page-size and --max-chain, filling `geometry`.
void add_geometry_options(CLI::App& app, PoolGeometry& geometry);

// Why `page_size` is not a valid pool page size, or "" if it is.
std::string page_size_problem(std::uint64_t page_size);

}  // namespace zspool::tools

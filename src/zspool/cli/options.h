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
class Validator;
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

// A whole number written in decimal digits only: "010" is ten's typo, not octal eight, and
// "0x10", "-1", "+3" and "1e3" are refused (CLI11 alone would read the first two as octal and
// hex, and wrap -1 to 2^64 - 1).
CLI::Validator decimal_validator();

// Adds `name` taking a count in [min, max], decimal digits only; `target` keeps its value
// (shown as the default) unless the option is given.
template <typename T>
CLI::Option* add_count_option(CLI::App& app, const std::string& name, T& target, T min, T max,
                              const std::string& description);

// Adds --threads N, checked at parse time to lie in 1..max (so no verb tries to start 2^32
// threads and dies half-way).
CLI::Option* add_threads_option(CLI::App& app, unsigned& target, unsigned max,
                                const std::string& description);

// Adds --page-size and --max-chain, filling `geometry`.
void add_geometry_options(CLI::App& app, PoolGeometry& geometry);

// Why `page_size` is not a valid pool page size, or "" if it is.
std::string page_size_problem(std::uint64_t page_size);

}  // namespace zspool::tools

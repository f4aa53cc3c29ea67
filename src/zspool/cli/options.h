// Command-line options shared by several verbs, so each verb spells them the same way.
//
//   add_size_option      a byte count given as "4096", "4K", "64M", "1.5G" (see size_arg.h)
//   add_positive_size_option  the same, 0 refused (where 0 means nothing)
//   add_count_option     a count in decimal digits within a range ("010" is ten; "0x10", "-1"
//                        and out-of-range values are usage errors naming the option)
//   add_geometry_options --page-size and --max-chain, the pool geometry every verb that builds
//                        a size-class table takes; validated at parse time, so a bad value is a
//                        usage error ("zspool: --max-chain: ...") before the verb runs.
#pragma once

#include <cstdint>
#include <string>

#include "zspool/core/size_class.h"

#include "zspool/cli/cli11_fwd.h"

namespace zspool::tools {

// Adds `name` (e.g. "--limit") taking a size; `target` keeps its value unless the option is
// given, and its current value is shown as the default in --help.
CLI::Option* add_size_option(CLI::App& app, const std::string& name, std::uint64_t& target,
                             const std::string& description);

// add_size_option with 0 refused.
CLI::Option* add_positive_size_option(CLI::App& app, const std::string& name, std::uint64_t& target,
                                      const std::string& description);

// Adds `name` taking a decimal count in [min, max] (parse_count); `target` keeps its value
// unless the option is given. For --pages, --threads, --seconds and the like, instead of
// CLI11's integer parsing (which reads "010" as octal and "0x10" as hex).
template <typename T>
CLI::Option* add_count_option(CLI::App& app, const std::string& name, T& target,
                              const std::string& description, std::uint64_t min, std::uint64_t max);

struct PoolGeometry {
  std::uint64_t page_size = kMinPageSize;   // a power of two in [kMinPageSize, kMaxPageSize]
  std::uint32_t max_chain = kDefaultChain;  // 1 .. kMaxChain
};

// Adds --threads N, checked at parse time to lie in 1..max (so no verb tries to start 2^32
// threads and dies half-way).
CLI::Option* add_threads_option(CLI::App& app, unsigned& target, unsigned max,
                                const std::string& description);

// Adds --page-size and --max-chain, filling `geometry`.
void add_geometry_options(CLI::App& app, PoolGeometry& geometry);

// Why `page_size` is not a valid pool page size, or "" if it is.
std::string page_size_problem(std::uint64_t page_size);

}  // namespace zspool::tools

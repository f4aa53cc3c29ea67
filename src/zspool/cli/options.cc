#include "zspool/cli/options.h"

#include <algorithm>
#include <bit>
#include <limits>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/cli/size_arg.h"

namespace zspool::tools {
namespace {

// Rejects text parse_size rejects, with parse_size's explanation.
CLI::Validator size_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto size = parse_size(text);
        return size ? std::string() : describe_size_error(text, size.error());
      },
      "");
}

CLI::Validator page_size_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto size = parse_size(text);
        if (!size) return describe_size_error(text, size.error());
        return page_size_problem(*size);
      },
      "");
}

CLI::Validator positive_size_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto size = parse_positive_size(text);
        return size ? std::string() : describe_size_error(text, size.error());
      },
      "");
}

CLI::Validator count_validator(std::uint64_t min, std::uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& text) -> std::string {
        const auto count = parse_count(text, min, max);
        return count ? std::string() : describe_count_error(text, count.error(), min, max);
      },
      "");
}

}  // namespace

CLI::Option* add_positive_size_option(CLI::App& app, const std::string& name,
                                      std::uint64_t& target, const std::string& description) {
  return add_size_option(app, name, target, description)->check(positive_size_validator());
}

template <typename T>
CLI::Option* add_count_option(CLI::App& app, const std::string& name, T& target,
                              const std::string& description, std::uint64_t min,
                              std::uint64_t max) {
  max = std::min<std::uint64_t>(max, std::numeric_limits<T>::max());
  const auto store = [&target](const std::string& text) {
    target = static_cast<T>(parse_count(text).value());
  };
  return app.add_option_function<std::string>(name, store, description)
      ->check(count_validator(min, max))
      ->type_name("N")
      ->default_str(std::to_string(target));
}

template CLI::Option* add_count_option<std::uint32_t>(CLI::App&, const std::string&,
                                                      std::uint32_t&, const std::string&,
                                                      std::uint64_t, std::uint64_t);
template CLI::Option* add_count_option<std::uint64_t>(CLI::App&, const std::string&,
                                                      std::uint64_t&, const std::string&,
                                                      std::uint64_t, std::uint64_t);

CLI::Option* add_size_option(CLI::App& app, const std::string& name, std::uint64_t& target,
                             const std::string& description) {
  const auto store = [&target](const std::string& text) { target = parse_size(text).value(); };
  return app.add_option_function<std::string>(name, store, description)
      ->check(size_validator())
      ->type_name("SIZE")
      ->default_str(std::to_string(target));
}

std::string page_size_problem(std::uint64_t page_size) {
  if (std::has_single_bit(page_size) && page_size >= kMinPageSize && page_size <= kMaxPageSize)
    return "";
  return fmt::format("{} is not a page size (a power of two from {} to {})", page_size,
                     kMinPageSize, kMaxPageSize);
}

CLI::Option* add_threads_option(CLI::App& app, unsigned& target, unsigned max,
                                const std::string& description) {
  return add_count_option(app, "--threads", target, description, 1, max);
}

void add_geometry_options(CLI::App& app, PoolGeometry& geometry) {
  add_size_option(app, "--page-size", geometry.page_size,
                  "page size: 4096 (4K) .. 65536 (64K), a power of two")
      ->check(page_size_validator());
  add_count_option(app, "--max-chain", geometry.max_chain,
                   fmt::format("most pages per zspage: 1 .. {} (Linux allows 4 .. 16)", kMaxChain), 1, kMaxChain);
}

}  // namespace zspool::tools

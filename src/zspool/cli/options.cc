#include "zspool/cli/options.h"

#include <bit>

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

}  // namespace

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

CLI::Validator decimal_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.size() <= 20 &&
                            text.find_first_not_of("0123456789") == std::string::npos;
        return digits ? "" : "'" + text + "' is not a whole number in decimal digits";
      },
      "");
}

template <typename T>
CLI::Option* add_count_option(CLI::App& app, const std::string& name, T& target, T min, T max,
                              const std::string& description) {
  return app.add_option(name, target, description)
      ->check(decimal_validator())
      ->check(CLI::Range(min, max).description(""))
      ->type_name("N")
      ->capture_default_str();
}
template CLI::Option* add_count_option<unsigned>(CLI::App&, const std::string&, unsigned&, unsigned,
                                                 unsigned, const std::string&);
template CLI::Option* add_count_option<std::uint64_t>(CLI::App&, const std::string&, std::uint64_t&,
                                                      std::uint64_t, std::uint64_t,
                                                      const std::string&);

CLI::Option* add_threads_option(CLI::App& app, unsigned& target, unsigned max,
                                const std::string& description) {
  return add_count_option(app, "--threads", target, 1u, max, description);
}

void add_geometry_options(CLI::App& app, PoolGeometry& geometry) {
  add_size_option(app, "--page-size", geometry.page_size,
                  "page size: 4096 (4K) .. 65536 (64K), a power of two")
      ->check(page_size_validator());
  add_count_option(app, "--max-chain", geometry.max_chain, 1u, kMaxChain,
                   fmt::format("most pages per zspage: 1 .. {} (Linux allows 4 .. 16)", kMaxChain));
}

}  // namespace zspool::tools

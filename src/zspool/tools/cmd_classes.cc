// zspool classes: print the size-class table a pool of the given geometry would use.
//
//   zspool classes [--page-size N] [--max-chain N] [--json]
//
// Table: a header line (page size, chain, class count, huge_class_size), a column line, then
// one row per distinct class, ascending by size. JSON: one object
//   {"page_size", "max_chain", "huge_class_size",
//    "classes": [{"index", "size", "pages_per_zspage", "objs_per_zspage", "huge",
//                 "waste_bytes"}, ...]}    (ascending by size; waste_bytes per zspage)
#include <cstdint>
#include <iostream>
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "zspool/core/size_class.h"
#include "zspool/tools/command.h"
#include "zspool/tools/options.h"

namespace zspool::tools {
namespace {

struct ClassesOptions {
  PoolGeometry geometry;
  bool json = false;
};

double waste_percent(const SizeClass& c, std::uint32_t page_size) {
  const double zspage_bytes = static_cast<double>(c.pages_per_zspage) * page_size;
  return 100.0 * c.tail_waste(page_size) / zspage_bytes;
}

nlohmann::ordered_json classes_json(const SizeClassTable& table) {
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (const SizeClass& c : table.classes()) {
    classes.push_back({{"index", c.index},
                       {"size", c.size},
                       {"pages_per_zspage", c.pages_per_zspage},
                       {"objs_per_zspage", c.objs_per_zspage},
                       {"huge", c.huge},
                       {"waste_bytes", c.tail_waste(table.page_size())}});
  }
  return {{"page_size", table.page_size()},
          {"max_chain", table.max_chain()},
          {"huge_class_size", table.huge_class_size()},
          {"classes", std::move(classes)}};
}

void print_classes_table(const SizeClassTable& table, std::ostream& out) {
  out << fmt::format("page_size {}  max_chain {}  classes {}  huge_class_size {}\n",
                     table.page_size(), table.max_chain(), table.classes().size(),
                     table.huge_class_size());
  out << fmt::format("{:>5} {:>6} {:>6} {:>5} {:>5} {:>6} {:>7}\n", "index", "size", "pages",
                     "objs", "huge", "waste", "waste%");
  for (const SizeClass& c : table.classes()) {
    out << fmt::format("{:>5} {:>6} {:>6} {:>5} {:>5} {:>6} {:>7.2f}\n", c.index, c.size,
                       c.pages_per_zspage, c.objs_per_zspage, c.huge ? "yes" : "-",
                       c.tail_waste(table.page_size()), waste_percent(c, table.page_size()));
  }
}

void run_classes(const ClassesOptions& options) {
  const auto page_size = static_cast<std::uint32_t>(options.geometry.page_size);
  const auto table = SizeClassTable::make(page_size, options.geometry.max_chain);
  if (!table) {
    usage_error(fmt::format("no size-class table for page size {} and chain {}: {}", page_size,
                            options.geometry.max_chain, error_message(table.error())));
  }
  if (options.json) {
    std::cout << classes_json(*table).dump(2) << '\n';
  } else {
    print_classes_table(*table, std::cout);
  }
}

void setup_classes(CLI::App& app) {
  auto options = std::make_shared<ClassesOptions>();
  add_geometry_options(app, options->geometry);
  app.add_flag("--json", options->json, "print one JSON object instead of a table");
  app.callback([options] { run_classes(*options); });
}

[[maybe_unused]] const bool registered = register_command(
    {"classes", "print the size-class table for a page size and chain length", setup_classes});

}  // namespace
}  // namespace zspool::tools

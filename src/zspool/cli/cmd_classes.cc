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
#include <memory>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/cli/command.h"
#include "zspool/cli/options.h"
#include "zspool/cli/render.h"
#include "zspool/core/size_class.h"

namespace zspool::tools {
namespace {

struct ClassesOptions {
  PoolGeometry geometry;
  bool json = false;
};

void run_classes(const ClassesOptions& options) {
  const auto page_size = static_cast<std::uint32_t>(options.geometry.page_size);
  const auto table = SizeClassTable::make(page_size, options.geometry.max_chain);
  if (!table) {
    usage_error(fmt::format("no size-class table for page size {} and chain {}: {}", page_size,
                            options.geometry.max_chain, error_message(table.error())));
  }
  print_output(options.json ? classes_json(*table).dump(2) + "\n" : classes_text(*table));
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

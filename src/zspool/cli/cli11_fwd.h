// CLI11's classes the option headers name, declared without including CLI11 (only the .cc files
// that add options include <CLI/CLI.hpp>).
#pragma once

namespace CLI {
class App;
class Option;
}  // namespace CLI

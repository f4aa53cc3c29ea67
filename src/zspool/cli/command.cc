#include "zspool/cli/command.h"

#include <algorithm>
#include <vector>

namespace zspool::tools {
namespace {

// A function-local static, so registration from any translation unit's static initializers
// finds it constructed whatever the initialization order.
std::vector<Command>& command_registry() {
  static std::vector<Command> commands;
  return commands;
}

}  // namespace

bool register_command(Command command) {
  auto& commands = command_registry();
  const auto after =
      std::upper_bound(commands.begin(), commands.end(), command.name,
                       [](const std::string& name, const Command& c) { return name < c.name; });
  commands.insert(after, std::move(command));
  return true;
}

std::span<const Command> registered_commands() {
  return command_registry();
}

void usage_error(const std::string& message) {
  throw CommandError(message, kExitUsage);
}

void command_failed(const std::string& message) {
  throw CommandError(message, kExitFailure);
}

}  // namespace zspool::tools

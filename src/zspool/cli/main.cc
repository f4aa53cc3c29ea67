// zspool: the command-line front end. One subcommand per verb; the verbs register themselves
// (see command.h), so this file knows none of them by name.
//
// Every way out goes through main's error handling:
//   --help / --version       print to stdout, exit 0
//   no verb                  help on stderr, exit 2
//   bad usage                "zspool: <message>" (one line) on stderr, exit 2
//   a verb's CommandError    "zspool: <message>" on stderr, the error's exit status
//   any other exception      "zspool: internal error: <what>" on stderr, exit 1
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/cli/command.h"

namespace zspool::tools {
namespace {

constexpr const char* kDescription =
    "zspool: a user-space zsmalloc (compressed-memory pool) and its tools";

// One line, whatever the message holds: newlines become spaces, trailing blanks go.
std::string one_line(std::string message) {
  for (char& c : message)
    if (c == '\n' || c == '\r') c = ' ';
  while (!message.empty() && message.back() == ' ') message.pop_back();
  return message;
}

int report(const std::string& message, int exit_status) {
  std::fprintf(stderr, "zspool: %s\n", one_line(message).c_str());
  return exit_status;
}

std::unique_ptr<CLI::App> make_app() {
  auto app = std::make_unique<CLI::App>(kDescription, "zspool");
  app->set_version_flag("--version", std::string("zspool ") + kVersion);
  app->require_subcommand(0, 1);
  app->get_formatter()->label("SUBCOMMAND", "VERB");
  for (const Command& command : registered_commands()) {
    CLI::App* verb = app->add_subcommand(command.name, command.description);
    verb->group("Verbs");
    command.setup(*verb);
  }
  return app;
}

// The arguments no option or verb took, whichever App holds them.
std::vector<std::string> leftover_arguments(const CLI::App& app) {
  std::vector<std::string> leftovers = app.remaining(true);
  for (const CLI::App* verb : app.get_subcommands()) {
    for (std::string& arg : verb->remaining(true)) leftovers.push_back(std::move(arg));
  }
  return leftovers;
}

// The verb given whose own sub-verbs (bench alloc, bench store) were not, if an argument was
// left over: "zspool bench xyz" names xyz rather than CLI11's "A subcommand is required".
std::optional<std::string> unknown_sub_verb(const CLI::App& app,
                                            const std::vector<std::string>& leftovers) {
  if (app.get_subcommands().empty() || leftovers.empty() || leftovers.front().starts_with("-"))
    return std::nullopt;
  const CLI::App* verb = app.get_subcommands().front();
  if (verb->get_subcommands([](const CLI::App*) { return true; }).empty()) return std::nullopt;
  if (!verb->get_subcommands().empty()) return std::nullopt;  // a sub-verb was given
  return fmt::format("unknown verb '{} {}' (see zspool {} --help)", verb->get_name(),
                     leftovers.front(), verb->get_name());
}

// A parse error, as one line: unknown verbs and options by name, else CLI11's message.
int report_parse_error(const CLI::App& app, const CLI::ParseError& e) {
  if (const auto unknown = unknown_sub_verb(app, leftover_arguments(app)))
    return report(*unknown, kExitUsage);
  if (dynamic_cast<const CLI::ExtrasError*>(&e) == nullptr) return report(e.what(), kExitUsage);
  const std::vector<std::string> leftovers = leftover_arguments(app);
  if (leftovers.empty()) return report(e.what(), kExitUsage);
  const std::string& first = leftovers.front();
  const std::string help = app.get_subcommands().empty()
                               ? "zspool --help"
                               : "zspool " + app.get_subcommands().front()->get_name() + " --help";
  if (first.size() > 1 && first[0] == '-')
    return report("unknown option '" + first + "' (see " + help + ")", kExitUsage);
  if (app.get_subcommands().empty())
    return report("unknown verb '" + first + "' (see zspool --help)", kExitUsage);
  return report("unexpected argument '" + first + "' (see " + help + ")", kExitUsage);
}

int run(int argc, char** argv) {
  const auto app = make_app();
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive as "errors" with exit code 0.
    if (e.get_exit_code() == 0) return app->exit(e);
    return report_parse_error(*app, e);
  } catch (const CommandError& e) {
    return report(e.what(), e.exit_status());
  }
  if (app->get_subcommands().empty()) {
    std::cerr << app->help();
    return kExitUsage;
  }
  return kExitSuccess;
}

}  // namespace
}  // namespace zspool::tools

int main(int argc, char** argv) {
  using zspool::tools::report;
  try {
    return zspool::tools::run(argc, argv);
  } catch (const std::bad_alloc&) {
    return report("out of memory (the memory this process may use is exhausted)",
                  zspool::tools::kExitFailure);
  } catch (const std::exception& e) {
    return report(std::string("internal error: ") + e.what(), zspool::tools::kExitFailure);
  } catch (...) {
    return report("internal error: unknown exception", zspool::tools::kExitFailure);
  }
}

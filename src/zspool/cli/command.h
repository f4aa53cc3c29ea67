// Folder cli/: the zspool executable, the only code that links CLI11. Verbs (cmd_*.cc: parse,
// call bench/ or testing/, render), shared options (options.h, corpus_args.h, store_args.h:
// the one place a Store is built from flags), progress, and the one renderer (render.h).
//
// The `zspool` command's verbs, and how a verb reports failure.
//
// Each verb lives in its own file, cmd_<verb>.cc, and registers itself at static-initialization
// time; main.cc knows none of them by name:
//
//   namespace {
//   void setup_frob(CLI::App& app) {
//     auto opts = std::make_shared<FrobOptions>();   // outlives setup: the callback runs later
//     app.add_option("--count", opts->count, "how many")->capture_default_str();
//     app.callback([opts] { run_frob(*opts); });
//   }
//   [[maybe_unused]] const bool registered = zspool::tools::register_command(
//       {"frob", "one-line description shown in `zspool --help`", setup_frob});
//   }  // namespace
//
// Contract for a verb:
//   - setup adds the verb's options to its own CLI::App (the subcommand) and sets its
//     callback; it runs once, before any argument is parsed, and must not print.
//   - The callback runs the verb. It reports failure only by throwing CommandError (see
//     usage_error and command_failed below); main prints "zspool: <message>" as one line on
//     stderr and exits with the error's status. Returning normally means exit status 0.
//
// Exit statuses: 0 success, 1 the verb ran and failed, 2 usage error (bad option, bad value,
// unknown verb, no verb).
#pragma once

#include <functional>
#include <span>
#include <stdexcept>
#include <string>

#include "zspool/cli/cli11_fwd.h"

namespace zspool::tools {

// Keep equal to project(zspool VERSION ...) in CMakeLists.txt; a test compares them.
inline constexpr const char* kVersion = "0.1.0";

inline constexpr int kExitSuccess = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct Command {
  std::string name;         // the verb, e.g. "classes"
  std::string description;  // one line, shown in `zspool --help`
  std::function<void(CLI::App&)> setup;
};

// Adds a verb. Returns true so a verb file can call it to initialize a namespace-scope
// constant. Names must be unique; a duplicate is a programming error caught by main.
bool register_command(Command command);

// Every registered verb, sorted by name.
std::span<const Command> registered_commands();

// Thrown by a verb's callback to stop with a one-line message and an exit status.
class CommandError : public std::runtime_error {
 public:
  CommandError(const std::string& message, int exit_status)
      : std::runtime_error(message), exit_status_(exit_status) {}
  int exit_status() const noexcept { return exit_status_; }

 private:
  int exit_status_;
};

// The arguments make no sense (exit status 2).
[[noreturn]] void usage_error(const std::string& message);
// The verb ran and failed (exit status 1).
[[noreturn]] void command_failed(const std::string& message);

}  // namespace zspool::tools

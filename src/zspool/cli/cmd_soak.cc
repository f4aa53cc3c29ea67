// zspool soak: every store operation at once, for a while, with faults injected; every read
// verified (the engine: testing/soak.h).
//
//   zspool soak [--seconds N] [--threads T] [--pages P] [--limit SIZE] [--fault-every N]
//               [--compressor SPEC] [--recompress-with SPEC[,SPEC...]] [--json]
//
// Output: operations done, faults injected, errors found (wrong data, or an error a fault does
// not explain); exit 1 if any.
#include <cstdint>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "zspool/cli/command.h"
#include "zspool/cli/options.h"
#include "zspool/cli/progress.h"
#include "zspool/cli/render.h"
#include "zspool/cli/store_args.h"
#include "zspool/testing/soak.h"

namespace zspool::tools {
namespace {

// A week: longer is a typo, and a negative number must not wrap to 2^64 seconds.
constexpr std::uint64_t kMaxSoakSeconds = 7 * 24 * 3600;
constexpr std::uint64_t kMaxSoakPages = std::uint64_t{1} << 32;

struct SoakArgs {
  SoakOptions soak;
  bool json = false;
};

void run_soak_verb(const SoakArgs& args) {
  std::string why;
  const auto result = run_soak(args.soak, terminal_progress(), &why);
  if (!result) {
    if (result.error() == Error::invalid_argument) usage_error(why);
    command_failed(why);
  }
  print_output(args.json ? soak_json(*result).dump() + "\n" : soak_text(*result));
  if (result->errors != 0) command_failed(fmt::format("{} errors found", result->errors));
}

void setup_soak(CLI::App& app) {
  auto args = std::make_shared<SoakArgs>();
  SoakOptions& o = args->soak;
  add_count_option(app, "--seconds", o.seconds, "how long to run", 0, kMaxSoakSeconds);
  add_threads_option(app, o.threads, kMaxSoakThreads, "threads mixing operations");
  add_count_option(app, "--pages", o.pages, "store capacity in pages", 1, kMaxSoakPages);
  add_size_option(app, "--limit", o.limit, "pool memory limit (writeback above it)");
  add_count_option(app, "--fault-every", o.fault_every,
                   "inject faults every N operations per thread (0: none)", 0, ~std::uint64_t{0});
  add_compressor_option(app, o.compressor);
  add_recompress_option(app, o.recompress_with);
  app.add_flag("--json", args->json, "print one JSON object");
  app.callback([args] {
    check_secondaries(args->soak.recompress_with);
    run_soak_verb(*args);
  });
}

[[maybe_unused]] const bool registered = register_command(
    {"soak", "mix every store operation with faults for a while, verifying every read",
     setup_soak});

}  // namespace
}  // namespace zspool::tools

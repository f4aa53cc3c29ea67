#include "zspool/cli/store_args.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <limits>
#include <map>

#include "zspool/cli/command.h"
#include "zspool/cli/size_arg.h"
#include "zspool/platform/file_identity.h"
#include "zspool/platform/internal/os.h"
#include "zspool/store/compressor.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {
namespace {

// Rejects a spec make_compressor rejects, listing what it accepts.
CLI::Validator compressor_validator() {
  return CLI::Validator(
      [](std::string& spec) -> std::string {
        std::string why;  // a dictionary's refusal, naming the file
        if (make_compressor(spec, &why)) return "";
        if (!why.empty()) return fmt::format("'{}': {}", spec, why);
        return fmt::format(
            "'{}' is not a compressor (lz4, lz4:N, lz4[:N]:dict=FILE, zstd, zstd:N with N "
            "1..22, zstd[:N]:dict=FILE, lzo1x)",
            spec);
      },
      "");
}

// A capacity whose page table's directory alone would take half of what this process may use
// is a mistake in the arguments (or the trace), not a store to try to build (Store::create
// refuses it too; this says why in the user's terms).
void check_capacity(std::uint64_t pages) {
  const std::uint64_t max_pages = Store::max_pages();
  if (pages <= max_pages) return;
  const os::MemoryBudget budget = os::memory_budget();
  usage_error(
      fmt::format("a store of {} pages is more than {} (the most that {} of memory, "
                  "limited by {}, allows)",
                  pages, max_pages, format_bytes(budget.bytes), budget.limited_by));
}

// The backing target must not be a file the command reads: writeback would overwrite its data
// (BackingFile refuses a non-empty target too; this names the clash in the user's terms).
void check_backing_is_not_an_input(const std::string& backing,
                                   const std::vector<std::string>& inputs) {
  if (backing.empty()) return;
  for (const std::string& input : inputs) {
    if (same_file(backing, input))
      usage_error(
          fmt::format("--backing {}: it is {}, one of this command's inputs", backing, input));
  }
}

}  // namespace

CLI::Option* add_compressor_option(CLI::App& app, std::string& spec) {
  return app
      .add_option("--compressor", spec,
                  "lz4, lz4:N, lz4[:N]:dict=FILE, zstd, zstd:N (1..22), zstd[:N]:dict=FILE, "
                  "lzo1x")
      ->check(compressor_validator())
      ->type_name("SPEC")
      ->capture_default_str();
}

void add_recompress_option(CLI::App& app, std::vector<std::string>& specs) {
  app.add_option("--recompress-with", specs,
                 fmt::format("secondary compressors for recompression, in priority order (at "
                             "most {}, comma-separated)",
                             kMaxSecondaryCompressors))
      ->delimiter(',')
      ->check(compressor_validator())
      ->type_name("SPEC[,SPEC...]");
}

void check_secondaries(const std::vector<std::string>& specs) {
  if (specs.size() > kMaxSecondaryCompressors)
    usage_error(fmt::format("--recompress-with: {} compressors, at most {}", specs.size(),
                            kMaxSecondaryCompressors));
}

void add_store_options(CLI::App& app, StoreArgs& args) {
  add_compressor_option(app, args.compressor);
  add_size_option(app, "--limit", args.limit, "memory limit of the store (0: none)");
  app.add_option("--backing", args.backing,
                 "writeback file: new or empty, locked while in use (never one holding data)")
      ->check(CLI::Validator(
          [](std::string& path) -> std::string {
            return path.empty() ? "an empty path names no file" : "";
          },
          ""))
      ->type_name("FILE");
  app.add_flag("--allow-block-device", args.allow_block_device,
               "let --backing name a block device (whatever it holds is overwritten)");
  add_geometry_options(app, args.geometry);
  add_writeback_policy_options(app, args);
  add_recompress_option(app, args.recompress_with);
}

void add_writeback_policy_options(CLI::App& app, StoreArgs& args) {
  app.add_option("--writeback-policy", args.writeback_policy,
                 "what --limit writes back: page (the coldest pages) or zspage (the pool's "
                 "coldest zspage)")
      ->transform(CLI::CheckedTransformer(std::map<std::string, WritebackPolicy>{
          {"page", WritebackPolicy::page}, {"zspage", WritebackPolicy::zspage}}))
      ->type_name("page|zspage");
  app.add_flag("--background-writer", args.background_writer,
               "write back in a background thread from 95% of --limit down to 90%");
  add_count_option(app, "--compact-threshold", args.compact_threshold,
                   "compact in the background once the pool could free this many pages", 1,
                   std::numeric_limits<std::uint64_t>::max());
  app.add_flag("--promote-on-read", args.promote_on_read,
               "a read of a written-back page brings it back into memory");
  add_count_option(app, "--writeback-batch", args.writeback_batch,
                   "pages written back per batch: adjacent backing slots in one pwritev, no page "
                   "lock across the I/O (1: one write per page; default 32)",
                   1, kMaxWritebackBatch)
      ->type_name("PAGES");
}

std::unique_ptr<Store> open_store(const StoreArgs& args, std::uint64_t pages,
                                  const std::vector<std::string>& inputs) {
  check_capacity(pages);
  check_backing_is_not_an_input(args.backing, inputs);
  check_secondaries(args.recompress_with);
  StoreOptions options;
  options.page_size = static_cast<std::uint32_t>(args.geometry.page_size);
  options.max_chain = args.geometry.max_chain;
  options.pages = pages;
  options.compressor = args.compressor;
  options.mem_limit = args.limit;
  options.backing_path = args.backing;
  options.allow_block_device = args.allow_block_device;
  options.writeback_policy = args.writeback_policy;
  options.background_writer = args.background_writer;
  options.compact_threshold_pages = args.compact_threshold;
  options.promote_on_read = args.promote_on_read;
  options.writeback_batch_pages = args.writeback_batch;
  options.recompress_with = args.recompress_with;
  std::string why;  // a backing target's refusal: its path and the reason
  auto store = Store::create(std::move(options), &why);
  if (store) return std::move(*store);
  const std::string message =
      !why.empty() ? why
      : args.backing.empty()
          ? fmt::format("cannot create a store of {}: {}", count_of(pages, "page"),
                        error_message(store.error()))
          : fmt::format("cannot create a store of {} with backing file {}: {}",
                        count_of(pages, "page"), args.backing, error_message(store.error()));
  if (store.error() == Error::invalid_argument) usage_error(message);
  command_failed(message);
}

}  // namespace zspool::tools

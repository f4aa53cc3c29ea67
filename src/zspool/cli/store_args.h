// Command-line options that build a zspool::Store, shared by `zspool run` and `zspool replay`
// so both spell them the same way:
//
//   --compressor SPEC   lz4 (default), lz4:N, lz4[:N]:dict=FILE, zstd, zstd:N,
//                       zstd[:N]:dict=FILE, lzo1x  — checked at parse time
//   --limit SIZE        the store's memory limit (mem_limit; 0, the default: none)
//   --backing FILE      the writeback target: a new or empty regular file, locked while in use
//                       (platform/backing_file.h says what is refused); none by default
//   --page-size SIZE    --max-chain N   the pool geometry (see options.h)
//   --writeback-policy page|zspage   what the limit writes back: the coldest pages (default) or
//                       the pool's coldest zspage
//   --background-writer a thread writes back from 95% of --limit down to 90%
//   --compact-threshold PAGES   background compaction once the pool could free that many
//   --promote-on-read   a read of a written-back page brings it back into memory
//   --recompress-with SPEC[,SPEC...]
//                       up to 3 secondary compressors for recompression, in priority order
//                       (StoreOptions::recompress_with); each checked at parse time
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zspool/cli/options.h"
#include "zspool/store/store.h"

#include "zspool/cli/cli11_fwd.h"

namespace zspool::tools {

struct StoreArgs {
  PoolGeometry geometry{.max_chain = kStoreDefaultChain};
  std::string compressor = "lz4";
  std::uint64_t limit = 0;
  std::string backing;
  bool allow_block_device = false;  // --allow-block-device
  // The writeback policy (issue 14).
  WritebackPolicy writeback_policy = WritebackPolicy::page;  // --writeback-policy page|zspage
  bool background_writer = false;                            // --background-writer
  std::uint64_t compact_threshold = 0;                       // --compact-threshold PAGES
  bool promote_on_read = false;                              // --promote-on-read
  std::uint32_t writeback_batch = 32;                        // --writeback-batch PAGES
  std::vector<std::string> recompress_with;                  // --recompress-with, in priority order
};

void add_store_options(CLI::App& app, StoreArgs& args);
// --writeback-policy, --background-writer, --compact-threshold, --promote-on-read,
// --writeback-batch (add_store_options adds them).
void add_writeback_policy_options(CLI::App& app, StoreArgs& args);
// Adds --compressor SPEC, checked at parse time by make_compressor (the one validator).
CLI::Option* add_compressor_option(CLI::App& app, std::string& spec);
// Adds --recompress-with SPEC[,SPEC...], each checked as --compressor is; more than
// kMaxSecondaryCompressors is a usage error when the verb runs (check_secondaries).
void add_recompress_option(CLI::App& app, std::vector<std::string>& specs);
void check_secondaries(const std::vector<std::string>& specs);

// The Store these arguments describe, with room for `pages` pages. A failure stops the verb
// (CommandError): a capacity beyond Store::max_pages() (what this process may use), a value
// the store rejects as invalid or a backing target it refuses (named with the reason, e.g.
// "backing file X: not empty ..."), is a usage error; anything else (the backing file is in use
// by another process, no memory) a failure. `inputs`: the files the command reads (trace, data
// file, --input paths); a --backing that is one of them is a usage error.
std::unique_ptr<Store> open_store(const StoreArgs& args, std::uint64_t pages,
                                  const std::vector<std::string>& inputs = {});

}  // namespace zspool::tools

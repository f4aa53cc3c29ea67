#include "zspool/nbdkit/plugin_config.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "zspool/core/size_class.h"
#include "zspool/store/compressor.h"

namespace zspool::nbd {

namespace {

// "PARAMETER=SPEC: why" when make_compressor refuses SPEC, else "".
std::string compressor_problem(std::string_view parameter, const std::string& spec) {
  if (spec.empty()) return fmt::format("{}=: names no compressor", parameter);
  std::string why;
  if (make_compressor(spec, &why)) return "";
  // `why` names a known compressor's refusal (a dictionary file and what is wrong with it);
  // without one the name or its parameter is not one make_compressor knows.
  return fmt::format("{}={}: {}", parameter, spec,
                     why.empty() ? "unknown compressor (lz4, lz4:N, zstd, zstd:N, lzo1x)" : why);
}

}  // namespace

void add_recompress_with(PluginConfig& config, std::string_view value) {
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = value.find(',', start);
    config.store.recompress_with.emplace_back(value.substr(start, comma - start));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
}

std::string config_problem(const PluginConfig& config) {
  if (!config.size) return "size= is required: the device's size, e.g. size=4G";
  if (*config.size == 0) return "size=0: the device needs at least one byte";
  const std::uint64_t page = config.store.page_size;
  if (page < kMinPageSize || page > kMaxPageSize || (page & (page - 1)) != 0) {
    return fmt::format("page-size={}: must be a power of two from {} to {}", page, kMinPageSize,
                       kMaxPageSize);
  }
  const std::uint64_t pages = *config.size / page + (*config.size % page != 0 ? 1 : 0);
  if (pages > Store::max_pages()) {
    return fmt::format(
        "size={}: too large for this machine (the page table needs 16 bytes a page and may "
        "take half the memory: at most {} bytes)",
        *config.size, Store::max_pages() * page);
  }
  if (std::string problem = compressor_problem("compressor", config.store.compressor);
      !problem.empty()) {
    return problem;
  }
  const std::vector<std::string>& secondaries = config.store.recompress_with;
  if (secondaries.size() > kMaxSecondaryCompressors) {
    return fmt::format("recompress-with: {} compressors, at most {}", secondaries.size(),
                       kMaxSecondaryCompressors);
  }
  for (const std::string& spec : secondaries) {
    if (std::string problem = compressor_problem("recompress-with", spec); !problem.empty()) {
      return problem;
    }
  }
  if (config.store.max_chain < 1 || config.store.max_chain > kMaxChain) {
    return fmt::format("max-chain={}: must be 1..{}", config.store.max_chain, kMaxChain);
  }
  const std::uint32_t batch = config.store.writeback_batch_pages;
  if (batch < 1 || batch > kMaxWritebackBatch) {
    return fmt::format("writeback-batch={}: must be 1..{}", batch, kMaxWritebackBatch);
  }
  return "";
}

namespace {

// The least of the limits that kill or refuse rather than slow down, and its name.
std::optional<std::pair<std::uint64_t, const char*>> hard_limit(const os::MemoryBudget& budget) {
  std::optional<std::pair<std::uint64_t, const char*>> least;
  const auto consider = [&](const std::optional<std::uint64_t>& bytes, const char* name) {
    if (bytes && (!least || *bytes < least->first)) least = std::pair{*bytes, name};
  };
  consider(budget.cgroup, "the memory cgroup's limit");
  consider(budget.address_space, "ulimit -v");
  return least;
}

}  // namespace

bool serves_requests_in_parallel(Parallel parallel, bool nbdkit_aborts_on_early_hangup) {
  switch (parallel) {
    case Parallel::on:
      return true;
    case Parallel::off:
      return false;
    case Parallel::automatic:
      break;
  }
  return !nbdkit_aborts_on_early_hangup;
}

std::string fit_to_memory_limits(PluginConfig& config, const os::MemoryBudget& budget,
                                 std::string* note) {
  const auto hard = hard_limit(budget);
  if (!hard || !config.size) return "";
  const auto [bytes, name] = *hard;
  if (config.store.mem_limit != 0) {
    if (config.store.mem_limit <= bytes) return "";
    return fmt::format(
        "limit={}: more than the {} bytes this process may still take ({}): past it the server "
        "would be killed, not refused",
        config.store.mem_limit, bytes, name);
  }
  const std::uint64_t cap = bytes / 2 / config.store.page_size * config.store.page_size;
  if (*config.size <= cap) return "";
  config.store.mem_limit = std::max<std::uint64_t>(cap, config.store.page_size);
  if (note != nullptr) {
    *note = fmt::format(
        "limit= not given: pool memory capped at {} bytes, half of the {} this process may still "
        "take ({}); past it writes get ENOSPC{}",
        config.store.mem_limit, bytes, name,
        config.store.backing_path.empty() ? "" : " or go to the backing file");
  }
  return "";
}

std::string create_problem(const PluginConfig& config, Error e, const std::string& why) {
  if (!why.empty()) return why;  // "backing file PATH: the reason"
  if (config.store.backing_path.empty()) {
    return fmt::format("cannot create the store: {}", error_message(e));
  }
  return fmt::format("backing={}: {}", config.store.backing_path, error_message(e));
}

}  // namespace zspool::nbd

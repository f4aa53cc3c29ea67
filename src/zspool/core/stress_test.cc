// Multi-threaded stress of every pool operation at once, with more threads than cores:
// allocators, freers, readers (copy and map), writers, compaction and — with writeback —
// reclaimers whose handler fails at a given rate. Every object's contents are verified.
// Runs under TSan and ASan in CI.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <mutex>
#include <ostream>
#include <thread>
#include <unordered_map>

#include "zspool/core/pool.h"
#include "zspool/testing/test_util.h"

namespace zspool {
namespace {

using test::matches;
using test::pattern;
using test::Rng;

struct Entry {
  std::size_t size;
  std::uint64_t seed;
};

// Live objects, sharded so the test's own bookkeeping does not serialize the pool.
// Lock order (test): shard mutex -> pool internals. Whoever erases an entry owns its free.
class Registry {
 public:
  static constexpr int kShards = 16;
  struct Shard {
    std::mutex mutex;
    std::unordered_map<Handle, Entry> entries;
  };
  Shard& shard_of(Handle h) { return shards_[h % kShards]; }
  Shard& shard(int i) { return shards_[i]; }

 private:
  std::array<Shard, kShards> shards_;
};

struct StressConfig {
  bool writeback = false;
  int fail_percent = 0;
  int ops_per_thread = 12000;
  // Without it gtest prints the raw bytes, padding included (valgrind: uninitialised reads).
  friend void PrintTo(const StressConfig& c, std::ostream* os) {
    *os << "{writeback " << c.writeback << ", fail " << c.fail_percent << "%, " << c.ops_per_thread
        << " ops}";
  }
};

class Stress : public ::testing::TestWithParam<StressConfig> {};

bool verify(Pool& pool, Handle h, const Entry& e, bool use_map) {
  if (use_map) {
    auto m = pool.map(h, MapMode::read_only);
    return m.ok() && matches(std::span(m->data(), e.size), e.seed);
  }
  std::vector<std::byte> got(e.size);
  return pool.read(h, got) == Error::ok && matches(got, e.seed);
}

TEST_P(Stress, AllOperationsConcurrently) {
  const StressConfig cfg = GetParam();
  Registry reg;
  std::atomic<std::uint64_t> errors{0}, seeds{1}, evicted{0}, failed_evictions{0};
  std::atomic<bool> stop{false};
  PoolOptions opts;
  if (cfg.writeback) {
    opts.evict = [&](Pool& p, Handle h) -> Error {
      thread_local Rng rng(std::hash<std::thread::id>{}(std::this_thread::get_id()));
      if (static_cast<int>(rng.below(100)) < cfg.fail_percent) {
        failed_evictions.fetch_add(1);
        return Error::evict_failed;
      }
      auto& shard = reg.shard_of(h);
      std::lock_guard lock(shard.mutex);
      auto it = shard.entries.find(h);
      if (it == shard.entries.end()) return Error::ok;  // its owner freed it meanwhile
      if (!verify(p, h, it->second, false)) errors.fetch_add(1);
      shard.entries.erase(it);
      if (p.free(h) != Error::ok) errors.fetch_add(1);
      evicted.fetch_add(1);
      return Error::ok;
    };
  }
  auto pool = std::move(*Pool::create(std::move(opts)));

  auto mutator = [&](int id) {
    Rng rng(id * 7919 + 1);
    for (int op = 0; op < cfg.ops_per_thread; ++op) {
      auto& shard = reg.shard(static_cast<int>(rng.below(Registry::kShards)));
      const auto kind = rng.below(100);
      if (kind < 40) {
        const std::size_t size = 1 + (rng.below(8) == 0 ? rng.below(4096) : rng.below(1500));
        const std::uint64_t seed = seeds.fetch_add(1);
        auto h = pool->malloc(size);
        if (!h || pool->write(*h, pattern(seed, size)) != Error::ok) {
          errors.fetch_add(1);
          continue;
        }
        auto& own = reg.shard_of(*h);
        std::lock_guard lock(own.mutex);
        if (!own.entries.emplace(*h, Entry{size, seed}).second) errors.fetch_add(1);
      } else if (kind < 75) {
        Handle h = 0;
        Entry e{};
        {
          std::lock_guard lock(shard.mutex);
          if (shard.entries.empty()) continue;
          auto it = shard.entries.begin();
          h = it->first;
          e = it->second;
          shard.entries.erase(it);
        }
        if (!verify(*pool, h, e, false)) errors.fetch_add(1);
        if (pool->free(h) != Error::ok) errors.fetch_add(1);
      } else if (kind < 92) {
        std::lock_guard lock(shard.mutex);
        if (shard.entries.empty()) continue;
        auto it = shard.entries.begin();
        std::advance(it,
                     static_cast<long>(rng.below(std::min<std::size_t>(shard.entries.size(), 8))));
        if (!verify(*pool, it->first, it->second, kind % 2 == 0)) errors.fetch_add(1);
      } else {
        std::lock_guard lock(shard.mutex);
        if (shard.entries.empty()) continue;
        auto it = shard.entries.begin();
        it->second.seed = seeds.fetch_add(1);
        if (pool->write(it->first, pattern(it->second.seed, it->second.size)) != Error::ok)
          errors.fetch_add(1);
      }
    }
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(mutator, i);
  std::thread compactor([&] {
    while (!stop.load()) {
      pool->compact();
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> reclaimers;
  if (cfg.writeback) {
    for (int i = 0; i < 2; ++i) {
      reclaimers.emplace_back([&] {
        while (!stop.load()) {
          const Error e = pool->reclaim_page(2);
          if (e != Error::ok && e != Error::evict_failed && e != Error::not_found)
            errors.fetch_add(1);
        }
      });
    }
  }
  for (auto& t : threads) t.join();
  stop.store(true);
  compactor.join();
  for (auto& t : reclaimers) t.join();

  EXPECT_EQ(errors.load(), 0u);
  std::size_t remaining = 0;
  for (int i = 0; i < Registry::kShards; ++i) {
    for (auto& [h, e] : reg.shard(i).entries) {
      ASSERT_TRUE(verify(*pool, h, e, true)) << "handle " << h;
      ASSERT_EQ(pool->free(h), Error::ok);
      ++remaining;
    }
  }
  if (cfg.writeback && cfg.fail_percent < 100) {
    EXPECT_GT(evicted.load(), 0u);
  }
  if (cfg.fail_percent == 100) {
    EXPECT_EQ(evicted.load(), 0u);
  }
  auto s = pool->stats();
  EXPECT_EQ(pool->total_pages(), 0u) << remaining << " objects were left at the end";
  EXPECT_EQ(s.handle_slots_in_use, 0u);
  EXPECT_EQ(s.objects, 0u);
  EXPECT_EQ(s.deferred_handles_created, s.deferred_handles_released);
}

INSTANTIATE_TEST_SUITE_P(Modes, Stress,
                         ::testing::Values(StressConfig{false, 0}, StressConfig{true, 0},
                                           StressConfig{true, 10}, StressConfig{true, 50},
                                           StressConfig{true, 100}),
                         [](const ::testing::TestParamInfo<StressConfig>& param_info) {
                           const StressConfig& c = param_info.param;
                           return c.writeback ? "writeback_fail" + std::to_string(c.fail_percent)
                                              : std::string("no_writeback");
                         });

}  // namespace
}  // namespace zspool

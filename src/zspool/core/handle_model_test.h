// A model of the C API's handles, shared by the property test (zsmalloc_property_test.cc) and the
// fuzzer (zsmalloc_fuzz.cc): a pool is driven by a stream of (operation, argument) choices that
// mix valid handles, freed ones (most of them freed just before, so that their slots have been
// reissued to newer objects: LIFO slot reuse), handles freed while mapped, and values never
// issued; every answer is checked against the model.
//
//   a valid handle   every call succeeds and reads back what was last written
//   any other value  every call fails (-EINVAL, -EBUSY, NULL) and changes nothing
//
// Internal to the tests (not installed: its name has _test). Needs no test framework: step()
// returns what went wrong, or "".
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "zspool/core/zsmalloc.h"
#include "zspool/workload/rng.h"

namespace zspool::test {

class HandleModel {
 public:
  // The pool's max_handles is 2^kIndexBits, so a handle's slot index is its low kIndexBits
  // (pool_state.h, "Handle"): the model uses that only to count probes of reissued slots.
  static constexpr int kIndexBits = 16;
  static constexpr int kOps = 11;

  struct Counts {
    std::uint64_t stale_probes = 0;     // freed handles tried
    std::uint64_t reissued_probes = 0;  // ... whose slot held a newer live object then
    std::uint64_t never_issued_probes = 0;
    std::uint64_t pending_frees = 0;  // zs_free of a mapped object
    std::uint64_t evictions = 0;
  };

  explicit HandleModel(bool writeback) {
    ops_.evict = &HandleModel::evict_thunk;
    ops_.ctx = this;
    zs_pool_config cfg{};
    cfg.name = "model";
    cfg.ops = writeback ? &ops_ : nullptr;
    cfg.max_handles = 1ul << kIndexBits;
    pool_ = zs_create_pool_ex(&cfg);
    if (pool_ == nullptr) note("zs_create_pool_ex failed");
  }
  ~HandleModel() { zs_destroy_pool(pool_); }
  HandleModel(const HandleModel&) = delete;
  HandleModel& operator=(const HandleModel&) = delete;

  // One operation: op % kOps picks it, arg its operands. Returns "" or the first failure.
  std::string step(std::uint8_t op, std::uint32_t arg) {
    if (pool_ != nullptr && error_.empty()) {
      switch (op % kOps) {
        case 0:
          do_malloc(arg);
          break;
        case 1:
          do_free_checked(arg);
          break;
        case 2:
          do_write(arg);
          break;
        case 3:
          do_read(arg);
          break;
        case 4:
          do_map(arg);
          break;
        case 5:
          do_unmap(arg);
          break;
        case 6:
          do_free(arg);
          break;
        case 7:
          probe_stale(arg);
          break;
        case 8:
          probe_never_issued(arg);
          break;
        case 9:
          zs_compact(pool_);
          break;
        case 10:
          (void)zs_reclaim_page(pool_, 1 + arg % 3);
          break;
      }
    }
    return error_;
  }

  // Checks every live object, ends every mapping, frees everything; "" or the first failure.
  std::string finish() {
    if (pool_ == nullptr || !error_.empty()) return error_;
    for (const auto& [h, o] : live_) verify(h, "final read");
    while (!maps_.empty()) do_unmap(0);
    check_counts("after the last unmap", true);
    for (const auto& [h, o] : live_)
      if (zs_free_checked(pool_, h) != 0) note("final free of a valid handle failed", h);
    live_.clear();
    live_list_.clear();
    struct zs_pool_stats s;
    zs_pool_stats(pool_, &s);
    if (s.objects != 0 || s.handle_slots_in_use != 0 || zs_get_total_pages(pool_) != 0)
      note("objects, slots or pages left after freeing everything");
    return error_;
  }

  const Counts& counts() const { return counts_; }

 private:
  struct Object {
    std::size_t size = 0;
    std::uint64_t seed = 0;
  };
  struct OpenMap {
    unsigned long handle = 0;
    const void* where = nullptr;
  };

  static unsigned long index_of(unsigned long h) { return h & ((1ul << kIndexBits) - 1); }

  void note(const std::string& what, unsigned long h = 0) {
    if (error_.empty()) error_ = what + " (handle " + std::to_string(h) + ")";
  }

  static std::vector<std::byte> content(std::uint64_t seed, std::size_t n) {
    std::vector<std::byte> v(n);
    SplitMix64 rng(seed);
    for (std::byte& b : v) b = static_cast<std::byte>(rng.next());
    return v;
  }

  // A live handle chosen by arg, or 0.
  unsigned long pick_live(std::uint32_t arg) const {
    return live_list_.empty() ? 0 : live_list_[arg % live_list_.size()];
  }
  std::size_t maps_of(unsigned long h) const {
    return static_cast<std::size_t>(
        std::count_if(maps_.begin(), maps_.end(), [h](const OpenMap& m) { return m.handle == h; }));
  }

  void verify(unsigned long h, const char* what) {
    const Object& o = live_.at(h);
    std::vector<std::byte> got(o.size);
    if (zs_obj_read(pool_, h, got.data(), 0, o.size) != 0)
      return note(std::string(what) + " failed", h);
    if (got != content(o.seed, o.size)) note(std::string(what) + ": contents differ", h);
  }

  // Compares the pool's object count with the model's: every 16th call (zs_pool_stats walks
  // every class), or always.
  void check_counts(const char* when, bool always = false) {
    if (!always && ++count_checks_ % 16 != 0) return;
    struct zs_pool_stats s;
    zs_pool_stats(pool_, &s);
    if (s.objects != live_.size() + pending_.size())
      note(std::string("object count differs from the model ") + when);
  }

  void do_malloc(std::uint32_t arg) {
    const std::size_t size = 1 + arg % 4096;
    const unsigned long h = zs_malloc(pool_, size, 0);
    if (zs_is_error(h)) return note("zs_malloc failed");
    if (live_.count(h) != 0 || ever_freed_.count(h) != 0)
      return note("a handle value came back", h);
    const Object o{size, ++seed_};
    const auto bytes = content(o.seed, size);
    if (zs_obj_write(pool_, h, bytes.data(), 0, size) != 0) return note("write of a new object", h);
    live_[h] = o;
    live_list_.push_back(h);
    live_by_index_[index_of(h)] = h;
  }

  void retire(unsigned long h) {
    if (maps_of(h) != 0) pending_[h] = live_.at(h);  // dead now, freed by its last unmap
    live_.erase(h);
    live_by_index_.erase(index_of(h));
    const auto at = std::find(live_list_.begin(), live_list_.end(), h);
    *at = live_list_.back();
    live_list_.pop_back();
    ever_freed_.insert(h);
    freed_order_.push_back(h);
  }

  void do_free_checked(std::uint32_t arg) {
    const unsigned long h = pick_live(arg);
    if (h == 0) return;
    const int r = zs_free_checked(pool_, h);
    if (maps_of(h) != 0) {
      if (r != -EBUSY) note("zs_free_checked of a mapped object is not -EBUSY", h);
      return verify(h, "read after a refused free");
    }
    if (r != 0) return note("zs_free_checked of a valid handle failed", h);
    retire(h);
  }

  void do_free(std::uint32_t arg) {
    const unsigned long h = pick_live(arg);
    if (h == 0) return;
    if (maps_of(h) != 0) ++counts_.pending_frees;
    zs_free(pool_, h);
    retire(h);
    check_counts("after zs_free");
  }

  void do_write(std::uint32_t arg) {
    const unsigned long h = pick_live(arg);
    if (h == 0) return;
    Object& o = live_[h];
    o.seed = ++seed_;
    const auto bytes = content(o.seed, o.size);
    if (zs_obj_write(pool_, h, bytes.data(), 0, o.size) != 0) note("write of a valid handle", h);
  }

  void do_read(std::uint32_t arg) {
    if (const unsigned long h = pick_live(arg)) verify(h, "read of a valid handle");
  }

  void do_map(std::uint32_t arg) {
    const unsigned long h = pick_live(arg);
    if (h == 0 || maps_of(h) >= 4) return;
    const zs_mapmode modes[] = {ZS_MM_RO, ZS_MM_RW, ZS_MM_WO};
    void* where = zs_map_object(pool_, h, modes[arg % 3]);
    if (where == nullptr) return note("map of a valid handle failed", h);
    const Object& o = live_[h];
    if (std::memcmp(where, content(o.seed, o.size).data(), o.size) != 0)
      return note("mapped contents differ", h);
    maps_.push_back({h, where});
  }

  // Ends an open mapping; the last one of a handle zs_free'd while mapped frees its object.
  void do_unmap(std::uint32_t arg) {
    if (maps_.empty()) return;
    const std::size_t i = arg % maps_.size();
    const unsigned long h = maps_[i].handle;
    const auto it = live_.count(h) != 0 ? live_.find(h) : pending_.find(h);
    const Object& o = it->second;  // valid or dead: the mapping shows the object until unmapped
    if (std::memcmp(maps_[i].where, content(o.seed, o.size).data(), o.size) != 0)
      return note("contents through a mapping differ", h);
    zs_unmap_object(pool_, h);
    maps_.erase(maps_.begin() + static_cast<std::ptrdiff_t>(i));
    if (pending_.count(h) != 0 && maps_of(h) == 0) pending_.erase(h);
    check_counts("after zs_unmap_object");
  }

  // Every call with a value that is not a valid handle fails and changes nothing.
  void expect_refused(unsigned long h, const char* kind) {
    std::vector<std::byte> buf(64);
    if (zs_obj_read(pool_, h, buf.data(), 0, 1) != -EINVAL)
      note(std::string(kind) + ": read succeeded", h);
    if (zs_obj_write(pool_, h, buf.data(), 0, 1) != -EINVAL)
      note(std::string(kind) + ": write succeeded", h);
    if (zs_map_object(pool_, h, ZS_MM_RW) != nullptr)
      note(std::string(kind) + ": map succeeded", h);
    if (zs_free_checked(pool_, h) != -EINVAL) note(std::string(kind) + ": free succeeded", h);
    zs_free(pool_, h);
    check_counts("after a refused free");
  }

  // A freed handle, usually one of the last few freed (their slots are the ones reissued next).
  void probe_stale(std::uint32_t arg) {
    if (freed_order_.empty()) return;
    const std::size_t recent = std::min<std::size_t>(freed_order_.size(), 8);
    const std::size_t back = (arg & 0x8000) != 0 ? arg % freed_order_.size() : arg % recent;
    const unsigned long h = freed_order_[freed_order_.size() - 1 - back];
    ++counts_.stale_probes;
    const auto reissued = live_by_index_.find(index_of(h));
    if (reissued != live_by_index_.end()) ++counts_.reissued_probes;
    expect_refused(h, "stale handle");
    // The reissued slot's object is untouched.
    if (reissued != live_by_index_.end() && error_.empty())
      verify(reissued->second, "read of the slot's new object");
  }

  // Values never issued: another generation of a live handle's slot, small slot indices,
  // values past 2^62 and in the C API's error range.
  void probe_never_issued(std::uint32_t arg) {
    unsigned long h = 0;
    switch (arg % 4) {
      case 0: {
        const unsigned long live = pick_live(arg >> 2);
        if (live == 0) return;
        h = live ^ (1ul << (kIndexBits + (arg >> 2) % (62 - kIndexBits)));
        break;
      }
      case 1:
        h = (arg >> 2) % (1ul << kIndexBits);
        break;
      case 2:
        h = (1ul << 62) | arg;
        break;
      case 3:
        h = static_cast<unsigned long>(-static_cast<long>(1 + (arg >> 2) % 4095));
        break;
    }
    if (live_.count(h) != 0 || ever_freed_.count(h) != 0) return;  // issued after all
    ++counts_.never_issued_probes;
    expect_refused(h, "never-issued handle");
  }

  // Writeback: the handler verifies what it reads, then frees it (not a mapped or dead one).
  static int evict_thunk(struct zs_pool* pool, unsigned long h, void* ctx) {
    return static_cast<HandleModel*>(ctx)->evict(pool, h);
  }
  int evict(struct zs_pool* pool, unsigned long h) {
    if (pending_.count(h) != 0) return -EAGAIN;  // dead, waiting for its last unmap
    if (live_.count(h) == 0) {
      note("evict of a handle the model does not hold", h);
      return -EAGAIN;
    }
    if (maps_of(h) != 0) return -EAGAIN;
    verify(h, "read in the evict handler");
    if (zs_free_checked(pool, h) != 0) note("the evict handler's free failed", h);
    retire(h);
    ++counts_.evictions;
    return 0;
  }

  zpool_ops ops_{};
  struct zs_pool* pool_ = nullptr;
  std::map<unsigned long, Object> live_;
  std::vector<unsigned long> live_list_;                  // live_'s handles, to pick from
  std::map<unsigned long, unsigned long> live_by_index_;  // slot index -> live handle
  std::set<unsigned long> ever_freed_;
  std::vector<unsigned long> freed_order_;
  std::map<unsigned long, Object> pending_;  // zs_free'd while mapped, not yet unmapped
  std::vector<OpenMap> maps_;
  std::uint64_t seed_ = 0;
  std::uint64_t count_checks_ = 0;
  Counts counts_;
  std::string error_;
};

}  // namespace zspool::test

// libFuzzer target: operation sequences on a pool with writeback, checked against a reference
// model. The input is a byte program; each operation reads the bytes it needs:
//
//   op % 9:  0 malloc(size), or malloc_copy within a budget of 0..3 new pages (the pool's
//              page count never grows past the budget; a refusal changes nothing)
//                                1 free(i)        2 write(i)       3 read+verify(i)
//            4 map+verify(i)     5 compact        6 reclaim_page   7 shrink(n)
//            8 set the evict handler's plan (fail the next k calls; free another object
//              from inside the handler)
//
// The evict handler verifies what it reads through the handle, then frees it (unless the plan
// says to fail). Any mismatch, unexpected error, or leaked page/handle at the end aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "zspool/core/pool.h"

#include "zspool/workload/rng.h"

namespace {

using zspool::Error;
using zspool::Handle;
using zspool::Pool;

[[noreturn]] void fail(const char* what, Handle h) {
  std::fprintf(stderr, "pool_fuzz: %s (handle %llu)\n", what, static_cast<unsigned long long>(h));
  std::abort();
}

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  std::uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(byte() | (byte() << 8)); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

std::vector<std::byte> content(std::uint64_t seed, std::size_t n) {
  std::vector<std::byte> v(n);
  zspool::SplitMix64 rng(seed);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>(rng.next());
  return v;
}

struct Model {
  std::map<Handle, std::vector<std::byte>> live;
  std::uint64_t seed = 0;
  int fail_next = 0;        // evictions left to fail
  bool free_other = false;  // free another live object from inside the next eviction
  std::uint64_t evictions = 0;

  Handle pick(std::uint16_t r) const {
    if (live.empty()) return 0;
    auto it = live.begin();
    std::advance(it, r % live.size());
    return it->first;
  }
};

void verify(Pool& pool, Handle h, const std::vector<std::byte>& want) {
  std::vector<std::byte> got(want.size());
  if (pool.read(h, got) != Error::ok) fail("read failed", h);
  if (got != want) fail("contents differ from the model", h);
}

Error evict(Model& m, Pool& pool, Handle h) {
  auto it = m.live.find(h);
  if (it == m.live.end()) fail("evict of a handle the model does not hold", h);
  if (m.fail_next > 0) {
    --m.fail_next;
    return Error::evict_failed;
  }
  if (m.free_other) {  // a free from "elsewhere" while the zspage is under reclaim
    m.free_other = false;
    const Handle other = m.pick(static_cast<std::uint16_t>(h * 7));
    if (other != h && other != 0) {
      if (pool.free(other) != Error::ok) fail("free during reclaim failed", other);
      m.live.erase(other);
    }
  }
  verify(pool, h, it->second);
  m.live.erase(it);
  ++m.evictions;
  if (pool.free(h) != Error::ok) fail("handler's free failed", h);
  return Error::ok;
}

void step(Model& m, Pool& pool, Input& in) {
  const std::uint8_t op = in.byte() % 9;
  switch (op) {
    case 0: {
      const std::uint16_t r = in.u16();
      const std::size_t size = 1 + r % 4096;
      auto bytes = content(++m.seed, size);
      if (r & 0x8000) {  // malloc_copy within a budget of 0..3 new pages
        const std::size_t budget = in.byte() % 4;
        const std::size_t pages_before = pool.total_pages();
        auto h = pool.malloc_copy(bytes, budget);
        if (!h) {
          if (h.error() != Error::limit_reached) fail("malloc_copy failed", 0);
          if (pool.total_pages() != pages_before) fail("a refused malloc_copy took pages", 0);
          break;
        }
        if (pool.total_pages() > pages_before + budget) fail("malloc_copy passed its budget", *h);
        if (m.live.count(*h)) fail("handle issued twice", *h);
        m.live[*h] = std::move(bytes);
        break;
      }
      auto h = pool.malloc(size);
      if (!h) fail("malloc failed", 0);
      if (m.live.count(*h)) fail("handle issued twice", *h);
      if (pool.write(*h, bytes) != Error::ok) fail("write failed", *h);
      m.live[*h] = std::move(bytes);
      break;
    }
    case 1: {
      const Handle h = m.pick(in.u16());
      if (h == 0) break;
      verify(pool, h, m.live[h]);
      if (pool.free(h) != Error::ok) fail("free failed", h);
      m.live.erase(h);
      break;
    }
    case 2: {
      const Handle h = m.pick(in.u16());
      if (h == 0) break;
      auto& bytes = m.live[h];
      bytes = content(++m.seed, bytes.size());
      if (pool.write(h, bytes) != Error::ok) fail("write failed", h);
      break;
    }
    case 3: {
      const Handle h = m.pick(in.u16());
      if (h != 0) verify(pool, h, m.live[h]);
      break;
    }
    case 4: {
      const Handle h = m.pick(in.u16());
      if (h == 0) break;
      auto mapping = pool.map(h, zspool::MapMode::read_only);
      if (!mapping) fail("map failed", h);
      const auto& want = m.live[h];
      if (mapping->size() < want.size() || std::memcmp(mapping->data(), want.data(), want.size()))
        fail("mapped contents differ", h);
      if (in.byte() & 1) pool.compact();  // compaction must skip the mapped zspage
      break;
    }
    case 5:
      pool.compact();
      break;
    case 6: {
      const Error e = pool.reclaim_page(1 + in.byte() % 3);
      if (e != Error::ok && e != Error::evict_failed && e != Error::not_found)
        fail("reclaim returned an unexpected error", 0);
      break;
    }
    case 7:
      pool.shrink(in.byte() % 16);
      break;
    case 8: {
      const std::uint8_t plan = in.byte();
      m.fail_next = plan % 4;
      m.free_other = (plan & 0x10) != 0;
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in(data, size);
  Model m;
  const std::uint8_t chain = static_cast<std::uint8_t>(1 + in.byte() % 16);
  auto created = Pool::create(
      {.max_chain = chain, .evict = [&m](Pool& p, Handle h) { return evict(m, p, h); }});
  if (!created) fail("pool creation failed", 0);
  auto pool = std::move(*created);
  for (int steps = 0; !in.empty() && steps < 4000; ++steps) step(m, *pool, in);
  for (auto& [h, bytes] : m.live) verify(*pool, h, bytes);
  const auto s = pool->stats();
  if (s.objects != m.live.size() || s.handle_slots_in_use != m.live.size())
    fail("object or handle count differs from the model", 0);
  if (s.deferred_handles_created != s.deferred_handles_released) fail("deferred handle leak", 0);
  for (auto& [h, bytes] : m.live)
    if (pool->free(h) != Error::ok) fail("final free failed", h);
  if (pool->total_pages() != 0) fail("pages left after freeing everything", 0);
  return 0;
}

// PerCpu<T>: a few reusable objects (compression contexts, work memory, page buffers) lent for a
// short piece of work, one per CPU rather than one per thread.
//
// zram keeps one compression stream per CPU (zcomp) for the same reason: what a compressor
// needs is bounded by how many compressions can run at once, which is the CPUs, not the threads.
// A thread-local context instead costs one per thread that ever compressed: nbdkit runs 16
// worker threads a connection, and a zstd context for 32 KiB pages holds ~0.5 MiB once used:
// with thread-local contexts and buffers the plugin held 6.6 MiB more per connection while
// clients were connected (BENCHMARKS.md, "Codec memory per CPU").
//
//   slots_: ┌──────────────┬──────────────┬─────┬──────────────┐
//           │ lock │ T     │ lock │ T     │ ... │ lock │ T     │   one slot per CPU the
//           └──────────────┴──────────────┴─────┴──────────────┘   process may run on, each on
//            CPU 0           CPU 1                 CPU n-1           its own cache lines
//
// acquire(): take the calling CPU's slot if its lock is free, else the first free one of the
//   others. A slot is taken while its holder runs, or when the holder was preempted mid-work (a
//   thread woken by a request preempts the one compressing). When every slot is taken, wait for
//   the home slot (SpinThenBlockMutex: spin, yield so that a preempted holder runs, then sleep),
//   as zram waits for its CPU's stream. Rare: 0 waits in six 64 MiB zstd writes through nbdkit
//   on one connection (2,048 leases each), 11-34 in three runs of 4 connections writing and
//   reading at once (4,096 leases each; scripts/nbd_conns.c), 2 CPUs. Two alternatives were
//   measured and dropped: spare slots beyond the CPUs (one more 0.5 MiB zstd context in use,
//   no faster), and a temporary T made for the lease when every slot is taken (~3% of leases
//   then found them all taken; each made and freed a zstd context, and glibc kept what those
//   frees returned in the threads' arenas: +5 MiB).
// release (~Lease): the slot's lock is released, so what the holder did to T happens-before the
//   next holder's use of it.
//
// Lock order: a thread holding a lease may take a lease of another PerCpu only in the order its
// user states (compressor.cc: a context, then a bounce buffer); never two of the same PerCpu.
//
// Invariants:
//   - A slot's T is touched only by the thread holding the slot's lock.
//   - The slot array is allocated once; a slot's T lives until the PerCpu is destroyed, so what
//     the slots hold is bounded by n, whatever the number of threads.
//   - T is default-constructible; a default T is "nothing made yet" (a null pointer): the
//     holder makes what it needs lazily.
//
// Not for work that blocks for long (I/O): a holder that sleeps keeps its slot and makes the
// next threads wait. Short locks (a pool's class lock) are fine.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "zspool/platform/internal/os.h"
#include "zspool/platform/internal/spin_mutex.h"

namespace zspool {

template <typename T>
class PerCpu {
  struct alignas(64) Slot {
    SpinThenBlockMutex lock;
    T value{};
  };

 public:
  // What a thread holds between acquire() and the end of the lease; not copyable, not movable.
  class Lease {
   public:
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { slot_->lock.unlock(); }

    T& operator*() { return slot_->value; }
    T* operator->() { return &slot_->value; }

   private:
    friend class PerCpu;
    explicit Lease(Slot* slot) : slot_(slot) {}
    Slot* const slot_;
  };

  PerCpu() : PerCpu(os::cpu_count()) {}
  explicit PerCpu(std::size_t cpus)
      : slot_count_(cpus > 0 ? cpus : 1), slots_(new Slot[slot_count_]) {}

  Lease acquire() {
    const std::size_t home = os::current_cpu() % slot_count_;
    if (slots_[home].lock.try_lock()) return Lease(&slots_[home]);
    for (std::size_t i = 1; i < slot_count_; ++i) {
      const std::size_t s = (home + i) % slot_count_;
      if (slots_[s].lock.try_lock()) return Lease(&slots_[s]);
    }
    waits_.fetch_add(1, std::memory_order_relaxed);
    slots_[home].lock.lock();
    return Lease(&slots_[home]);
  }

  std::size_t slot_count() const { return slot_count_; }
  // Leases that found every slot taken and waited, ever (tests and measurements read it).
  std::uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }

  // Calls fn(T&) for every slot's T that is not lent now (a slot lent meanwhile is skipped).
  template <typename Fn>
  void for_each_idle(Fn&& fn) {
    for (std::size_t s = 0; s < slot_count_; ++s) {
      if (!slots_[s].lock.try_lock()) continue;
      fn(slots_[s].value);
      slots_[s].lock.unlock();
    }
  }

 private:
  const std::size_t slot_count_;
  const std::unique_ptr<Slot[]> slots_;
  std::atomic<std::uint64_t> waits_{0};
};

}  // namespace zspool

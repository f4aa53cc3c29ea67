// How an OsPageSource commits a fresh page (makes it resident and writable before the pool's
// first write to it), and how it picks the cheaper of the two ways on the host it runs on.
//
//   populate  MADV_POPULATE_WRITE over the pages: one syscall for a run of pages
//   touch     an atomic no-op write to each page (os::touch_pages): one page fault each
//
// Which costs less depends on the host, not on the code: on the VM of BENCHMARKS.md's issue 5
// sections a one-page populate cost 0.76 us against 0.96 us for a fault (30-60 against 40-80 us
// loaded); on the VM of the issue 16 section (2026-12-02, build/platform_benchmark) a one-page
// populate cost 3.1-3.6 us against 2.5-2.8 us for a fault, and in the store's fill the populate
// calls were a fifth of the write. Most commits are one page (an object reaches the next page),
// so the one-page cost decides. Hence a source times its first commits, both ways in turn, and
// keeps the one with the lower median cost per page for the rest of its life:
//
//   commit (ticket)   0  1  2  3  ...  2K-2  2K-1 │ 2K ...
//   way               P  T  P  T  ...   P     T   │ the lower median of ns/page (P on a tie)
//   timed             yes ...                yes  │ no          K = kSamples per way
//
// The samples are real commits the pool needed anyway, so calibrating costs two clock reads a
// commit for 2K commits and nothing after. Medians, not means: one commit that was preempted
// or had to allocate a page table must not decide.
//
// Thread-safe without a lock: commits of different classes run at once. Each commit takes a
// ticket (one atomic increment) whose parity names the way and whose number names its sample
// slot; the commit whose record() completes the 2K samples decides (acq_rel on the count: it
// sees every other sample). Commits that take a ticket past 2K before that decision populate,
// untimed. A forced way (the constructor) takes no tickets and never times.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <limits>

namespace zspool {

enum class CommitMethod : std::uint8_t { automatic, populate, touch };

class CommitCalibrator {
 public:
  static constexpr std::uint32_t kSamples = 16;  // per way
  static constexpr std::uint32_t kNoSlot = std::numeric_limits<std::uint32_t>::max();

  // `forced` != automatic: always that way, never timed.
  explicit CommitCalibrator(CommitMethod forced = CommitMethod::automatic) : chosen_(forced) {}

  // What the next commit does; slot != kNoSlot: time it and record() the cost.
  struct Ticket {
    CommitMethod method;
    std::uint32_t slot;
  };
  Ticket next();
  // The cost of ticket t's commit, per page. After the last sample, decides.
  void record(Ticket t, std::uint64_t ns_per_page);
  // automatic while still sampling.
  CommitMethod chosen() const { return chosen_.load(std::memory_order_acquire); }

 private:
  void decide();

  std::atomic<CommitMethod> chosen_;
  std::atomic<std::uint32_t> tickets_{0};
  std::atomic<std::uint32_t> recorded_{0};
  // Slot t holds ticket t's cost: even slots populate, odd slots touch.
  std::array<std::atomic<std::uint64_t>, 2 * kSamples> samples_{};
};

}  // namespace zspool

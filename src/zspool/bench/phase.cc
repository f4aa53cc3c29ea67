#include "zspool/bench/phase.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>
#include <vector>

namespace zspool::tools {
namespace {

void visit_range(PageRange range, std::size_t scratch_bytes, PhaseProgress& progress,
                 const PageVisitor& visit, PhaseTally& tally) {
  std::vector<std::byte> scratch(scratch_bytes);
  for (std::uint64_t page = range.begin; page < range.end; ++page) {
    visit(page, scratch, tally);
    progress.advance();
  }
}

}  // namespace

void PhaseTally::fail(std::uint64_t page, std::string what, Error error) {
  ++failed;
  if (!first_failure || page < first_failure->page)
    first_failure = PageFailure{page, std::move(what), error};
}

void PhaseTally::mismatch(std::uint64_t page) {
  ++mismatched;
  if (!first_failure || page < first_failure->page)
    first_failure = PageFailure{page, "verify", Error::ok};
}

void PhaseTally::merge(const PhaseTally& other) {
  failed += other.failed;
  mismatched += other.mismatched;
  if (other.first_failure && (!first_failure || other.first_failure->page < first_failure->page))
    first_failure = other.first_failure;
}

PageRange thread_range(std::uint64_t pages, unsigned threads, unsigned t) {
  const std::uint64_t base = pages / threads;
  const std::uint64_t extra = pages % threads;  // the first `extra` threads take one more
  const std::uint64_t begin = t * base + std::min<std::uint64_t>(t, extra);
  return {begin, begin + base + (t < extra ? 1 : 0)};
}

PhaseResult run_phase(std::uint64_t pages, unsigned threads, std::size_t scratch_bytes,
                      PhaseProgress& progress, const PageVisitor& visit) {
  threads = static_cast<unsigned>(
      std::clamp<std::uint64_t>(threads, 1, std::max<std::uint64_t>(pages, 1)));
  std::vector<PhaseTally> tallies(threads);
  const auto start = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> workers;
    for (unsigned t = 1; t < threads; ++t) {
      workers.emplace_back(visit_range, thread_range(pages, threads, t), scratch_bytes,
                           std::ref(progress), std::cref(visit), std::ref(tallies[t]));
    }
    visit_range(thread_range(pages, threads, 0), scratch_bytes, progress, visit, tallies[0]);
  }  // joins
  PhaseResult result;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (const PhaseTally& t : tallies) result.tally.merge(t);
  progress.finish();
  return result;
}

namespace {
class QuietProgress final : public PhaseProgress {
 public:
  void advance(std::uint64_t) override {}
  void finish() override {}
};
}  // namespace

ProgressFactory no_progress() {
  return [](const std::string&, std::uint64_t) { return std::make_unique<QuietProgress>(); };
}

}  // namespace zspool::tools

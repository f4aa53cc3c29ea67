#include "zspool/platform/internal/commit_calibrator.h"

#include <algorithm>

namespace zspool {

CommitCalibrator::Ticket CommitCalibrator::next() {
  const CommitMethod chosen = chosen_.load(std::memory_order_acquire);
  if (chosen != CommitMethod::automatic) return {chosen, kNoSlot};
  const std::uint32_t t = tickets_.fetch_add(1, std::memory_order_relaxed);
  if (t >= 2 * kSamples) return {CommitMethod::populate, kNoSlot};  // the decision is pending
  return {t % 2 == 0 ? CommitMethod::populate : CommitMethod::touch, t};
}

void CommitCalibrator::record(Ticket t, std::uint64_t ns_per_page) {
  if (t.slot >= samples_.size()) return;
  samples_[t.slot].store(ns_per_page, std::memory_order_relaxed);
  if (recorded_.fetch_add(1, std::memory_order_acq_rel) + 1 == samples_.size()) decide();
}

void CommitCalibrator::decide() {
  auto median_of = [this](std::uint32_t parity) {
    std::array<std::uint64_t, kSamples> v{};
    for (std::uint32_t i = 0; i < kSamples; ++i)
      v[i] = samples_[2 * i + parity].load(std::memory_order_relaxed);
    std::nth_element(v.begin(), v.begin() + kSamples / 2, v.end());
    return v[kSamples / 2];
  };
  const std::uint64_t populate = median_of(0), touch = median_of(1);
  chosen_.store(touch < populate ? CommitMethod::touch : CommitMethod::populate,
                std::memory_order_release);
}

}  // namespace zspool

// FailingPageSource: fault injection for tests and the soak verb. Passes requests to another
// source, but refuses chosen acquire calls, so a pool must return out_of_memory and change
// nothing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "zspool/platform/page_source.h"

namespace zspool {

// Fault injection: passes requests to another source, but refuses acquire number `fail_at`
// (1-based) and, if `fail_every` > 0, every `fail_every`-th request after it.
class FailingPageSource final : public PageSource {
 public:
  explicit FailingPageSource(std::shared_ptr<PageSource> inner) : inner_(std::move(inner)) {}
  void fail_at(std::uint64_t nth, std::uint64_t every = 0) {
    fail_at_.store(nth);
    fail_every_.store(every);
  }
  std::uint64_t requests() const { return requests_.load(); }
  std::uint64_t failures() const { return failures_.load(); }

  void* acquire(std::size_t bytes, bool* resident) override;
  void release(void* p, std::size_t bytes) override { inner_->release(p, bytes); }
  void populate(void* p, std::size_t bytes) override { inner_->populate(p, bytes); }
  std::size_t resident_bytes() const override { return inner_->resident_bytes(); }
  std::size_t mapping_count() const override { return inner_->mapping_count(); }
  std::size_t cached_bytes() const override { return inner_->cached_bytes(); }
  void trim() override { inner_->trim(); }

 private:
  std::shared_ptr<PageSource> inner_;
  std::atomic<std::uint64_t> fail_at_{0};
  std::atomic<std::uint64_t> fail_every_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> failures_{0};
};

}  // namespace zspool

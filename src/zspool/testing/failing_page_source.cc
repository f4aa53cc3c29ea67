#include "zspool/testing/failing_page_source.h"

namespace zspool {

void* FailingPageSource::acquire(std::size_t bytes, bool* resident) {
  *resident = false;
  const std::uint64_t n = requests_.fetch_add(1) + 1;
  const std::uint64_t at = fail_at_.load();
  const std::uint64_t every = fail_every_.load();
  const bool fail = at != 0 && (n == at || (every != 0 && n > at && (n - at) % every == 0));
  if (fail) {
    failures_.fetch_add(1);
    return nullptr;
  }
  return inner_->acquire(bytes, resident);
}

}  // namespace zspool

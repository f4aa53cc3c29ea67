#include "zspool/platform/internal/os.h"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include <utility>
#include <vector>

namespace zspool::os {

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

static std::size_t round_up_to_page(std::size_t bytes) noexcept {
  const std::size_t ps = page_size();
  return (bytes + ps - 1) / ps * ps;
}

VirtualRange::VirtualRange(std::size_t bytes) noexcept {
  const std::size_t size = round_up_to_page(bytes);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return;
  // A transparent huge page would make one small zspage cost 2 MiB of RSS.
  madvise(p, size, MADV_NOHUGEPAGE);
  base_ = static_cast<std::byte*>(p);
  size_ = size;
}

VirtualRange::~VirtualRange() {
  if (base_ != nullptr) munmap(base_, size_);
}

VirtualRange::VirtualRange(VirtualRange&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0)) {}

VirtualRange& VirtualRange::operator=(VirtualRange&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void release_pages(void* p, std::size_t bytes) noexcept {
  madvise(p, bytes, MADV_DONTNEED);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14 (include/uapi/asm-generic/mman-common.h)
#endif

std::uint64_t physical_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(size);
}

bool populate_pages(void* p, std::size_t bytes) noexcept {
  // Remembered once the kernel says it does not know the advice, so old kernels pay one call.
  static std::atomic<bool> unsupported{false};
  if (bytes == 0 || unsupported.load(std::memory_order_relaxed)) return false;
  if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) return true;
  if (errno == EINVAL) unsupported.store(true, std::memory_order_relaxed);
  return false;
}

std::size_t resident_bytes(const void* p, std::size_t bytes) noexcept {
  const std::size_t ps = page_size();
  const std::size_t pages = round_up_to_page(bytes) / ps;
  std::vector<unsigned char> vec(pages);
  if (mincore(const_cast<void*>(p), pages * ps, vec.data()) != 0) return 0;
  std::size_t resident = 0;
  for (unsigned char v : vec) resident += (v & 1) ? ps : 0;
  return resident;
}

}  // namespace zspool::os

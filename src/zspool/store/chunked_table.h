// A fixed-size table of T made lazily, a chunk at a time: the store's page table and its
// reverse map (handle -> page) both use it, so that a capacity of 700,000,000 pages costs 1.3 MiB
// until pages are written, not 11 GB.
//
//   directory_ (calloc'd: untouched, hence unbacked, until a chunk is made)
//   ┌──────┬──────┬──────┬─────┐
//   │ ptr  │ null │ ptr  │ ... │   ceil(size / kChunk) pointers, 8 bytes per kChunk elements
//   └──┬───┴──────┴──┬───┴─────┘
//      ▼             ▼
//   T[kChunk]     T[kChunk]         made on the first find_or_make() of one of its elements,
//   (value-       (value-           value-initialised, never moved, freed with the table
//    initialised)  initialised)
//
// Thread safety: find() and find_or_make() may run concurrently with each other. A chunk is
// published with a release store after it is initialised and read with an acquire load, so an
// element is ready when its chunk is seen; makers serialise on grow_mutex_ (a leaf lock, held
// only to allocate and publish). What the elements themselves need is the caller's business.
// Never throws: a chunk or directory that cannot be allocated is reported as nullptr / !ok().
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <new>

namespace zspool::internal {

template <typename T, std::size_t kChunk>
class ChunkedTable {
 public:
  // A table of `size` elements, none made yet. ok() is false if the directory cannot be had.
  explicit ChunkedTable(std::uint64_t size) noexcept
      : size_(size), chunks_((size + kChunk - 1) / kChunk) {
    // calloc: the directory's pages stay unbacked zeros until a chunk pointer is stored in them.
    if (chunks_ != 0) directory_ = static_cast<T**>(std::calloc(chunks_, sizeof(T*)));
  }
  ~ChunkedTable() {
    for (std::uint64_t c = 0; directory_ != nullptr && c < chunks_; ++c) delete[] slot(c).load();
    std::free(directory_);
  }
  ChunkedTable(const ChunkedTable&) = delete;
  ChunkedTable& operator=(const ChunkedTable&) = delete;

  bool ok() const noexcept { return chunks_ == 0 || directory_ != nullptr; }
  std::uint64_t size() const noexcept { return size_; }
  // Directory bytes for a table of `size` elements.
  static constexpr std::uint64_t directory_bytes(std::uint64_t size) {
    return (size / kChunk + 1) * sizeof(T*);
  }

  // Element i, or nullptr when i >= size() or its chunk was never made.
  T* find(std::uint64_t i) const noexcept {
    if (i >= size_) return nullptr;
    T* chunk = slot(i / kChunk).load(std::memory_order_acquire);
    return chunk == nullptr ? nullptr : chunk + i % kChunk;
  }

  // Element i, making its chunk if need be; nullptr when i >= size() or out of memory.
  T* find_or_make(std::uint64_t i) noexcept {
    if (T* element = find(i)) return element;
    if (i >= size_) return nullptr;
    std::lock_guard lock(grow_mutex_);
    std::atomic_ref<T*> chunk = slot(i / kChunk);
    T* made = chunk.load(std::memory_order_acquire);
    if (made == nullptr) {
      made = new (std::nothrow) T[kChunk]();
      if (made == nullptr) return nullptr;
      chunk.store(made, std::memory_order_release);
      chunks_made_.fetch_add(1, std::memory_order_relaxed);
    }
    return made + i % kChunk;
  }

  // Chunks made so far (for tests: how much of the table exists).
  std::uint64_t chunks_made() const noexcept {
    return chunks_made_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic_ref<T*> slot(std::uint64_t c) const noexcept {
    return std::atomic_ref<T*>(directory_[c]);
  }

  const std::uint64_t size_;
  const std::uint64_t chunks_;
  T** directory_ = nullptr;
  std::mutex grow_mutex_;
  std::atomic<std::uint64_t> chunks_made_{0};
};

}  // namespace zspool::internal

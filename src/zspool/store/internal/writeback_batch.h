// Pages on their way to the backing file in one batch (StoreOptions::writeback_batch_pages): the
// page policy's CLOCK and writeback(kind) stage victims here under each page's stripe lock, then
// write the whole batch with BackingFile::write_slots (adjacent slots in one pwritev) holding
// no stripe lock, then publish each page whose entry is unchanged.
//
//   bytes: │ page 0's object ░░░ │ page 1's object ░ │ ... │ page n-1's object ░░ │
//          0              page_size           2·page_size             n·page_size
//
// Invariants (Store::writeback_mutex_ held for every use):
//   pages.size() <= capacity() == bytes.size() / page_size == writeback_batch_pages
//   pages[k]'s object bytes are bytes[k * page_size, k * page_size + pages[k].entry.length)
//   every staged page took one page of the writeback budget, given back unless it is published
//   a staged page is still in the pool and readable; a change of its entry meanwhile (written,
//     discarded, recompressed; a reused handle differs too, by its generation) cancels it: its
//     slot is freed, its budget returned
//   between flushes pages is empty (writes, results and page_of_write are scratch)
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "zspool/store/internal/backing_file.h"
#include "zspool/store/store.h"

namespace zspool {

struct WritebackBatch {
  struct StagedPage {
    std::uint64_t index = 0;
    Store::Entry entry;
  };

  WritebackBatch(std::size_t capacity, std::uint32_t page_bytes)
      : page_size(page_bytes), bytes(capacity * page_bytes) {
    pages.reserve(capacity);
    writes.reserve(capacity);
    results.reserve(capacity);
    page_of_write.reserve(capacity);
  }
  std::size_t capacity() const { return bytes.size() / page_size; }
  bool full() const { return pages.size() >= capacity(); }
  std::span<std::byte> object_bytes(std::size_t k, std::size_t length) {
    return {bytes.data() + k * page_size, length};
  }

  const std::uint32_t page_size;
  std::vector<std::byte> bytes;
  std::vector<StagedPage> pages;
  std::vector<BackingFile::SlotWrite> writes;
  std::vector<Error> results;
  std::vector<std::size_t> page_of_write;  // writes[w] is pages[page_of_write[w]]'s
};

}  // namespace zspool

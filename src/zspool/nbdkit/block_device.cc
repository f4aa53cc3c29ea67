// The byte-range logic over a Store: see block_device.h for the pieces and the page locks.
#include "zspool/nbdkit/block_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <vector>

#include "zspool/platform/internal/os.h"

namespace zspool::nbd {

int errno_for(Error e) noexcept {
  switch (e) {
    case Error::ok:
      return 0;
    case Error::limit_reached:
    case Error::too_large:
    case Error::no_space:
      return ENOSPC;
    case Error::out_of_memory:
      return ENOMEM;
    case Error::invalid_argument:
      return EINVAL;
    default:  // io_error, checksum_mismatch, corrupt_data, and what a page read cannot be
      return EIO;
  }
}

namespace {

// This thread's page-sized scratch buffer for partial pages, or an empty span when it cannot be
// had. nbdkit's worker threads live as long as their connection; the buffer is its own mapping
// (os::VirtualRange), unmapped when the thread exits, so none stays resident in glibc's
// per-thread arenas after the clients are gone (store.cc's scratch pages do the same).
std::span<std::byte> scratch_page(std::size_t bytes) noexcept {
  thread_local os::VirtualRange page;
  if (!page.grow_to(bytes)) return {};
  return {page.base(), bytes};
}

Extent::Type extent_type(Store::PageState state) {
  switch (state) {
    case Store::PageState::hole:
      return Extent::Type::hole;
    case Store::PageState::zero:
      return Extent::Type::zero;
    case Store::PageState::data:
      break;
  }
  return Extent::Type::data;
}

}  // namespace

// ── creation ─────────────────────────────────────────────────────────────────────────────────

BlockDevice::BlockDevice(std::uint64_t size, std::unique_ptr<Store> store)
    : size_(size),
      page_size_(store->page_size()),
      store_(std::move(store)),
      page_locks_(new PageLock[kPageLocks]) {}

Result<std::unique_ptr<BlockDevice>> BlockDevice::create(std::uint64_t size, StoreOptions store,
                                                         std::string* why) {
  if (size == 0 || store.page_size == 0) return Error::invalid_argument;
  store.pages = size / store.page_size + (size % store.page_size != 0 ? 1 : 0);
  auto created = Store::create(std::move(store), why);
  if (!created) return created.error();
  try {
    return std::unique_ptr<BlockDevice>(new BlockDevice(size, std::move(*created)));
  } catch (const std::bad_alloc&) {
    return Error::out_of_memory;
  }
}

// ── cutting requests into pieces ─────────────────────────────────────────────────────────────

bool BlockDevice::in_range(std::uint64_t length, std::uint64_t offset) const {
  return offset <= size_ && length <= size_ - offset;
}

// Calls fn(piece, bytes before the piece in the request) for each page the request touches, in
// order, stopping at the first error.
template <typename Fn>
Error BlockDevice::for_each_piece(std::uint64_t length, std::uint64_t offset, Fn&& fn) {
  if (!in_range(length, offset)) return Error::invalid_argument;
  std::uint64_t done = 0;
  while (done < length) {
    const std::uint64_t at = offset + done;
    const auto begin = static_cast<std::uint32_t>(at % page_size_);
    const auto n =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(page_size_ - begin, length - done));
    if (const Error e = fn(Piece{at / page_size_, begin, n}, done); e != Error::ok) return e;
    done += n;
  }
  return Error::ok;
}

// ── the requests ─────────────────────────────────────────────────────────────────────────────

Error BlockDevice::read(std::span<std::byte> out, std::uint64_t offset) {
  return for_each_piece(out.size(), offset, [&](const Piece& p, std::uint64_t done) {
    return read_piece(p, out.data() + done);
  });
}

Error BlockDevice::write(std::span<const std::byte> data, std::uint64_t offset, bool fua) {
  const Error e = for_each_piece(data.size(), offset, [&](const Piece& p, std::uint64_t done) {
    return write_piece(p, data.data() + done);
  });
  return e != Error::ok ? e : flush_if(fua);
}

Error BlockDevice::zero(std::uint64_t length, std::uint64_t offset, bool may_trim, bool fua) {
  const Error e = for_each_piece(
      length, offset, [&](const Piece& p, std::uint64_t) { return zero_piece(p, may_trim); });
  return e != Error::ok ? e : flush_if(fua);
}

Error BlockDevice::trim(std::uint64_t length, std::uint64_t offset, bool fua) {
  const Error e =
      for_each_piece(length, offset, [&](const Piece& p, std::uint64_t) { return trim_piece(p); });
  return e != Error::ok ? e : flush_if(fua);
}

Error BlockDevice::flush() {
  return store_->sync_backing();
}

// ── one page's piece ─────────────────────────────────────────────────────────────────────────

Error BlockDevice::read_piece(const Piece& p, std::byte* out) {
  if (whole(p)) return store_->read(p.page, {out, page_size_});
  std::span<std::byte> page = scratch_page(page_size_);
  if (page.empty()) return Error::out_of_memory;
  if (const Error e = store_->read(p.page, page); e != Error::ok) return e;
  std::memcpy(out, page.data() + p.begin, p.length);
  return Error::ok;
}

Error BlockDevice::write_piece(const Piece& p, const std::byte* data) {
  std::lock_guard lock(page_lock(p.page));
  if (whole(p)) return store_->write(p.page, {data, page_size_});
  return patch_page(p, data);
}

Error BlockDevice::zero_piece(const Piece& p, bool may_trim) {
  std::lock_guard lock(page_lock(p.page));
  if (!whole(p)) return patch_page(p, nullptr);
  return may_trim ? store_->discard(p.page) : store_->write_same_filled(p.page, 0);
}

Error BlockDevice::trim_piece(const Piece& p) {
  std::lock_guard lock(page_lock(p.page));
  return whole(p) ? store_->discard(p.page) : patch_page(p, nullptr);
}

Error BlockDevice::patch_page(const Piece& p, const std::byte* data) {
  std::span<std::byte> page = scratch_page(page_size_);
  if (page.empty()) return Error::out_of_memory;
  if (const Error e = store_->read(p.page, page); e != Error::ok) return e;
  if (data != nullptr) {
    std::memcpy(page.data() + p.begin, data, p.length);
  } else {
    std::memset(page.data() + p.begin, 0, p.length);
  }
  return store_->write(p.page, page);
}

// ── the allocation map ───────────────────────────────────────────────────────────────────────

Error BlockDevice::extents(std::uint64_t length, std::uint64_t offset, bool first_only,
                           const std::function<bool(const Extent&)>& add) const {
  if (!in_range(length, offset)) return Error::invalid_argument;
  if (length == 0) return Error::ok;
  const std::uint64_t end = offset + length;
  const std::uint64_t last_page = std::min<std::uint64_t>((end + page_size_ - 1) / page_size_,
                                                          offset / page_size_ + kMaxExtentPages);
  std::uint64_t page = offset / page_size_;
  while (page < last_page) {
    const Extent::Type type = extent_type(store_->page_state(page));
    std::uint64_t next = page + 1;
    while (next < last_page && extent_type(store_->page_state(next)) == type) ++next;
    const std::uint64_t from = std::max(offset, page * page_size_);
    const std::uint64_t to = std::min(end, next * page_size_);
    if (!add(Extent{from, to - from, type})) return Error::out_of_memory;
    if (first_only) break;
    page = next;
  }
  return Error::ok;
}

}  // namespace zspool::nbd

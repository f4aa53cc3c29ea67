// zspool::nbd::BlockDevice — a byte-addressed block device over a zspool::Store: what the
// nbdkit plugin (plugin.cc) serves. It owns the byte-range logic; plugin.cc is C glue.
//
// Bytes and pages:
//
//   device bytes  [0 ........................................................ size)
//   store pages   │ page 0     │ page 1     │ ...        │ page n-1 (may reach past size) │
//                 ◀ page_size ▶
//
//   A request [offset, offset + length), within size, is cut at page boundaries into pieces:
//
//        offset                                                 offset + length
//          ▼                                                          ▼
//   ─┬─────┼────────┬────────────┬────────────┬───────────────────────┼──────┬─
//    │ head piece   │ whole page │ whole page │ tail piece            │      │
//   ─┴──────────────┴────────────┴────────────┴──────────────────────────────┴─
//
//   piece        read            write                  zero                  trim
//   whole page   Store::read     Store::write           write_same_filled(0)  discard
//                                                       (discard if may_trim)
//   part of one  read the page,  read-modify-write:     read-modify-write     read-modify-write
//   page         copy the part   read, patch, write     with zero bytes       with zero bytes
//
// Locking: one page lock per page, striped (page p -> page_locks_[p % kPageLocks]), held across
// every change of a page, whole or part, so a read-modify-write cannot lose a concurrent change
// to the same page, and a whole-page write cannot land between its read and its write. Reads
// take no page lock: Store::read returns one complete version of a page. There is no device-wide
// lock. Lock order: page lock -> the Store's locks (store.h); a request holds at most one page
// lock at a time, so requests never wait on each other in a cycle.
//
// Errors are the Store's Error values; errno_for() maps them to what an NBD client sees. Nothing
// here throws (a failed scratch allocation is out_of_memory).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "zspool/platform/error.h"
#include "zspool/store/store.h"

namespace zspool::nbd {

// What an NBD client sees for a Store error: limit_reached, too_large and no_space -> ENOSPC;
// io_error, checksum_mismatch and corrupt_data -> EIO (a page that cannot be read back is an I/O
// error, never wrong bytes); out_of_memory -> ENOMEM; invalid_argument -> EINVAL; ok -> 0; anything
// else -> EIO.
int errno_for(Error e) noexcept;

// One run of the allocation map (NBD's base:allocation context), in bytes.
struct Extent {
  enum class Type : std::uint8_t {
    data,  // holds data (NBD flags 0)
    zero,  // allocated, reads as zeros: zero pages (NBD_STATE_ZERO)
    hole,  // never written or discarded, reads as zeros (NBD_STATE_HOLE | NBD_STATE_ZERO)
  };
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  Type type = Type::data;
  bool operator==(const Extent&) const = default;
};

class BlockDevice {
 public:
  // The most pages one extents() call looks at (256 MiB of 4 KiB pages): a client asking about
  // a larger range gets the map up to there, and asks again from where it ends.
  static constexpr std::uint64_t kMaxExtentPages = std::uint64_t{1} << 16;

  // A device of `size` bytes (> 0) on a store of ceil(size / page_size) pages; `store.pages` is
  // ignored. Errors: invalid_argument for size 0, and Store::create's (`*why`, when given, gets
  // its line for a refused backing file).
  static Result<std::unique_ptr<BlockDevice>> create(std::uint64_t size, StoreOptions store,
                                                     std::string* why = nullptr);

  std::uint64_t size() const { return size_; }
  Store& store() { return *store_; }
  const Store& store() const { return *store_; }

  // Each request must lie within [0, size()) (invalid_argument otherwise). `fua`: the request
  // is on stable storage, as far as this device has any, when it returns (a flush after it).
  Error read(std::span<std::byte> out, std::uint64_t offset);
  Error write(std::span<const std::byte> data, std::uint64_t offset, bool fua);
  Error zero(std::uint64_t length, std::uint64_t offset, bool may_trim, bool fua);
  Error trim(std::uint64_t length, std::uint64_t offset, bool fua);
  // fdatasync of the backing file, when there is one (the pages in memory have no stable
  // storage: the device is volatile, like zram).
  Error flush();
  // Reports the allocation map from `offset`, in order, as maximal runs of one type clipped to
  // [offset, offset + length), stopping after the first run when `first_only`, or after
  // kMaxExtentPages pages. `add` returns false to stop early (and extents() returns
  // out_of_memory: the caller could not take the run).
  Error extents(std::uint64_t length, std::uint64_t offset, bool first_only,
                const std::function<bool(const Extent&)>& add) const;

 private:
  static constexpr std::size_t kPageLocks = 4096;
  struct alignas(64) PageLock {
    std::mutex mutex;
  };
  // One page's share of a request: bytes [begin, begin + length) of page `page`.
  struct Piece {
    std::uint64_t page;
    std::uint32_t begin;
    std::uint32_t length;
  };

  BlockDevice(std::uint64_t size, std::unique_ptr<Store> store);
  bool in_range(std::uint64_t length, std::uint64_t offset) const;
  bool whole(const Piece& p) const { return p.length == page_size_; }
  template <typename Fn>
  Error for_each_piece(std::uint64_t length, std::uint64_t offset, Fn&& fn);
  std::mutex& page_lock(std::uint64_t page) { return page_locks_[page % kPageLocks].mutex; }

  Error read_piece(const Piece& p, std::byte* out);
  Error write_piece(const Piece& p, const std::byte* data);
  Error zero_piece(const Piece& p, bool may_trim);
  Error trim_piece(const Piece& p);
  // Page lock held: replaces bytes [p.begin, p.begin + p.length) of the page with `data`, or
  // with zeros when data is null.
  Error patch_page(const Piece& p, const std::byte* data);
  Error flush_if(bool fua) { return fua ? flush() : Error::ok; }

  const std::uint64_t size_;
  const std::uint32_t page_size_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<PageLock[]> page_locks_;
};

}  // namespace zspool::nbd

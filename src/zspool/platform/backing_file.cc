#include "zspool/platform/backing_file.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <utility>

namespace zspool {
namespace {

constexpr std::uint64_t kMaxFileOffset = std::numeric_limits<off_t>::max();

std::uint64_t checksum_of(std::span<const std::byte> data) {
  return XXH3_64bits(data.data(), data.size());
}

// pwrite until every byte is written, retrying on EINTR and short writes.
bool write_fully(int fd, std::span<const std::byte> data, off_t offset) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // an error, or no progress at all
    data = data.subspan(static_cast<std::size_t>(n));
    offset += n;
  }
  return true;
}

enum class ReadOutcome { kComplete, kEndOfFile, kFailed };

// pread until `out` is full, retrying on EINTR and short reads.
ReadOutcome read_fully(int fd, std::span<std::byte> out, off_t offset) {
  while (!out.empty()) {
    const ssize_t n = ::pread(fd, out.data(), out.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ReadOutcome::kFailed;
    if (n == 0) return ReadOutcome::kEndOfFile;
    out = out.subspan(static_cast<std::size_t>(n));
    offset += n;
  }
  return ReadOutcome::kComplete;
}

// Arms a fault `n` calls from now (n == 1: the next call); n == 0 disarms it.
std::uint64_t call_number_from_now(const std::atomic<std::uint64_t>& calls_so_far,
                                   std::uint64_t n) {
  return n == 0 ? 0 : calls_so_far.load() + n;
}

}  // namespace

Result<std::unique_ptr<BackingFile>> BackingFile::open(const std::string& path,
                                                       std::uint32_t slot_size,
                                                       std::uint64_t max_slots) {
  if (slot_size == 0) return Error::invalid_argument;
  if (max_slots > kMaxFileOffset / slot_size) return Error::invalid_argument;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Error::io_error;
  auto* file = new (std::nothrow) BackingFile(fd, path, slot_size, max_slots);
  if (file == nullptr) {
    ::close(fd);
    return Error::out_of_memory;
  }
  return std::unique_ptr<BackingFile>(file);
}

BackingFile::BackingFile(int fd, std::string path, std::uint32_t slot_size, std::uint64_t max_slots)
    : fd_(fd), path_(std::move(path)), slot_size_(slot_size), max_slots_(max_slots) {}

BackingFile::~BackingFile() {
  ::close(fd_);
}

std::uint64_t BackingFile::slot_limit() const noexcept {
  return max_slots_ != 0 ? max_slots_ : kMaxFileOffset / slot_size_;
}

std::int64_t BackingFile::slot_offset(std::uint64_t slot) const noexcept {
  return static_cast<std::int64_t>(slot * slot_size_);  // slot < slot_limit(): no overflow
}

// ---- slot allocation -------------------------------------------------------------------------

Result<std::uint64_t> BackingFile::alloc_slot() {
  std::lock_guard lock(mutex_);
  Result<std::uint64_t> slot = reuse_or_append_slot();
  if (!slot) return slot;
  records_[*slot] = SlotRecord{.state = SlotRecord::State::kAllocated};
  slots_in_use_.fetch_add(1);
  return slot;
}

Result<std::uint64_t> BackingFile::reuse_or_append_slot() {
  if (!free_slots_.empty()) {
    const std::uint64_t slot = free_slots_.back();
    free_slots_.pop_back();
    return slot;
  }
  if (records_.size() >= slot_limit()) return Error::limit_reached;
  try {
    free_slots_.reserve(records_.size() + 1);  // so free_slot() never allocates
    records_.emplace_back();
  } catch (const std::bad_alloc&) {
    return Error::out_of_memory;
  }
  return records_.size() - 1;
}

void BackingFile::free_slot(std::uint64_t slot) {
  std::lock_guard lock(mutex_);
  if (slot >= records_.size() || records_[slot].state == SlotRecord::State::kFree) return;
  records_[slot] = SlotRecord{};
  free_slots_.push_back(slot);
  slots_in_use_.fetch_sub(1);
}

std::optional<SlotRecord> BackingFile::record(std::uint64_t slot) const {
  std::lock_guard lock(mutex_);
  if (slot >= records_.size()) return std::nullopt;
  return records_[slot];
}

std::optional<SlotRecord> BackingFile::record_if_allocated(std::uint64_t slot) const {
  std::optional<SlotRecord> rec = record(slot);
  if (!rec || rec->state == SlotRecord::State::kFree) return std::nullopt;
  return rec;
}

// ---- write -----------------------------------------------------------------------------------

Error BackingFile::write_slot(std::uint64_t slot, std::span<const std::byte> data) {
  if (data.size() > slot_size_ || !record_if_allocated(slot)) return Error::invalid_argument;
  if (next_write_is_injected_failure()) return fail_write();
  const std::uint64_t checksum = checksum_of(data);
  if (!write_fully(fd_, data, slot_offset(slot))) return fail_write();

  std::lock_guard lock(mutex_);
  SlotRecord& rec = records_[slot];
  if (rec.state == SlotRecord::State::kFree) return Error::invalid_argument;  // freed meanwhile
  rec = SlotRecord{.state = SlotRecord::State::kWritten,
                   .length = static_cast<std::uint32_t>(data.size()),
                   .checksum = checksum,
                   .sequence = next_sequence_++};
  writes_.fetch_add(1);
  return Error::ok;
}

Error BackingFile::fail_write() {
  write_failures_.fetch_add(1);
  return Error::io_error;
}

// ---- read ------------------------------------------------------------------------------------

Error BackingFile::read_slot(std::uint64_t slot, std::span<std::byte> out, std::size_t* len) {
  const std::optional<SlotRecord> rec = record_if_allocated(slot);
  if (!rec) return Error::invalid_argument;
  if (rec->state != SlotRecord::State::kWritten) return Error::not_found;
  if (out.size() < rec->length) return Error::out_of_bounds;
  const std::span<std::byte> data = out.first(rec->length);
  if (next_read_is_injected_failure()) return fail_read(data, Error::io_error);

  switch (read_fully(fd_, data, slot_offset(slot))) {
    case ReadOutcome::kFailed:
      return fail_read(data, Error::io_error);
    case ReadOutcome::kEndOfFile:  // the file holds fewer bytes than were written
      return fail_read(data, Error::checksum_mismatch);
    case ReadOutcome::kComplete:
      break;
  }
  if (checksum_of(data) != rec->checksum) return fail_read(data, Error::checksum_mismatch);
  if (len != nullptr) *len = rec->length;
  reads_.fetch_add(1);
  return Error::ok;
}

// Counts the failure and wipes what was read, so a caller that ignores the error still never
// sees wrong data.
Error BackingFile::fail_read(std::span<std::byte> data, Error e) {
  if (!data.empty()) std::memset(data.data(), 0, data.size());
  (e == Error::checksum_mismatch ? checksum_failures_ : read_failures_).fetch_add(1);
  return e;
}

// ---- statistics ------------------------------------------------------------------------------

BackingFileStats BackingFile::stats() const {
  return BackingFileStats{.slots_in_use = slots_in_use_.load(),
                          .writes = writes_.load(),
                          .reads = reads_.load(),
                          .write_failures = write_failures_.load(),
                          .read_failures = read_failures_.load(),
                          .checksum_failures = checksum_failures_.load()};
}

// ---- fault injection -------------------------------------------------------------------------

void BackingFile::fail_write_at(std::uint64_t n) {
  fail_write_at_.store(call_number_from_now(write_attempts_, n));
}

void BackingFile::fail_writes_from(std::uint64_t n) {
  fail_writes_from_.store(call_number_from_now(write_attempts_, n));
}

void BackingFile::fail_reads_at(std::uint64_t n) {
  fail_read_at_.store(call_number_from_now(read_attempts_, n));
}

void BackingFile::clear_faults() {
  fail_write_at_.store(0);
  fail_writes_from_.store(0);
  fail_read_at_.store(0);
}

bool BackingFile::next_write_is_injected_failure() {
  const std::uint64_t n = write_attempts_.fetch_add(1) + 1;
  const std::uint64_t at = fail_write_at_.load();
  const std::uint64_t from = fail_writes_from_.load();
  return (at != 0 && n == at) || (from != 0 && n >= from);
}

bool BackingFile::next_read_is_injected_failure() {
  const std::uint64_t n = read_attempts_.fetch_add(1) + 1;
  const std::uint64_t at = fail_read_at_.load();
  return at != 0 && n == at;
}

Error BackingFile::sync() {
  while (::fdatasync(fd_) != 0) {
    if (errno != EINTR) return Error::io_error;
  }
  return Error::ok;
}

Error BackingFile::corrupt_slot_on_disk(std::uint64_t slot, std::uint32_t byte_offset) {
  const std::optional<SlotRecord> rec = record_if_allocated(slot);
  if (!rec || rec->state != SlotRecord::State::kWritten || byte_offset >= rec->length) {
    return Error::invalid_argument;
  }
  std::byte b{};
  const off_t at = slot_offset(slot) + byte_offset;
  if (read_fully(fd_, std::span(&b, 1), at) != ReadOutcome::kComplete) return Error::io_error;
  b = ~b;
  if (!write_fully(fd_, std::span<const std::byte>(&b, 1), at)) return Error::io_error;
  return Error::ok;
}

}  // namespace zspool

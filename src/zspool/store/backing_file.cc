#include "zspool/store/internal/backing_file.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <utility>
#include "zspool/platform/internal/os.h"

namespace zspool {
namespace {

constexpr std::uint64_t kMaxFileOffset = std::numeric_limits<off_t>::max();

std::uint64_t checksum_of(std::span<const std::byte> data) {
  return XXH3_64bits(data.data(), data.size());
}

// pwrite until every byte is written, retrying on EINTR and short writes. 0, or the errno of
// the failure (EIO for a write that made no progress). `calls` counts the system calls.
int write_fully(int fd, std::span<const std::byte> data, off_t offset,
                std::atomic<std::uint64_t>* calls = nullptr) {
  while (!data.empty()) {
    if (calls != nullptr) calls->fetch_add(1, std::memory_order_relaxed);
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return EIO;
    data = data.subspan(static_cast<std::size_t>(n));
    offset += n;
  }
  return 0;
}

// The most iovecs one pwritev takes (IOV_MAX on Linux).
constexpr std::size_t kMaxIovecs = 1024;
// Zeros for the padding between adjacent slots' data in one pwritev.
constexpr std::size_t kZeroBytes = 64 * 1024;
alignas(64) const std::byte kZeros[kZeroBytes] = {};

// pwritev until every byte of iov[0..n) is written, retrying on EINTR and short writes (which
// advance through the vector, so iov is consumed). 0 or the errno of the failure, as
// write_fully. `calls` counts the system calls.
int writev_fully(int fd, iovec* iov, std::size_t n, off_t offset,
                 std::atomic<std::uint64_t>& calls) {
  while (n > 0) {
    calls.fetch_add(1, std::memory_order_relaxed);
    const ssize_t done = ::pwritev(fd, iov, static_cast<int>(n), offset);
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return errno;
    if (done == 0) return EIO;
    offset += done;
    auto left = static_cast<std::size_t>(done);
    while (n > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --n;
    }
    if (n > 0) {
      iov->iov_base = static_cast<char*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return 0;
}

// A full device, a quota, a file-size limit: the target ran out of room, not out of order.
Error write_error(int err) {
  return err == ENOSPC || err == EDQUOT || err == EFBIG ? Error::no_space : Error::io_error;
}

enum class ReadOutcome { kComplete, kEndOfFile, kFailed };

// pread until `out` is full, retrying on EINTR and short reads. kFailed leaves errno set.
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

std::string not_empty_reason(std::uint64_t bytes) {
  return "not empty (" + std::to_string(bytes) +
         " bytes); zspool never overwrites a file holding data: name a new or empty file (a "
         "zspool that was killed leaves its backing file behind: remove it if it was that)";
}

}  // namespace

// ---- opening the target ----------------------------------------------------------------------
namespace {

// Why a target is refused, and with which error.
struct Refusal {
  Error error;
  std::string reason;
};

// What the user named wrong (exit 2 at the CLI), as opposed to what the system failed to do.
bool names_a_wrong_target(int err) {
  switch (err) {
    case ENOENT:  // a missing parent directory
    case ENOTDIR:
    case EISDIR:
    case ELOOP:  // a symlink (O_NOFOLLOW)
    case EROFS:
    case EACCES:
    case EPERM:
    case ENAMETOOLONG:
    case ETXTBSY:
    case ENXIO:
    case ENODEV:
      return true;
    default:
      return false;
  }
}

Refusal refusal_from_errno(const char* doing, int err) {
  std::string reason = doing;
  reason += std::strerror(err);
  if (err == ELOOP) reason += " (a symbolic link is not followed)";
  if (err == EBUSY) reason += " (a block device that is mounted or held open exclusively)";
  return {names_a_wrong_target(err) ? Error::invalid_argument : Error::io_error, reason};
}

// Why a file of this type cannot be a backing target; "" when it can.
std::string unusable_type(mode_t mode, const BackingTargetOptions& target) {
  if (S_ISREG(mode)) return "";
  if (S_ISBLK(mode)) {
    return target.allow_block_device
               ? ""
               : "a block device (its contents would be destroyed; allow block devices "
                 "explicitly to use one)";
  }
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISLNK(mode)) return "a symbolic link (not followed)";
  if (S_ISCHR(mode)) return "a character device (it cannot store data and give it back)";
  if (S_ISFIFO(mode)) return "a FIFO (it cannot store data and give it back)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Before anything is opened: what lstat says is at the path (nothing at all is fine).
std::optional<Refusal> check_before_open(const std::string& path,
                                         const BackingTargetOptions& target) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::nullopt;  // created by open, or its parent is missing
    return refusal_from_errno("", errno);
  }
  const std::string bad = unusable_type(st.st_mode, target);
  if (!bad.empty()) return Refusal{Error::invalid_argument, bad};
  return std::nullopt;
}

// A block device is opened O_EXCL without O_CREAT: Linux then refuses one that is mounted. A
// regular file is created with O_EXCL when nothing is there (*created: the destructor removes
// it), else opened as it is (checked to be empty by check_opened).
int open_target(const std::string& path, bool block_device, bool* created) {
  constexpr int kCommon = O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
  *created = false;
  if (block_device) return ::open(path.c_str(), kCommon | O_EXCL);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the name may come or go in between
    const int fd = ::open(path.c_str(), kCommon | O_CREAT | O_EXCL, 0600);
    if (fd >= 0 || errno != EEXIST) {
      *created = fd >= 0;
      return fd;
    }
    const int existing = ::open(path.c_str(), kCommon);
    if (existing >= 0 || errno != ENOENT) return existing;
  }
  return -1;
}

// An O_PATH descriptor of the directory holding `path` (its last component's parent), or -1.
int open_parent_directory(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  return ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
}

std::string last_component(const std::string& path) {
  const std::size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool is_block_device(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
}

// On the opened descriptor: the type again (the path may have been swapped), the lock, and for
// a regular file, emptiness. Fills *bytes with a block device's size.
std::optional<Refusal> check_opened(int fd, const BackingTargetOptions& target, struct stat* st,
                                    std::uint64_t* device_bytes) {
  if (::fstat(fd, st) != 0) return refusal_from_errno("cannot examine it: ", errno);
  const std::string bad = unusable_type(st->st_mode, target);
  if (!bad.empty()) return Refusal{Error::invalid_argument, bad};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return Refusal{Error::busy, "in use by another process (or another store in this one)"};
    return refusal_from_errno("cannot lock it: ", errno);
  }
  if (S_ISBLK(st->st_mode)) {
    if (::ioctl(fd, BLKGETSIZE64, device_bytes) != 0)
      return refusal_from_errno("cannot tell the block device's size: ", errno);
    return std::nullopt;
  }
  if (st->st_size != 0) {
    return Refusal{Error::invalid_argument,
                   not_empty_reason(static_cast<std::uint64_t>(st->st_size))};
  }
  return std::nullopt;
}

}  // namespace

Result<std::unique_ptr<BackingFile>> BackingFile::open(const std::string& path,
                                                       std::uint32_t slot_size,
                                                       std::uint64_t max_slots,
                                                       BackingTargetOptions target,
                                                       std::string* why) {
  const auto refuse = [&](const Refusal& r) -> Error {
    if (why != nullptr) *why = "backing file " + os::shown_path(path) + ": " + r.reason;
    return r.error;
  };
  if (slot_size == 0) return refuse({Error::invalid_argument, "slot size 0"});
  if (os::path_has_nul(path)) return refuse({Error::invalid_argument, "the path holds a NUL byte"});
  if (max_slots > kMaxFileOffset / slot_size)
    return refuse({Error::invalid_argument, "more slots than a file can hold"});
  if (path.empty()) return refuse({Error::invalid_argument, "empty path"});
  if (auto refused = check_before_open(path, target)) return refuse(*refused);

  bool created = false;
  const int fd = open_target(path, target.allow_block_device && is_block_device(path), &created);
  if (fd < 0) {
    const int err = errno;
    return refuse(refusal_from_errno(err == ENOENT ? "its directory does not exist: " : "", err));
  }
  struct stat st {};
  std::uint64_t device_bytes = 0;
  if (auto refused = check_opened(fd, target, &st, &device_bytes)) {
    if (created) ::unlink(path.c_str());  // just made by this call, never written: not theirs
    ::close(fd);
    return refuse(*refused);
  }
  if (S_ISBLK(st.st_mode)) {
    const std::uint64_t device_slots = device_bytes / slot_size;
    if (device_slots == 0) {
      ::close(fd);
      return refuse({Error::invalid_argument, "block device smaller than one slot"});
    }
    max_slots = max_slots == 0 ? device_slots : std::min(max_slots, device_slots);
  }
  const Origin origin = S_ISBLK(st.st_mode) ? Origin::kBlockDevice
                        : created           ? Origin::kCreated
                                            : Origin::kGivenEmpty;
  const int dir_fd = origin == Origin::kCreated ? open_parent_directory(path) : -1;
  auto* file = new (std::nothrow)
      BackingFile(fd, path, slot_size, max_slots, identity_of(st), origin, dir_fd);
  if (file == nullptr) {
    if (created) ::unlink(path.c_str());
    if (dir_fd >= 0) ::close(dir_fd);
    ::close(fd);
    return Error::out_of_memory;
  }
  return std::unique_ptr<BackingFile>(file);
}

BackingFile::BackingFile(int fd, std::string path, std::uint32_t slot_size, std::uint64_t max_slots,
                         FileIdentity identity, Origin origin, int dir_fd)
    : fd_(fd),
      path_(std::move(path)),
      slot_size_(slot_size),
      max_slots_(max_slots),
      identity_(identity),
      origin_(origin),
      dir_fd_(dir_fd),
      owner_pid_(::getpid()) {}

BackingFile::~BackingFile() {
  if (owner_pid_.load() == ::getpid()) leave_as_found();
  if (dir_fd_ >= 0) ::close(dir_fd_);
  ::close(fd_);  // last: the flock is held until the place is left as found
}

void BackingFile::adopt_after_fork() noexcept {
  owner_pid_.store(::getpid());
}

// The slots' data is of no use to anyone once the records are gone: give the space back and
// leave the name as it was before open().
void BackingFile::leave_as_found() noexcept {
  switch (origin_) {
    case Origin::kBlockDevice:
      return;
    case Origin::kGivenEmpty:
      (void)::ftruncate(fd_, 0);  // it was empty when we took it
      return;
    case Origin::kCreated:
      (void)::ftruncate(fd_, 0);  // frees the space even if the name cannot be removed
      remove_if_still_ours();
      return;
  }
}

// Unlinks the name this file was created under, through the directory's descriptor, only if it
// still leads to this file. The name is first renamed aside (RENAME_NOREPLACE) and the file
// found there checked, so someone else's file put at the name meanwhile is renamed back, never
// removed.
void BackingFile::remove_if_still_ours() noexcept {
  if (dir_fd_ < 0) return;
  const std::string name = last_component(path_);
  char aside[64];
  std::snprintf(aside, sizeof aside, ".zspool-backing-gone.%d.%llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(identity_.inode));
  const auto ours = [&](const char* at) {
    struct stat st {};
    return ::fstatat(dir_fd_, at, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
           identity_of(st) == identity_;
  };
  if (::renameat2(dir_fd_, name.c_str(), dir_fd_, aside, RENAME_NOREPLACE) != 0) {
    // No renameat2 here (or the name is gone): check, then unlink.
    if ((errno == EINVAL || errno == ENOSYS) && ours(name.c_str()))
      ::unlinkat(dir_fd_, name.c_str(), 0);
    return;
  }
  if (ours(aside)) {
    ::unlinkat(dir_fd_, aside, 0);
  } else {
    (void)::renameat2(dir_fd_, aside, dir_fd_, name.c_str(), RENAME_NOREPLACE);
  }
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

Error BackingFile::check_write(std::uint64_t slot, std::span<const std::byte> data) const {
  return data.size() > slot_size_ || !record_if_allocated(slot) ? Error::invalid_argument
                                                                : Error::ok;
}

// The write reached the disk: the slot's record now describes it (unless the slot was freed
// meanwhile: invalid_argument, as a write to a free slot is).
Error BackingFile::record_written(std::uint64_t slot, std::size_t length, std::uint64_t checksum) {
  std::lock_guard lock(mutex_);
  SlotRecord& rec = records_[slot];
  if (rec.state == SlotRecord::State::kFree) return Error::invalid_argument;
  rec = SlotRecord{.state = SlotRecord::State::kWritten,
                   .length = static_cast<std::uint32_t>(length),
                   .checksum = checksum,
                   .sequence = next_sequence_++};
  writes_.fetch_add(1);
  return Error::ok;
}

Error BackingFile::write_slot(std::uint64_t slot, std::span<const std::byte> data) {
  if (const Error e = check_write(slot, data); e != Error::ok) return e;
  if (next_write_is_injected_failure()) return fail_write();
  const std::uint64_t checksum = checksum_of(data);
  if (const int err = write_fully(fd_, data, slot_offset(slot), &write_calls_); err != 0) {
    note_failure("write", data.size(), slot_offset(slot), err);
    return fail_write(write_error(err));
  }
  return record_written(slot, data.size(), checksum);
}

std::size_t BackingFile::write_slots(std::span<const SlotWrite> writes, std::span<Error> results) {
  if (results.size() != writes.size()) {
    std::fill(results.begin(), results.end(), Error::invalid_argument);
    return 0;
  }
  // The writes that may go to disk, by slot; the others get their error now.
  std::vector<std::size_t> order;
  order.reserve(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    results[i] = check_write(writes[i].slot, writes[i].data);
    if (results[i] != Error::ok) continue;
    if (next_write_is_injected_failure()) {
      results[i] = fail_write();
      continue;
    }
    order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return writes[a].slot < writes[b].slot; });

  // Runs of adjacent slots, each at most as long as one pwritev's vector allows.
  const std::size_t iov_per_slot = 1 + (slot_size_ + kZeroBytes - 1) / kZeroBytes;
  const std::size_t max_run = std::max<std::size_t>(1, kMaxIovecs / iov_per_slot);
  std::vector<SlotWrite> run;
  std::vector<Error*> run_results;
  run.reserve(std::min(max_run, order.size()));
  run_results.reserve(run.capacity());
  auto flush = [&] {
    if (!run.empty()) write_run(run, run_results);
    run.clear();
    run_results.clear();
  };
  for (const std::size_t i : order) {
    const bool duplicate = !run.empty() && run.back().slot == writes[i].slot;
    if (duplicate) {
      results[i] = Error::invalid_argument;
      continue;
    }
    if (!run.empty() && (run.back().slot + 1 != writes[i].slot || run.size() == max_run)) flush();
    run.push_back(writes[i]);
    run_results.push_back(&results[i]);
  }
  flush();
  return static_cast<std::size_t>(std::count(results.begin(), results.end(), Error::ok));
}

// One pwritev for a run of adjacent slots: each slot's data and zeros to the next slot's start.
void BackingFile::write_run(std::span<const SlotWrite> run, std::span<Error*> results) {
  std::array<iovec, kMaxIovecs> iov;
  std::size_t n = 0;
  std::size_t bytes = 0;
  for (std::size_t k = 0; k < run.size(); ++k) {
    iov[n++] = {const_cast<std::byte*>(run[k].data.data()), run[k].data.size()};
    bytes += run[k].data.size();
    if (k + 1 == run.size()) break;
    for (std::size_t pad = slot_size_ - run[k].data.size(); pad > 0;) {
      const std::size_t chunk = std::min(pad, kZeroBytes);
      iov[n++] = {const_cast<std::byte*>(kZeros), chunk};
      bytes += chunk;
      pad -= chunk;
    }
  }
  const std::int64_t offset = slot_offset(run.front().slot);
  if (const int err = writev_fully(fd_, iov.data(), n, offset, write_calls_); err != 0) {
    note_failure("write", bytes, offset, err);
    for (Error* r : results) *r = fail_write(write_error(err));
    return;
  }
  for (std::size_t k = 0; k < run.size(); ++k)
    *results[k] = record_written(run[k].slot, run[k].data.size(), checksum_of(run[k].data));
}

Error BackingFile::fail_write(Error e) {
  write_failures_.fetch_add(1);
  return e;
}

void BackingFile::note_failure(const char* what, std::size_t bytes, std::int64_t offset, int err) {
  std::lock_guard lock(failure_mutex_);
  std::snprintf(last_failure_, sizeof last_failure_,
                "backing file %s: %s of %zu bytes at offset %" PRId64 ": %s", path_.c_str(), what,
                bytes, offset, std::strerror(err));
}

std::string BackingFile::last_failure() const {
  std::lock_guard lock(failure_mutex_);
  return last_failure_;
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
      note_failure("read", data.size(), slot_offset(slot), errno);
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
                          .write_calls = write_calls_.load(),
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
  if (write_fully(fd_, std::span<const std::byte>(&b, 1), at) != 0) return Error::io_error;
  return Error::ok;
}

}  // namespace zspool

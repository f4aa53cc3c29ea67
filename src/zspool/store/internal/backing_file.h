// The writeback target: a file of fixed-size slots, like zram's backing device.
//
// On-disk layout: slot i is the byte range [i * slot_size, (i + 1) * slot_size) of the file. A
// slot holds `length` bytes of data (length <= slot_size) at its start; the rest of the slot is
// unspecified. The file carries no header and no metadata: what each slot holds is recorded in
// memory, in one SlotRecord per slot, and is lost when the BackingFile is destroyed.
//
//   offset 0         slot_size        2*slot_size      3*slot_size
//   ├────────────────┼────────────────┼────────────────┼──── ...
//   │ slot 0         │ slot 1         │ slot 2         │
//   │ data ░░░░░░░░░ │ data ░░░░░░░░░ │ (never written)│
//   └────────────────┴────────────────┴────────────────┴──── ...
//      ▲                ▲
//      │                └─ records_[1] = {written, length, XXH3-64 of data, sequence}
//      └─ records_[0]  = {written, length, XXH3-64 of data, sequence}
//
// The target (open): zspool never destroys a file it did not create, and never shares one.
//   accepted   a path that does not exist (created 0600), or an EMPTY regular file; with
//              allow_block_device, a block device nothing else holds open exclusively (O_EXCL:
//              a mounted filesystem is refused with EBUSY), its size capping max_slots
//   refused    a non-empty regular file (never truncated: O_TRUNC is not used), a symlink
//              (O_NOFOLLOW), a directory, a FIFO, a socket, a character device (/dev/null,
//              /dev/zero, /dev/full: they cannot give data back), a block device without the
//              opt-in; these are invalid_argument. A target another BackingFile holds, in this
//              process or another, is busy ("in use by another process").
//   how        lstat first, so without the opt-in no device or FIFO found at the path is ever
//              opened; then open(O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) and
//              every check again on the opened descriptor (fstat), so a path swapped in
//              between is caught on what was really opened (before any read or write of it;
//              its open alone cannot be undone); then flock(LOCK_EX | LOCK_NB), held until the
//              BackingFile is destroyed (flock locks an open file description: a second open
//              of the same file conflicts even in the same process). The size is checked after
//              the lock, so a file another store is filling is reported as in use.
//   at the end the file holds nothing anyone can use (the slot records die with the object), so
//              the destructor leaves the place as it was found: a file it created is removed
//              (emptied first, then unlinked through a descriptor of its directory, so a later
//              chdir does not matter, and only if the name still leads to that same file: it is
//              renamed aside, checked, and put back untouched if it is someone else's); an
//              existing empty file it was given is emptied again; a block device is left as it
//              is. So a program (or nbdkit) can be restarted with the same path. Only the
//              process that opened it does this, or the one that called adopt_after_fork():
//              a fork child that exits leaves the file to the process still using it.
//   detail     `*why`, when given, gets one line naming the path and the reason, with the
//              strerror text of any system call that failed ("backing file X: No space left
//              on device"); last_failure() keeps the same for the latest failed write or read.
//
// Contract:
//   alloc_slot() hands out the most recently freed slot, else the next never-used one;
//     Error::limit_reached once max_slots slots are in use.
//   write_slot(s, data) stores data in allocated slot s. On success the slot's record describes
//     exactly the bytes now on disk. On failure (Error::io_error, or Error::no_space when the
//     device is full: ENOSPC, EDQUOT, EFBIG) the record is unchanged; an
//     injected failure leaves the disk unchanged too, so the old contents stay readable, while a
//     real failure may have half-overwritten the slot, which then reads as checksum_mismatch.
//   write_slots(writes, results) does what write_slot does for each write (results[i] is what
//     write_slot(writes[i]) would return), in as few system calls as the slots allow: the writes
//     are sorted by slot and each run of adjacent slots goes out in one pwritev (each slot's
//     data, then zeros to the end of the slot, but after the run's last slot). A failed pwritev
//     fails every write of its run; the other runs are unaffected. Each write counts as one
//     write_slot call for the fault plan, in the order given.
//
//     one run of 3 adjacent slots, one pwritev:
//       iov: [data 5][zeros to 7·slot][data 6][zeros to 8·slot][data 7]
//       file:│ slot 5 ░░░░░░░░░│ slot 6 ░░░░░░░░░│ slot 7 │
//   read_slot(s, out, &len) copies the slot's last successfully written data into out and sets
//     *len, or fails: it never returns data that differs from what was written. A pread failure
//     is Error::io_error; a file too short to hold the recorded length, or data whose checksum
//     disagrees with the record, is Error::checksum_mismatch. On either, the first `length`
//     bytes of out are zeroed, so even a caller that ignores the error sees no wrong data.
//   All calls are thread-safe. Calls on different slots run their I/O concurrently; the record
//     table is guarded by one mutex held only to copy or update a record, never across I/O.
//     The caller must not overlap a read or write of a slot with a write of the same slot (zram
//     never does); if it does, the read returns the right data or checksum_mismatch, never a mix.
//
// Locks: mutex_ (the record table) and failure_mutex_ (the last failure's text) are never held
// together, and neither across I/O.
//
// Invariants (under mutex_):
//   slots_in_use == records_.size() - free_slots_.size()
//   every slot on free_slots_ has state kFree; every other slot < records_.size() does not
//   records_.size() <= max_slots (when max_slots != 0)
//   free_slots_.capacity() >= records_.size()   (so free_slot() never allocates)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "zspool/platform/error.h"
#include "zspool/platform/file_identity.h"

namespace zspool {

// What BackingFile::open accepts besides a new or empty regular file.
struct BackingTargetOptions {
  // Accept a block device. Off by default: a block device may hold a filesystem, which the
  // first write destroys. Even with it, a device in use (mounted) is refused.
  bool allow_block_device = false;
};

// What the BackingFile knows about one slot's contents.
struct SlotRecord {
  enum class State : std::uint8_t { kFree, kAllocated, kWritten };
  State state = State::kFree;
  std::uint32_t length = 0;    // bytes of data at the slot's start (kWritten only)
  std::uint64_t checksum = 0;  // XXH3_64bits of those bytes (kWritten only)
  std::uint64_t sequence = 0;  // file-wide write number of the last successful write, from 1
};

// A snapshot of the counters; each is read atomically, the set is not one instant.
struct BackingFileStats {
  std::uint64_t slots_in_use = 0;
  std::uint64_t writes = 0;             // slots written successfully (write_slot, write_slots)
  std::uint64_t write_calls = 0;        // pwrite/pwritev system calls that wrote slot data
  std::uint64_t reads = 0;              // successful read_slot calls
  std::uint64_t write_failures = 0;     // write_slot calls that returned io_error
  std::uint64_t read_failures = 0;      // read_slot calls that returned io_error
  std::uint64_t checksum_failures = 0;  // read_slot calls that returned checksum_mismatch
};

class BackingFile {
 public:
  // Opens the target at `path` as described at the top of this file. slot_size must be > 0;
  // max_slots == 0 means no limit other than the largest file offset (or the block device's
  // size). Errors: invalid_argument (bad sizes, or a target that is refused: it exists and is
  // not an empty regular file, a symlink, a missing parent directory, a read-only or
  // permission-denied place), busy (another BackingFile holds it), io_error (anything else the
  // system refused), out_of_memory. `*why` gets the reason in one line, naming the path.
  static Result<std::unique_ptr<BackingFile>> open(const std::string& path, std::uint32_t slot_size,
                                                   std::uint64_t max_slots,
                                                   BackingTargetOptions target = {},
                                                   std::string* why = nullptr);
  // Removes or empties the file (see "at the end" above) when this process owns it.
  ~BackingFile();
  // After fork(): this process, not the one that opened the file, is the one whose destructor
  // removes or empties it.
  void adopt_after_fork() noexcept;
  BackingFile(const BackingFile&) = delete;
  BackingFile& operator=(const BackingFile&) = delete;

  Result<std::uint64_t> alloc_slot();
  // Returns the slot to the free list. Freeing a slot that is not allocated does nothing.
  void free_slot(std::uint64_t slot);

  // invalid_argument: slot not allocated, or data longer than slot_size.
  Error write_slot(std::uint64_t slot, std::span<const std::byte> data);
  // One write of write_slots: `data` for allocated slot `slot`.
  struct SlotWrite {
    std::uint64_t slot = 0;
    std::span<const std::byte> data;
  };
  // The writes, batched (see the top of this file); results[i] gets writes[i]'s outcome. A slot
  // named twice is invalid_argument for the second. results.size() != writes.size(): nothing is
  // written, every result is invalid_argument. Returns how many succeeded.
  std::size_t write_slots(std::span<const SlotWrite> writes, std::span<Error> results);
  // invalid_argument: slot not allocated. not_found: allocated but never written.
  // out_of_bounds: out is shorter than the stored length. len may be null.
  Error read_slot(std::uint64_t slot, std::span<std::byte> out, std::size_t* len);
  // fdatasync(2) of the file: every slot written so far is on stable storage. io_error if the
  // sync fails. (The records stay in memory, so this makes the bytes durable, not the store.)
  Error sync();

  // The slot's record, or nullopt for a slot never handed out. For tests and diagnostics.
  std::optional<SlotRecord> record(std::uint64_t slot) const;
  BackingFileStats stats() const;
  std::uint32_t slot_size() const noexcept { return slot_size_; }
  std::uint64_t max_slots() const noexcept { return max_slots_; }
  const std::string& path() const noexcept { return path_; }
  // The opened file's identity (from fstat on the descriptor), to compare with a command's
  // inputs (see file_identity.h).
  const FileIdentity& identity() const noexcept { return identity_; }
  // One line naming the path and the reason for the latest real (not injected) write or read
  // failure, e.g. "backing file /x: write of 4096 bytes at offset 8192: No space left on
  // device"; "" when none failed.
  std::string last_failure() const;

  // ---- fault injection, for tests --------------------------------------------------------------
  // Write/read calls with valid arguments are numbered from 1 in the order they start; n counts
  // from now (n == 1 is the next such call; n == 0 disarms). An injected failure returns
  // io_error before touching the file and is counted like a real one.
  void fail_write_at(std::uint64_t n);     // only the n-th write_slot call from now fails
  void fail_writes_from(std::uint64_t n);  // the n-th write_slot call from now and all later fail
  void fail_reads_at(std::uint64_t n);     // only the n-th read_slot call from now fails
  void clear_faults();
  // Flips every bit of the byte at `byte_offset` within the slot, in the file itself, leaving the
  // record alone, so the next read_slot sees corruption. invalid_argument if the slot holds no
  // data or byte_offset is past its length; io_error if the file I/O fails.
  Error corrupt_slot_on_disk(std::uint64_t slot, std::uint32_t byte_offset = 0);

 private:
  // How the file came to be ours, which says what the destructor leaves behind.
  enum class Origin : std::uint8_t { kCreated, kGivenEmpty, kBlockDevice };
  BackingFile(int fd, std::string path, std::uint32_t slot_size, std::uint64_t max_slots,
              FileIdentity identity, Origin origin, int dir_fd);
  void leave_as_found() noexcept;
  void remove_if_still_ours() noexcept;

  Result<std::uint64_t> reuse_or_append_slot();  // mutex_ held
  std::uint64_t slot_limit() const noexcept;
  std::int64_t slot_offset(std::uint64_t slot) const noexcept;
  std::optional<SlotRecord> record_if_allocated(std::uint64_t slot) const;
  bool next_write_is_injected_failure();
  bool next_read_is_injected_failure();
  Error fail_write(Error e = Error::io_error);
  Error check_write(std::uint64_t slot, std::span<const std::byte> data) const;
  void write_run(std::span<const SlotWrite> run, std::span<Error*> results);
  Error record_written(std::uint64_t slot, std::size_t length, std::uint64_t checksum);
  Error fail_read(std::span<std::byte> data, Error e);
  void note_failure(const char* what, std::size_t bytes, std::int64_t offset, int err);

  const int fd_;
  const std::string path_;
  const std::uint32_t slot_size_;
  const std::uint64_t max_slots_;
  const FileIdentity identity_;
  const Origin origin_;
  const int dir_fd_;  // O_PATH descriptor of the directory the file was created in; -1 if none
  std::atomic<int> owner_pid_;  // the process whose destructor leaves the place as found

  // The latest real failure, as text; a fixed buffer so that recording it never allocates.
  mutable std::mutex failure_mutex_;
  char last_failure_[256] = {};

  mutable std::mutex mutex_;
  std::vector<SlotRecord> records_;        // index = slot number
  std::vector<std::uint64_t> free_slots_;  // freed slots, reused last-in first-out
  std::uint64_t next_sequence_ = 1;

  std::atomic<std::uint64_t> slots_in_use_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::atomic<std::uint64_t> write_calls_{0};
  std::atomic<std::uint64_t> reads_{0};
  std::atomic<std::uint64_t> write_failures_{0};
  std::atomic<std::uint64_t> read_failures_{0};
  std::atomic<std::uint64_t> checksum_failures_{0};

  // Fault plan. Attempt counters number every call; a target of 0 is disarmed.
  std::atomic<std::uint64_t> write_attempts_{0};
  std::atomic<std::uint64_t> read_attempts_{0};
  std::atomic<std::uint64_t> fail_write_at_{0};
  std::atomic<std::uint64_t> fail_writes_from_{0};
  std::atomic<std::uint64_t> fail_read_at_{0};
};

}  // namespace zspool

// libFuzzer target: reading a corrupted backing file. Slots are written with known contents;
// then the input overwrites bytes of the file itself (offset, value pairs) and may truncate it.
// Every read must return either exactly what was written or an error (checksum_mismatch /
// io_error) — never wrong data, never a crash.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "zspool/store/internal/backing_file.h"

namespace {

constexpr std::uint32_t kSlotSize = 4096;
constexpr int kSlots = 6;

std::vector<std::byte> slot_contents(int slot, std::size_t n) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = static_cast<std::byte>((slot * 131 + i * 7) ^ (i >> 5));
  return v;
}

[[noreturn]] void fail(const char* what, int slot) {
  std::fprintf(stderr, "backing_file_fuzz: %s (slot %d)\n", what, slot);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  char path[] = "/tmp/zspool-bf-fuzz-XXXXXX";
  const int tmp = mkstemp(path);
  if (tmp < 0) return 0;
  close(tmp);
  auto opened = zspool::BackingFile::open(path, kSlotSize, 0);
  if (!opened) fail("open failed", -1);
  auto& file = **opened;
  std::vector<std::size_t> lengths;
  for (int s = 0; s < kSlots; ++s) {
    auto slot = file.alloc_slot();
    if (!slot || *slot != static_cast<std::uint64_t>(s)) fail("alloc_slot", s);
    const std::size_t len = size > static_cast<std::size_t>(s) ? 1 + data[s] * 16 : 100 + s;
    lengths.push_back(len);
    if (file.write_slot(*slot, slot_contents(s, len)) != zspool::Error::ok) fail("write", s);
  }
  // Corrupt the file through a second descriptor: 4-byte records (offset u16 * 8, slot, value),
  // a final odd byte truncates the file to a fuzzer-chosen length.
  const int fd = ::open(path, O_RDWR);
  for (std::size_t i = kSlots; fd >= 0 && i + 4 <= size; i += 4) {
    const off_t off = static_cast<off_t>(data[i + 2] % kSlots) * kSlotSize +
                      ((data[i] | (data[i + 1] << 8)) % kSlotSize);
    const std::uint8_t value = data[i + 3];
    if (pwrite(fd, &value, 1, off) != 1) break;
  }
  if (fd >= 0 && size % 4 == 3) {
    if (ftruncate(fd, static_cast<off_t>(data[size - 1]) * 97) != 0) {
    }
  }
  if (fd >= 0) close(fd);
  for (int s = 0; s < kSlots; ++s) {
    std::vector<std::byte> out(kSlotSize);
    std::size_t len = 0;
    const zspool::Error e = file.read_slot(static_cast<std::uint64_t>(s), out, &len);
    if (e == zspool::Error::ok) {
      const auto want = slot_contents(s, lengths[s]);
      if (len != want.size() || std::memcmp(out.data(), want.data(), len) != 0)
        fail("read returned wrong data", s);
    } else if (e != zspool::Error::checksum_mismatch && e != zspool::Error::io_error) {
      fail("unexpected error", s);
    }
  }
  unlink(path);
  return 0;
}

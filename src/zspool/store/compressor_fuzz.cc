// libFuzzer target: every compressor, with and without a dictionary, given hostile input.
//
//   input = [selector] [size] payload...
//   selector % 5    the compressor: lz4, lz4:dict, zstd, zstd:dict, lzo1x
//   selector / 5    0: decode the payload       1: decode the dictionary's id + the payload
//   (mod 3)         2: compress the payload into `size`-chosen room, then decode it back
//   size            the output room: a page (4 KiB), or 1 + size * 17 bytes (at most 4336)
//
// Decoding must answer ok or corrupt_data and stay inside its buffer (guard bytes either side;
// ASan checks the rest). Mode 1 gets past the lz4 dictionary id check, so the payload reaches
// LZ4_decompress_safe_usingDict. A compression must fit its room exactly or answer kDoesNotFit,
// and whatever it produced must decode to the payload.
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "zspool/store/compressor.h"

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kGuard = 32;
constexpr std::byte kCanary{0xA5};

[[noreturn]] void fail(const char* what, const zspool::Compressor& c) {
  std::fprintf(stderr, "compressor_fuzz: %s: %s\n", c.spec().c_str(), what);
  std::abort();
}

// Text-like pages for the dictionary: a few repeated words, as C headers repeat boilerplate.
std::vector<std::byte> training_pages() {
  static const char* const kWords[] = {"static ",  "inline ", "int ",  "struct ", "return ",
                                       "#define ", "zspool_", "pool ", "{\n",     "}\n"};
  std::vector<std::byte> pages;
  std::uint64_t s = 7;
  while (pages.size() < 200 * kPage) {
    s = s * 6364136223846793005u + 1442695040888963407u;
    for (const char* c = kWords[(s >> 33) % std::size(kWords)]; *c != '\0'; ++c)
      pages.push_back(static_cast<std::byte>(*c));
  }
  pages.resize(200 * kPage);
  return pages;
}

// The five compressors, made once. The dictionary file is read when a compressor is made, so it
// is removed at once.
const std::array<std::unique_ptr<zspool::Compressor>, 5>& compressors() {
  static const std::array<std::unique_ptr<zspool::Compressor>, 5> all = [] {
    auto dictionary = zspool::train_zstd_dictionary(training_pages(), kPage, 8 << 10);
    if (!dictionary) std::abort();
    char path[] = "/tmp/zspool-compressor-fuzz-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0 || write(fd, dictionary->data(), dictionary->size()) !=
                      static_cast<ssize_t>(dictionary->size())) {
      std::abort();
    }
    close(fd);
    const std::string dict = path;
    std::array<std::unique_ptr<zspool::Compressor>, 5> made;
    const char* const specs[] = {"lz4", "lz4:dict=", "zstd", "zstd:dict=", "lzo1x"};
    for (std::size_t i = 0; i < made.size(); ++i) {
      std::string spec = specs[i];
      if (spec.back() == '=') spec += dict;
      auto c = zspool::make_compressor(spec);
      if (!c) std::abort();
      made[i] = std::move(*c);
    }
    unlink(path);
    return made;
  }();
  return all;
}

// Decodes `src` into `size` bytes between guards: ok or corrupt_data, nothing written outside.
zspool::Error decode_guarded(const zspool::Compressor& c, std::span<const std::byte> src,
                             std::size_t size, std::vector<std::byte>& out) {
  std::vector<std::byte> room(size + 2 * kGuard, kCanary);
  const zspool::Error e = c.decompress(src, std::span(room).subspan(kGuard, size));
  if (e != zspool::Error::ok && e != zspool::Error::corrupt_data) fail("unexpected error", c);
  for (std::size_t i = 0; i < kGuard; ++i) {
    if (room[i] != kCanary || room[kGuard + size + i] != kCanary) fail("wrote outside dst", c);
  }
  out.assign(room.begin() + kGuard, room.begin() + kGuard + static_cast<std::ptrdiff_t>(size));
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const zspool::Compressor& c = *compressors()[data[0] % 5];
  const unsigned mode = (data[0] / 5) % 3;
  const std::size_t room = data[1] < 16 ? kPage : 1 + std::size_t{data[1]} * 17;
  const auto* bytes = reinterpret_cast<const std::byte*>(data + 2);
  const std::vector<std::byte> payload(bytes, bytes + (size - 2));
  std::vector<std::byte> out;

  if (mode == 0) {
    decode_guarded(c, payload, room, out);
  } else if (mode == 1) {
    std::vector<std::byte> framed(4);
    const std::uint32_t id = c.dictionary_id();
    for (int i = 0; i < 4; ++i) framed[i] = static_cast<std::byte>(id >> (8 * i));
    framed.insert(framed.end(), payload.begin(), payload.end());
    decode_guarded(c, framed, room, out);
  } else {
    std::vector<std::byte> packed(room + 2 * kGuard, kCanary);
    const auto n = c.compress(payload, std::span(packed).subspan(kGuard, room));
    for (std::size_t i = 0; i < kGuard; ++i) {
      if (packed[i] != kCanary || packed[kGuard + room + i] != kCanary)
        fail("compress wrote outside dst", c);
    }
    if (!n) {
      if (n.error() != zspool::kDoesNotFit) fail("compress failed", c);
      return 0;
    }
    if (*n > room) fail("compress claims more than its room", c);
    const auto result = std::span<const std::byte>(packed).subspan(kGuard, *n);
    if (decode_guarded(c, result, payload.size(), out) != zspool::Error::ok || out != payload)
      fail("a compressed payload did not decode to itself", c);
  }
  return 0;
}

// libFuzzer target: the C API's handles against a model (handle_model_test.h). The input is a
// byte program: the first byte chooses writeback or not, then each operation is one byte
// (op % HandleModel::kOps) and a 3-byte argument. A stale or never-issued value that succeeds,
// a valid handle that fails or reads wrong bytes, or anything left at the end aborts.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "zspool/core/handle_model_test.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::size_t pos = 0;
  const auto byte = [&]() -> std::uint32_t { return pos < size ? data[pos++] : 0; };
  zspool::test::HandleModel model((byte() & 1) != 0);
  std::string failure;
  for (int steps = 0; pos < size && steps < 1500 && failure.empty(); ++steps) {
    const auto op = static_cast<std::uint8_t>(byte());
    const std::uint32_t arg = byte() | byte() << 8 | byte() << 16;
    failure = model.step(op, arg);
  }
  if (failure.empty()) failure = model.finish();
  if (!failure.empty()) {
    std::fprintf(stderr, "zsmalloc_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}

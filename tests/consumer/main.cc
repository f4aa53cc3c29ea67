// An installed-zspool consumer: the C++ API (and the C one, from C++) through
// find_package(zspool) or pkg-config. Prints OK and exits 0 when everything round-trips.
#include <zspool/core/pool.h>
#include <zspool/core/zsmalloc.h>

#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

namespace {

int fail(const char* what) {
  std::fprintf(stderr, "zspool consumer: %s\n", what);
  return 1;
}

}  // namespace

int main() {
  auto pool = zspool::Pool::create({});
  if (!pool) return fail("Pool::create");
  constexpr std::string_view kText = "the quick brown fox jumps over the lazy dog";
  auto h = (*pool)->malloc(kText.size());
  if (!h) return fail("malloc");
  const auto* in = reinterpret_cast<const std::byte*>(kText.data());
  if ((*pool)->write(*h, {in, kText.size()}) != zspool::Error::ok) return fail("write");
  std::vector<std::byte> out(kText.size());
  if ((*pool)->read(*h, out) != zspool::Error::ok) return fail("read");
  if (std::memcmp(out.data(), kText.data(), kText.size()) != 0) return fail("bytes differ");
  if ((*pool)->free(*h) != zspool::Error::ok) return fail("free");
  if ((*pool)->free(*h) != zspool::Error::stale_handle) return fail("double free not reported");
  if ((*pool)->total_pages() != 0) return fail("pages left after free");

  zs_pool* c = zs_create_pool("consumer");
  if (c == nullptr) return fail("zs_create_pool");
  const unsigned long ch = zs_malloc(c, 100, 0);
  if (zs_is_error(ch)) return fail("zs_malloc");
  if (zs_obj_write(c, ch, kText.data(), 0, kText.size()) != 0) return fail("zs_obj_write");
  zs_free(c, ch);
  zs_destroy_pool(c);
  std::puts("OK");
  return 0;
}

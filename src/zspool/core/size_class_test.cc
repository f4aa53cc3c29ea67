#include "zspool/core/size_class.h"

#include <gtest/gtest.h>

namespace zspool {
namespace {

struct Row {
  std::uint32_t size, pages, objs;
};

const SizeClass* find_class(const SizeClassTable& t, std::uint32_t size) {
  for (const SizeClass& c : t.classes())
    if (c.size == size) return &c;
  return nullptr;
}

void expect_rows(const SizeClassTable& t, std::initializer_list<Row> rows) {
  for (const Row& r : rows) {
    const SizeClass* c = find_class(t, r.size);
    ASSERT_NE(c, nullptr) << "no distinct class of size " << r.size;
    EXPECT_EQ(c->pages_per_zspage, r.pages) << "size " << r.size;
    EXPECT_EQ(c->objs_per_zspage, r.objs) << "size " << r.size;
  }
}

// Counts and huge_class_size from ../shared/notes/ZSMALLOC.md §1 (the kernel's own figures);
// rows worked by hand from least tail waste, e.g. chain 8, size 352: waste over k = 1..8 is
// 224, 96, 320, 192, 64, 288, 160, 32 -> k = 8, 32768 / 352 = 93 objects.
TEST(SizeClassTable, Chain4MatchesKernel) {
  auto t = SizeClassTable::make(4096, 4);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->classes().size(), 69u);
  EXPECT_EQ(t->huge_class_size(), 3257u);
  EXPECT_EQ(t->candidate_count(), 255u);
  // 48: waste 16, 32, 0 -> k = 3, 256 objects. 3264: 832, 1664, 2496, 64 -> k = 4, 5 objects.
  expect_rows(*t,
              {{32, 1, 128}, {48, 3, 256}, {208, 3, 59}, {2048, 1, 2}, {3264, 4, 5}, {4096, 1, 1}});
}

TEST(SizeClassTable, Chain8MatchesKernel) {
  auto t = SizeClassTable::make(4096, 8);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->classes().size(), 119u);
  EXPECT_EQ(t->huge_class_size(), 3625u);
  expect_rows(*t, {{32, 1, 128},
                   {192, 3, 64},
                   {352, 8, 93},
                   {512, 1, 8},
                   {672, 1, 6},
                   {848, 5, 24},
                   {1024, 1, 4},
                   {1216, 3, 10},
                   {1504, 7, 19},
                   {1792, 7, 16},
                   {2272, 5, 9},
                   {2976, 8, 11},
                   {3632, 8, 9},
                   {4096, 1, 1}});
}

TEST(SizeClassTable, Chain16MatchesKernel) {
  auto t = SizeClassTable::make(4096, 16);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->classes().size(), 192u);
  EXPECT_EQ(t->huge_class_size(), 3833u);
  expect_rows(*t, {{32, 1, 128}, {4096, 1, 1}});
}

TEST(SizeClassTable, RequestsMapToTheSmallestClassThatFitsWithHeader) {
  auto t = SizeClassTable::make(4096, 8);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->class_for_request(1).size, 32u);
  EXPECT_EQ(t->class_for_request(24).size, 32u);
  EXPECT_EQ(t->class_for_request(25).size, 48u);
  EXPECT_EQ(t->class_for_request(4096).size, 4096u);
  EXPECT_TRUE(t->class_for_request(t->huge_class_size()).huge);
  EXPECT_FALSE(t->class_for_request(t->huge_class_size() - 1).huge);
  for (std::size_t n = 1; n <= 4096; ++n) {
    const SizeClass& c = t->class_for_request(n);
    ASSERT_GE(c.capacity(), n) << n;
    if (c.index > 0) {
      ASSERT_LT(t->at(c.index - 1).capacity(), n) << n;
    }
  }
}

TEST(SizeClassTable, ClassesAscendAndWasteIsLeast) {
  for (std::uint32_t ps : {4096u, 16384u, 65536u}) {
    auto t = SizeClassTable::make(ps, 8);
    ASSERT_TRUE(t.ok());
    std::uint32_t prev = 0;
    for (const SizeClass& c : t->classes()) {
      EXPECT_GT(c.size, prev);
      prev = c.size;
      EXPECT_EQ(c.objs_per_zspage, c.pages_per_zspage * ps / c.size);
      EXPECT_EQ(c.huge, c.pages_per_zspage == 1 && c.objs_per_zspage == 1);
    }
    EXPECT_EQ(t->classes().back().size, ps);
    EXPECT_EQ(t->delta(), ps >> 8);
  }
  auto t64 = SizeClassTable::make(65536, 8);
  EXPECT_EQ(t64->classes().size(), 123u);
  EXPECT_EQ(t64->huge_class_size(), 58137u);
}

TEST(SizeClassTable, RejectsBadGeometry) {
  EXPECT_EQ(SizeClassTable::make(3000, 8).error(), Error::invalid_argument);
  EXPECT_EQ(SizeClassTable::make(2048, 8).error(), Error::invalid_argument);
  EXPECT_EQ(SizeClassTable::make(131072, 8).error(), Error::invalid_argument);
  EXPECT_EQ(SizeClassTable::make(4096, 0).error(), Error::invalid_argument);
  EXPECT_EQ(SizeClassTable::make(4096, 17).error(), Error::invalid_argument);
}

}  // namespace
}  // namespace zspool

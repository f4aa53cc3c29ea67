// Dictionaries: training (libzstd's ZDICT), the "zstd[:N]:dict=FILE" and "lz4[:N]:dict=FILE"
// specs, the id every compressed page carries, and Store::train_dictionary.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zdict.h>
#include <zstd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "zspool/store/compressor.h"
#include "zspool/store/store.h"
#include "zspool/workload/rng.h"

namespace zspool {
namespace {

constexpr std::size_t kPage = 4096;

// A page of C-header-like lines: the same boilerplate on every page (what a dictionary learns),
// names and numbers that differ (what it cannot). `flavour` changes the boilerplate, so two
// flavours train different dictionaries.
std::vector<std::byte> header_page(std::uint64_t seed, int flavour) {
  static const char* const kLines[2][6] = {
      {"#define ZSPOOL_CONFIG_OPTION_%llu 0x%llx /* configuration register */\n",
       "static inline int zspool_handle_lookup_%llu(struct zspool_pool *pool, unsigned long h);\n",
       "extern void zspool_size_class_release_%llu(struct size_class *class, int index);\n",
       "typedef struct zspool_descriptor_%llu { unsigned long flags; void *first; } desc_t;\n",
       "#ifndef ZSPOOL_FEATURE_%llu\n#  define ZSPOOL_FEATURE_%llx 1\n#endif\n",
       "/* Copyright (c) the zspool authors. SPDX-License-Identifier: Apache-2.0 %llu */\n"},
      {"PyObject *Py_MethodTable_%llu(PyObject *self, PyObject *args); // %llx\n",
       "    if (PyErr_Occurred()) { Py_DECREF(result_%llu); return NULL; }\n",
       "SELECT id, name, created_at FROM events_%llu WHERE owner = 'user-%llx';\n",
       "<div class=\"navigation-item item-%llu\"><a href=\"/page/%llx\">link</a></div>\n",
       "    \"timestamp\": \"2026-12-02T02:%llu:00Z\", \"status\": %llu,\n",
       "java.lang.NullPointerException at com.example.Service%llu.handle(Service.java:%llu)\n"}};
  std::string text;
  std::uint64_t s = seed * 2654435761u + static_cast<std::uint64_t>(flavour);
  char line[256];
  while (text.size() < kPage) {
    s = splitmix64_at(s);
    const auto a = static_cast<unsigned long long>(s % 100000);
    const auto b = static_cast<unsigned long long>((s >> 20) % 65536);
    std::snprintf(line, sizeof line, kLines[flavour][s % 6], a, b);
    text += line;
  }
  std::vector<std::byte> page(kPage);
  std::memcpy(page.data(), text.data(), kPage);
  return page;
}

std::vector<std::byte> header_pages(std::uint64_t first, std::uint64_t count, int flavour) {
  std::vector<std::byte> pages;
  for (std::uint64_t i = first; i < first + count; ++i) {
    const auto p = header_page(i, flavour);
    pages.insert(pages.end(), p.begin(), p.end());
  }
  return pages;
}

class DictionaryTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NE(::mkdtemp(dir_.data()), nullptr); }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A dictionary trained on pages of `flavour`, saved; its path.
  std::string trained(int flavour, const std::string& name) {
    std::string why;
    auto dictionary = train_zstd_dictionary(header_pages(0, 300, flavour), kPage, 16 << 10, &why);
    EXPECT_TRUE(dictionary.ok()) << why;
    return save(name, dictionary.ok() ? *dictionary : std::vector<std::byte>{});
  }

  std::string save(const std::string& name, const std::vector<std::byte>& bytes) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  void serves_four_threads(const std::string& spec);
  void uses_dictionary_as_primary_and_secondary(const std::string& algorithm,
                                                const std::string& path);

  static std::vector<std::byte> read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> chars{std::istreambuf_iterator<char>(in), {}};
    std::vector<std::byte> bytes(chars.size());
    std::memcpy(bytes.data(), chars.data(), chars.size());
    return bytes;
  }

  std::unique_ptr<Compressor> make(const std::string& spec) {
    std::string why;
    auto c = make_compressor(spec, &why);
    EXPECT_TRUE(c.ok()) << spec << ": " << why;
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::string dir_ = (std::filesystem::temp_directory_path() / "zspool-dict-XXXXXX").string();
};

std::uint64_t compressed_bytes(const Compressor& c, std::uint64_t first, std::uint64_t count) {
  std::vector<std::byte> out(c.max_compressed_size(kPage));
  std::uint64_t total = 0;
  for (std::uint64_t i = first; i < first + count; ++i) {
    auto n = c.compress(header_page(i, 0), out);
    EXPECT_TRUE(n.ok());
    total += n.ok() ? *n : kPage;
  }
  return total;
}

TEST_F(DictionaryTest, DictionarySpecRoundTripsAndBeatsPlainZstd) {
  const std::string path = trained(0, "a.dict");
  auto with = make("zstd:dict=" + path);
  auto plain = make("zstd");
  ASSERT_TRUE(with && plain);
  EXPECT_EQ(with->spec(), "zstd:3:dict=" + path);
  EXPECT_NE(with->dictionary_id(), 0u);
  EXPECT_EQ(plain->dictionary_id(), 0u);
  EXPECT_EQ(make(with->spec())->dictionary_id(), with->dictionary_id());
  EXPECT_EQ(make("zstd:19:dict=" + path)->spec(), "zstd:19:dict=" + path);
  // Pages the dictionary never saw (300 ..) still compress smaller with it.
  EXPECT_LT(compressed_bytes(*with, 300, 50), compressed_bytes(*plain, 300, 50) * 9 / 10);
  std::vector<std::byte> out(with->max_compressed_size(kPage)), back(kPage);
  for (std::uint64_t i = 300; i < 310; ++i) {
    const auto page = header_page(i, 0);
    auto n = with->compress(page, out);
    ASSERT_TRUE(n.ok());
    ASSERT_EQ(with->decompress(std::span(out).first(*n), back), Error::ok);
    EXPECT_EQ(back, page);
  }
}

// lz4 takes the same files: their content (not the zstd entropy tables) is lz4's history.
TEST_F(DictionaryTest, Lz4DictionarySpecRoundTripsAndBeatsPlainLz4) {
  const std::string path = trained(0, "a.dict");
  auto with = make("lz4:dict=" + path);
  auto fast = make("lz4:8:dict=" + path);
  auto plain = make("lz4");
  ASSERT_TRUE(with && fast && plain);
  EXPECT_EQ(with->spec(), "lz4:dict=" + path);
  EXPECT_EQ(fast->spec(), "lz4:8:dict=" + path);
  EXPECT_EQ(with->dictionary_id(), make("zstd:dict=" + path)->dictionary_id());
  EXPECT_EQ(plain->dictionary_id(), 0u);
  EXPECT_LT(compressed_bytes(*with, 300, 50), compressed_bytes(*plain, 300, 50) * 9 / 10);
  std::vector<std::byte> out(with->max_compressed_size(kPage)), back(kPage);
  for (std::uint64_t i = 300; i < 310; ++i) {
    const auto page = header_page(i, 0);
    for (const Compressor* c : {with.get(), fast.get()}) {
      auto n = c->compress(page, out);
      ASSERT_TRUE(n.ok());
      ASSERT_EQ(c->decompress(std::span(out).first(*n), back), Error::ok);
      EXPECT_EQ(back, page);
    }
  }
}

// An lz4 page carries its dictionary's id in 4 bytes before the block: another dictionary
// refuses it, and so does a dictionary compressor given a plain block (no id).
TEST_F(DictionaryTest, AnLz4PageIsNeverDecodedWithTheWrongDictionary) {
  auto a = make("lz4:dict=" + trained(0, "a.dict"));
  auto b = make("lz4:dict=" + trained(1, "b.dict"));
  auto plain = make("lz4");
  ASSERT_TRUE(a && b && plain);
  std::vector<std::byte> out(a->max_compressed_size(kPage)), back(kPage);
  auto n = a->compress(header_page(400, 0), out);
  ASSERT_TRUE(n.ok());
  std::uint32_t id = 0;
  std::memcpy(&id, out.data(), sizeof id);  // little-endian on the machines this runs on
  EXPECT_EQ(id, a->dictionary_id()) << "the page names it";
  EXPECT_EQ(b->decompress(std::span(out).first(*n), back), Error::corrupt_data);
  auto p = plain->compress(header_page(400, 0), out);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(a->decompress(std::span(out).first(*p), back), Error::corrupt_data);
}

// A frame names its dictionary: decoding it with another dictionary, or none, is corrupt_data,
// never wrong bytes.
TEST_F(DictionaryTest, AFrameIsNeverDecodedWithTheWrongDictionaryOrNone) {
  auto a = make("zstd:dict=" + trained(0, "a.dict"));
  auto b = make("zstd:dict=" + trained(1, "b.dict"));
  auto plain = make("zstd");
  ASSERT_TRUE(a && b && plain);
  ASSERT_NE(a->dictionary_id(), b->dictionary_id());
  std::vector<std::byte> out(a->max_compressed_size(kPage)), back(kPage);
  auto n = a->compress(header_page(400, 0), out);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(ZSTD_getDictID_fromFrame(out.data(), *n), a->dictionary_id()) << "the frame names it";
  EXPECT_EQ(b->decompress(std::span(out).first(*n), back), Error::corrupt_data);
  EXPECT_EQ(plain->decompress(std::span(out).first(*n), back), Error::corrupt_data);
  // And a plain frame needs no dictionary: a dictionary compressor reads it (zstd's rule).
  auto p = plain->compress(header_page(400, 0), out);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(a->decompress(std::span(out).first(*p), back), Error::ok);
}

TEST_F(DictionaryTest, BadDictionarySpecsAreRefusedWithAReason) {
  const std::string good = trained(0, "a.dict");
  const std::string text = save("text", std::vector<std::byte>(1000, std::byte{'x'}));
  // A dictionary's magic and id over garbage; and a real one cut after its entropy tables (its
  // repeat offsets then point outside it).
  std::vector<std::byte> damaged(2000, std::byte{0x5a});
  const std::uint32_t magic_and_id[] = {0xEC30A437, 12345};
  std::memcpy(damaged.data(), magic_and_id, sizeof magic_and_id);
  std::vector<std::byte> tables_only = read(good);
  tables_only.resize(ZDICT_getDictHeaderSize(tables_only.data(), tables_only.size()));
  const std::string damaged_path = save("damaged", damaged);
  const std::string tables_path = save("tables-only", tables_only);
  const struct {
    std::string spec;
    std::string mentions;
  } cases[] = {
      {"zstd:dict=", "names no file"},
      {"zstd:dict=" + dir_ + "/missing", "No such file or directory"},
      {"zstd:dict=" + text, "not a zstd dictionary"},
      {"zstd:dict=" + dir_, "not a regular file"},
      {"zstd:0:dict=" + good, ""},
      {"zstd:x:dict=" + good, ""},
      {"zstd::dict=" + good, ""},
      {"lz4:dict=", "names no file"},
      {"lz4:dict=" + text, "not a zstd dictionary"},
      {"lz4:0:dict=" + good, ""},
      {"lz4:x:dict=" + good, ""},
      {"lz4:8:dict=" + dir_, "not a regular file"},
      {"lzo1x:dict=" + good, ""},
      {"zstd:dict=" + damaged_path, "entropy tables do not parse"},
      {"lz4:dict=" + damaged_path, "entropy tables do not parse"},
      {"lz4:dict=" + tables_path, "entropy tables do not parse"},  // zstd wants content too
      // The OS would see only the part before the NUL, a real dictionary.
      {"zstd:dict=" + good + std::string("\0/elsewhere", 11), "the path holds a NUL byte"},
  };
  for (const auto& c : cases) {
    std::string why;
    auto made = make_compressor(c.spec, &why);
    EXPECT_EQ(made.error(), Error::invalid_argument) << c.spec;
    EXPECT_NE(why.find(c.mentions), std::string::npos) << c.spec << ": " << why;
  }
}

TEST_F(DictionaryTest, TrainingRefusesBadSizesAndSaysWhyLibzstdRefuses) {
  const auto pages = header_pages(0, 4, 0);
  EXPECT_EQ(train_zstd_dictionary(pages, kPage, 100).error(), Error::invalid_argument);
  EXPECT_EQ(train_zstd_dictionary(pages, 0, 4096).error(), Error::invalid_argument);
  EXPECT_EQ(train_zstd_dictionary(pages, 1000, 4096).error(), Error::invalid_argument);
  std::string why;
  EXPECT_EQ(train_zstd_dictionary(std::span(pages).first(kPage), kPage, 64 << 10, &why).error(),
            Error::invalid_argument)
      << "one sample is too few";
  EXPECT_FALSE(why.empty());
  EXPECT_FALSE(zstd_dictionary_id(pages).ok()) << "text is not a dictionary";
}

TEST_F(DictionaryTest, OneDictionaryCompressorServesFourThreads) {
  const std::string path = trained(0, "a.dict");
  for (const std::string& spec : {"zstd:dict=" + path, "lz4:dict=" + path})
    serves_four_threads(spec);
}

void DictionaryTest::serves_four_threads(const std::string& spec) {
  SCOPED_TRACE(spec);
  auto c = make(spec);
  ASSERT_TRUE(c);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::byte> out(c->max_compressed_size(kPage)), back(kPage);
      for (std::uint64_t i = 0; i < 200; ++i) {
        const auto page = header_page(1000 * t + i, 0);
        auto n = c->compress(page, out);
        if (!n || c->decompress(std::span(out).first(*n), back) != Error::ok || back != page)
          failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

// ---- the store ---------------------------------------------------------------------------------

// A store with `algorithm:dict=path` holds header pages in fewer bytes than one with plain
// `algorithm`, whose `recompress all` with the dictionary as its secondary then holds no more;
// both read every page back.
void DictionaryTest::uses_dictionary_as_primary_and_secondary(const std::string& algorithm,
                                                              const std::string& path) {
  SCOPED_TRACE(algorithm);
  const std::string spec = algorithm + ":dict=" + path;
  auto with = Store::create({.pages = 400, .compressor = spec});
  auto plain = Store::create({.pages = 400, .compressor = algorithm, .recompress_with = {spec}});
  ASSERT_TRUE(with.ok() && plain.ok());
  for (std::uint64_t i = 0; i < 400; ++i) {
    ASSERT_EQ((*with)->write(i, header_page(i, 0)), Error::ok);
    ASSERT_EQ((*plain)->write(i, header_page(i, 0)), Error::ok);
  }
  EXPECT_LT((*with)->stats().compr_data_size, (*plain)->stats().compr_data_size * 9 / 10);
  auto r = (*plain)->recompress(RecompressKind::all);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->recompressed, 400u);
  // Each page keeps the smaller of its two forms there.
  EXPECT_LE((*plain)->stats().compr_data_size, (*with)->stats().compr_data_size);
  std::vector<std::byte> back(kPage);
  for (std::uint64_t i = 0; i < 400; ++i) {
    ASSERT_EQ((*with)->read(i, back), Error::ok);
    EXPECT_EQ(back, header_page(i, 0));
    ASSERT_EQ((*plain)->read(i, back), Error::ok);
    EXPECT_EQ(back, header_page(i, 0));
  }
}

TEST_F(DictionaryTest, StoreTrainsOnItsOwnPagesAndUsesTheDictionary) {
  auto store = Store::create({.pages = 400});
  ASSERT_TRUE(store.ok());
  for (std::uint64_t i = 0; i < 300; ++i)
    ASSERT_EQ((*store)->write(i, header_page(i, 0)), Error::ok);
  ASSERT_EQ((*store)->write(300, std::vector<std::byte>(kPage)), Error::ok);  // same-filled
  std::string why;
  auto dictionary = (*store)->train_dictionary(200, 16 << 10, &why);
  ASSERT_TRUE(dictionary.ok()) << why;
  EXPECT_LE(dictionary->size(), std::size_t{16} << 10);
  ASSERT_TRUE(zstd_dictionary_id(*dictionary).ok());
  const std::string path = save("store.dict", *dictionary);

  uses_dictionary_as_primary_and_secondary("zstd", path);
}

TEST_F(DictionaryTest, StoreUsesAnLz4DictionaryAsPrimaryAndAsSecondary) {
  uses_dictionary_as_primary_and_secondary("lz4", trained(0, "a.dict"));
}

TEST_F(DictionaryTest, StoreTrainingNeedsPages) {
  auto store = Store::create({.pages = 8});
  ASSERT_TRUE(store.ok());
  std::string why;
  EXPECT_EQ((*store)->train_dictionary(100, 16 << 10, &why).error(), Error::invalid_argument);
  EXPECT_NE(why.find("no page"), std::string::npos) << why;
  EXPECT_EQ((*store)->train_dictionary(0, 16 << 10).error(), Error::invalid_argument);
  EXPECT_EQ(Store::create({.pages = 8, .compressor = "zstd:dict=" + dir_ + "/none"}).error(),
            Error::invalid_argument);
}

}  // namespace
}  // namespace zspool

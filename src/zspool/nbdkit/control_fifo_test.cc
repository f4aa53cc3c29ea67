// The plugin's control FIFO: the lines it accepts and refuses, and the FIFO's life cycle.
#include "zspool/nbdkit/control_fifo.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace zspool::nbd {
namespace {

constexpr std::uint32_t kPage = 4096;

struct Dir {
  std::string path;
  Dir() {
    std::string t = ::testing::TempDir() + "zspool_ctl_XXXXXX";
    path = ::mkdtemp(t.data()) != nullptr ? t : "";
  }
  ~Dir() {
    if (!path.empty()) std::filesystem::remove_all(path);
  }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::vector<std::byte> text_page(std::uint64_t i) {
  std::vector<std::byte> p(kPage);
  for (std::size_t k = 0; k < kPage; ++k)
    p[k] = static_cast<std::byte>("zspool page "[k % 12] + i % 7);
  return p;
}

std::unique_ptr<Store> store_with_pages(const std::string& backing, std::uint64_t pages) {
  auto s = Store::create({.pages = pages, .backing_path = backing});
  EXPECT_TRUE(s.ok());
  for (std::uint64_t i = 0; i < pages; ++i) EXPECT_EQ((*s)->write(i, text_page(i)), Error::ok);
  return std::move(*s);
}

TEST(ControlLine, RunsStoreCommandsAndSaysWhatTheyDid) {
  Dir dir;
  auto store = store_with_pages(dir / "backing", 16);
  bool failed = true;
  EXPECT_EQ(control_line(*store, "idle", 1, &failed), "control: idle: marked 16 pages idle");
  EXPECT_FALSE(failed);
  std::vector<std::byte> out(kPage);
  ASSERT_EQ(store->read(3, out), Error::ok);  // page 3 is no longer idle
  EXPECT_EQ(control_line(*store, "writeback idle", 2, &failed),
            "control: writeback idle: wrote back 15 pages");
  EXPECT_FALSE(failed);
  EXPECT_EQ(store->stats().bd_count, 15u);
  EXPECT_TRUE(store->in_memory(3));
  EXPECT_EQ(control_line(*store, "writeback-limit 0", 3, &failed),
            "control: writeback-limit 0: writeback budget: 0 pages");
  EXPECT_EQ(control_line(*store, "writeback all", 4, &failed),
            "control: writeback all: the writeback budget is spent");
  EXPECT_FALSE(failed);
  EXPECT_EQ(control_line(*store, "  # a comment", 5, &failed), "");
  EXPECT_EQ(control_line(*store, "", 6, &failed), "");
  EXPECT_EQ(control_line(*store, "compact", 7, &failed).rfind("control: compact: compacted: ", 0),
            0u);
  for (std::uint64_t i = 0; i < 16; ++i) {
    ASSERT_EQ(store->read(i, out), Error::ok) << i;
    EXPECT_EQ(out, text_page(i)) << i;
  }
}

TEST(ControlLine, RefusesWhatIsNotAStoreCommandWithoutChangingAnything) {
  Dir dir;
  auto store = store_with_pages(dir / "backing", 4);
  const StoreStats before = store->stats();
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"write 0 1", "'write' is not a control command"},
      {"discard 0", "'discard' is not a control command"},
      {"stats", "'stats' is not a control command"},
      {"idel", "unknown command 'idel'"},
      {"writeback sometimes", "'sometimes' is not a writeback kind"},
      {"writeback-limit -1", "negative number"},
      {std::string(5000, 'x'), "line longer than 4096 bytes"},
      {std::string("idle\0 now", 9), "NUL byte"},
      {"recompress all", "invalid argument"},  // no secondary compressors
  };
  std::size_t line = 0;
  for (const auto& [text, says] : refused) {
    bool failed = false;
    const std::string outcome = control_line(*store, text, ++line, &failed);
    EXPECT_TRUE(failed) << text;
    EXPECT_NE(outcome.find(says), std::string::npos) << outcome;
    EXPECT_EQ(outcome.find('\n'), std::string::npos) << outcome;
  }
  const StoreStats after = store->stats();
  EXPECT_EQ(after.bd_count, before.bd_count);
  EXPECT_EQ(after.stored_pages, before.stored_pages);
  EXPECT_EQ(after.idle_pages, 0u);
}

// What the reader thread hands on, kept for the test to wait on.
struct Lines {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::size_t>> got;
  void add(std::string_view line, std::size_t n) {
    std::lock_guard lock(mutex);
    got.emplace_back(std::string(line), n);
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return got.size();
  }
  // Waits (at most a minute: a liveness bound, not a timing check) for `n` lines.
  bool wait_for(std::size_t n) {
    for (int i = 0; i < 6000 && size() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return size() >= n;
  }
};

void write_to(const std::string& fifo, const std::string& text) {
  const int fd = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
}

TEST(ControlFifo, LinesFromSeveralWritersReachTheHandlerWhole) {
  Dir dir;
  std::string why;
  auto fifo = ControlFifo::create(dir / "ctl", &why);
  ASSERT_TRUE(fifo.ok()) << why;
  struct stat st {};
  ASSERT_EQ(::lstat((dir / "ctl").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Lines lines;
  ASSERT_EQ((*fifo)->start([&](std::string_view l, std::size_t n) { lines.add(l, n); }), Error::ok);
  write_to(dir / "ctl", "idle\nwriteback ");  // a line split across two writers
  write_to(dir / "ctl", "idle 5\n");
  write_to(dir / "ctl", std::string(5000, 'y') + "\ncompact\n");
  ASSERT_TRUE(lines.wait_for(4));
  (*fifo)->stop();
  EXPECT_EQ(lines.got[0], (std::pair<std::string, std::size_t>{"idle", 1}));
  EXPECT_EQ(lines.got[1], (std::pair<std::string, std::size_t>{"writeback idle 5", 2}));
  EXPECT_EQ(lines.got[2].first.size(), 4097u) << "an overlong line is cut one byte past the limit";
  EXPECT_EQ(lines.got[3], (std::pair<std::string, std::size_t>{"compact", 4}));
  fifo->reset();
  EXPECT_FALSE(std::filesystem::exists(dir / "ctl")) << "the FIFO it made is removed";
}

TEST(ControlFifo, NeverReplacesOrRemovesWhatItDidNotMake) {
  Dir dir;
  std::ofstream(dir / "precious") << "data";
  std::filesystem::create_symlink(dir / "precious", dir / "link");
  for (const char* name : {"precious", "link"}) {
    std::string why;
    auto fifo = ControlFifo::create(dir / name, &why);
    ASSERT_FALSE(fifo.ok()) << name;
    EXPECT_EQ(fifo.error(), Error::invalid_argument);
    EXPECT_EQ(why, "control=" + (dir / name) +
                       ": exists; the plugin makes its own FIFO there and never replaces a file");
  }
  std::string why;
  EXPECT_FALSE(ControlFifo::create(dir / "no/such/dir/ctl", &why).ok());
  EXPECT_NE(why.find("No such file or directory"), std::string::npos) << why;
  EXPECT_TRUE(std::filesystem::is_symlink(dir / "link"));
  std::ifstream in(dir / "precious");
  std::string content;
  in >> content;
  EXPECT_EQ(content, "data");

  // The FIFO swapped for a file while the plugin ran: the file stays at unload.
  auto fifo = ControlFifo::create(dir / "ctl", &why);
  ASSERT_TRUE(fifo.ok()) << why;
  std::filesystem::remove(dir / "ctl");
  std::ofstream(dir / "ctl") << "someone else's";
  EXPECT_EQ((*fifo)->start([](std::string_view, std::size_t) {}), Error::io_error)
      << "start opens only the FIFO it made";
  fifo->reset();
  EXPECT_TRUE(std::filesystem::is_regular_file(dir / "ctl"));
}

}  // namespace
}  // namespace zspool::nbd

#include "zspool/platform/internal/os.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

namespace zspool::os {

std::chrono::nanoseconds coarse_monotonic_now() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

std::size_t page_size() noexcept {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

static std::size_t round_up_to_page(std::size_t bytes) noexcept {
  const std::size_t ps = page_size();
  return (bytes + ps - 1) / ps * ps;
}

VirtualRange::VirtualRange(std::size_t bytes) noexcept {
  const std::size_t size = round_up_to_page(bytes);
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) return;
  // A transparent huge page would make one small zspage cost 2 MiB of RSS.
  madvise(p, size, MADV_NOHUGEPAGE);
  base_ = static_cast<std::byte*>(p);
  size_ = size;
}

bool VirtualRange::grow_to(std::size_t bytes) noexcept {
  if (size_ >= bytes) return true;
  VirtualRange bigger(bytes);
  if (!bigger.ok()) return false;
  *this = std::move(bigger);
  return true;
}

VirtualRange::~VirtualRange() {
  if (base_ != nullptr) munmap(base_, size_);
}

VirtualRange::VirtualRange(VirtualRange&& other) noexcept
    : base_(std::exchange(other.base_, nullptr)), size_(std::exchange(other.size_, 0)) {}

VirtualRange& VirtualRange::operator=(VirtualRange&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) munmap(base_, size_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void release_pages(void* p, std::size_t bytes) noexcept {
  madvise(p, bytes, MADV_DONTNEED);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14 (include/uapi/asm-generic/mman-common.h)
#endif

std::uint64_t physical_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long size = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || size <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(size);
}

std::size_t cpu_count() noexcept {
  static const std::size_t count = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
      return static_cast<std::size_t>(CPU_COUNT(&set));
    const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? static_cast<std::size_t>(online) : std::size_t{1};
  }();
  return count;
}

std::size_t current_cpu() noexcept {
  const int cpu = ::sched_getcpu();
  return cpu >= 0 ? static_cast<std::size_t>(cpu) : 0;
}

// ---- memory_budget ---------------------------------------------------------------------------
namespace {

constexpr std::uint64_t kUnlimited = UINT64_MAX;
// cgroup v1 writes "no limit" as the largest page-aligned signed 64-bit value.
constexpr std::uint64_t kNoCgroupLimit = std::uint64_t{1} << 62;

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// "Key:   123 kB" in /proc/meminfo or /proc/self/status, in bytes.
std::optional<std::uint64_t> kib_field(const std::string& text, std::string_view key) {
  for (std::string_view line : split(text, '\n')) {
    if (line.substr(0, key.size()) != key || line.size() <= key.size() || line[key.size()] != ':')
      continue;
    line.remove_prefix(key.size() + 1);
    if (line.size() >= 3 && line.substr(line.size() - 3) == " kB") line.remove_suffix(3);
    const auto kib = parse_u64(line);
    if (kib) return *kib * 1024;
  }
  return std::nullopt;
}

// A cgroup limit file: a number, or "max" / v1's huge value for none.
std::optional<std::uint64_t> limit_file(const std::string& path) {
  const auto text = read_small_file(path);
  if (!text) return std::nullopt;
  const auto value = parse_u64(*text);
  if (!value || *value >= kNoCgroupLimit) return std::nullopt;
  return value;
}

std::optional<std::uint64_t> least(std::optional<std::uint64_t> a, std::optional<std::uint64_t> b) {
  if (!a) return b;
  if (!b) return a;
  return std::min(*a, *b);
}

std::uint64_t headroom(std::uint64_t limit, std::optional<std::uint64_t> used) {
  const std::uint64_t u = used.value_or(0);
  return limit > u ? limit - u : 0;
}

// One memory cgroup hierarchy: where it is mounted and which of its cgroups we are in.
struct CgroupMount {
  bool v2 = false;
  std::string mount_root;   // the hierarchy path mounted (field 4 of mountinfo)
  std::string mount_point;  // where (field 5), with the test root prefixed
  std::string cgroup_path;  // from /proc/self/cgroup
};

// mountinfo escapes blanks and backslashes in paths as \\ooo.
std::string unescape_mount_path(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 3 < text.size()) {
      const std::string_view octal = text.substr(i + 1, 3);
      if (std::all_of(octal.begin(), octal.end(), [](char c) { return c >= '0' && c <= '7'; })) {
        out += static_cast<char>((octal[0] - '0') * 64 + (octal[1] - '0') * 8 + (octal[2] - '0'));
        i += 3;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

bool has_option(std::string_view options, std::string_view wanted) {
  for (std::string_view option : split(options, ',')) {
    if (option == wanted) return true;
  }
  return false;
}

// The memory hierarchies in mountinfo: cgroup2, and cgroup v1 mounts with the memory option.
std::vector<CgroupMount> memory_mounts(const std::string& mountinfo, const std::string& root) {
  std::vector<CgroupMount> mounts;
  for (std::string_view line : split(mountinfo, '\n')) {
    const std::size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    const std::vector<std::string_view> left = split(line.substr(0, dash), ' ');
    const std::vector<std::string_view> right = split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    const bool v2 = right[0] == "cgroup2";
    if (!v2 && !(right[0] == "cgroup" && has_option(right[2], "memory"))) continue;
    mounts.push_back({v2, unescape_mount_path(left[3]), root + unescape_mount_path(left[4]), ""});
  }
  return mounts;
}

// Fills each mount's cgroup_path from /proc/self/cgroup ("ID:controllers:path"); v2 is "0::".
void find_cgroup_paths(std::vector<CgroupMount>& mounts, const std::string& cgroups) {
  for (std::string_view line : split(cgroups, '\n')) {
    const std::size_t first = line.find(':');
    const std::size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const std::string_view controllers = line.substr(first + 1, second - first - 1);
    const std::string path(line.substr(second + 1));
    const bool v2 = line.substr(0, first) == "0" && controllers.empty();
    for (CgroupMount& m : mounts) {
      if (m.v2 == v2 && (v2 || has_option(controllers, "memory"))) m.cgroup_path = path;
    }
  }
}

// The cgroup's directory under the mount: its path less the mounted root (a container sees
// its own cgroup mounted as the root); the mount point itself when it does not lie below.
std::string cgroup_directory(const CgroupMount& m) {
  std::string relative = m.cgroup_path;
  if (m.mount_root != "/" && relative.rfind(m.mount_root, 0) == 0)
    relative.erase(0, m.mount_root.size());
  std::string dir = m.mount_point + (relative == "/" ? "" : relative);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) dir = m.mount_point;
  return dir;
}

// The least headroom over the cgroup and its ancestors up to the mount point.
std::optional<std::uint64_t> cgroup_headroom(const CgroupMount& m) {
  std::optional<std::uint64_t> tightest;
  std::string dir = cgroup_directory(m);
  while (true) {
    std::optional<std::uint64_t> limit, used;
    if (m.v2) {
      limit = least(limit_file(dir + "/memory.max"), limit_file(dir + "/memory.high"));
      used = limit_file(dir + "/memory.current");
    } else {
      limit = limit_file(dir + "/memory.limit_in_bytes");
      used = limit_file(dir + "/memory.usage_in_bytes");
    }
    if (limit) tightest = least(tightest, headroom(*limit, used));
    if (dir.size() <= m.mount_point.size()) return tightest;
    dir.erase(dir.rfind('/'));
    if (dir.size() < m.mount_point.size()) return tightest;
  }
}

std::optional<std::uint64_t> cgroup_budget(const MemorySources& sources) {
  const auto mountinfo = read_small_file(sources.proc + "/self/mountinfo");
  const auto cgroups = read_small_file(sources.proc + "/self/cgroup");
  if (!mountinfo || !cgroups) return std::nullopt;
  std::vector<CgroupMount> mounts = memory_mounts(*mountinfo, sources.root);
  find_cgroup_paths(mounts, *cgroups);
  std::optional<std::uint64_t> budget;
  for (const CgroupMount& m : mounts) {
    if (!m.cgroup_path.empty()) budget = least(budget, cgroup_headroom(m));
  }
  return budget;
}

std::optional<std::uint64_t> address_space_budget(const MemorySources& sources) {
  std::uint64_t limit = kUnlimited;
  if (sources.address_space_limit) {
    limit = *sources.address_space_limit;
  } else {
    rlimit rl{};
    if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) limit = rl.rlim_cur;
  }
  if (limit == kUnlimited) return std::nullopt;
  const auto status = read_small_file(sources.proc + "/self/status");
  const std::optional<std::uint64_t> size = status ? kib_field(*status, "VmSize") : std::nullopt;
  return headroom(limit, size);
}

}  // namespace

MemoryBudget memory_budget(const MemorySources& sources) {
  MemoryBudget b;
  const std::uint64_t physical = sources.physical.value_or(physical_memory_bytes());
  if (physical != 0) b.physical = physical;
  if (const auto meminfo = read_small_file(sources.proc + "/meminfo"))
    b.available = kib_field(*meminfo, "MemAvailable");
  b.cgroup = cgroup_budget(sources);
  b.address_space = address_space_budget(sources);
  const std::pair<const std::optional<std::uint64_t>&, const char*> limits[] = {
      {b.physical, "physical memory"},
      {b.available, "available memory (MemAvailable)"},
      {b.cgroup, "the memory cgroup's limit"},
      {b.address_space, "the address-space limit (RLIMIT_AS, ulimit -v)"}};
  for (const auto& [value, name] : limits) {
    if (value && *value < b.bytes) {
      b.bytes = *value;
      b.limited_by = name;
    }
  }
  return b;
}

bool populate_pages(void* p, std::size_t bytes) noexcept {
  // Remembered once the kernel says it does not know the advice, so old kernels pay one call.
  static std::atomic<bool> unsupported{false};
  if (bytes == 0 || unsupported.load(std::memory_order_relaxed)) return false;
  if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0) return true;
  if (errno == EINVAL) unsupported.store(true, std::memory_order_relaxed);
  return false;
}

void touch_pages(void* p, std::size_t bytes) noexcept {
  const std::size_t ps = page_size();
  auto* first = static_cast<unsigned char*>(p);
  // A locked read-modify-write is one write access: the fault maps a fresh writable page at
  // once (a read first would map the zero page, then fault again on the write).
  for (std::size_t off = 0; off < bytes; off += ps)
    __atomic_fetch_or(first + off, static_cast<unsigned char>(0), __ATOMIC_RELAXED);
}

std::size_t resident_bytes(const void* p, std::size_t bytes) noexcept {
  const std::size_t ps = page_size();
  const std::size_t pages = round_up_to_page(bytes) / ps;
  std::vector<unsigned char> vec(pages);
  if (mincore(const_cast<void*>(p), pages * ps, vec.data()) != 0) return 0;
  std::size_t resident = 0;
  for (unsigned char v : vec) resident += (v & 1) ? ps : 0;
  return resident;
}

}  // namespace zspool::os

#include "zspool/testing/proc_maps.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

namespace zspool::os {
namespace {

// Mappings the kernel sizes on its own, whatever a pool does.
bool is_self_sizing(std::string_view line) {
  for (std::string_view name : {"[heap]", "[stack]", "[vdso]", "[vvar]", "[vsyscall]"})
    if (line.ends_with(name)) return true;
  return false;
}

// "start-end perms ..." -> end - start.
std::optional<std::uint64_t> span_of(std::string_view line) {
  const std::size_t dash = line.find('-');
  const std::size_t space = line.find(' ');
  if (dash == std::string_view::npos || space == std::string_view::npos || dash > space)
    return std::nullopt;
  std::uint64_t start = 0, end = 0;
  const char* first = line.data();
  if (std::from_chars(first, first + dash, start, 16).ptr != first + dash) return std::nullopt;
  if (std::from_chars(first + dash + 1, first + space, end, 16).ptr != first + space)
    return std::nullopt;
  if (end < start) return std::nullopt;
  return end - start;
}

}  // namespace

std::optional<MappingCensus> count_mappings(std::string_view maps_text) {
  MappingCensus census;
  while (!maps_text.empty()) {
    const std::size_t eol = maps_text.find('\n');
    std::string_view line = maps_text.substr(0, eol);
    maps_text.remove_prefix(eol == std::string_view::npos ? maps_text.size() : eol + 1);
    while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
    if (line.empty() || is_self_sizing(line)) continue;
    const auto span = span_of(line);
    if (!span) return std::nullopt;
    ++census.mappings;
    census.bytes += *span;
  }
  return census;
}

namespace {

// The text of /proc/self/maps; nullopt when it cannot be read.
std::optional<std::string> own_maps_text() {
  std::ifstream maps("/proc/self/maps");
  if (!maps) return std::nullopt;
  return std::string((std::istreambuf_iterator<char>(maps)), std::istreambuf_iterator<char>());
}

}  // namespace

std::optional<MappingCensus> census_of_own_mappings() {
  const auto text = own_maps_text();
  if (!text) return std::nullopt;
  return count_mappings(*text);
}

// __SANITIZE_*__ is g++'s spelling, __has_feature clang's.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define ZSPOOL_SANITIZED_ALLOCATOR 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZSPOOL_SANITIZED_ALLOCATOR 1
#endif

std::string census_unreliable_reason() {
#ifdef ZSPOOL_SANITIZED_ALLOCATOR
  return "built with a sanitizer, whose allocator maps and splits regions of its own";
#else
  if (const char* preload = std::getenv("LD_PRELOAD"); preload != nullptr && *preload != '\0')
    return "LD_PRELOAD may put in an allocator that maps regions of its own";
  if (own_maps_text().value_or("").find("vgpreload") != std::string::npos)
    return "running under valgrind, whose allocator maps regions of its own";
  return "";
#endif
}

namespace {

std::string describe_change(const MappingCensus& before, const MappingCensus& after) {
  return "mappings " + std::to_string(before.mappings) + " -> " + std::to_string(after.mappings) +
         ", bytes " + std::to_string(before.bytes) + " -> " + std::to_string(after.bytes);
}

// The child: its verdict goes down the pipe, its exit status says whether there is one.
[[noreturn]] void run_leak_check_child(int fd, const std::function<std::string()>& body,
                                       const std::function<void()>& prepare) {
  if (prepare) prepare();
  std::string verdict;
  const bool census_counts = census_unreliable_reason().empty();
  const auto before = census_of_own_mappings();
  if (!before) {
    verdict = "/proc/self/maps unreadable";
  } else {
    verdict = body();
    const auto after = census_of_own_mappings();
    if (census_counts && verdict.empty() && (!after || *after != *before))
      verdict = after ? describe_change(*before, *after) : "/proc/self/maps unreadable";
  }
  std::size_t done = 0;
  while (done < verdict.size()) {
    const ssize_t n = ::write(fd, verdict.data() + done, verdict.size() - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::_exit(verdict.empty() ? 0 : 1);
}

}  // namespace

std::string mapping_leak_in_child(const std::function<std::string()>& body,
                                  const std::function<void()>& prepare) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return "fork failed";
  }
  if (pid == 0) {
    ::close(fds[0]);
    run_leak_check_child(fds[1], body, prepare);
  }
  ::close(fds[1]);
  std::string verdict;
  char buf[256];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    verdict.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) return "the child died of signal " + std::to_string(WTERMSIG(status));
  if (!WIFEXITED(status)) return "the child did not exit";
  if (WEXITSTATUS(status) != 0 && verdict.empty())
    return "the child exited with status " + std::to_string(WEXITSTATUS(status));
  return verdict;
}

}  // namespace zspool::os

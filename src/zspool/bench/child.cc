#include "zspool/bench/child.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>
#include <vector>

#include <fmt/format.h>

namespace zspool::tools {
namespace {

constexpr const char* kTlsTunable = "glibc.rtld.optional_static_tls";
constexpr const char* kTlsSurplus = "16384";  // jemalloc 5.3 needs 2632 bytes
constexpr const char* kReexecMarker = "ZSPOOL_BENCH_REEXEC";

bool write_all(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::string read_all(int fd) {
  std::string text;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return text;
    text.append(buffer, static_cast<std::size_t>(n));
  }
}

// The child's side: run body, send its JSON (or {"child_error": why}), leave without running
// the parent's atexit handlers or flushing its stdio buffers.
[[noreturn]] void child_main(int fd, const std::function<nlohmann::ordered_json()>& body) {
  std::string text;
  try {
    text = body().dump();
  } catch (const std::exception& e) {
    text = nlohmann::ordered_json{{"child_error", e.what()}}.dump();
  } catch (...) {
    text = nlohmann::ordered_json{{"child_error", "unknown exception"}}.dump();
  }
  const bool sent = write_all(fd, text);
  ::close(fd);
  ::_exit(sent ? 0 : 1);
}

std::string describe_wait_status(int status) {
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  if (WIFEXITED(status)) return fmt::format("exited with status {}", WEXITSTATUS(status));
  return "ended abnormally";
}

ChildAnswer parse_answer(const std::string& text, int status) {
  ChildAnswer answer;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    answer.error = "child process " + describe_wait_status(status);
    return answer;
  }
  answer.value = nlohmann::ordered_json::parse(text, nullptr, false);
  if (answer.value.is_discarded()) {
    answer.error = "child process answered no JSON";
  } else if (answer.value.contains("child_error")) {
    answer.error = answer.value["child_error"].get<std::string>();
  }
  return answer;
}

// "Name:   1234 kB" -> bytes, when `line` starts with `name`.
bool parse_kb_line(const std::string& line, const char* name, std::uint64_t& bytes) {
  const std::size_t len = std::strlen(name);
  if (line.compare(0, len, name) != 0) return false;
  bytes = std::strtoull(line.c_str() + len, nullptr, 10) * 1024;
  return true;
}

// The program's arguments, from /proc/self/cmdline (NUL-separated).
std::vector<std::string> own_arguments() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  return args;
}

std::string tunables_with_surplus() {
  const char* old = std::getenv("GLIBC_TUNABLES");
  const std::string entry = std::string(kTlsTunable) + "=" + kTlsSurplus;
  return old == nullptr || *old == '\0' ? entry : std::string(old) + ":" + entry;
}

}  // namespace

ChildAnswer run_in_child(const std::function<nlohmann::ordered_json()>& body) {
  std::cout.flush();
  std::fflush(nullptr);
  int fds[2];
  if (::pipe(fds) != 0) return {{}, fmt::format("pipe: {}", std::strerror(errno))};
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return {{}, fmt::format("fork: {}", std::strerror(errno))};
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], body);
  }
  ::close(fds[1]);
  const std::string text = read_all(fds[0]);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return parse_answer(text, status);
}

MemoryReading read_memory() {
  std::ifstream in("/proc/self/smaps_rollup");
  MemoryReading reading;
  for (std::string line; std::getline(in, line);) {
    if (!parse_kb_line(line, "Rss:", reading.rss))
      parse_kb_line(line, "LazyFree:", reading.lazy_free);
  }
  return reading;
}

std::string ensure_static_tls_surplus() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, kTlsTunable) != nullptr) return "";
  if (std::getenv(kReexecMarker) != nullptr) return "GLIBC_TUNABLES did not survive re-exec";
  std::vector<std::string> args = own_arguments();
  if (args.empty()) return "cannot read /proc/self/cmdline";
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string tunables_value = tunables_with_surplus();
  ::setenv("GLIBC_TUNABLES", tunables_value.c_str(), 1);
  ::setenv(kReexecMarker, "1", 1);
  std::cout.flush();
  std::fflush(nullptr);
  ::execv("/proc/self/exe", argv.data());
  return fmt::format("re-exec with {} failed: {}", kTlsTunable, std::strerror(errno));
}

}  // namespace zspool::tools

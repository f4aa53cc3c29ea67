// Process plumbing for `zspool bench`: measuring one allocator per child process.
//
//   parent ──fork──▶ child: body() ──JSON text──▶ pipe ──▶ parent parses it
//                           _exit(0)                      waitpid: a crash or a non-JSON answer
//                                                         becomes an error line
//
// Each allocator runs in its own child so its memory starts from the same state and nothing it
// keeps (caches, arenas, page-table entries) carries over to the next one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace zspool::tools {

// What a child answered: its JSON value, or why there is none (one line).
struct ChildAnswer {
  nlohmann::ordered_json value;
  std::string error;  // "" when value holds the answer
};

// Runs `body` in a forked child and returns what it returned. An exception thrown by body, a
// signal, a non-zero exit or unparsable output comes back as `error`. The caller must be
// single-threaded (fork copies only the calling thread).
ChildAnswer run_in_child(const std::function<nlohmann::ordered_json()>& body);

// The calling process's memory from /proc/self/smaps_rollup, in bytes.
struct MemoryReading {
  std::uint64_t rss = 0;        // "Rss:"
  std::uint64_t lazy_free = 0;  // "LazyFree:" (MADV_FREE'd, still counted in Rss)
};
MemoryReading read_memory();

// jemalloc uses initial-exec TLS, which dlopen can place only in glibc's static TLS surplus
// (512 bytes by default, too small). The surplus is fixed at process start by the tunable
// glibc.rtld.optional_static_tls, so when it is not set this re-executes the running program
// (/proc/self/exe, same arguments) with it added to GLIBC_TUNABLES, once (an environment marker
// stops a loop). Returns only when no re-exec was needed or it failed; the reason for a failure
// (one line) is returned, "" otherwise.
std::string ensure_static_tls_surplus();

}  // namespace zspool::tools

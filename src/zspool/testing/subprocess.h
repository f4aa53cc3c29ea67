// Running a program in a child process with its stdout and stderr captured: the one subprocess
// helper of the end-to-end tests (cli_test_util.h builds the zspool-specific helpers on it).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace zspool::test {

struct Outcome {
  bool exited = false;  // false: killed by a signal (or never started)
  int status = -1;      // exit status, when exited
  int signal = 0;       // the signal, when killed by one
  std::string out;
  std::string err;

  std::size_t err_lines() const {
    return static_cast<std::size_t>(std::count(err.begin(), err.end(), '\n'));
  }
};

// Runs `program` (a path) with `args` (argv[1..]), stdin from /dev/null, stdout and stderr
// captured in temporary files, and waits for it. `started` (optional) says whether it ran.
Outcome run_program(const std::string& program, const std::vector<std::string>& args,
                    bool* started = nullptr);

// "PROGRAM ARGS...\n  status S signal N\n  stdout: ...\n  stderr: ..." for failure messages.
std::string describe_run(const std::string& program, const std::vector<std::string>& args,
                         const Outcome& o);

}  // namespace zspool::test

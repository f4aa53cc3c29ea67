#include "zspool/testing/subprocess.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>

extern char** environ;

namespace zspool::test {
namespace {

std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string text;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) text.append(buffer, n);
  return text;
}

}  // namespace

Outcome run_program(const std::string& program, const std::vector<std::string>& args,
                    bool* started) {
  std::FILE* out = std::tmpfile();
  std::FILE* err = std::tmpfile();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fileno(out), 1);
  posix_spawn_file_actions_adddup2(&actions, fileno(err), 2);
  std::vector<std::string> words = {program};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  Outcome outcome;
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (started != nullptr) *started = spawned == 0;
  int wait_status = 0;
  if (spawned == 0 && waitpid(pid, &wait_status, 0) == pid) {
    outcome.exited = WIFEXITED(wait_status);
    outcome.status = outcome.exited ? WEXITSTATUS(wait_status) : -1;
    outcome.signal = WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
  }
  outcome.out = read_all(out);
  outcome.err = read_all(err);
  std::fclose(out);
  std::fclose(err);
  return outcome;
}

std::string describe_run(const std::string& program, const std::vector<std::string>& args,
                         const Outcome& o) {
  std::string text = program;
  for (const std::string& a : args) text += " " + a;
  return text + "\n  status " + std::to_string(o.status) + " signal " + std::to_string(o.signal) +
         "\n  stdout: " + o.out.substr(0, 800) + "\n  stderr: " + o.err.substr(0, 800);
}

}  // namespace zspool::test

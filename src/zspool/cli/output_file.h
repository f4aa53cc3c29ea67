// Files a verb writes (`zspool corpus -o FILE`, `zspool train-dict -o FILE`): written whole or
// not at all, and never over a file the user did not ask us to replace.
//
//   0. before any work, the verb asks output_refusal(PATH, force) and stops with a usage error
//      when PATH exists (without --force) or is not a regular file (with it);
//   1. write the bytes to a fresh temporary file in PATH's directory (mkstemp
//      ".zspool-tmp-XXXXXX": short, so it fits beside a PATH whose name is as long as a name may
//      be; 0644 after the umask), fsync it;
//   2. without --force: link(temp, PATH), which fails if PATH exists in any form (file, link,
//      directory, device), so nothing there is touched; then the temporary name is removed.
//      With --force: PATH may exist only as a regular file (lstat: not a symlink, device, FIFO or
//      directory), and rename(temp, PATH) replaces it in one step; the temporary name is gone
//      then, and nothing is unlinked (a file made at that name afterwards is someone else's);
//   3. when 1 or 2 failed, remove the temporary file.
//
// A full disk, a read-only directory or a killed process leaves PATH as it was (at worst a
// stray .zspool-tmp-XXXXXX beside it after a kill).
#pragma once

#include <span>
#include <string>

namespace zspool::tools {

// What write_output_file did.
struct OutputFileStatus {
  std::string problem;  // "" on success, else one line naming the path and the reason
  // PATH may not be written: it exists (without force) or is not a regular file (with force),
  // found as it was published (it appeared meanwhile). The user's choice of PATH, so a usage
  // error, as output_refusal's is; any other problem is a failed write.
  bool refused = false;

  bool ok() const { return problem.empty(); }
};

// Why `path` may not be written, as one line naming it ("corpus.bin: exists (use --force to
// replace it)", "dir: not a regular file (not replaced, even with --force)", "the output path is
// empty"), or "" when it may (it is absent, or force is set and it is a regular file). Cheap: a
// verb calls it before any work.
std::string output_refusal(const std::string& path, bool force);

// Writes `data` to `path` as above. On failure `problem` is one line naming the path and the
// reason (output_refusal's, or "...: No space left on device").
OutputFileStatus write_output_file(const std::string& path, std::span<const std::byte> data,
                                   bool force);

// For a verb with an -o option: returns when `status` is ok, else stops with "-o PROBLEM", a
// usage error when refused, else a failure (command.h).
void stop_unless_written(const OutputFileStatus& status);

}  // namespace zspool::tools

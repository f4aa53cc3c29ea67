// Files a verb writes (`zspool corpus -o FILE`): written whole or not at all, and never over a
// file the user did not ask us to replace.
//
//   1. write the bytes to a fresh temporary file beside PATH (mkstemp "PATH.XXXXXX", 0644 after
//      the umask), fsync it;
//   2. without --force: link(temp, PATH), which fails if PATH exists in any form (file, link,
//      directory, device), so nothing there is touched; with --force: PATH may exist only as a
//      regular file (lstat: not a symlink, device, FIFO or directory), and rename(temp, PATH)
//      replaces it in one step;
//   3. remove the temporary name, whatever happened.
//
// A full disk, a read-only directory or a killed process leaves PATH as it was (at worst a
// stray PATH.XXXXXX after a kill).
#pragma once

#include <span>
#include <string>

namespace zspool::tools {

// Writes `data` to `path` as above. Returns "" on success, else one line naming the path and
// the reason ("corpus.bin: exists (use --force to replace it)", "...: No space left on device").
std::string write_output_file(const std::string& path, std::span<const std::byte> data, bool force);

}  // namespace zspool::tools

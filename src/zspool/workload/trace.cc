#include "zspool/workload/trace.h"

#include "zspool/workload/corpus.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <limits>
#include <new>
#include <span>

#include <fmt/format.h>
#include "zspool/platform/internal/os.h"

namespace zspool::tools {
namespace {

constexpr std::string_view kBlanks = " \t\r\v\f";
constexpr std::size_t kMaxQuotedWord = 40;
constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();

// How many arguments a verb takes and how it is written, one row per verb.
struct VerbSpec {
  TraceVerb verb;
  std::string_view name;
  std::size_t min_args;
  std::size_t max_args;
  std::string_view usage;
};

constexpr std::array<VerbSpec, 9> kVerbs = {{
    {TraceVerb::write, "write", 1, 2, "write P [Q]"},
    {TraceVerb::read, "read", 1, 1, "read P"},
    {TraceVerb::discard, "discard", 1, 1, "discard P"},
    {TraceVerb::compact, "compact", 0, 0, "compact"},
    {TraceVerb::writeback, "writeback", 1, 2,
     "writeback N | writeback idle|huge|incompressible|idle+huge|all [N]"},
    {TraceVerb::stats, "stats", 0, 0, "stats"},
    {TraceVerb::idle, "idle", 0, 1, "idle [SECONDS]"},
    {TraceVerb::writeback_limit, "writeback-limit", 1, 1, "writeback-limit N"},
    {TraceVerb::recompress, "recompress", 1, 3, "recompress huge|idle|all [THRESHOLD] [PRIORITY]"},
}};

const VerbSpec* find_verb(std::string_view name) {
  const auto it = std::find_if(kVerbs.begin(), kVerbs.end(),
                               [name](const VerbSpec& v) { return v.name == name; });
  return it == kVerbs.end() ? nullptr : &*it;
}

// A word as it may appear in a one-line message: printable ASCII kept, anything else as \xNN,
// long words cut short.
std::string quote(std::string_view word) {
  std::string text = "'";
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (i == kMaxQuotedWord) {
      text += "...";
      break;
    }
    const auto c = static_cast<unsigned char>(word[i]);
    text += (c >= 0x20 && c < 0x7f) ? std::string(1, static_cast<char>(c))
                                    : fmt::format("\\x{:02x}", c);
  }
  return text + "'";
}

std::string_view strip_comment(std::string_view line) {
  return line.substr(0, line.find('#'));
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  while (true) {
    const std::size_t start = text.find_first_not_of(kBlanks);
    if (start == std::string_view::npos) return words;
    text.remove_prefix(start);
    const std::size_t end = std::min(text.find_first_of(kBlanks), text.size());
    words.push_back(text.substr(0, end));
    text.remove_prefix(end);
  }
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A decimal number in 64 bits, or why `word` is not one.
std::variant<std::uint64_t, std::string> parse_number(std::string_view word) {
  if (word.front() == '-') return fmt::format("negative number {}", quote(word));
  if (!std::all_of(word.begin(), word.end(), is_digit))
    return fmt::format("{} is not a number (decimal digits only)", quote(word));
  std::uint64_t value = 0;
  for (const char c : word) {
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (kMaxU64 - digit) / 10)
      return fmt::format("{} is too large (numbers fit in 64 bits)", quote(word));
    value = value * 10 + digit;
  }
  return value;
}

std::variant<std::uint64_t, std::string> parse_page_number(std::string_view word) {
  auto number = parse_number(word);
  if (const auto* page = std::get_if<std::uint64_t>(&number); page && *page > kMaxTracePage)
    return fmt::format("page number {} is too large (at most {})", *page, kMaxTracePage);
  return number;
}

std::string arity_message(const VerbSpec& spec, std::size_t given) {
  std::string takes;
  if (spec.max_args == 0) {
    takes = "takes no arguments";
  } else if (spec.min_args == spec.max_args) {
    takes = fmt::format("takes {} argument{}", spec.min_args, spec.min_args == 1 ? "" : "s");
  } else if (spec.max_args == spec.min_args + 1) {
    takes = fmt::format("takes {} or {} arguments", spec.min_args, spec.max_args);
  } else {
    takes = fmt::format("takes {} to {} arguments", spec.min_args, spec.max_args);
  }
  return fmt::format("'{}' {}, got {} (usage: {})", spec.name, takes, given, spec.usage);
}

// Verbs whose numbers are counts, not page numbers.
bool takes_counts(TraceVerb verb) {
  return verb == TraceVerb::writeback || verb == TraceVerb::idle ||
         verb == TraceVerb::writeback_limit;
}

// `writeback KIND [N]`: takes the kind off the front of args; `writeback N` (a number first)
// keeps its one argument; anything else is an error.
std::optional<std::string> take_writeback_kind(TraceOp& op,
                                               std::span<const std::string_view>& args) {
  if (op.verb != TraceVerb::writeback) return std::nullopt;
  op.writeback_kind = parse_writeback_kind(args.front());
  if (op.writeback_kind) {
    args = args.subspan(1);
    return std::nullopt;
  }
  if (args.size() == 2 ||
      (!args.front().empty() && !is_digit(args.front().front()) && args.front().front() != '-')) {
    return fmt::format("{} is not a writeback kind (idle, huge, incompressible, idle+huge, all)",
                       quote(args.front()));
  }
  return std::nullopt;
}

// A number in [0, max], or why `word` is not one; `what` names it in the message.
std::variant<std::uint64_t, std::string> parse_bounded(std::string_view word, std::string_view what,
                                                       std::uint64_t max) {
  auto number = parse_number(word);
  if (const auto* value = std::get_if<std::uint64_t>(&number); value && *value > max)
    return fmt::format("{} {} is too large (at most {})", what, *value, max);
  return number;
}

// recompress KIND [THRESHOLD] [PRIORITY].
std::optional<std::string> fill_recompress_arguments(TraceOp& op,
                                                     std::span<const std::string_view> args) {
  const auto kind = parse_recompress_kind(args[0]);
  if (!kind) return fmt::format("{} is not a page kind (huge, idle or all)", quote(args[0]));
  op.kind = *kind;
  if (args.size() > 1) {
    auto threshold = parse_bounded(args[1], "threshold", std::numeric_limits<std::uint32_t>::max());
    if (auto* message = std::get_if<std::string>(&threshold)) return std::move(*message);
    op.threshold = static_cast<std::uint32_t>(std::get<std::uint64_t>(threshold));
  }
  if (args.size() > 2) {
    auto priority = parse_bounded(args[2], "priority", kMaxSecondaryCompressors);
    if (auto* message = std::get_if<std::string>(&priority)) return std::move(*message);
    op.priority = static_cast<std::uint32_t>(std::get<std::uint64_t>(priority));
  }
  return std::nullopt;
}

// Fills the op's numeric fields from the verb's arguments, or says which one is bad.
std::optional<std::string> fill_arguments(TraceOp& op, std::span<const std::string_view> args) {
  if (auto message = take_writeback_kind(op, args)) return message;
  op.has_count = !args.empty() && (op.verb == TraceVerb::idle || op.writeback_kind);
  if (op.verb == TraceVerb::recompress) return fill_recompress_arguments(op, args);
  std::array<std::uint64_t, 2> values{};
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto parsed = takes_counts(op.verb) ? parse_number(args[i]) : parse_page_number(args[i]);
    if (auto* message = std::get_if<std::string>(&parsed)) return std::move(*message);
    values[i] = std::get<std::uint64_t>(parsed);
  }
  if (takes_counts(op.verb)) {
    op.count = values[0];
  } else if (!args.empty()) {
    op.page = values[0];
  }
  if (op.verb == TraceVerb::write) op.source = args.size() == 2 ? values[1] : values[0];
  return std::nullopt;
}

void account_pages(Trace& trace, const TraceOp& op) {
  switch (op.verb) {
    case TraceVerb::write:
      trace.source_pages_needed = std::max(trace.source_pages_needed, op.source + 1);
      [[fallthrough]];
    case TraceVerb::read:
    case TraceVerb::discard:
      trace.pages_needed = std::max(trace.pages_needed, op.page + 1);
      break;
    case TraceVerb::compact:
    case TraceVerb::writeback:
    case TraceVerb::stats:
    case TraceVerb::idle:
    case TraceVerb::writeback_limit:
    case TraceVerb::recompress:
      break;
  }
}

bool names_a_page(TraceVerb verb) {
  return verb == TraceVerb::write || verb == TraceVerb::read || verb == TraceVerb::discard;
}

}  // namespace

std::string_view trace_verb_name(TraceVerb verb) {
  for (const VerbSpec& spec : kVerbs) {
    if (spec.verb == verb) return spec.name;
  }
  return "?";
}

std::string format_trace_op(const TraceOp& op) {
  const std::string_view name = trace_verb_name(op.verb);
  switch (op.verb) {
    case TraceVerb::write:
      return fmt::format("{} {} {}", name, op.page, op.source);
    case TraceVerb::read:
    case TraceVerb::discard:
      return fmt::format("{} {}", name, op.page);
    case TraceVerb::writeback:
      if (!op.writeback_kind) return fmt::format("{} {}", name, op.count);
      if (!op.has_count) return fmt::format("{} {}", name, writeback_kind_name(*op.writeback_kind));
      return fmt::format("{} {} {}", name, writeback_kind_name(*op.writeback_kind), op.count);
    case TraceVerb::writeback_limit:
      return fmt::format("{} {}", name, op.count);
    case TraceVerb::idle:
      return op.has_count ? fmt::format("{} {}", name, op.count) : std::string(name);
    case TraceVerb::recompress:
      if (op.priority != 0)
        return fmt::format("{} {} {} {}", name, recompress_kind_name(op.kind), op.threshold,
                           op.priority);
      if (op.threshold != 0)
        return fmt::format("{} {} {}", name, recompress_kind_name(op.kind), op.threshold);
      return fmt::format("{} {}", name, recompress_kind_name(op.kind));
    case TraceVerb::compact:
    case TraceVerb::stats:
      return std::string(name);
  }
  return std::string(name);
}

std::variant<std::optional<TraceOp>, TraceError> parse_trace_line(std::string_view line,
                                                                  std::size_t line_number) {
  const std::vector<std::string_view> words = split_words(strip_comment(line));
  if (words.empty()) return std::optional<TraceOp>();
  const VerbSpec* spec = find_verb(words.front());
  if (spec == nullptr) {
    return TraceError{line_number,
                      fmt::format("unknown command {} (expected write, read, discard, compact, "
                                  "writeback, stats, idle, writeback-limit or recompress)",
                                  quote(words.front()))};
  }
  const auto args = std::span(words).subspan(1);
  if (args.size() < spec->min_args || args.size() > spec->max_args)
    return TraceError{line_number, arity_message(*spec, args.size())};
  TraceOp op{.verb = spec->verb, .line = line_number};
  if (auto message = fill_arguments(op, args)) return TraceError{line_number, std::move(*message)};
  return std::optional<TraceOp>(op);
}

std::optional<TraceError> TraceBuilder::check_partial_line(std::string_view start) const {
  const std::size_t line = line_number_ + 1;
  if (const std::size_t nul = start.find('\0'); nul != std::string_view::npos) {
    return TraceError{line,
                      fmt::format("NUL byte at column {} (a binary file, not a trace?)", nul + 1)};
  }
  if (start.size() > kMaxTraceLineBytes) {
    return TraceError{line,
                      fmt::format("line longer than {} bytes (not a trace?)", kMaxTraceLineBytes)};
  }
  return std::nullopt;
}

std::optional<TraceError> TraceBuilder::add_line(std::string_view line) {
  if (auto error = check_partial_line(line)) return error;
  ++line_number_;
  auto parsed = parse_trace_line(line, line_number_);
  if (auto* error = std::get_if<TraceError>(&parsed)) return std::move(*error);
  if (const auto& op = std::get<std::optional<TraceOp>>(parsed)) {
    try {
      trace_.ops.push_back(*op);
    } catch (const std::bad_alloc&) {
      return TraceError{line_number_,
                        fmt::format("out of memory after {} commands", trace_.ops.size())};
    }
    account_pages(trace_, *op);
  }
  return std::nullopt;
}

TraceParse parse_trace(std::string_view text) {
  TraceBuilder builder;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    if (auto error = builder.add_line(text.substr(0, end))) return std::move(*error);
    text.remove_prefix(std::min(end + 1, text.size()));
  }
  return builder.take();
}

namespace {

// The open trace file, closed on every way out.
struct TraceFd {
  int fd = -1;
  ~TraceFd() {
    if (fd >= 0) ::close(fd);
  }
};

TraceError file_error(std::string message) {
  return TraceError{0, std::move(message)};
}

std::optional<TraceError> open_trace(const std::string& path, TraceFd& file) {
  // O_NONBLOCK: a FIFO does not hang the open, and a /proc file with nothing to give fails
  // its read with EAGAIN instead of waiting.
  if (os::path_has_nul(path)) return file_error("cannot open: the path holds a NUL byte");
  file.fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (file.fd < 0) return file_error(fmt::format("cannot open: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    return file_error(fmt::format("cannot examine: {}", std::strerror(errno)));
  if (!S_ISREG(st.st_mode))
    return file_error("not a regular file (a FIFO, a device or a directory is not a trace)");
  return std::nullopt;
}

// One read(2), retried on EINTR: bytes read, 0 at the end, or an error.
std::variant<std::size_t, TraceError> read_some(int fd, std::span<char> buffer) {
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return file_error("reading it would block (a /proc or device file, not a trace)");
    return file_error(fmt::format("cannot read: {}", std::strerror(errno)));
  }
}

// Feeds `chunk` to the builder line by line; `pending` holds the unfinished last line.
std::optional<TraceError> feed(TraceBuilder& builder, std::string& pending,
                               std::string_view chunk) {
  while (true) {
    const std::size_t end = chunk.find('\n');
    if (end == std::string_view::npos) {
      pending.append(chunk);
      return builder.check_partial_line(pending);
    }
    pending.append(chunk.substr(0, end));
    if (auto error = builder.add_line(pending)) return error;
    pending.clear();
    chunk.remove_prefix(end + 1);
  }
}

}  // namespace

TraceParse read_trace_file(const std::string& path) {
  TraceFd file;
  if (auto error = open_trace(path, file)) return std::move(*error);
  TraceBuilder builder;
  std::string pending;
  std::vector<char> buffer(std::size_t{64} << 10);
  std::uint64_t total = 0;
  while (true) {
    auto got = read_some(file.fd, buffer);
    if (auto* error = std::get_if<TraceError>(&got)) return std::move(*error);
    const std::size_t n = std::get<std::size_t>(got);
    if (n == 0) break;
    total += n;
    if (total > kMaxTraceFileBytes)
      return file_error(fmt::format("larger than {} bytes: not a trace", kMaxTraceFileBytes));
    if (auto error = feed(builder, pending, {buffer.data(), n})) return std::move(*error);
  }
  if (!pending.empty()) {
    if (auto error = builder.add_line(pending)) return std::move(*error);
  }
  return builder.take();
}

std::string format_trace_error(const std::string& path, const TraceError& error) {
  if (error.line == 0) return fmt::format("{}: {}", path, error.message);
  return fmt::format("{}:{}: {}", path, error.line, error.message);
}

std::optional<TraceError> check_trace_capacity(const Trace& trace, std::uint64_t max_store_pages) {
  if (trace.pages_needed <= max_store_pages) return std::nullopt;
  for (const TraceOp& op : trace.ops) {
    if (names_a_page(op.verb) && op.page >= max_store_pages) {
      return TraceError{op.line,
                        fmt::format("page {} needs a store of {} pages, more than this process "
                                    "can have ({} pages, from the memory it may use)",
                                    op.page, op.page + 1, max_store_pages)};
    }
  }
  return std::nullopt;
}

std::optional<TraceError> check_trace_limits(const Trace& trace, std::uint64_t store_pages,
                                             std::uint64_t source_pages) {
  for (const TraceOp& op : trace.ops) {
    if (names_a_page(op.verb) && op.page >= store_pages) {
      return TraceError{op.line, fmt::format("page {} is beyond the store's {}", op.page,
                                             count_of(store_pages, "page"))};
    }
    if (op.verb == TraceVerb::write && op.source >= source_pages) {
      return TraceError{op.line, fmt::format("page {} is beyond the data file's {}", op.source,
                                             count_of(source_pages, "page"))};
    }
  }
  return std::nullopt;
}

}  // namespace zspool::tools

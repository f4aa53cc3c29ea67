#include "zspool/workload/trace.h"

#include <algorithm>
#include <array>
#include <limits>
#include <span>

#include <fmt/format.h>

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

constexpr std::array<VerbSpec, 6> kVerbs = {{
    {TraceVerb::write, "write", 1, 2, "write P [Q]"},
    {TraceVerb::read, "read", 1, 1, "read P"},
    {TraceVerb::discard, "discard", 1, 1, "discard P"},
    {TraceVerb::compact, "compact", 0, 0, "compact"},
    {TraceVerb::writeback, "writeback", 1, 1, "writeback N"},
    {TraceVerb::stats, "stats", 0, 0, "stats"},
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
  } else {
    takes = fmt::format("takes {} or {} arguments", spec.min_args, spec.max_args);
  }
  return fmt::format("'{}' {}, got {} (usage: {})", spec.name, takes, given, spec.usage);
}

// Fills the op's numeric fields from the verb's arguments, or says which one is bad.
std::optional<std::string> fill_arguments(TraceOp& op, std::span<const std::string_view> args) {
  std::array<std::uint64_t, 2> values{};
  for (std::size_t i = 0; i < args.size(); ++i) {
    auto parsed =
        op.verb == TraceVerb::writeback ? parse_number(args[i]) : parse_page_number(args[i]);
    if (auto* message = std::get_if<std::string>(&parsed)) return std::move(*message);
    values[i] = std::get<std::uint64_t>(parsed);
  }
  if (op.verb == TraceVerb::writeback) {
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

std::variant<std::optional<TraceOp>, TraceError> parse_trace_line(std::string_view line,
                                                                  std::size_t line_number) {
  const std::vector<std::string_view> words = split_words(strip_comment(line));
  if (words.empty()) return std::optional<TraceOp>();
  const VerbSpec* spec = find_verb(words.front());
  if (spec == nullptr) {
    return TraceError{line_number,
                      fmt::format("unknown command {} (expected write, read, discard, compact, "
                                  "writeback or stats)",
                                  quote(words.front()))};
  }
  const auto args = std::span(words).subspan(1);
  if (args.size() < spec->min_args || args.size() > spec->max_args)
    return TraceError{line_number, arity_message(*spec, args.size())};
  TraceOp op{.verb = spec->verb, .line = line_number};
  if (auto message = fill_arguments(op, args)) return TraceError{line_number, std::move(*message)};
  return std::optional<TraceOp>(op);
}

TraceParse parse_trace(std::string_view text) {
  Trace trace;
  std::size_t line_number = 0;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    ++line_number;
    auto parsed = parse_trace_line(line, line_number);
    if (auto* error = std::get_if<TraceError>(&parsed)) return std::move(*error);
    if (const auto& op = std::get<std::optional<TraceOp>>(parsed)) {
      account_pages(trace, *op);
      trace.ops.push_back(*op);
    }
  }
  return trace;
}

std::optional<TraceError> check_trace_limits(const Trace& trace, std::uint64_t store_pages,
                                             std::uint64_t source_pages) {
  for (const TraceOp& op : trace.ops) {
    if (names_a_page(op.verb) && op.page >= store_pages) {
      return TraceError{
          op.line, fmt::format("page {} is beyond the store's {} pages", op.page, store_pages)};
    }
    if (op.verb == TraceVerb::write && op.source >= source_pages) {
      return TraceError{op.line, fmt::format("page {} is beyond the data file's {} pages",
                                             op.source, source_pages)};
    }
  }
  return std::nullopt;
}

}  // namespace zspool::tools

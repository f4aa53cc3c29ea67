#include "zspool/bench/run_job.h"

#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace zspool::tools {
namespace {

constexpr double kBytesPerMegabyte = 1e6;

double ratio_or_zero(double numerator, double denominator) {
  return denominator > 0 ? numerator / denominator : 0.0;
}

PhaseResult write_pages(Store& store, const Corpus& corpus, unsigned threads,
                        const ProgressFactory& progress, std::vector<std::uint8_t>& written) {
  const auto bar = progress("write", corpus.page_count());
  return run_phase(corpus.page_count(), threads, 0, *bar,
                   [&](std::uint64_t page, std::span<std::byte>, PhaseTally& tally) {
                     const Error e = store.write(page, corpus.page(page));
                     written[page] = e == Error::ok;
                     if (e != Error::ok) tally.fail(page, "write", e);
                   });
}

PhaseResult read_and_verify_pages(Store& store, const Corpus& corpus, unsigned threads,
                                  const ProgressFactory& progress,
                                  const std::vector<std::uint8_t>& written) {
  const auto bar = progress("read", corpus.page_count());
  return run_phase(corpus.page_count(), threads, corpus.page_size(), *bar,
                   [&](std::uint64_t page, std::span<std::byte> out, PhaseTally& tally) {
                     if (!written[page]) return;
                     const Error e = store.read(page, out);
                     const std::span<const std::byte> expected = corpus.page(page);
                     if (e != Error::ok) {
                       tally.fail(page, "read", e);
                     } else if (std::memcmp(out.data(), expected.data(), out.size()) != 0) {
                       tally.mismatch(page);
                     }
                   });
}

}  // namespace

RunReport run_job(Store& store, const Corpus& corpus, unsigned threads,
                  const ProgressFactory& progress) {
  RunReport report;
  report.pages = corpus.page_count();
  report.bytes = corpus.size_bytes();
  report.threads = threads;
  report.compressor = store.compressor().spec();
  std::vector<std::uint8_t> written(corpus.page_count(), 0);
  report.write = write_pages(store, corpus, threads, progress, written);
  if (store.secondary_compressors() != 0) {
    const auto recompressed = store.recompress(RecompressKind::all);
    if (!recompressed) report.recompress_error = recompressed.error();
  }
  report.pages_compacted = store.compact();
  report.read = read_and_verify_pages(store, corpus, threads, progress, written);
  report.stats = store.stats();
  return report;
}

std::string RunReport::failure_summary() const {
  const PhaseTally& w = write.tally;
  const PhaseTally& r = read.tally;
  std::string text = fmt::format("{} of {} failed ({} writes, {} reads, {} mismatches)", errors(),
                                 count_of(pages, "page"), w.failed, r.failed, r.mismatched);
  PhaseTally all = w;
  all.merge(r);
  if (recompress_error != Error::ok)
    text += fmt::format("; recompress all: {}", error_message(recompress_error));
  if (const auto& f = all.first_failure) {
    text += f->what == "verify" ? fmt::format("; first: page {} read back different bytes", f->page)
                                : fmt::format("; first: page {}: {}: {}", f->page, f->what,
                                              error_message(f->error));
  }
  return text;
}

double efficiency(const StoreStats& s) {
  return ratio_or_zero(static_cast<double>(s.compr_data_size),
                       static_cast<double>(s.mem_used_total));
}

double compression_ratio(const StoreStats& s) {
  return ratio_or_zero(static_cast<double>(s.orig_data_size),
                       static_cast<double>(s.compr_data_size));
}

double megabytes_per_second(std::uint64_t bytes, double seconds) {
  return ratio_or_zero(static_cast<double>(bytes) / kBytesPerMegabyte, seconds);
}

}  // namespace zspool::tools

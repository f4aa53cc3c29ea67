#include "zspool/bench/train_dict.h"

#include <algorithm>
#include <new>

#include "zspool/store/compressor.h"

namespace zspool::tools {
namespace {

bool worth_training_on(PageKind kind) {
  return kind != PageKind::zero && kind != PageKind::same_filled;
}

}  // namespace

std::vector<std::byte> dictionary_samples(const Corpus& corpus, std::uint64_t max_samples) {
  std::uint64_t candidates = 0;
  for (std::uint64_t i = 0; i < corpus.page_count(); ++i)
    candidates += worth_training_on(corpus.kind(i));
  const std::uint64_t stride =
      std::max<std::uint64_t>(1, candidates / std::max<std::uint64_t>(1, max_samples));
  std::vector<std::byte> samples;
  std::uint64_t seen = 0, taken = 0;
  for (std::uint64_t i = 0; i < corpus.page_count() && taken < max_samples; ++i) {
    if (!worth_training_on(corpus.kind(i)) || seen++ % stride != 0) continue;
    const auto page = corpus.page(i);
    samples.insert(samples.end(), page.begin(), page.end());
    ++taken;
  }
  return samples;
}

Result<TrainedDictionary> train_dictionary_on(const Corpus& corpus, std::uint64_t max_samples,
                                              std::size_t dict_bytes, std::string* why) {
  try {
    TrainedDictionary trained;
    const std::vector<std::byte> samples = dictionary_samples(corpus, max_samples);
    if (samples.empty()) {
      if (why != nullptr) *why = "no page to train on (every page is zero or same-filled)";
      return Error::invalid_argument;
    }
    auto bytes = train_zstd_dictionary(samples, corpus.page_size(), dict_bytes, why);
    if (!bytes) return bytes.error();
    auto id = zstd_dictionary_id(*bytes);
    if (!id) return id.error();
    trained.bytes = std::move(*bytes);
    trained.id = *id;
    trained.samples = samples.size() / corpus.page_size();
    trained.sample_bytes = samples.size();
    return trained;
  } catch (const std::bad_alloc&) {
    return Error::out_of_memory;
  }
}

}  // namespace zspool::tools

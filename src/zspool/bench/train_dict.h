// `zspool train-dict`'s work: a zstd dictionary trained on pages of a corpus.
//
//   corpus ──every stride-th page holding data (not zero, not same-filled)──▶ samples
//          ──train_zstd_dictionary (libzstd's ZDICT_trainFromBuffer)──▶ dictionary
//
// The stride spreads at most `max_samples` samples evenly over the corpus, so a corpus of many
// files gives each its share. Typed result; cli/render.h prints it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "zspool/platform/error.h"
#include "zspool/workload/corpus.h"

namespace zspool::tools {

struct TrainedDictionary {
  std::vector<std::byte> bytes;
  std::uint32_t id = 0;
  std::uint64_t samples = 0;       // pages trained on
  std::uint64_t sample_bytes = 0;  // samples * page size
};

// The pages of `corpus` worth training on (not zero, not same-filled), every stride-th, at most
// max_samples of them, back to back.
std::vector<std::byte> dictionary_samples(const Corpus& corpus, std::uint64_t max_samples);

// Errors: invalid_argument (no page worth training on, a dict_bytes out of range, or libzstd's
// refusal: `*why` gets its message), out_of_memory.
Result<TrainedDictionary> train_dictionary_on(const Corpus& corpus, std::uint64_t max_samples,
                                              std::size_t dict_bytes, std::string* why);

}  // namespace zspool::tools

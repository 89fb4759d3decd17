// REPRO_FUZZ_TARGET(name): declares one fuzz target, a function of an arbitrary input that must
// neither crash, leak, hang nor trip a sanitizer, and that aborts (FuzzCheck) when an invariant of
// the code under test breaks.
//
//   REPRO_FUZZ_TARGET(http_request) {
//     ... parse absl::string_view(reinterpret_cast<const char*>(data), size) ...
//     return 0;
//   }
//
// With -DREPRO_FUZZ=ON (clang) each target file is its own libFuzzer binary and this is
// LLVMFuzzerTestOneInput. Otherwise every target registers itself under `name` and
// fuzz_corpus_replay runs each on every file of tests/fuzz/corpus/<name>/, so CI replays the
// corpora with gcc and no libFuzzer.
#ifndef REPRO_TESTS_FUZZ_FUZZ_TARGET_H_
#define REPRO_TESTS_FUZZ_FUZZ_TARGET_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

namespace repro::fuzz {

using FuzzFunction = int (*)(const uint8_t* data, size_t size);

// Every target linked into this binary, by name (empty under libFuzzer).
std::map<std::string, FuzzFunction>& FuzzTargets();

// Adds a target to FuzzTargets(); returns true so it can initialise a static.
bool RegisterFuzzTarget(const char* name, FuzzFunction function);

// Aborts with `what` on stderr unless `condition`: an invariant of the code under test is broken,
// which the fuzzer reports as a crash and the replay test as a failure.
void FuzzCheck(bool condition, const char* what);

}  // namespace repro::fuzz

#ifdef REPRO_LIBFUZZER
#define REPRO_FUZZ_TARGET(name) \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#else
#define REPRO_FUZZ_TARGET(name)                                                        \
  static int ReproFuzz_##name(const uint8_t* data, size_t size);                       \
  [[maybe_unused]] static const bool kReproFuzzRegistered_##name =                     \
      ::repro::fuzz::RegisterFuzzTarget(#name, &ReproFuzz_##name);                     \
  static int ReproFuzz_##name(const uint8_t* data, size_t size)
#endif

#endif  // REPRO_TESTS_FUZZ_FUZZ_TARGET_H_

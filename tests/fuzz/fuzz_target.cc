#include "tests/fuzz/fuzz_target.h"

#include <cstdio>
#include <cstdlib>

namespace repro::fuzz {

std::map<std::string, FuzzFunction>& FuzzTargets() {
  static auto* targets = new std::map<std::string, FuzzFunction>();
  return *targets;
}

bool RegisterFuzzTarget(const char* name, FuzzFunction function) {
  FuzzTargets()[name] = function;
  return true;
}

void FuzzCheck(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

}  // namespace repro::fuzz

// The main() of every benchmark program: parse its flags, run its Main() (bench_util.h).
#include "absl/flags/parse.h"
#include "tests/bench/bench_util.h"

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return repro::bench::Main();
}

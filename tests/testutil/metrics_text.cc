#include "tests/testutil/metrics_text.h"

namespace repro::testing {

double MetricValue(const std::string& metrics, const std::string& series) {
  const std::string line = "\n" + series + " ";
  const size_t at = metrics.find(line);
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + line.size()));
}

}  // namespace repro::testing

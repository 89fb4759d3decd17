// Reading reprod's /metrics (Prometheus text exposition) in tests.
#ifndef REPRO_TESTS_TESTUTIL_METRICS_TEXT_H_
#define REPRO_TESTS_TESTUTIL_METRICS_TEXT_H_

#include <string>

namespace repro::testing {

// The value on the line of `series` ("name" or "name{labels}", as reprod prints it) in `metrics`,
// or -1 when that line is absent.
double MetricValue(const std::string& metrics, const std::string& series);

}  // namespace repro::testing

#endif  // REPRO_TESTS_TESTUTIL_METRICS_TEXT_H_

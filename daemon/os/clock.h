// Clock seam: production code asks a Clock for the time so tests can use a fake one.
#ifndef REPRO_DAEMON_OS_CLOCK_H_
#define REPRO_DAEMON_OS_CLOCK_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace repro {

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

class RealClock : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

// The process-wide real clock (never null, never destroyed).
Clock* DefaultClock();

}  // namespace repro

#endif  // REPRO_DAEMON_OS_CLOCK_H_

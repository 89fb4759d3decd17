#include "daemon/os/clock.h"

namespace repro {

Clock* DefaultClock() {
  static Clock* clock = new RealClock();
  return clock;
}

}  // namespace repro

#include "core/clock.h"

namespace zumik {
namespace {
const std::chrono::steady_clock::time_point kProcessStart = std::chrono::steady_clock::now();
}  // namespace

Time RealClock::Now() const {
  return std::chrono::duration_cast<Time>(std::chrono::steady_clock::now() - kProcessStart);
}

double RealClock::UnixSeconds() const {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

RealClock& RealClock::Instance() {
  static RealClock clock;
  return clock;
}

}  // namespace zumik

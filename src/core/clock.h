// Injected time. Everything that reads time takes a `Clock&`, so the simulator and the
// tests can run in virtual time and stay deterministic.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace zumik {

using Duration = std::chrono::nanoseconds;
// A point in time as a duration since the clock's own origin. Only differences are meaningful.
using Time = std::chrono::nanoseconds;

inline double ToSeconds(Duration d) { return std::chrono::duration<double>(d).count(); }
inline double ToMillis(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
inline Duration FromSeconds(double s) {
  return std::chrono::round<Duration>(std::chrono::duration<double>(s));
}
inline Duration FromMillis(double ms) {
  return std::chrono::round<Duration>(std::chrono::duration<double, std::milli>(ms));
}

// "2026-12-07T08:00:00Z": Unix seconds as an ISO 8601 UTC time, to the second.
std::string FormatUnixUtc(double unix_seconds);

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time.
  virtual Time Now() const = 0;
  // Wall-clock time in seconds since the Unix epoch (for timestamps shown to people).
  virtual double UnixSeconds() const = 0;
};

// The machine's steady clock (origin: process start) and system clock.
class RealClock final : public Clock {
 public:
  Time Now() const override;
  double UnixSeconds() const override;
  // One process-wide instance; it holds no state.
  static RealClock& Instance();
};

// A clock that moves only when told to. Not thread-safe: virtual-time code is single-threaded.
class VirtualClock final : public Clock {
 public:
  explicit VirtualClock(Time start = Time{0}, double unix_origin_s = 1.7e9)
      : now_(start), unix_origin_s_(unix_origin_s) {}
  Time Now() const override { return now_; }
  double UnixSeconds() const override { return unix_origin_s_ + ToSeconds(now_); }
  void Advance(Duration d) { now_ += d; }
  // Moves to `t`; never backwards.
  void AdvanceTo(Time t) {
    if (t > now_) now_ = t;
  }

 private:
  Time now_;
  double unix_origin_s_;
};

}  // namespace zumik

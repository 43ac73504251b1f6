#include "core/clock.h"

#include <gtest/gtest.h>

namespace zumik {
namespace {

TEST(VirtualClock, MovesOnlyWhenToldAndNeverBackwards) {
  VirtualClock clock;
  EXPECT_EQ(clock.Now(), Time{0});
  clock.Advance(FromMillis(5));
  EXPECT_EQ(clock.Now(), std::chrono::milliseconds(5));
  clock.AdvanceTo(std::chrono::milliseconds(2));
  EXPECT_EQ(clock.Now(), std::chrono::milliseconds(5));
  clock.AdvanceTo(std::chrono::seconds(1));
  EXPECT_DOUBLE_EQ(ToSeconds(clock.Now()), 1.0);
}

TEST(RealClock, IsMonotonic) {
  const Time a = RealClock::Instance().Now();
  const Time b = RealClock::Instance().Now();
  EXPECT_LE(a, b);
  EXPECT_GT(RealClock::Instance().UnixSeconds(), 1.6e9);
}

TEST(DurationConversions, RoundTrip) {
  EXPECT_DOUBLE_EQ(ToMillis(FromSeconds(0.25)), 250.0);
  EXPECT_DOUBLE_EQ(ToSeconds(FromMillis(1500)), 1.5);
}

TEST(FormatUnixUtc, WritesIso8601InUtcToTheSecond) {
  EXPECT_EQ(FormatUnixUtc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatUnixUtc(1796630400.75), "2026-12-07T08:00:00Z");  // fractions are cut
}

}  // namespace
}  // namespace zumik

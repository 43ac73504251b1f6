#include "core/rng.h"

#include <gtest/gtest.h>

#include <cmath>

namespace zumik {
namespace {

TEST(Rng, SameSeedSameStream) {
  Rng a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(Rng, UniformIntStaysInRangeAndCoversIt) {
  Rng rng(7);
  bool seen[6] = {};
  for (int i = 0; i < 1000; ++i) {
    const int64_t v = rng.UniformInt(1, 6);
    ASSERT_GE(v, 1);
    ASSERT_LE(v, 6);
    seen[v - 1] = true;
  }
  for (bool s : seen) EXPECT_TRUE(s);
}

// Sample means of each distribution match their parameters (n = 200k; tolerance ~5 sigma).
TEST(Rng, DistributionMeansMatchTheirParameters) {
  Rng rng(1);
  constexpr int kN = 200000;
  double exp_sum = 0, normal_sum = 0, normal_sq = 0, gamma_sum = 0, gamma_small = 0, logn = 0;
  for (int i = 0; i < kN; ++i) {
    exp_sum += rng.Exponential(2.0);
    const double n = rng.Normal(10.0, 3.0);
    normal_sum += n;
    normal_sq += (n - 10.0) * (n - 10.0);
    gamma_sum += rng.Gamma(4.0, 5.0);
    gamma_small += rng.Gamma(0.5, 1.0);
    logn += rng.LogNormal(1000.0, 0.5);
  }
  EXPECT_NEAR(exp_sum / kN, 2.0, 0.03);
  EXPECT_NEAR(normal_sum / kN, 10.0, 0.04);
  EXPECT_NEAR(std::sqrt(normal_sq / kN), 3.0, 0.03);
  EXPECT_NEAR(gamma_sum / kN, 5.0, 0.06);
  EXPECT_NEAR(gamma_small / kN, 1.0, 0.02);
  EXPECT_NEAR(logn / kN, 1000.0, 6.0);
}

TEST(Rng, ForkGivesAnIndependentDeterministicStream) {
  Rng a(5), b(5);
  Rng fa = a.Fork(), fb = b.Fork();
  EXPECT_EQ(fa.Next(), fb.Next());
  EXPECT_NE(fa.Next(), a.Next());
}

}  // namespace
}  // namespace zumik

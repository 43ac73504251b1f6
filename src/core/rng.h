// Injected randomness: a small, fast, seedable generator (xoshiro256**) with our own
// distributions, so that a seed gives the same numbers on every platform and standard library.
#pragma once

#include <array>
#include <cstdint>

namespace zumik {

// SplitMix64: advances `state` and returns a well-mixed 64-bit value. Seeds Rng; also a
// lock-free source of reproducible draws from a shared atomic counter.
uint64_t SplitMix64(uint64_t& state);

class Rng {
 public:
  explicit Rng(uint64_t seed = 1);

  uint64_t Next();
  // Uniform in [0, 1).
  double Uniform();
  // Uniform in [lo, hi).
  double Uniform(double lo, double hi);
  // Uniform integer in [lo, hi] (inclusive); requires lo <= hi.
  int64_t UniformInt(int64_t lo, int64_t hi);
  // Exponential with the given mean (> 0).
  double Exponential(double mean);
  // Normal with the given mean and standard deviation (Box-Muller).
  double Normal(double mean, double stddev);
  // Gamma with shape k > 0 and the given mean (Marsaglia-Tsang).
  double Gamma(double shape, double mean);
  // Lognormal whose own mean (not the log's) is `mean`, with log-space sigma.
  double LogNormal(double mean, double sigma);
  bool Bernoulli(double p) { return Uniform() < p; }

  // A new generator whose stream is independent of this one's (derived from a draw).
  Rng Fork();

 private:
  std::array<uint64_t, 4> s_{};
  bool has_spare_normal_ = false;
  double spare_normal_ = 0;
};

}  // namespace zumik

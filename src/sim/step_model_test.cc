// StepModel: the spec's formula, term by term.
#include "sim/step_model.h"

#include "gtest/gtest.h"

namespace zumik::sim {
namespace {

Profile Simple() {
  Profile p;
  p.t0 = 1e-3;
  p.t_w = 5e-3;
  p.c_lin = 10e-6;
  p.c_kv = 100e-9;
  p.c_att = 1e-9;
  p.c_load = 2e-6;
  return p;
}

TEST(StepModel, EmptyStepTakesNoTime) {
  EXPECT_EQ(StepModel(Simple()).StepTime(StepWork{}), Duration{0});
}

TEST(StepModel, SmallBatchesPayTheWeightReadFloor) {
  StepWork w;
  w.AddDecode(1000);
  // t0 + t_w (10 us x 1 < 5 ms) + c_kv x 1000
  EXPECT_NEAR(StepModel(Simple()).StepSeconds(w), 1e-3 + 5e-3 + 100e-6, 1e-12);
}

TEST(StepModel, PrefillChunksPayLinearAndAttentionTerms) {
  StepWork w;
  w.AddPrefillChunk(1000, 2000);  // 1000 new tokens on 2000 already in KV
  w.AddDecode(500);
  w.loaded_tokens = 100;
  const double expected =
      1e-3 + 10e-6 * 1001 + 100e-9 * 500 + 1e-9 * 1000 * (2000 + 500) + 2e-6 * 100;
  EXPECT_NEAR(StepModel(Simple()).StepSeconds(w), expected, 1e-12);
}

}  // namespace
}  // namespace zumik::sim

// The anchor checks of docs/specs/sim-calibration.md: one idle replica must reproduce each
// within +-15%. Measured values are printed so the docs can quote them.
#include <cstdio>

#include "gtest/gtest.h"
#include "sim/engine.h"
#include "sim/engine_test_util.h"

namespace zumik::sim {
namespace {

using testing::Concat;
using testing::Driver;
using testing::Spec;
using testing::Tokens;

void ExpectWithin15Percent(const char* what, double measured, double expected) {
  std::printf("[anchor] %-52s measured %10.4g  expected %10.4g  (%+.1f%%)\n", what, measured,
              expected, 100.0 * (measured / expected - 1.0));
  EXPECT_NEAR(measured, expected, 0.15 * expected) << what;
}

Profile Named(const char* name) { return *LoadProfile(name); }

// Throughput of the single prefill step of an uncached prompt.
double PrefillThroughput(int tokens) {
  Engine engine(Named("h100-llama-3.1-8b"));
  Driver driver(&engine);
  EXPECT_TRUE(engine.Add(Spec(1, Tokens(tokens, 1), 1)).ok());
  driver.RunToCompletion();
  EXPECT_EQ(driver.steps.size(), 1u);  // <= 8,192 tokens: one step
  return tokens / ToSeconds(driver.steps[0].end - driver.steps[0].start);
}

TEST(Anchors, PrefillThroughput1024Tokens) {
  ExpectWithin15Percent("h100 8B prefill 1,024 tokens (tokens/s)", PrefillThroughput(1024), 42000);
}

TEST(Anchors, PrefillThroughput8192Tokens) {
  ExpectWithin15Percent("h100 8B prefill 8,192 tokens (tokens/s)", PrefillThroughput(8192), 36000);
}

TEST(Anchors, TtftOf7200TokensUncached) {
  Engine engine(Named("h100-llama-3.1-8b"));
  Driver driver(&engine);
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(7200, 1), 1)).ok());
  driver.RunToCompletion();
  ExpectWithin15Percent("h100 8B TTFT 7,200 tokens, no cache (ms)",
                        ToMillis(driver.Result(1)->ttft()), 203);
}

TEST(Anchors, TtftOf7200TokensWithFirst6000Cached) {
  Engine engine(Named("h100-llama-3.1-8b"));
  Driver driver(&engine);
  const auto prefix = Tokens(6000, 1);
  ASSERT_TRUE(engine.Add(Spec(1, prefix, 1)).ok());
  driver.RunToCompletion();
  ASSERT_TRUE(engine.Add(Spec(2, Concat(prefix, Tokens(1200, 100000)), 1, driver.now)).ok());
  driver.RunToCompletion();
  EXPECT_EQ(driver.Result(2)->cached_tokens, 6000);
  ExpectWithin15Percent("h100 8B TTFT 7,200 tokens, 6,000 cached (ms)",
                        ToMillis(driver.Result(2)->ttft()), 48);
}

TEST(Anchors, InterTokenLatencyBatch1At1024Context) {
  Engine engine(Named("h100-llama-3.1-8b"));
  Driver driver(&engine);
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(1024, 1), 11)).ok());
  driver.RunToCompletion();
  const RequestResult* r = driver.Result(1);
  const double itl = ToMillis(r->finished - r->first_token) / (r->output_tokens - 1);
  ExpectWithin15Percent("h100 8B ITL batch 1 x 1,024 context (ms)", itl, 6.9);
}

TEST(Anchors, InterTokenLatency256SequencesAt1024Context) {
  Engine engine(Named("h100-llama-3.1-8b"));
  Driver driver(&engine);
  for (RequestId id = 0; id < 256; ++id) {
    // Prefilling all 256 takes 32+ steps: the first ones must still be decoding then.
    ASSERT_TRUE(engine.Add(Spec(id, Tokens(1024, static_cast<TokenId>(id) << 16), 48)).ok());
  }
  driver.RunToCompletion();
  int measured = 0;
  for (const auto& step : driver.steps) {
    if (step.decode_seqs == 256 && step.prefill_tokens == 0) {
      if (measured++ == 0) {
        ExpectWithin15Percent("h100 8B ITL 256 seqs x 1,024 context (ms)",
                              ToMillis(step.end - step.start), 19.6);
      }
    }
  }
  EXPECT_GT(measured, 0);
}

TEST(Anchors, Qwen32bTp2TtftOf8192Tokens) {
  Engine engine(Named("h100x2-qwen3-32b-tp2"));
  Driver driver(&engine);
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(8192, 1), 1)).ok());
  driver.RunToCompletion();
  EXPECT_EQ(driver.steps.size(), 1u);
  ExpectWithin15Percent("qwen3-32b tp2 TTFT 8,192 tokens (s)", ToSeconds(driver.Result(1)->ttft()),
                        0.51);
}

}  // namespace
}  // namespace zumik::sim

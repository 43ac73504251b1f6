// The replica profile files shipped under bench/fleets/: each one loads, and changes only what
// it says it changes — a deployment setting such as the context length — never a constant of the
// calibration spec (docs/specs/sim-calibration.md: those change only with a cited source).
#include <filesystem>
#include <string>

#include "bench/workload.h"
#include "gtest/gtest.h"
#include "sim/profile.h"

namespace zumik::bench {
namespace {

const std::filesystem::path kSource(ZUMIK_SOURCE_DIR);

void ExpectSameCalibration(const sim::Profile& file, const sim::Profile& base) {
  EXPECT_DOUBLE_EQ(file.t0, base.t0);
  EXPECT_DOUBLE_EQ(file.t_w, base.t_w);
  EXPECT_DOUBLE_EQ(file.c_lin, base.c_lin);
  EXPECT_DOUBLE_EQ(file.c_kv, base.c_kv);
  EXPECT_DOUBLE_EQ(file.c_att, base.c_att);
  EXPECT_DOUBLE_EQ(file.t_api, base.t_api);
  EXPECT_EQ(file.kv_tokens, base.kv_tokens);
  EXPECT_EQ(file.block_size, base.block_size);
  EXPECT_EQ(file.max_num_batched_tokens, base.max_num_batched_tokens);
  EXPECT_EQ(file.max_num_seqs, base.max_num_seqs);
}

TEST(FleetFiles, EveryShippedProfileFileKeepsItsBasesCalibration) {
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kSource / "bench/fleets")) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    auto file = sim::ResolveProfile(entry.path().string());
    ASSERT_TRUE(file.ok()) << entry.path() << ": " << file.status();
    auto base = sim::ResolveProfile(file->name);  // a file's profile keeps its base's name
    ASSERT_TRUE(base.ok()) << entry.path() << ": " << base.status();
    SCOPED_TRACE(entry.path().string());
    ExpectSameCalibration(*file, *base);
  }
  EXPECT_GE(files, 1);
}

// The long-context headline replica holds codegen's longest first turn whole (a 100k-token
// system prompt plus a 10k-token question), so the workload runs as specified, uncut.
TEST(FleetFiles, TheLongContextQwenFleetHoldsCodegensLongestFirstTurn) {
  auto file =
      sim::ResolveProfile((kSource / "bench/fleets/h100x2-qwen3-32b-tp2-131k.yaml").string());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->name, "h100x2-qwen3-32b-tp2");
  EXPECT_EQ(file->max_model_len, 131072);
  auto codegen = LoadWorkload((kSource / "bench/workloads/codegen.yaml").string());
  ASSERT_TRUE(codegen.ok()) << codegen.status();
  ASSERT_EQ(codegen->kind, WorkloadKind::kMultiTurn);
  const double longest_first_turn =
      codegen->multi_turn.system_prompt_len.max + codegen->multi_turn.question_len.max;
  EXPECT_EQ(longest_first_turn, 110000);
  EXPECT_GT(file->max_model_len, longest_first_turn);
}

}  // namespace
}  // namespace zumik::bench

// Profiles: the calibration table's constants, YAML/key=value overrides and their errors.
#include "sim/profile.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "core/config.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zumik::sim {
namespace {

using ::testing::HasSubstr;

TEST(Profile, BuiltinsCarryTheCalibrationTable) {
  EXPECT_EQ(ProfileNames(),
            (std::vector<std::string>{"h100-llama-3.1-8b", "h100x2-qwen3-32b-tp2",
                                      "a100-llama-3.1-8b", "h100x4-llama-3.1-70b-tp4"}));
  auto p = LoadProfile("h100-llama-3.1-8b");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_DOUBLE_EQ(p->c_lin, 22e-6);
  EXPECT_DOUBLE_EQ(p->c_kv, 48.5e-9);
  EXPECT_EQ(p->kv_tokens, 440000);
  EXPECT_EQ(p->num_gpu_blocks(), 27500);
  EXPECT_EQ(p->max_model_len, 131072);
  EXPECT_EQ(p->served_model_name, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_NEAR(p->c_load, 5.24e-6, 0.01e-6);  // 128 KiB over 25 GB/s

  auto q = LoadProfile("h100x2-qwen3-32b-tp2");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->kv_tokens, 307328);
  EXPECT_EQ(q->max_model_len, 40960);
  EXPECT_EQ(q->gpus_per_replica, 2);
  EXPECT_DOUBLE_EQ(q->c_att, 2.6e-9);

  auto a = LoadProfile("a100-llama-3.1-8b");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->max_num_batched_tokens, 2048);
  EXPECT_EQ(a->max_num_seqs, 256);
  EXPECT_EQ(a->gpu_memory_mib, 81920);

  auto l = LoadProfile("h100x4-llama-3.1-70b-tp4");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->gpus_per_replica, 4);
  EXPECT_DOUBLE_EQ(l->t_w, 14.5e-3);
}

TEST(Profile, OverridesAcceptSecondsOrUnits) {
  auto doc = ParseYaml(
      "c_lin: 25us\nt0: 0.002\nc_kv: 50ns\nkv_tokens: 1e5\n"
      "lmcache: {enabled: true, capacity_tokens: 1000}\n",
      "inline.yaml");
  ASSERT_TRUE(doc.ok());
  auto p = LoadProfile("h100-llama-3.1-8b", doc->root, doc->source);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_DOUBLE_EQ(p->c_lin, 25e-6);
  EXPECT_DOUBLE_EQ(p->t0, 0.002);
  EXPECT_DOUBLE_EQ(p->c_kv, 50e-9);
  EXPECT_EQ(p->kv_tokens, 100000);
  EXPECT_TRUE(p->lmcache.enabled);
  EXPECT_EQ(p->lmcache_capacity_tokens(), 1000);
}

TEST(Profile, UnknownKeyNamesFileLineAndKey) {
  auto doc = ParseYaml("c_lin: 25us\nc_linn: 3\n", "mine.yaml");
  ASSERT_TRUE(doc.ok());
  auto p = LoadProfile("h100-llama-3.1-8b", doc->root, doc->source);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(MessageOf(p.status())), HasSubstr("mine.yaml:2"));
  EXPECT_THAT(std::string(MessageOf(p.status())), HasSubstr("c_linn"));
}

TEST(Profile, BadValueIsAnError) {
  auto doc = ParseYaml("lmcache:\n  chunk_size: 100\n", "x.yaml");
  ASSERT_TRUE(doc.ok());
  auto chunk = LoadProfile("h100-llama-3.1-8b", doc->root, doc->source);
  ASSERT_FALSE(chunk.ok());
  // Both values are named: a block_size change alone can break the multiple too.
  EXPECT_THAT(std::string(MessageOf(chunk.status())),
              HasSubstr("lmcache.chunk_size (100) must be a positive multiple of block_size (16)"));
  auto doc2 = ParseYaml("t_w: fast\n", "y.yaml");
  ASSERT_TRUE(doc2.ok());
  auto p = LoadProfile("h100-llama-3.1-8b", doc2->root, doc2->source);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(MessageOf(p.status())), HasSubstr("y.yaml:1"));
}

TEST(Profile, UnknownNameListsTheBuiltins) {
  auto p = ResolveProfile("h200-llama");
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(MessageOf(p.status())), HasSubstr("h100-llama-3.1-8b"));
}

TEST(Profile, KeyValueAssignmentsOverrideABuiltin) {
  const std::vector<std::string> sets = {"c_lin=30us", "lmcache.enabled=true",
                                         "kv_bytes_per_token=65536"};
  auto p = ResolveProfile("h100-llama-3.1-8b", sets);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_DOUBLE_EQ(p->c_lin, 30e-6);
  EXPECT_TRUE(p->lmcache.enabled);
  EXPECT_NEAR(p->c_load, 65536 / 25e9, 1e-12);  // re-derived from the new KV size
  EXPECT_FALSE(ResolveProfile("h100-llama-3.1-8b", std::vector<std::string>{"nope=1"}).ok());
}

TEST(Profile, FileNamesItsBaseAndOverrides) {
  const std::string path = ::testing::TempDir() + "/profile_test.yaml";
  {
    std::ofstream out(path);
    out << "base: a100-llama-3.1-8b\nname: my-a100\nmax_num_seqs: 128\n";
  }
  auto p = ResolveProfile(path, std::vector<std::string>{"t_api=15ms"});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "my-a100");
  EXPECT_EQ(p->max_num_seqs, 128);
  EXPECT_EQ(p->max_num_batched_tokens, 2048);
  EXPECT_DOUBLE_EQ(p->t_api, 15e-3);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace zumik::sim

// Engine behaviour on crafted request sequences, in virtual time: prefix caching, eviction,
// ref counting, preemption, chunked prefill, limits, FCFS, abort, finish reasons, LMCache.
#include "sim/engine.h"

#include <set>

#include "gtest/gtest.h"
#include "sim/engine_test_util.h"

namespace zumik::sim {
namespace {

using testing::Concat;
using testing::Driver;
using testing::Spec;
using testing::Tokens;

Profile Small(int64_t kv_tokens, int budget = 8192, int max_seqs = 1024) {
  Profile p = *LoadProfile("h100-llama-3.1-8b");
  p.kv_tokens = kv_tokens;
  p.max_num_batched_tokens = budget;
  p.max_num_seqs = max_seqs;
  return p;
}

// Runs `spec` alone to completion and returns its result.
RequestResult RunOne(Engine& engine, Driver& driver, RequestSpec spec) {
  spec.arrival = driver.now;
  const RequestId id = spec.id;
  EXPECT_TRUE(engine.Add(std::move(spec)).ok());
  driver.RunToCompletion();
  const RequestResult* r = driver.Result(id);
  EXPECT_NE(r, nullptr);
  return r ? *r : RequestResult{};
}

TEST(Engine, SecondIdenticalPromptHitsAllButTheLastBlock) {
  Engine engine(Small(100000));
  Driver driver(&engine);
  const auto prompt = Tokens(100, 1000);  // 6 full blocks + 4 tokens
  EXPECT_EQ(RunOne(engine, driver, Spec(1, prompt, 4)).cached_tokens, 0);
  EXPECT_EQ(RunOne(engine, driver, Spec(2, prompt, 4)).cached_tokens, 96);

  // A block-aligned prompt that is fully cached still recomputes its last block.
  const auto aligned = Tokens(96, 5000);
  RunOne(engine, driver, Spec(3, aligned, 4));
  EXPECT_EQ(RunOne(engine, driver, Spec(4, aligned, 4)).cached_tokens, 80);

  const EngineStats s = engine.Stats();
  EXPECT_EQ(s.prefix_cache_queries, 100 + 100 + 96 + 96);
  EXPECT_EQ(s.prefix_cache_hits, 96 + 80);
  EXPECT_EQ(s.prompt_tokens, 392);
}

TEST(Engine, RehashesPromptsMadeForAnotherBlockSize) {
  Profile p = Small(100000);
  p.block_size = 32;
  Engine engine(p);
  Driver driver(&engine);
  const auto prompt = Tokens(100, 1000);  // hashed for 16-token blocks by Spec()
  RunOne(engine, driver, Spec(1, prompt, 2));
  EXPECT_EQ(RunOne(engine, driver, Spec(2, prompt, 2)).cached_tokens, 96);  // 3 x 32
  EXPECT_EQ(engine.Stats().block_size, 32);
}

TEST(Engine, SharedPrefixHitsExactlyTheSharedFullBlocks) {
  Engine engine(Small(100000));
  Driver driver(&engine);
  const auto shared = Tokens(40, 1);  // 2 full blocks + 8 tokens
  RunOne(engine, driver, Spec(1, Concat(shared, Tokens(50, 100)), 2));
  EXPECT_EQ(RunOne(engine, driver, Spec(2, Concat(shared, Tokens(50, 900)), 2)).cached_tokens, 32);
}

TEST(Engine, RunningRequestsSharingAPrefixStoreItOnce) {
  Engine engine(Small(100000));
  Driver driver(&engine);
  const auto shared = Tokens(64, 1);  // 4 full blocks
  ASSERT_TRUE(engine.Add(Spec(1, Concat(shared, Tokens(20, 100)), 50)).ok());
  driver.StepOnce();  // request 1 prefills and registers its blocks
  ASSERT_TRUE(engine.Add(Spec(2, Concat(shared, Tokens(20, 900)), 50, driver.now)).ok());
  while (engine.scheduler().num_running() < 2) driver.StepOnce();

  const auto& running = engine.scheduler().running();
  std::set<BlockId> distinct;
  size_t total = 0;
  for (const Sequence* seq : running) {
    distinct.insert(seq->blocks.begin(), seq->blocks.end());
    total += seq->blocks.size();
  }
  for (int k = 0; k < 4; ++k) EXPECT_EQ(running[0]->blocks[k], running[1]->blocks[k]);
  EXPECT_EQ(total - distinct.size(), 4u);
  EXPECT_EQ(engine.kv().pool().num_used_blocks(), static_cast<int>(distinct.size()));
  EXPECT_EQ(running[1]->cached_tokens, 64);
  driver.RunToCompletion();
  EXPECT_EQ(engine.kv().pool().num_used_blocks(), 0);
}

// vLLM V1 registers a block in the prefix cache when the step that fills it is scheduled
// (KVCacheManager.allocate_slots -> cache_blocks, before the forward pass), so of the n child
// requests of a parallel-sampling request, added together, every child after the first hits the
// first one's prompt blocks in the very step that computes them.
TEST(Engine, ChildrenAddedTogetherHitTheFirstChildsBlocksInTheSameStep) {
  Engine engine(Small(100000));
  Driver driver(&engine);
  const auto prompt = MakePrompt(Tokens(100, 1000));  // 6 full blocks + 4 tokens, shared
  for (RequestId id = 1; id <= 3; ++id) {
    RequestSpec spec = Spec(id, {}, 4);
    spec.prompt = prompt;
    spec.seed = id;
    ASSERT_TRUE(engine.Check(spec).ok());
    ASSERT_TRUE(engine.Add(std::move(spec)).ok());
  }
  ASSERT_TRUE(driver.StepOnce());
  const StepResult& first = engine.last_step();
  ASSERT_EQ(first.first_tokens.size(), 3u);  // all three prefilled in one step
  EXPECT_EQ(first.first_tokens[0].cached_tokens, 0);
  EXPECT_EQ(first.first_tokens[1].cached_tokens, 96);
  EXPECT_EQ(first.first_tokens[2].cached_tokens, 96);
  EXPECT_EQ(first.prefill_tokens, 100 + 4 + 4);
  driver.RunToCompletion();
  const EngineStats s = engine.Stats();
  EXPECT_EQ(s.prefix_cache_hits, 2 * 96);
  EXPECT_EQ(s.prompt_tokens, 3 * 100);  // counted per engine request, as vLLM does per child
  EXPECT_EQ(s.finished_length, 3);
  EXPECT_EQ(engine.kv().pool().num_used_blocks(), 0);
}

TEST(Engine, CheckAnswersWhatAddWouldWithoutAdding) {
  Engine engine(Small(100000));
  EXPECT_FALSE(engine.Check(Spec(1, {}, 4)).ok());
  EXPECT_FALSE(engine.Check(Spec(1, Tokens(10, 1), 0)).ok());
  ASSERT_TRUE(engine.Check(Spec(1, Tokens(10, 1), 4)).ok());
  EXPECT_FALSE(engine.HasWork());
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(10, 1), 4)).ok());
  EXPECT_EQ(engine.Check(Spec(1, Tokens(10, 1), 4)).code(), absl::StatusCode::kAlreadyExists);
}

TEST(Engine, EvictsLeastRecentlyFreedBlocksFirst) {
  Engine engine(Small(size_t{20} * 16));  // 20 blocks
  Driver driver(&engine);
  const auto a = Tokens(64, 1000);
  const auto b = Tokens(64, 2000);
  RunOne(engine, driver, Spec(1, a, 1));  // 4 blocks, freed with their hashes
  RunOne(engine, driver, Spec(2, b, 1));  // 4 more, freed after a's
  // 16 blocks: the 12 never used, then a's 4 (freed first) are evicted; b's survive.
  RunOne(engine, driver, Spec(3, Tokens(256, 9000), 1));
  EXPECT_EQ(RunOne(engine, driver, Spec(4, b, 1)).cached_tokens, 48);
  EXPECT_EQ(RunOne(engine, driver, Spec(5, a, 1)).cached_tokens, 0);
}

TEST(Engine, PreemptsTheMostRecentlyAddedRequestAndRecomputesIt) {
  Engine engine(Small(size_t{10} * 16));  // 10 blocks; two requests need 6 each at the end
  Driver driver(&engine);
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(32, 100), 60)).ok());
  ASSERT_TRUE(engine.Add(Spec(2, Tokens(32, 900), 60)).ok());
  driver.RunToCompletion();
  ASSERT_EQ(driver.results.size(), 2u);
  const RequestResult* first = driver.Result(1);
  const RequestResult* second = driver.Result(2);
  EXPECT_EQ(first->preemptions, 0);
  EXPECT_GE(second->preemptions, 1);  // the victim is the one added to running last
  EXPECT_EQ(first->output_tokens, 60);
  EXPECT_EQ(second->output_tokens, 60);
  EXPECT_EQ(second->token_times.size(), 60u);
  EXPECT_EQ(engine.Stats().preemptions, second->preemptions);
  EXPECT_EQ(engine.kv().pool().num_used_blocks(), 0);
  // A step that preempted admitted no waiting request, and the victim later resumed.
  bool saw_preemption = false;
  for (const auto& step : driver.steps) saw_preemption |= step.num_preempted > 0;
  EXPECT_TRUE(saw_preemption);
}

TEST(Engine, RequestNeedingABlockPreemptsItselfWhenItIsTheNewest) {
  Engine engine(Small(size_t{10} * 16));
  Driver driver(&engine);
  // Request 2 crosses block boundaries first (its prompt ends later in a block), so it is
  // the one that runs out of blocks while being the newest: it preempts itself.
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(32, 100), 60)).ok());
  ASSERT_TRUE(engine.Add(Spec(2, Tokens(40, 900), 52)).ok());
  driver.RunToCompletion();
  EXPECT_EQ(driver.Result(1)->preemptions, 0);
  EXPECT_GE(driver.Result(2)->preemptions, 1);
  EXPECT_EQ(driver.Result(2)->output_tokens, 52);
}

TEST(Engine, ChunkedPrefillSplitsLongPromptsAndServesDecodesFirst) {
  Engine engine(Small(100000, /*budget=*/64));
  Driver driver(&engine);
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(16, 100), 20)).ok());
  driver.StepOnce();  // request 1 prefilled: it decodes from now on
  ASSERT_TRUE(engine.Add(Spec(2, Tokens(200, 900), 2, driver.now)).ok());
  const size_t before = driver.steps.size();
  driver.RunToCompletion();
  // Next steps: request 1's decode first, then 63 prompt tokens of request 2, until its
  // 200 tokens are done (63 + 63 + 63 + 11).
  std::vector<int64_t> prefill;
  for (size_t i = before; i < driver.steps.size(); ++i) {
    if (driver.steps[i].prefill_tokens > 0) {
      prefill.push_back(driver.steps[i].prefill_tokens);
      EXPECT_EQ(driver.steps[i].decode_seqs, 1);
    }
  }
  EXPECT_EQ(prefill, (std::vector<int64_t>{63, 63, 63, 11}));
  const RequestResult* r2 = driver.Result(2);
  EXPECT_EQ(r2->output_tokens, 2);
}

TEST(Engine, RespectsMaxNumSeqs) {
  Engine engine(Small(100000, 8192, /*max_seqs=*/2));
  Driver driver(&engine);
  for (RequestId id = 1; id <= 3; ++id) {
    ASSERT_TRUE(engine.Add(Spec(id, Tokens(32, id * 1000), 10)).ok());
  }
  driver.StepOnce();
  EXPECT_EQ(engine.scheduler().num_running(), 2);
  EXPECT_EQ(engine.scheduler().num_waiting(), 1);
  while (engine.scheduler().num_waiting() > 0) {
    EXPECT_LE(engine.scheduler().num_running(), 2);
    driver.StepOnce();
  }
  driver.RunToCompletion();
  EXPECT_EQ(driver.results.size(), 3u);
  EXPECT_GT(driver.Result(3)->first_token, driver.Result(1)->finished - Duration{1});
}

TEST(Engine, WaitingHeadThatDoesNotFitBlocksLaterRequests) {
  Engine engine(Small(size_t{10} * 16));
  Driver driver(&engine);
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(96, 100), 30)).ok());
  driver.StepOnce();
  ASSERT_TRUE(engine.Add(Spec(2, Tokens(96, 900), 30, driver.now)).ok());  // does not fit
  ASSERT_TRUE(engine.Add(Spec(3, Tokens(16, 5000), 2, driver.now)).ok());  // would fit
  while (driver.Result(1) == nullptr) {
    ASSERT_TRUE(driver.StepOnce());
    if (driver.Result(1) == nullptr) {
      EXPECT_EQ(engine.scheduler().num_running(), 1);
    }
  }
  EXPECT_EQ(engine.scheduler().num_waiting(), 2);
  driver.RunToCompletion();
  // Both are admitted together once request 1 frees its blocks; 3 never jumped the queue.
  EXPECT_GE(driver.Result(3)->first_token, driver.Result(1)->finished);
  EXPECT_GE(driver.Result(2)->first_token, driver.Result(1)->finished);
}

TEST(Engine, AbortFreesBlocks) {
  Engine engine(Small(100000));
  Driver driver(&engine);
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(100, 1), 100)).ok());
  ASSERT_TRUE(engine.Add(Spec(2, Tokens(100, 500), 100, Time{std::chrono::seconds(5)})).ok());
  driver.StepOnce();
  driver.StepOnce();
  EXPECT_GT(engine.kv().pool().num_used_blocks(), 0);
  auto aborted = engine.Abort(1, driver.now);
  ASSERT_TRUE(aborted.has_value());
  EXPECT_EQ(aborted->finish_reason, FinishReason::kAbort);
  EXPECT_EQ(aborted->output_tokens, 2);
  EXPECT_EQ(engine.kv().pool().num_used_blocks(), 0);
  EXPECT_TRUE(engine.Abort(2, driver.now).has_value());  // still in its t_api delay
  EXPECT_FALSE(engine.Abort(2, driver.now).has_value());
  EXPECT_FALSE(engine.HasWork());
  EXPECT_EQ(engine.Stats().aborted, 2);
}

TEST(Engine, FinishReasonsFollowIgnoreEosAndNaturalStops) {
  Engine engine(Small(100000));
  Driver driver(&engine);
  RequestSpec exact = Spec(1, Tokens(10, 1), 300);
  EXPECT_EQ(RunOne(engine, driver, exact).output_tokens, 300);
  EXPECT_EQ(driver.Result(1)->finish_reason, FinishReason::kLength);

  RequestSpec natural = Spec(2, Tokens(10, 1), 5000);
  natural.ignore_eos = false;
  const RequestResult stopped = RunOne(engine, driver, natural);
  EXPECT_EQ(stopped.finish_reason, FinishReason::kStop);
  EXPECT_LT(stopped.output_tokens, 5000);

  RequestSpec short_cap = Spec(3, Tokens(10, 1), 1);
  short_cap.ignore_eos = false;
  EXPECT_EQ(RunOne(engine, driver, short_cap).finish_reason, FinishReason::kLength);

  RequestSpec with_min = Spec(4, Tokens(10, 1), 5000);
  with_min.ignore_eos = false;
  with_min.min_tokens = 400;
  EXPECT_GT(RunOne(engine, driver, with_min).output_tokens, 400);

  const EngineStats s = engine.Stats();
  EXPECT_EQ(s.finished_length, 2);
  EXPECT_EQ(s.finished_stop, 2);
}

TEST(Engine, NaturalStopLengthsAreDeterministicWithMeanNearTheProfile) {
  double sum = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) sum += NaturalStopLength(static_cast<uint64_t>(i) * 7919, 1, 0, 256);
  EXPECT_NEAR(sum / n, 256, 256 * 0.08);
  EXPECT_EQ(NaturalStopLength(42, 1, 0, 256), NaturalStopLength(42, 1, 0, 256));
  EXPECT_GE(NaturalStopLength(42, 1, 30, 256), 31);
}

TEST(Engine, RejectsRequestsThatCannotRun) {
  Profile p = Small(64);
  p.max_model_len = 1000;
  Engine engine(p);
  EXPECT_FALSE(engine.Add(Spec(1, Tokens(60, 1), 10)).ok());  // over the KV capacity
  EXPECT_FALSE(engine.Add(Spec(2, Tokens(10, 1), 0)).ok());   // max_tokens < 1
  RequestSpec no_prompt;
  EXPECT_FALSE(engine.Add(no_prompt).ok());
  EXPECT_TRUE(engine.Add(Spec(3, Tokens(10, 1), 10)).ok());
  EXPECT_EQ(engine.Add(Spec(3, Tokens(10, 1), 10)).code(), absl::StatusCode::kAlreadyExists);
  Engine big(Small(1000000));
  EXPECT_FALSE(big.Add(Spec(4, Tokens(131000, 1), 100)).ok());  // over max_model_len
}

TEST(Engine, ApiDelayPrecedesTheWaitingQueue) {
  Engine engine(Small(100000));
  ASSERT_TRUE(engine.Add(Spec(1, Tokens(10, 1), 1, Time{1000})).ok());
  EXPECT_EQ(engine.NextStepTime(), Time{1000} + FromMillis(10));
  EXPECT_TRUE(engine.Step(Time{1000}).idle());
  EXPECT_EQ(engine.Stats().num_admitting, 1);
  EXPECT_EQ(engine.Stats().num_waiting, 0);
}

TEST(Engine, LmcacheTierServesBlocksEvictedFromTheGpu) {
  Profile p = Small(size_t{40} * 16);  // 640 tokens of GPU KV
  p.lmcache.enabled = true;
  p.lmcache.capacity_tokens = 100000;
  Engine engine(p);
  Driver driver(&engine);
  const auto a = Tokens(512, 1000);  // 32 blocks
  RunOne(engine, driver, Spec(1, a, 1));
  RunOne(engine, driver, Spec(2, Tokens(512, 9000), 1));  // evicts a's last 24 blocks
  const RequestResult again = RunOne(engine, driver, Spec(3, a, 1));
  // GPU: a's first 8 blocks (128 tokens). Tier: blocks 8..30 (the cap is 511 tokens -> 31
  // blocks), 496 tokens rounded down to a 256-token chunk: 256. So 128 more from the tier.
  EXPECT_EQ(again.cached_tokens, 256);
  EXPECT_EQ(again.external_cached_tokens, 128);
  const EngineStats s = engine.Stats();
  EXPECT_TRUE(s.lmcache_enabled);
  EXPECT_EQ(s.external_prefix_cache_hits, 128);
  EXPECT_EQ(s.lmcache_hit_tokens, 128);
  EXPECT_EQ(s.external_prefix_cache_queries, 3 * 512);
  EXPECT_EQ(s.prefix_cache_hits, 128);
  EXPECT_GE(s.lmcache_stored_tokens, 24 * 16);
}

TEST(Engine, LoadingFromTheTierCostsLoadTime) {
  Profile p = Small(size_t{40} * 16);
  p.lmcache.enabled = true;
  p.lmcache.capacity_tokens = 100000;
  p.c_load = 1e-3;  // exaggerated so the term is visible
  Engine engine(p);
  Driver driver(&engine);
  const auto a = Tokens(512, 1000);
  RunOne(engine, driver, Spec(1, a, 1));
  RunOne(engine, driver, Spec(2, Tokens(512, 9000), 1));
  const size_t before = driver.steps.size();
  RunOne(engine, driver, Spec(3, a, 1));
  ASSERT_EQ(driver.steps.size(), before + 1);
  const auto& step = driver.steps.back();
  EXPECT_EQ(step.prefill_tokens, 512 - 256);
  // 128 tokens loaded at 1 ms each dominate the step.
  EXPECT_GT(ToSeconds(step.end - step.start), 0.128);
}

}  // namespace
}  // namespace zumik::sim

// The Scheduler: composition and weights, fallback order, failures, in-flight accounting, the
// prefix index at pick time, endpoint removal and reuse, determinism by seed.
#include "sched/scheduler.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/status.h"
#include "sched/test_util.h"

namespace zumik::sched {
namespace {

using testing::MakeEndpoint;

std::unique_ptr<Scheduler> Make(const std::string& yaml, Rng& rng) {
  auto config = ParsePolicyConfig(yaml, "t.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  auto scheduler = Scheduler::Create(*config, rng);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  return std::move(*scheduler);
}

InferenceRequest Request(const std::string& prompt) {
  InferenceRequest r;
  r.model = "m";
  r.prompt = prompt;
  return r;
}

constexpr const char* kQueueAndKv = R"(plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
  parameters: {maxNumOfEndpoints: 3}
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 1
  - pluginRef: max-score-picker
)";

TEST(Scheduler, TotalsAreTheWeightedSumOfScoresAndFallbacksFollowThem) {
  Rng rng(1);
  auto scheduler = Make(kQueueAndKv, rng);
  // queue: 0, 10, 5 → 1, 0, 0.5;  kv: 0.5, 0, 0.75 → 0.5, 1, 0.25
  std::vector<Endpoint> eps = {MakeEndpoint(0, 0, 0.5), MakeEndpoint(1, 10, 0.0),
                               MakeEndpoint(2, 5, 0.75)};
  const std::string prompt = "hello";
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0}, {.dry_run = false, .explain = true});
  ASSERT_TRUE(pick.ok()) << pick.status();
  ASSERT_TRUE(pick->decision.has_value());
  const Decision& d = *pick->decision;
  ASSERT_EQ(d.scorers.size(), 2u);
  EXPECT_EQ(d.scorers[0].scores, (std::vector<double>{1, 0, 0.5}));
  EXPECT_EQ(d.scorers[1].scores, (std::vector<double>{0.5, 1, 0.25}));
  ASSERT_EQ(d.totals.size(), 3u);
  EXPECT_DOUBLE_EQ(d.totals[0], 2.5);
  EXPECT_DOUBLE_EQ(d.totals[1], 1.0);
  EXPECT_DOUBLE_EQ(d.totals[2], 1.25);
  EXPECT_EQ(pick->targets, (std::vector<EndpointId>{0, 2, 1}));
  EXPECT_EQ(pick->target_indices, (std::vector<uint32_t>{0, 2, 1}));
  EXPECT_EQ(pick->primary(), 0u);
}

TEST(Scheduler, NoEndpointsOrNoneReadyIsUnavailable) {
  Rng rng(1);
  auto scheduler = Make(kQueueAndKv, rng);
  InferenceRequest request = Request("x");
  auto none = scheduler->Pick(request, {}, Time{0});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  for (Endpoint& e : eps) e.ready = false;
  auto not_ready = scheduler->Pick(request, eps, Time{0});
  EXPECT_EQ(not_ready.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(scheduler->Stats().failures, 2);
}

TEST(Scheduler, NotReadyEndpointsAreNeverPicked) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: random-picker\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)};
  eps[0].ready = false;
  eps[2].ready = false;
  InferenceRequest request = Request("x");
  for (int i = 0; i < 20; ++i) {
    auto pick = scheduler->Pick(request, eps, Time{0}, {.dry_run = true, .explain = false});
    ASSERT_TRUE(pick.ok());
    EXPECT_EQ(pick->primary(), 1u);
  }
}

TEST(Scheduler, AFilterThatRejectsEveryEndpointFailsWithResourceExhausted) {
  Rng rng(1);
  auto scheduler = Make(R"(plugins:
- type: prefill-filter
- type: queue-scorer
)",
                        rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  InferenceRequest request = Request("x");
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_FALSE(pick.ok());
  EXPECT_EQ(pick.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(MessageOf(pick.status()),
            "profile 'default': filter 'prefill-filter' rejected every endpoint");
}

TEST(Scheduler, TracksInFlightRequestsAndPrefillTokensUntilCompletion) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: round-robin-picker\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  const std::string prompt(400, 'a');  // 100 tokens
  InferenceRequest request = Request(prompt);
  auto first = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(first.ok());
  const EndpointId e = first->primary();
  EXPECT_EQ(first->uncached_tokens, 100);
  EXPECT_EQ(scheduler->LoadOf(e).requests, 1);
  EXPECT_EQ(scheduler->LoadOf(e).prefill_requests, 1);
  EXPECT_EQ(scheduler->LoadOf(e).prefill_tokens, 100);
  EXPECT_EQ(scheduler->Stats().in_flight, 1);

  EXPECT_TRUE(scheduler->OnFirstToken(first->handle, Time{1000}));
  EXPECT_EQ(scheduler->LoadOf(e).requests, 1);
  EXPECT_EQ(scheduler->LoadOf(e).prefill_tokens, 0);
  EXPECT_EQ(scheduler->LoadOf(e).decoding(), 1);
  EXPECT_TRUE(scheduler->OnFirstToken(first->handle, Time{2000}));  // repeated: no effect
  EXPECT_EQ(scheduler->LoadOf(e).prefill_requests, 0);

  EXPECT_TRUE(scheduler->OnComplete(first->handle, Time{5000}));
  EXPECT_EQ(scheduler->LoadOf(e).requests, 0);
  EXPECT_EQ(scheduler->Stats().in_flight, 0);
  EXPECT_FALSE(scheduler->OnComplete(first->handle, Time{6000}));  // completed once only
  EXPECT_FALSE(scheduler->OnFirstToken(kNoPickHandle, Time{0}));
}

TEST(Scheduler, CompletionWithoutFirstTokenReleasesThePrefillToo) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: random-picker\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  const std::string prompt(400, 'a');
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  Completion failed;
  failed.success = false;
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{10}, failed));
  const EndpointLoad load = scheduler->LoadOf(0);
  EXPECT_EQ(load.requests, 0);
  EXPECT_EQ(load.prefill_requests, 0);
  EXPECT_EQ(load.prefill_tokens, 0);
}

TEST(Scheduler, DryRunsChangeNothing) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  const std::string prompt(64 * 8, 'a');
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0}, {.dry_run = true, .explain = false});
  ASSERT_TRUE(pick.ok());
  EXPECT_EQ(pick->handle, kNoPickHandle);
  EXPECT_EQ(scheduler->LoadOf(pick->primary()).requests, 0);
  EXPECT_EQ(scheduler->prefix_index()->size(), 0);
}

TEST(Scheduler, RecordsThePromptForThePrimaryAtPickTime) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)};
  const std::string prompt(64 * 8 + 10, 'a');
  InferenceRequest first = Request(prompt);
  auto a = scheduler->Pick(first, eps, Time{0});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(first.hashes.blocks.size(), 8u);  // hashed once, carried on the request
  EXPECT_EQ(a->prefix_blocks, 0);
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(a->primary()), 8);
  // The same prompt again: the prefix scorer sends it where it was cached.
  InferenceRequest second = Request(prompt);
  auto b = scheduler->Pick(second, eps, Time{1}, {.dry_run = false, .explain = true});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->primary(), a->primary());
  EXPECT_EQ(b->prefix_blocks, 8);
  EXPECT_EQ(b->total_blocks, 8);
  EXPECT_EQ(b->uncached_tokens, 131 - 8 * 16);  // 522 bytes ≈ 131 tokens
  const SchedulerStats stats = scheduler->Stats();
  EXPECT_EQ(stats.prefix_hit_blocks, 8);
  EXPECT_EQ(stats.prefix_looked_up_blocks, 16);
  EXPECT_EQ(stats.prefix_index_entries, 8);
  EXPECT_GT(stats.prefix_index_bytes, 0);
}

TEST(Scheduler, AutoTunesTheBlockSizeFromTheEndpointsCacheConfig) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  eps[0].metrics.block_size = 32;  // tokens → 128-byte blocks
  eps[0].metrics.num_gpu_blocks = 10;
  const std::string prompt(128 * 20, 'a');
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  EXPECT_EQ(request.hashes.block_bytes, 128);
  EXPECT_EQ(request.hashes.blocks.size(), 20u);
  // Capacity comes from num_gpu_blocks.
  EXPECT_EQ(scheduler->prefix_index()->CapacityOf(0), 10);
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 10);
  // A new block size makes old entries useless: the index starts again.
  eps[0].metrics.block_size = 16;
  InferenceRequest again = Request(prompt);
  ASSERT_TRUE(scheduler->Pick(again, eps, Time{1}).ok());
  EXPECT_EQ(again.hashes.block_bytes, 64);
  EXPECT_EQ(again.hashes.blocks.size(), 40u);
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 10);  // 10 vLLM blocks of 16 tokens
}

TEST(Scheduler, RemovingAnEndpointForgetsItsStateAndIgnoresItsOldCompletions) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  const std::string prompt(64 * 4, 'a');
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  scheduler->RemoveEndpoint(0);
  EXPECT_EQ(scheduler->prefix_index()->size(), 0);
  EXPECT_EQ(scheduler->LoadOf(0).requests, 0);
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{1}));
  EXPECT_EQ(scheduler->LoadOf(0).requests, 0);  // not −1
  EXPECT_EQ(scheduler->LoadOf(0).prefill_tokens, 0);
}

TEST(Scheduler, AnIdReusedForAnotherAddressStartsClean) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  const std::string prompt(64 * 4, 'a');
  InferenceRequest request = Request(prompt);
  ASSERT_TRUE(scheduler->Pick(request, eps, Time{0}).ok());
  EXPECT_EQ(scheduler->LoadOf(0).requests, 1);
  eps[0].address = "10.9.9.9:8000";  // a new pod got the slot
  InferenceRequest next = Request(prompt);
  auto pick = scheduler->Pick(next, eps, Time{1});
  ASSERT_TRUE(pick.ok());
  EXPECT_EQ(pick->prefix_blocks, 0);
  EXPECT_EQ(scheduler->LoadOf(0).requests, 1);
}

TEST(Scheduler, ForgetsEndpointsAbsentFromSnapshotsForTwoMinutes) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> first = {MakeEndpoint(0)};
  const std::string prompt(64 * 4, 'a');
  InferenceRequest cached = Request(prompt);
  auto pick = scheduler->Pick(cached, first, Time{0});
  ASSERT_TRUE(pick.ok());
  ASSERT_TRUE(scheduler->OnComplete(pick->handle, Time{0}));
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 4);
  std::vector<Endpoint> only_other = {MakeEndpoint(1)};
  InferenceRequest request = Request("x");
  ASSERT_TRUE(scheduler->Pick(request, only_other, std::chrono::seconds(100)).ok());
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 4);  // gone 100 s: kept
  ASSERT_TRUE(scheduler->Pick(request, only_other, std::chrono::seconds(200)).ok());
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 0);  // gone 200 s: forgotten
  // Back again: it starts clean.
  InferenceRequest again = Request(prompt);
  auto back = scheduler->Pick(again, first, std::chrono::seconds(201));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->prefix_blocks, 0);
}

TEST(Scheduler, RejectsDuplicateAndOversizedIds) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: random-picker\n", rng);
  InferenceRequest request = Request("x");
  std::vector<Endpoint> dup = {MakeEndpoint(3), MakeEndpoint(3)};
  EXPECT_EQ(scheduler->Pick(request, dup, Time{0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<Endpoint> big = {MakeEndpoint(kMaxEndpointId + 1)};
  EXPECT_EQ(scheduler->Pick(request, big, Time{0}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Scheduler, TheSameSeedGivesTheSamePicks) {
  auto run = [](uint64_t seed) {
    Rng rng(seed);
    auto scheduler = Scheduler::FromPolicy("random", rng);
    EXPECT_TRUE(scheduler.ok());
    std::vector<Endpoint> eps;
    for (EndpointId i = 0; i < 8; ++i) eps.push_back(MakeEndpoint(i));
    std::vector<EndpointId> picks;
    std::vector<std::string> prompts;
    for (int i = 0; i < 64; ++i) prompts.push_back(std::string(64 * 4, static_cast<char>('a' + i % 5)));
    for (int i = 0; i < 64; ++i) {
      InferenceRequest request = Request(prompts[static_cast<size_t>(i)]);
      auto pick = (*scheduler)->Pick(request, eps, Time{i});
      EXPECT_TRUE(pick.ok());
      picks.push_back(pick->primary());
      if (i % 3 == 0) (*scheduler)->OnComplete(pick->handle, Time{i});
    }
    return picks;
  };
  EXPECT_EQ(run(11), run(11));
  EXPECT_NE(run(11), run(12));
}

TEST(Scheduler, ExposesTheSessionHeaderTheTransportShouldRead) {
  Rng rng(1);
  auto with = Make("plugins:\n- type: session-affinity-scorer\n  parameters:\n"
                   "    strategy: session_id\n",
                   rng);
  EXPECT_EQ(with->SessionHeaderName(), "x-session-id");
  auto without = Make("plugins:\n- type: queue-scorer\n", rng);
  EXPECT_EQ(without->SessionHeaderName(), "");
}

TEST(Scheduler, ExplainShowsWhatEachFilterKept) {
  Rng rng(1);
  auto scheduler = Make(R"(plugins:
- type: decode-filter
- type: label-selector-filter
  parameters:
    matchLabels: {zone: a}
- type: random-picker
)",
                        rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)};
  eps[0].labels = {{"zone", "a"}, {"llm-d.ai/role", "prefill"}};
  eps[1].labels = {{"zone", "a"}};
  eps[2].labels = {{"zone", "b"}};
  InferenceRequest request = Request("x");
  auto pick = scheduler->Pick(request, eps, Time{0}, {.dry_run = true, .explain = true});
  ASSERT_TRUE(pick.ok());
  const Decision& d = *pick->decision;
  EXPECT_EQ(d.considered, (std::vector<EndpointId>{0, 1, 2}));
  ASSERT_EQ(d.filters.size(), 2u);
  EXPECT_EQ(d.filters[0].kept, (std::vector<EndpointId>{1, 2}));
  EXPECT_EQ(d.filters[1].kept, (std::vector<EndpointId>{1}));
  EXPECT_EQ(d.candidates, (std::vector<EndpointId>{1}));
  EXPECT_EQ(pick->primary(), 1u);
}

}  // namespace
}  // namespace zumik::sched

// The Scheduler: composition and weights, fallback order, failures, in-flight accounting, the
// prefix index at pick time, endpoint removal and reuse, determinism by seed.
#include "sched/scheduler.h"

#include <gtest/gtest.h>

#include <span>
#include <string>
#include <string_view>
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

// The request views `prompt`: a literal lives forever, a string must outlive the request.
InferenceRequest Request(std::string_view prompt) {
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

// n > 1: the engine runs every sample as a request of its own, so the router counts them all;
// the shared prompt is charged once.
TEST(Scheduler, ARequestWithSeveralSamplesCountsEachAsASequenceAndItsPromptOnce) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: round-robin-picker\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)};
  const std::string prompt(400, 'a');  // 100 tokens
  InferenceRequest request = Request(prompt);
  request.sequences = 4;
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  const EndpointId e = pick->primary();
  EXPECT_EQ(scheduler->LoadOf(e).requests, 4);
  EXPECT_EQ(scheduler->LoadOf(e).prefill_requests, 4);
  EXPECT_EQ(scheduler->LoadOf(e).prefill_tokens, 100);
  EXPECT_EQ(scheduler->Stats().in_flight, 1);  // one pick

  // Served elsewhere: all four move.
  const EndpointId served = (e + 1) % 3;
  ASSERT_TRUE(scheduler->OnServedBy(pick->handle, eps[served]));
  EXPECT_EQ(scheduler->LoadOf(e).requests, 0);
  EXPECT_EQ(scheduler->LoadOf(e).prefill_requests, 0);
  EXPECT_EQ(scheduler->LoadOf(served).requests, 4);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_requests, 4);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_tokens, 100);

  EXPECT_TRUE(scheduler->OnFirstToken(pick->handle, Time{1000}));
  EXPECT_EQ(scheduler->LoadOf(served).decoding(), 4);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_tokens, 0);
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{5000}));
  EXPECT_EQ(scheduler->LoadOf(served).requests, 0);
  EXPECT_EQ(scheduler->Stats().in_flight, 0);

  // A count below one is read as one.
  request.sequences = 0;
  auto single = scheduler->Pick(request, eps, Time{6000});
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(scheduler->LoadOf(single->primary()).requests, 1);
}

// A completions batch hashes its first prompt only: the others' tokens are uncached prefill
// wherever the batch goes, the endpoint holding the first prompt's prefix included, and they
// move with the request when another endpoint serves it.
TEST(Scheduler, ABatchsOtherPromptsAreChargedAsUncachedPrefillEverywhere) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)};
  const std::string prompt(64 * 8 + 10, 'a');  // 8 hashed blocks, 131 tokens
  InferenceRequest single = Request(prompt);
  auto a = scheduler->Pick(single, eps, Time{0});
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->uncached_tokens, 131);
  ASSERT_TRUE(scheduler->OnFirstToken(a->handle, Time{100}));

  InferenceRequest batch = Request(prompt);
  batch.batch_tokens = 250;
  batch.sequences = 3;
  auto b = scheduler->Pick(batch, eps, Time{200});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->primary(), a->primary());  // the first prompt's home
  EXPECT_EQ(b->prefix_blocks, 8);
  EXPECT_EQ(b->uncached_tokens, 131 - 8 * 16 + 250);
  const EndpointId home = b->primary();
  EXPECT_EQ(scheduler->LoadOf(home).prefill_tokens, 131 - 8 * 16 + 250);

  // Served elsewhere: nothing there is known cached, so every prompt token is charged there.
  const EndpointId served = (home + 1) % 3;
  ASSERT_TRUE(scheduler->OnServedBy(b->handle, eps[served]));
  EXPECT_EQ(scheduler->LoadOf(home).prefill_tokens, 0);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_tokens, 131 + 250);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_requests, 3);
  ASSERT_TRUE(scheduler->OnFirstToken(b->handle, Time{300}));
  EXPECT_EQ(scheduler->LoadOf(served).prefill_tokens, 0);
}

// Load scorers see sequences, not requests: with an n = 8 request on one endpoint and a
// single one on the other, the next request goes to the one running a single sequence.
TEST(Scheduler, LoadScorersWeighARequestBySequences) {
  Rng rng(1);
  auto built = Scheduler::FromPolicy("least-request", rng);  // active-request-scorer
  ASSERT_TRUE(built.ok()) << built.status();
  auto& scheduler = *built;
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  const std::string prompt(400, 'a');
  InferenceRequest wide = Request(prompt);
  wide.sequences = 8;
  auto first = scheduler->Pick(wide, eps, Time{0});
  ASSERT_TRUE(first.ok());
  InferenceRequest narrow = Request(prompt);
  auto second = scheduler->Pick(narrow, eps, Time{1});
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->primary(), first->primary());
  // The one with 1 sequence is still less loaded than the one with 8.
  InferenceRequest third = Request(prompt);
  auto next = scheduler->Pick(third, eps, Time{2});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->primary(), second->primary());
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
  const std::string prompt(size_t{64} * 8, 'a');
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

constexpr const char* kIndexResponses = R"(plugins:
- type: approx-prefix-cache-producer
  parameters: {indexResponses: true}
- type: prefix-cache-scorer
)";

// Picks `prompt` (the prefix scorer sends a known prompt home) and completes it with `response`.
PickResult PickAndComplete(Scheduler& scheduler, std::span<const Endpoint> eps,
                           const std::string& prompt, std::string_view response,
                           bool success = true) {
  InferenceRequest request = Request(prompt);
  auto pick = scheduler.Pick(request, eps, Time{0});
  EXPECT_TRUE(pick.ok());
  Completion done;
  done.success = success;
  done.response_texts = {response};
  EXPECT_TRUE(scheduler.OnComplete(pick->handle, Time{1}, done));
  return *pick;
}

int32_t MatchedBlocks(Scheduler& scheduler, std::span<const Endpoint> eps,
                      const std::string& prompt, EndpointId endpoint) {
  InferenceRequest request = Request(prompt);
  auto pick = scheduler.Pick(request, eps, Time{2}, {.dry_run = true, .explain = true});
  EXPECT_TRUE(pick.ok());
  const Decision& d = *pick->decision;
  for (size_t i = 0; i < d.candidates.size(); ++i) {
    if (d.candidates[i] == endpoint) return d.prefix_blocks[i];
  }
  return -1;
}

// A follow-up prompt: the earlier prompt, the response, a new question; bytes differ by position
// so that no block of one part equals a block of another.
std::string Text(size_t bytes, char first) {
  std::string out(bytes, first);
  for (size_t i = 0; i < bytes; ++i) out[i] = static_cast<char>(first + i % 7);
  return out;
}

TEST(Scheduler, IndexResponsesRecordsPromptPlusResponseForTheServingEndpoint) {
  Rng rng(1);
  auto scheduler = Make(kIndexResponses, rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  const std::string prompt = Text(64 * 8 + 10, 'a');  // 8 blocks and a 10-byte tail
  const std::string response = Text(size_t{64} * 5, 'k');
  const PickResult first = PickAndComplete(*scheduler, eps, prompt, response);
  const EndpointId home = first.primary();
  // The next turn carries the whole history: its first (522 + 320) / 64 = 13 blocks were hashed
  // by the router across the prompt/response boundary exactly as this prompt cuts them.
  const std::string next = prompt + response + Text(300, 'u');
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, next, home), 13);
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, next, 1 - home), 0);
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(home), 13);
}

TEST(Scheduler, IndexResponsesRecordsEverySampleOfARequestWithSeveral) {
  // n = 3: the engine caches each sample after the shared prompt; the client continues with
  // any one of them. An empty sample is skipped.
  Rng rng(1);
  auto scheduler = Make(kIndexResponses, rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  const std::string prompt = Text(size_t{64} * 8, 'a');
  const std::string first = Text(size_t{64} * 4, 'k');
  const std::string second = Text(size_t{64} * 6, 'm');
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  Completion done;
  done.response_texts = {first, "", second};
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{1}, done));
  const EndpointId home = pick->primary();
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, prompt + first + Text(200, 'u'), home), 12);
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, prompt + second + Text(200, 'u'), home), 14);
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(home), 8 + 4 + 6);
}

TEST(Scheduler, WithoutIndexResponsesOnlyThePromptIsKnown) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  const std::string prompt = Text(64 * 8 + 10, 'a');
  const std::string response = Text(size_t{64} * 5, 'k');
  const EndpointId home = PickAndComplete(*scheduler, eps, prompt, response).primary();
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, prompt + response + Text(300, 'u'), home), 8);
}

TEST(Scheduler, IndexResponsesChainsFromTheSeedForAPromptShorterThanABlock) {
  Rng rng(1);
  auto scheduler = Make(kIndexResponses, rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  const std::string prompt = Text(30, 'a');  // no full block: nothing recorded at the pick
  const std::string response = Text(100, 'k');
  PickAndComplete(*scheduler, eps, prompt, response);
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, prompt + response + Text(64, 'u'), 0), 2);
}

TEST(Scheduler, IndexResponsesIgnoresFailuresEmptyResponsesAndRemovedEndpoints) {
  Rng rng(1);
  auto scheduler = Make(kIndexResponses, rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  const std::string prompt = Text(size_t{64} * 4, 'a');
  const std::string response = Text(size_t{64} * 4, 'k');
  const std::string next = prompt + response;
  PickAndComplete(*scheduler, eps, prompt, response, /*success=*/false);
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, next, 0), 4);
  PickAndComplete(*scheduler, eps, prompt, "");
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, next, 0), 4);
  // Removed while in flight: the completion belongs to the endpoint's previous life.
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  scheduler->RemoveEndpoint(0);
  Completion done;
  done.response_texts = {response};
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{1}, done));
  EXPECT_EQ(scheduler->prefix_index()->size(), 0);
}

TEST(Scheduler, ServedByAnotherEndpointMovesTheLoadTheIndexAndTheCompletion) {
  Rng rng(1);
  auto scheduler = Make(kIndexResponses, rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)};
  const std::string prompt = Text(64 * 8 + 10, 'a');  // 8 blocks, ~131 tokens
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  const EndpointId primary = pick->primary();
  const EndpointId served = (primary + 1) % 3;
  EXPECT_EQ(scheduler->LoadOf(primary).prefill_tokens, 131);

  // The proxy walked the fallback list: the request is served elsewhere.
  ASSERT_TRUE(scheduler->OnServedBy(pick->handle, eps[served]));
  EXPECT_EQ(scheduler->LoadOf(primary).requests, 0);
  EXPECT_EQ(scheduler->LoadOf(primary).prefill_requests, 0);
  EXPECT_EQ(scheduler->LoadOf(primary).prefill_tokens, 0);
  EXPECT_EQ(scheduler->LoadOf(served).requests, 1);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_requests, 1);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_tokens, 131);  // charged in full
  EXPECT_EQ(scheduler->Stats().in_flight, 1);
  // Its engine caches the prompt now; the primary keeps what the pick recorded.
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, prompt, served), 8);
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, prompt, primary), 8);
  // Reporting the same endpoint again changes nothing.
  ASSERT_TRUE(scheduler->OnServedBy(pick->handle, eps[served]));
  EXPECT_EQ(scheduler->LoadOf(served).requests, 1);

  EXPECT_TRUE(scheduler->OnFirstToken(pick->handle, Time{1000}));
  EXPECT_EQ(scheduler->LoadOf(served).prefill_tokens, 0);
  EXPECT_EQ(scheduler->LoadOf(served).decoding(), 1);
  // The response is indexed where it was generated.
  const std::string response = Text(size_t{64} * 5, 'k');
  Completion done;
  done.response_texts = {response};
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{2000}, done));
  EXPECT_EQ(scheduler->LoadOf(served).requests, 0);
  EXPECT_EQ(scheduler->LoadOf(primary).requests, 0);
  const std::string next = prompt + response + Text(300, 'u');
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, next, served), 13);
  EXPECT_EQ(MatchedBlocks(*scheduler, eps, next, primary), 8);
  // A completed handle, or an endpoint no snapshot has shown, is refused.
  EXPECT_FALSE(scheduler->OnServedBy(pick->handle, eps[primary]));
  InferenceRequest again = Request(prompt);
  auto second = scheduler->Pick(again, eps, Time{3000});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(scheduler->OnServedBy(second->handle, MakeEndpoint(7)));
  Endpoint renamed = eps[served];
  renamed.address = "10.9.9.9:8000";
  EXPECT_FALSE(scheduler->OnServedBy(second->handle, renamed));
  EXPECT_EQ(scheduler->LoadOf(second->primary()).requests, 1);
  EXPECT_TRUE(scheduler->OnComplete(second->handle, Time{4000}));
}

TEST(Scheduler, ServedByWorksWithoutIndexResponsesAndAfterThePrimaryWasRemoved) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1)};
  const std::string prompt = Text(size_t{64} * 4, 'a');
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  const EndpointId primary = pick->primary();
  const EndpointId served = 1 - primary;
  scheduler->RemoveEndpoint(primary);  // it died: that is why the proxy fell back
  ASSERT_TRUE(scheduler->OnServedBy(pick->handle, eps[served]));
  EXPECT_EQ(scheduler->LoadOf(primary).requests, 0);
  EXPECT_EQ(scheduler->LoadOf(served).requests, 1);
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(served), 4);
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{10}));
  EXPECT_EQ(scheduler->LoadOf(served).requests, 0);
  EXPECT_EQ(scheduler->LoadOf(served).prefill_tokens, 0);
}

TEST(Scheduler, IndexResponsesStopsAtTheMatchCap) {
  Rng rng(1);
  auto scheduler = Make(R"(plugins:
- type: approx-prefix-cache-producer
  parameters: {indexResponses: true, autoTune: false, maxPrefixBlocksToMatch: 6}
- type: prefix-cache-scorer
)",
                        rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  const std::string prompt = Text(size_t{64} * 4, 'a');
  PickAndComplete(*scheduler, eps, prompt, Text(size_t{64} * 10, 'k'));
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 6);  // 4 prompt blocks + 2 up to the cap
  // A prompt that already reached the cap adds nothing.
  const std::string capped = Text(size_t{64} * 7, 'b');
  PickAndComplete(*scheduler, eps, capped, Text(size_t{64} * 3, 'k'));
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 12);
}

TEST(Scheduler, IndexResponsesSkipsCompletionsHashedWithAnOldBlockSize) {
  Rng rng(1);
  auto scheduler = Make(kIndexResponses, rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  eps[0].metrics.block_size = 16;
  const std::string prompt = Text(size_t{64} * 4, 'a');
  InferenceRequest request = Request(prompt);
  auto pick = scheduler->Pick(request, eps, Time{0});
  ASSERT_TRUE(pick.ok());
  // Another block size is seen before the response ends: the index restarts, and the old
  // request's hashes can no longer be continued.
  eps[0].metrics.block_size = 32;
  const std::string other_prompt = Text(size_t{128} * 2, 'z');  // the request only views it
  InferenceRequest other = Request(other_prompt);
  ASSERT_TRUE(scheduler->Pick(other, eps, Time{1}).ok());
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 2);
  Completion done;
  const std::string response = Text(size_t{64} * 4, 'k');
  done.response_texts = {response};
  EXPECT_TRUE(scheduler->OnComplete(pick->handle, Time{2}, done));
  EXPECT_EQ(scheduler->prefix_index()->EntriesOf(0), 2);
}

TEST(Scheduler, AutoTunesTheBlockSizeFromTheEndpointsCacheConfig) {
  Rng rng(1);
  auto scheduler = Make("plugins:\n- type: prefix-cache-scorer\n", rng);
  std::vector<Endpoint> eps = {MakeEndpoint(0)};
  eps[0].metrics.block_size = 32;  // tokens → 128-byte blocks
  eps[0].metrics.num_gpu_blocks = 10;
  const std::string prompt(size_t{128} * 20, 'a');
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
  const std::string prompt(size_t{64} * 4, 'a');
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
  const std::string prompt(size_t{64} * 4, 'a');
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
  const std::string prompt(size_t{64} * 4, 'a');
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
    prompts.reserve(64);
    for (int i = 0; i < 64; ++i) {
      prompts.push_back(std::string(size_t{64} * 4, static_cast<char>('a' + i % 5)));
    }
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
  auto with = Make(
      "plugins:\n- type: session-affinity-scorer\n  parameters:\n"
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

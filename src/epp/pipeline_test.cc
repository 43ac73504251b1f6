// Pipeline: parse → admission → pick on the snapshot → observe → complete.
#include "epp/pipeline.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <regex>
#include <set>
#include <thread>

namespace zumik::epp {
namespace {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUpPool(int n, int64_t waiting = 0, double kv = 0.1) {
    std::vector<std::string> addresses;
    addresses.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) addresses.push_back("10.0.0." + std::to_string(i + 1) + ":8000");
    SetUpPool(addresses, waiting, kv);
  }
  void SetUpPool(const std::vector<std::string>& addresses, int64_t waiting = 0, double kv = 0.1) {
    std::vector<EndpointSpec> specs;
    for (const auto& address : addresses) {
      EndpointSpec s;
      s.address = address;
      specs.push_back(s);
    }
    ds_.SetEndpoints(specs);
    for (const auto& s : specs) {
      sched::EndpointMetrics m;
      m.valid = true;
      m.scraped_at = clock_.Now();
      m.waiting_requests = waiting;
      m.kv_cache_usage = kv;
      ds_.UpdateMetrics(s.address, m);
    }
  }

  std::unique_ptr<Pipeline> Make(PipelineOptions options = {}) {
    auto p = Pipeline::Create(std::move(options), ds_, nullptr, clock_);
    EXPECT_TRUE(p.ok()) << p.status();
    return std::move(*p);
  }

  static std::string Completion(std::string_view prompt) {
    return std::string(R"({"model":"m","prompt":")") + std::string(prompt) + "\"}";
  }

  // Admits a completion of `prompt`; fails the test on a rejection.
  static Admission AdmitCompletion(Pipeline& p, const std::string& prompt) {
    auto admitted = p.Admit("/v1/completions", {}, Completion(prompt), {});
    EXPECT_TRUE(std::holds_alternative<Admission>(admitted));
    if (!std::holds_alternative<Admission>(admitted)) return {};
    return std::move(std::get<Admission>(admitted));
  }
  // `n` completions that extend `prompt` all go to `endpoint` (each completed at once).
  static void ExpectRoutedTo(Pipeline& p, const std::string& prompt, const std::string& endpoint,
                             int n = 5) {
    for (int i = 0; i < n; ++i) {
      auto again = p.Admit("/v1/completions", {}, Completion(prompt + std::to_string(i)), {});
      ASSERT_TRUE(std::holds_alternative<Admission>(again));
      EXPECT_EQ(std::get<Admission>(again).endpoints.front(), endpoint);
      p.OnDone(*std::get<Admission>(again).ctx);
    }
  }

  VirtualClock clock_{std::chrono::seconds(10)};
  Datastore ds_;
};

TEST_F(PipelineTest, AdmitsWithPrimaryAndFallbacksAndCountsInFlightUntilDone) {
  SetUpPool(4);
  auto p = Make();
  auto r = p->Admit("/v1/completions", {}, Completion("hello"), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(r)) << std::get<Rejection>(r).json_body;
  auto& a = std::get<Admission>(r);
  ASSERT_FALSE(a.endpoints.empty());
  EXPECT_EQ(a.ctx->primary, a.endpoints.front());
  EXPECT_EQ(a.ctx->model, "m");
  EXPECT_FALSE(a.ctx->request_id.empty());
  ASSERT_EQ(a.upstream_headers.size(), 1u);
  EXPECT_EQ(a.upstream_headers[0].first, "x-request-id");
  EXPECT_EQ(p->InFlight(a.endpoints.front()), 1);

  p->OnResponseHeaders(*a.ctx, 200, "application/json");
  p->OnResponseBody(*a.ctx, R"({"usage":{"prompt_tokens":2,"completion_tokens":1}})", true);
  EXPECT_TRUE(a.ctx->first_token_seen);
  EXPECT_EQ(a.ctx->usage.usage().prompt_tokens, 2);
  p->OnDone(*a.ctx);
  p->OnDone(*a.ctx);  // idempotent
  EXPECT_EQ(p->InFlight(a.endpoints.front()), 0);
  EXPECT_EQ(p->SchedulerStats().in_flight, 0);
}

// A model server that stopped answering its scrapes (hung) gets no new requests while another
// answers; when none answers (scraping itself broken) nothing is left out.
TEST_F(PipelineTest, AnEndpointWhoseScrapesStoppedIsNotPickedWhileOthersAnswer) {
  SetUpPool(3);
  PipelineOptions options;
  options.policy = "round-robin";
  options.unresponsive_after = std::chrono::seconds(5);
  auto p = Make(options);
  auto scraped = [&](const std::string& address) {
    sched::EndpointMetrics m;
    m.valid = true;
    m.scraped_at = clock_.Now();
    ds_.UpdateMetrics(address, m);
  };
  auto picks = [&] {
    std::set<std::string> seen;
    for (int i = 0; i < 6; ++i) {
      Admission a = AdmitCompletion(*p, "x" + std::to_string(i));
      if (a.ctx == nullptr) return seen;
      seen.insert(a.endpoints.front());
      for (const std::string& fallback : a.endpoints) seen.insert("fallback " + fallback);
      p->OnDone(*a.ctx);
    }
    return seen;
  };
  clock_.Advance(std::chrono::seconds(4));  // within the limit: everyone is picked
  EXPECT_EQ(picks().count("10.0.0.3:8000"), 1U);

  clock_.Advance(std::chrono::seconds(2));  // 10.0.0.3 has not answered for 6 s
  scraped("10.0.0.1:8000");
  scraped("10.0.0.2:8000");
  std::set<std::string> seen = picks();
  EXPECT_EQ(seen.count("10.0.0.1:8000"), 1U);
  EXPECT_EQ(seen.count("10.0.0.2:8000"), 1U);
  EXPECT_EQ(seen.count("10.0.0.3:8000"), 0U);
  EXPECT_EQ(seen.count("fallback 10.0.0.3:8000"), 0U);  // not a fallback either

  clock_.Advance(std::chrono::seconds(10));  // nobody answers: all are candidates again
  EXPECT_EQ(picks().count("10.0.0.3:8000"), 1U);

  options.unresponsive_after = Duration::zero();  // off
  auto off = Make(options);
  scraped("10.0.0.1:8000");
  std::set<std::string> all;
  for (int i = 0; i < 6; ++i) {
    all.insert(AdmitCompletion(*off, "y" + std::to_string(i)).endpoints.front());
  }
  EXPECT_EQ(all.size(), 3U);
}

// vLLM runs each of n samples (of each prompt of a batch) as its own request: the endpoint's
// in-flight count is n x prompts.
TEST_F(PipelineTest, CountsEverySampleOfARequestInFlight) {
  SetUpPool(2);
  auto p = Make();
  auto r = p->Admit("/v1/completions", {}, R"({"model":"m","prompt":"hello","n":3})", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(r)) << std::get<Rejection>(r).json_body;
  auto& a = std::get<Admission>(r);
  EXPECT_EQ(a.ctx->samples, 3u);
  EXPECT_EQ(p->InFlight(a.endpoints.front()), 3);
  EXPECT_EQ(p->SchedulerStats().in_flight, 1);
  p->OnDone(*a.ctx);
  EXPECT_EQ(p->InFlight(a.endpoints.front()), 0);

  // A batch of two prompts with n = 3: six sequences; the first prompt's 3 choices continue it.
  auto batch =
      p->Admit("/v1/completions", {}, R"({"model":"m","prompt":["hello","world"],"n":3})", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(batch));
  auto& b = std::get<Admission>(batch);
  EXPECT_EQ(b.ctx->samples, 3u);
  EXPECT_EQ(p->InFlight(b.endpoints.front()), 6);
  // Both prompts' tokens are prefill there: "hello" hashed, "world" counted beside it.
  EXPECT_EQ(p->Load(b.endpoints.front()).prefill_tokens, 2 + 2);
  p->OnDone(*b.ctx);
  EXPECT_EQ(p->InFlight(b.endpoints.front()), 0);
  EXPECT_EQ(p->Load(b.endpoints.front()).prefill_tokens, 0);
}

TEST_F(PipelineTest, KeepsTheClientsRequestIdAndReadsHeadersCaseInsensitively) {
  SetUpPool(2);
  auto p = Make();
  HeaderList headers = {{"X-Request-Id", "abc"}};
  auto r = p->Admit("/v1/completions", headers, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(r));
  EXPECT_EQ(std::get<Admission>(r).ctx->request_id, "abc");
  EXPECT_TRUE(std::get<Admission>(r).upstream_headers.empty());
  p->OnDone(*std::get<Admission>(r).ctx);
}

TEST_F(PipelineTest, SamePromptPrefixGoesToTheSameEndpoint) {
  SetUpPool(4);
  auto p = Make();
  std::string prompt(2000, 'q');
  Admission a = AdmitCompletion(*p, prompt);
  ASSERT_TRUE(a.ctx);
  p->OnDone(*a.ctx);
  ExpectRoutedTo(*p, prompt, a.endpoints.front());
}

TEST_F(PipelineTest, AModelRewriteHeaderRewritesTheUpstreamBody) {
  SetUpPool(2);
  auto p = Make();
  const std::string body = R"({"model":"alias", "prompt":"hi","max_tokens":2})";
  for (const char* header : {"x-llm-d-model-name-rewrite", "X-Gateway-Model-Name-Rewrite"}) {
    auto r = p->Admit("/v1/completions", {{header, "lora-7"}}, body, {});
    ASSERT_TRUE(std::holds_alternative<Admission>(r));
    auto& a = std::get<Admission>(r);
    ASSERT_TRUE(a.body.has_value()) << header;
    EXPECT_EQ(*a.body, R"({"model":"lora-7", "prompt":"hi","max_tokens":2})");
    EXPECT_EQ(a.ctx->model, "alias");
    EXPECT_EQ(a.ctx->target_model, "lora-7");
    p->OnDone(*a.ctx);
  }
  // No header, an empty one, or the same name: the client's body goes as it is.
  for (const HeaderList& headers : {HeaderList{}, HeaderList{{"x-llm-d-model-name-rewrite", ""}},
                                    HeaderList{{"x-llm-d-model-name-rewrite", "alias"}}}) {
    auto r = p->Admit("/v1/completions", headers, body, {});
    ASSERT_TRUE(std::holds_alternative<Admission>(r));
    EXPECT_FALSE(std::get<Admission>(r).body.has_value());
    p->OnDone(*std::get<Admission>(r).ctx);
  }
  // A name that is not UTF-8 cannot go into a JSON body: a clear 400, and nothing picked.
  auto bad = p->Admit("/v1/completions", {{"x-llm-d-model-name-rewrite", "lora-\xff"}}, body, {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(bad));
  EXPECT_EQ(std::get<Rejection>(bad).http_status, 400);
  EXPECT_THAT(std::get<Rejection>(bad).json_body,
              ::testing::HasSubstr("model-name rewrite header is not valid UTF-8"));
  EXPECT_EQ(p->SchedulerStats().in_flight, 0);
}

// The cluster's InferenceModelRewrite decides over the header (upstream applies it after the
// header), its priorities replace the command line's, and the response gets the client's
// model name back.
TEST_F(PipelineTest, ClusterRulesRewriteModelsAndSetPrioritiesAndResponsesAreRestored) {
  SetUpPool(2, /*waiting=*/20, /*kv=*/0.95);
  PipelineOptions options;
  options.rules.AddObjective("batch", 5);  // the cluster says otherwise below
  ASSERT_TRUE(options.rules.AddRewriteFlag("alias=from-flag").ok());
  auto p = Make(options);
  const std::string body = R"({"model":"alias","prompt":"hi"})";
  auto before = p->Admit("/v1/completions", {}, body, {});
  ASSERT_TRUE(std::holds_alternative<Admission>(before));
  EXPECT_EQ(std::get<Admission>(before).ctx->target_model, "from-flag");
  p->OnDone(*std::get<Admission>(before).ctx);

  auto rules = std::make_shared<ModelRules>();
  rules->AddObjective("batch", -1);
  ASSERT_TRUE(rules->AddRewriteFlag("alias=lora-b").ok());
  p->SetClusterRules(rules);
  auto r = p->Admit("/v1/completions", {{"x-llm-d-model-name-rewrite", "from-header"}}, body, {});
  ASSERT_TRUE(std::holds_alternative<Admission>(r));
  auto& a = std::get<Admission>(r);
  EXPECT_EQ(a.ctx->target_model, "lora-b");
  ASSERT_TRUE(a.body.has_value());
  EXPECT_EQ(*a.body, R"({"model":"lora-b","prompt":"hi"})");
  std::string restored;
  ASSERT_TRUE(
      Pipeline::RestoreModelName(*a.ctx, R"({"model":"lora-b","choices":[]})", true, restored));
  EXPECT_EQ(restored, R"({"model":"alias","choices":[]})");
  p->OnDone(*a.ctx);

  // An unrewritten request's response goes through untouched.
  auto plain = p->Admit("/v1/completions", {}, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(plain));
  std::string untouched;
  EXPECT_FALSE(Pipeline::RestoreModelName(*std::get<Admission>(plain).ctx, "{}", true, untouched));
  p->OnDone(*std::get<Admission>(plain).ctx);

  // "batch" is sheddable now: the saturated pool refuses it.
  auto shed = p->Admit("/v1/completions", {{"x-llm-d-inference-objective", "batch"}}, body, {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(shed));
  EXPECT_EQ(std::get<Rejection>(shed).http_status, 429);

  // Removing the cluster's objects brings the command line's back.
  p->SetClusterRules(nullptr);
  auto again = p->Admit("/v1/completions", {{"x-llm-d-inference-objective", "batch"}}, body, {});
  ASSERT_TRUE(std::holds_alternative<Admission>(again));
  EXPECT_EQ(std::get<Admission>(again).ctx->target_model, "from-flag");
  EXPECT_EQ(std::get<Admission>(again).ctx->priority, 5);
  p->OnDone(*std::get<Admission>(again).ctx);
}

TEST_F(PipelineTest, AnEndpointReportedAsServingTakesOverTheRequest) {
  SetUpPool(4);
  auto p = Make();
  std::string prompt(2000, 'q');
  Admission a = AdmitCompletion(*p, prompt);
  ASSERT_GE(a.endpoints.size(), 2u);
  const std::string primary = a.endpoints[0];
  const std::string fallback = a.endpoints[1];
  p->OnServedBy(*a.ctx, primary);  // the primary served it: nothing moves
  EXPECT_TRUE(a.ctx->served_by.empty());
  EXPECT_EQ(p->InFlight(primary), 1);

  p->OnServedBy(*a.ctx, fallback);
  EXPECT_EQ(a.ctx->served_by, fallback);
  EXPECT_EQ(p->InFlight(primary), 0);
  EXPECT_EQ(p->InFlight(fallback), 1);
  p->OnResponseHeaders(*a.ctx, 200, "application/json");
  p->OnResponseBody(*a.ctx, R"({"usage":{"prompt_tokens":500,"completion_tokens":1}})", true);
  p->OnDone(*a.ctx);
  EXPECT_EQ(p->InFlight(fallback), 0);
  EXPECT_EQ(p->SchedulerStats().in_flight, 0);

  // The primary is gone; the same prefix now goes where it was served (and cached).
  std::vector<std::string> rest;
  for (const auto& address : a.endpoints) {
    if (address != primary) rest.push_back(address);
  }
  SetUpPool(rest);
  ExpectRoutedTo(*p, prompt, fallback, 3);

  // An address outside the pool is remembered for the response but moves nothing.
  Admission o = AdmitCompletion(*p, "other");
  ASSERT_TRUE(o.ctx);
  p->OnServedBy(*o.ctx, "10.9.9.9:8000");
  EXPECT_EQ(o.ctx->served_by, "10.9.9.9:8000");
  EXPECT_EQ(p->InFlight(o.endpoints[0]), 1);
  p->OnDone(*o.ctx);
  EXPECT_EQ(p->SchedulerStats().in_flight, 0);
}

// zumik-default indexes responses: the gateway collects the generated text, so a follow-up
// prompt that carries it matches its whole history on the endpoint that answered.
TEST_F(PipelineTest, AFollowUpMatchesTheIndexedResponseOfCompletions) {
  SetUpPool(4);
  auto p = Make();
  const std::string prompt(2000, 'q');
  auto first = p->Admit("/v1/completions", {}, Completion(prompt), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(first));
  auto& ctx = *std::get<Admission>(first).ctx;
  p->OnResponseHeaders(ctx, 200, "text/event-stream");
  const std::string answer(3000, 'a');
  p->OnResponseBody(ctx,
                    "data: {\"choices\":[{\"index\":0,\"text\":\"" + answer.substr(0, 1000) +
                        "\"}]}\n\ndata: {\"choices\":[{\"index\":0,\"text\":\"",
                    false);
  p->OnResponseBody(ctx, answer.substr(1000) + "\\n\"}]}\n\ndata: [DONE]\n\n", true);
  p->OnDone(ctx);
  const int64_t hits = p->SchedulerStats().prefix_hit_blocks;
  // The next prompt: the prompt, the answer (ending in a newline, escaped in JSON), a question.
  auto next = p->Admit("/v1/completions", {},
                       Completion(prompt + answer + "\\n" + std::string(100, 'z')), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(next));
  EXPECT_EQ(std::get<Admission>(next).endpoints.front(),
            std::get<Admission>(first).endpoints.front());
  EXPECT_EQ(p->SchedulerStats().prefix_hit_blocks - hits, 5001 / 64);
  p->OnDone(*std::get<Admission>(next).ctx);
}

TEST_F(PipelineTest, AChatFollowUpMatchesTheIndexedAssistantMessage) {
  SetUpPool(4);
  auto p = Make();
  const std::string question(1000, 'q'), answer(2000, 'a');
  const auto body = [](const std::string& messages) {
    return R"({"model":"m","messages":[)" + messages + "]}";
  };
  const std::string user = R"({"role":"user","content":")" + question + "\"}";
  auto first = p->Admit("/v1/chat/completions", {}, body(user), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(first));
  auto& ctx = *std::get<Admission>(first).ctx;
  p->OnResponseHeaders(ctx, 200, "application/json");
  p->OnResponseBody(
      ctx,
      R"({"choices":[{"index":0,"message":{"role":"assistant","content":")" + answer + "\"}}]}",
      true);
  p->OnDone(ctx);
  const int64_t hits = p->SchedulerStats().prefix_hit_blocks;
  auto next = p->Admit("/v1/chat/completions", {},
                       body(user + R"(,{"role":"assistant","content":")" + answer + "\"}," +
                            R"({"role":"user","content":"more"})"),
                       {});
  ASSERT_TRUE(std::holds_alternative<Admission>(next));
  std::string history;
  sched::AppendChatMessage(history, "user", question);
  sched::AppendChatMessage(history, "assistant", answer);
  EXPECT_EQ(p->SchedulerStats().prefix_hit_blocks - hits,
            static_cast<int64_t>(history.size() / 64));
  p->OnDone(*std::get<Admission>(next).ctx);
}

// n = 2: the engine caches both samples after the prompt, and the client may continue with
// either; the gateway indexes each.
TEST_F(PipelineTest, AChatFollowUpMatchesWhicheverSampleItContinues) {
  SetUpPool(4);
  auto p = Make();
  const std::string question(1000, 'q'), first_answer(2000, 'a'), second_answer(1500, 'b');
  const auto body = [](const std::string& messages, const std::string& extra) {
    return R"({"model":"m",)" + extra + R"("messages":[)" + messages + "]}";
  };
  const std::string user = R"({"role":"user","content":")" + question + "\"}";
  auto first = p->Admit("/v1/chat/completions", {}, body(user, R"("n":2,"stream":true,)"), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(first));
  auto& ctx = *std::get<Admission>(first).ctx;
  EXPECT_EQ(ctx.samples, 2u);
  p->OnResponseHeaders(ctx, 200, "text/event-stream");
  const auto delta = [](int index, const std::string& content) {
    return "data: {\"choices\":[{\"index\":" + std::to_string(index) +
           ",\"delta\":{\"content\":\"" + content + "\"}}]}\n\n";
  };
  p->OnResponseBody(ctx, delta(0, first_answer.substr(0, 500)) + delta(1, second_answer), false);
  p->OnResponseBody(ctx, delta(0, first_answer.substr(500)) + "data: [DONE]\n\n", true);
  p->OnDone(ctx);
  const std::string home = std::get<Admission>(first).endpoints.front();
  for (const std::string* answer : {&first_answer, &second_answer}) {
    const int64_t hits = p->SchedulerStats().prefix_hit_blocks;
    auto next = p->Admit("/v1/chat/completions", {},
                         body(user + R"(,{"role":"assistant","content":")" + *answer + "\"}," +
                                  R"({"role":"user","content":"more"})",
                              ""),
                         {});
    ASSERT_TRUE(std::holds_alternative<Admission>(next));
    EXPECT_EQ(std::get<Admission>(next).endpoints.front(), home);
    std::string history;
    sched::AppendChatMessage(history, "user", question);
    sched::AppendChatMessage(history, "assistant", *answer);
    EXPECT_EQ(p->SchedulerStats().prefix_hit_blocks - hits,
              static_cast<int64_t>(history.size() / 64));
    p->OnDone(*std::get<Admission>(next).ctx);
  }
}

TEST_F(PipelineTest, AResponsesApiFollowUpMatchesTheIndexedOutput) {
  SetUpPool(4);
  auto p = Make();
  const std::string question(1000, 'q'), answer(2000, 'a');
  const std::string user = R"({"role":"user","content":")" + question + "\"}";
  auto first =
      p->Admit("/v1/responses", {}, R"({"model":"m","stream":true,"input":[)" + user + "]}", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(first));
  auto& ctx = *std::get<Admission>(first).ctx;
  p->OnResponseHeaders(ctx, 200, "text/event-stream");
  for (int i = 0; i < 2; ++i) {
    p->OnResponseBody(ctx,
                      "event: response.output_text.delta\ndata: {\"type\":"
                      "\"response.output_text.delta\",\"delta\":\"" +
                          answer.substr(size_t{1000} * i, 1000) + "\"}\n\n",
                      false);
  }
  p->OnResponseBody(ctx, "", true);
  p->OnDone(ctx);
  const int64_t hits = p->SchedulerStats().prefix_hit_blocks;
  auto next = p->Admit("/v1/responses", {},
                       R"({"model":"m","input":[)" + user +
                           R"(,{"type":"message","role":"assistant","content":[)"
                           R"({"type":"output_text","text":")" +
                           answer + R"("}]},{"role":"user","content":"more"}]})",
                       {});
  ASSERT_TRUE(std::holds_alternative<Admission>(next));
  EXPECT_EQ(std::get<Admission>(next).endpoints.front(),
            std::get<Admission>(first).endpoints.front());
  std::string history;
  sched::AppendChatMessage(history, "user", question);
  sched::AppendChatMessage(history, "assistant", answer);
  EXPECT_EQ(p->SchedulerStats().prefix_hit_blocks - hits,
            static_cast<int64_t>(history.size() / 64));
  p->OnDone(*std::get<Admission>(next).ctx);
}

// vLLM stores a Responses API response in the memory of the replica that created it: a
// follow-up naming it, and GET /v1/responses/{id} (or its /cancel), must go there alone.
TEST_F(PipelineTest, StoredResponsesAreFollowedUpOnTheReplicaThatStoredThem) {
  SetUpPool(4);
  auto p = Make();
  auto first = p->Admit("/v1/responses", {}, R"({"model":"m","input":"hello"})", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(first));
  auto& ctx = *std::get<Admission>(first).ctx;
  const std::string home = std::get<Admission>(first).endpoints.front();
  p->OnResponseHeaders(ctx, 200, "application/json");
  p->OnResponseBody(ctx, R"({"id":"resp_1","object":"response","output":[]})", true);
  p->OnDone(ctx);
  EXPECT_EQ(p->remembered_responses(), 1u);

  // New inputs that match nothing: without the id they would be spread over the pool.
  for (int i = 0; i < 6; ++i) {
    auto next = p->Admit(
        "/v1/responses", {},
        R"({"model":"m","previous_response_id":"resp_1","input":"q)" + std::to_string(i) + R"("})",
        {});
    ASSERT_TRUE(std::holds_alternative<Admission>(next));
    EXPECT_EQ(std::get<Admission>(next).endpoints, std::vector<std::string>{home}) << i;
  }
  for (const char* path : {"/v1/responses/resp_1", "/v1/responses/resp_1/cancel"}) {
    auto lookup = p->Admit(path, {}, "", {});
    ASSERT_TRUE(std::holds_alternative<Admission>(lookup)) << path;
    EXPECT_EQ(std::get<Admission>(lookup).endpoints, std::vector<std::string>{home}) << path;
    p->OnDone(*std::get<Admission>(lookup).ctx);
  }
  // An id this EPP never saw is routed as usual (the replica answers 404 if it lacks it).
  auto unknown = p->Admit("/v1/responses/resp_x", {}, "", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(unknown));
  EXPECT_EQ(std::get<Admission>(unknown).endpoints.size(), 3u);
  auto fresh = p->Admit("/v1/responses", {},
                        R"({"model":"m","previous_response_id":"resp_x","input":"z"})", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(fresh));
  EXPECT_EQ(std::get<Admission>(fresh).endpoints.size(), 3u);
}

TEST_F(PipelineTest, AStoredResponsesHomeIsTheEndpointThatAnsweredItsStream) {
  SetUpPool(3);
  auto p = Make();
  auto first = p->Admit("/v1/responses", {}, R"({"model":"m","stream":true,"input":"hi"})", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(first));
  auto& admission = std::get<Admission>(first);
  // The primary refused the connection; the transport moved to the first fallback.
  p->OnServedBy(*admission.ctx, admission.endpoints[1]);
  EXPECT_EQ(admission.ctx->served_by, admission.endpoints[1]);
  p->OnResponseHeaders(*admission.ctx, 200, "text/event-stream");
  p->OnResponseBody(*admission.ctx,
                    "event: response.created\ndata: {\"type\":\"response.created\","
                    "\"response\":{\"id\":\"resp_s\",\"object\":\"response\"}}\n\n",
                    true);
  p->OnDone(*admission.ctx);
  auto lookup = p->Admit("/v1/responses/resp_s", {}, "", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(lookup));
  EXPECT_EQ(std::get<Admission>(lookup).endpoints,
            std::vector<std::string>{admission.endpoints[1]});

  // A home that is gone from the pool: routed as usual.
  EndpointSpec remaining;
  remaining.address = admission.endpoints[0];
  ds_.SetEndpoints({remaining});
  auto after = p->Admit("/v1/responses/resp_s", {}, "", {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(after) ||
              std::get<Admission>(after).endpoints.front() != admission.endpoints[1]);
}

TEST_F(PipelineTest, APolicyWithoutIndexResponsesLearnsPromptsOnly) {
  SetUpPool(1);
  PipelineOptions options;
  options.policy = "llm-d-default";
  auto p = Make(options);
  const std::string prompt(2000, 'q');
  auto first = p->Admit("/v1/completions", {}, Completion(prompt), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(first));
  auto& ctx = *std::get<Admission>(first).ctx;
  p->OnResponseHeaders(ctx, 200, "application/json");
  p->OnResponseBody(ctx, R"({"choices":[{"index":0,"text":")" + std::string(3000, 'a') + "\"}]}",
                    true);
  EXPECT_TRUE(ctx.usage.texts().empty());  // not even collected
  p->OnDone(ctx);
  const int64_t hits = p->SchedulerStats().prefix_hit_blocks;
  auto next = p->Admit("/v1/completions", {}, Completion(prompt + std::string(3000, 'a')), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(next));
  EXPECT_EQ(p->SchedulerStats().prefix_hit_blocks - hits, 2000 / 64);
  p->OnDone(*std::get<Admission>(next).ctx);
}

TEST_F(PipelineTest, SubsetHintRestrictsTheCandidates) {
  SetUpPool(4);
  auto p = Make();
  std::vector<std::string> subset = {"10.0.0.3:8000"};
  for (int i = 0; i < 5; ++i) {
    auto r = p->Admit("/v1/completions", {}, Completion("p" + std::to_string(i)), subset);
    ASSERT_TRUE(std::holds_alternative<Admission>(r));
    EXPECT_EQ(std::get<Admission>(r).endpoints, subset);
    p->OnDone(*std::get<Admission>(r).ctx);
  }
  std::vector<std::string> none = {"10.9.9.9:8000"};
  auto r = p->Admit("/v1/completions", {}, Completion("x"), none);
  ASSERT_TRUE(std::holds_alternative<Rejection>(r));
  EXPECT_EQ(std::get<Rejection>(r).http_status, 503);
}

TEST_F(PipelineTest, SubsetMayMatchByIpOnly) {
  SetUpPool(2);
  PipelineOptions options;
  options.subset_match_ip_only = true;
  auto p = Make(options);
  std::vector<std::string> subset = {"10.0.0.2:9999"};
  auto r = p->Admit("/v1/completions", {}, Completion("x"), subset);
  ASSERT_TRUE(std::holds_alternative<Admission>(r));
  EXPECT_EQ(std::get<Admission>(r).endpoints.front(), "10.0.0.2:8000");
  p->OnDone(*std::get<Admission>(r).ctx);
}

TEST_F(PipelineTest, RejectsBadInputWithOpenAiErrors) {
  SetUpPool(2);
  PipelineOptions options;
  options.max_body_bytes = 100;
  auto p = Make(options);
  auto unknown = p->Admit("/admin/secret", {}, "{}", {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(unknown));
  EXPECT_EQ(std::get<Rejection>(unknown).http_status, 404);

  auto bad = p->Admit("/v1/chat/completions", {}, R"({"model":"m","messages":3})", {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(bad));
  EXPECT_EQ(std::get<Rejection>(bad).http_status, 400);
  auto json = boost::json::parse(std::get<Rejection>(bad).json_body);
  EXPECT_EQ(json.at("error").at("param").as_string(), "messages");
  EXPECT_EQ(json.at("error").at("type").as_string(), "invalid_request_error");

  auto big = p->Admit("/v1/completions", {}, Completion(std::string(200, 'x')), {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(big));
  EXPECT_EQ(std::get<Rejection>(big).http_status, 413);
}

TEST_F(PipelineTest, NoEndpointsIs503) {
  auto p = Make();
  auto r = p->Admit("/v1/completions", {}, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(r));
  EXPECT_EQ(std::get<Rejection>(r).http_status, 503);
  EXPECT_EQ(std::get<Rejection>(r).dropped_reason, "rejected-no-endpoints");
}

TEST_F(PipelineTest, ShedsOnlySheddableRequestsWhenSaturated) {
  SetUpPool(2, /*waiting=*/20, /*kv=*/0.95);
  PipelineOptions options;
  options.rules.AddObjective("batch", -1);
  auto p = Make(options);
  HeaderList sheddable = {{"x-llm-d-inference-objective", "batch"}};
  auto shed = p->Admit("/v1/completions", sheddable, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(shed));
  EXPECT_EQ(std::get<Rejection>(shed).http_status, 429);
  EXPECT_EQ(std::get<Rejection>(shed).dropped_reason, "rejected-saturated");
  EXPECT_FALSE(std::get<Rejection>(shed).queueable);

  HeaderList numeric = {{"x-gateway-inference-objective", "-5"}};
  auto shed2 = p->Admit("/v1/completions", numeric, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(shed2));

  auto critical = p->Admit("/v1/completions", {}, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Admission>(critical));
  p->OnDone(*std::get<Admission>(critical).ctx);
}

TEST_F(PipelineTest, StaleMetricsCountAsSaturated) {
  SetUpPool(2);
  clock_.Advance(std::chrono::seconds(1));  // past the 200 ms staleness threshold
  auto p = Make();
  HeaderList sheddable = {{"x-llm-d-inference-objective", "-1"}};
  auto r = p->Admit("/v1/completions", sheddable, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(r));
  EXPECT_EQ(std::get<Rejection>(r).http_status, 429);
}

TEST_F(PipelineTest, QueueableRejectionWhenTheQueueIsOn) {
  SetUpPool(2, 20, 0.95);
  PipelineOptions options;
  options.max_queued = 1;
  auto p = Make(options);
  HeaderList sheddable = {{"x-llm-d-inference-objective", "-1"}};
  auto r = p->Admit("/v1/completions", sheddable, Completion("x"), {}, /*may_wait=*/false);
  ASSERT_TRUE(std::holds_alternative<Rejection>(r));
  EXPECT_TRUE(std::get<Rejection>(r).queueable);
  EXPECT_TRUE(p->TryEnterQueue());
  EXPECT_FALSE(p->TryEnterQueue());  // bounded
  p->LeaveQueue();
  EXPECT_EQ(p->queued(), 0);
}

TEST(PipelineQueue, WaitsUpToTheTtlThenAnswers429) {
  Datastore ds;
  std::vector<EndpointSpec> specs(1);
  specs[0].address = "10.0.0.1:8000";
  ds.SetEndpoints(specs);  // never scraped: saturated
  PipelineOptions options;
  options.max_queued = 4;
  options.queue_ttl = std::chrono::milliseconds(30);
  auto p = Pipeline::Create(options, ds);
  ASSERT_TRUE(p.ok());
  HeaderList sheddable = {{"x-llm-d-inference-objective", "-1"}};
  auto r = (*p)->Admit("/v1/completions", sheddable, R"({"model":"m","prompt":"x"})", {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(r));
  EXPECT_EQ(std::get<Rejection>(r).http_status, 429);
  EXPECT_EQ(std::get<Rejection>(r).dropped_reason, "rejected-ttl-expired");
  EXPECT_EQ((*p)->queued(), 0);
}

// The value of one series in Prometheus text, e.g. `llm_d_epp_request_total{model_name="m",`
// (the series up to any prefix of its labels); 0 when absent.
double SeriesValue(const std::string& exposition, std::string_view series) {
  size_t pos = 0;
  double total = 0;
  while ((pos = exposition.find(series, pos)) != std::string::npos) {
    bool line_start = pos == 0 || exposition[pos - 1] == '\n';
    size_t end = exposition.find('\n', pos);
    std::string line = exposition.substr(pos, end - pos);
    pos = end;
    if (line_start) total += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return total;
}

class PipelineQueueMetricsTest : public PipelineTest {
 protected:
  std::unique_ptr<Pipeline> MakeWithMetrics(int max_queued, std::string_view rewrite = {}) {
    auto metrics = EppMetrics::Create("pool");
    EXPECT_TRUE(metrics.ok());
    metrics_ = std::move(*metrics);
    PipelineOptions options;
    options.max_queued = max_queued;
    if (!rewrite.empty()) {
      EXPECT_TRUE(options.rules.AddRewriteFlag(rewrite).ok());
    }
    auto p = Pipeline::Create(std::move(options), ds_, metrics_.get(), clock_);
    EXPECT_TRUE(p.ok()) << p.status();
    return std::move(*p);
  }
  // Fresh metrics on every endpoint: saturated (deep queues, full KV) or idle.
  void SetLoad(bool saturated) {
    auto snapshot = ds_.Current();  // keeps the endpoints alive while new snapshots publish
    for (const auto& e : snapshot->endpoints) {
      sched::EndpointMetrics m;
      m.valid = true;
      m.scraped_at = clock_.Now();
      m.waiting_requests = saturated ? 20 : 0;
      m.kv_cache_usage = saturated ? 0.95 : 0.1;
      ds_.UpdateMetrics(e.address, m);
    }
  }
  double Requests() {
    return SeriesValue(metrics_->registry().Expose(), "llm_d_epp_request_total{");
  }
  double Errors() {
    return SeriesValue(metrics_->registry().Expose(), "llm_d_epp_request_error_total{");
  }

  std::unique_ptr<EppMetrics> metrics_;
  const HeaderList sheddable_ = {{"x-llm-d-inference-objective", "-1"}};
};

TEST_F(PipelineQueueMetricsTest, RequestAdmittedAfterWaitingInTheQueueIsNoRejection) {
  SetUpPool(2);
  auto p = MakeWithMetrics(/*max_queued=*/4);
  SetLoad(/*saturated=*/true);
  std::variant<Admission, Rejection> result;
  // The virtual clock stands still, so the wait cannot time out: it ends when admitted.
  std::thread waiter(
      [&] { result = p->Admit("/v1/completions", sheddable_, Completion("x"), {}); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (p->queued() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(p->queued(), 1);
  SetLoad(/*saturated=*/false);
  waiter.join();
  ASSERT_TRUE(std::holds_alternative<Admission>(result)) << std::get<Rejection>(result).json_body;
  EXPECT_EQ(p->queued(), 0);
  EXPECT_EQ(Requests(), 1);
  EXPECT_EQ(Errors(), 0);
  p->OnResponseHeaders(*std::get<Admission>(result).ctx, 200, "application/json");
  p->OnDone(*std::get<Admission>(result).ctx);
  EXPECT_EQ(Errors(), 0);
}

// A rewrite decision counts once per admitted request, not on each retry from the queue.
TEST_F(PipelineQueueMetricsTest, RewriteDecisionsCountOncePerAdmittedRequest) {
  SetUpPool(2);
  auto p = MakeWithMetrics(/*max_queued=*/4, "m=lora-a");
  auto decisions = [&] {
    return SeriesValue(metrics_->registry().Expose(),
                       "llm_d_epp_model_rewrite_decisions_total{model_rewrite_name=\"flag\","
                       "model_name=\"m\",target_model=\"lora-a\"}");
  };
  SetLoad(/*saturated=*/true);
  for (int retry = 0; retry < 3; ++retry) {
    auto waiting = p->Admit("/v1/completions", sheddable_, Completion("x"), {}, false);
    ASSERT_TRUE(std::holds_alternative<Rejection>(waiting));
    EXPECT_TRUE(std::get<Rejection>(waiting).queueable);
  }
  EXPECT_EQ(decisions(), 0);
  SetLoad(/*saturated=*/false);
  auto admitted = p->Admit("/v1/completions", sheddable_, Completion("x"), {}, false);
  ASSERT_TRUE(std::holds_alternative<Admission>(admitted));
  EXPECT_EQ(std::get<Admission>(admitted).ctx->target_model, "lora-a");
  EXPECT_EQ(decisions(), 1);
  p->OnDone(*std::get<Admission>(admitted).ctx);
}

TEST_F(PipelineQueueMetricsTest, TransportQueueCountsOnlyEachRequestsFinalOutcome) {
  SetUpPool(2);
  auto p = MakeWithMetrics(/*max_queued=*/1);
  SetLoad(/*saturated=*/true);
  // As the gateway queues: Admit without waiting, take a place, retry until admitted. The
  // body outlives the retries, as the request's does in a transport.
  const std::string body = Completion("x");
  auto first = p->Admit("/v1/completions", sheddable_, body, {}, /*may_wait=*/false);
  ASSERT_TRUE(std::holds_alternative<Rejection>(first));
  ASSERT_TRUE(std::get<Rejection>(first).queueable);
  ASSERT_TRUE(p->TryEnterQueue(std::get<Rejection>(first).metrics_model));
  const std::shared_ptr<PendingRequest> pending = std::get<Rejection>(first).pending;
  ASSERT_NE(pending, nullptr);
  auto retry = p->Readmit(pending, {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(retry));
  EXPECT_TRUE(std::get<Rejection>(retry).queueable);
  EXPECT_EQ(Requests(), 0);  // still waiting: no outcome yet

  // A second sheddable request finds the queue full: refused, and counted, once.
  auto second = p->Admit("/v1/completions", sheddable_, Completion("y"), {}, false);
  ASSERT_TRUE(std::holds_alternative<Rejection>(second));
  EXPECT_FALSE(p->TryEnterQueue(std::get<Rejection>(second).metrics_model));
  EXPECT_EQ(Requests(), 1);
  EXPECT_EQ(SeriesValue(metrics_->registry().Expose(),
                        "llm_d_epp_request_error_total{model_name=\"m\",target_model_name=\"m\","
                        "error_code=\"429\"}"),
            1);

  SetLoad(/*saturated=*/false);
  auto admitted = p->Readmit(pending, {});
  p->LeaveQueue();
  ASSERT_TRUE(std::holds_alternative<Admission>(admitted));
  EXPECT_EQ(Requests(), 2);
  EXPECT_EQ(Errors(), 1);
  p->OnResponseHeaders(*std::get<Admission>(admitted).ctx, 200, "application/json");
  p->OnDone(*std::get<Admission>(admitted).ctx);

  // A wait that expires is one 429 as well.
  SetLoad(/*saturated=*/true);
  auto third = p->Admit("/v1/completions", sheddable_, Completion("z"), {}, false);
  ASSERT_TRUE(p->TryEnterQueue(std::get<Rejection>(third).metrics_model));
  p->LeaveQueue();
  Rejection expired = p->QueueTimeout(std::get<Rejection>(third).metrics_model);
  EXPECT_EQ(expired.http_status, 429);
  EXPECT_EQ(Requests(), 3);
  EXPECT_EQ(Errors(), 2);
}

// A queued request is placed again as it was parsed: same id, same start (its durations
// include the wait), same headers' meaning, one rewrite draw; the body is not parsed again.
TEST_F(PipelineQueueMetricsTest, ReadmitPlacesTheRequestAsFirstParsed) {
  SetUpPool(2);
  auto p = MakeWithMetrics(/*max_queued=*/4, "m=lora-a");
  SetLoad(/*saturated=*/true);
  const Time arrived = clock_.Now();
  std::string body = Completion("x");
  auto first = p->Admit("/v1/completions",
                        {{"x-llm-d-inference-objective", "-1"}, {"x-llm-d-slo-ttft-ms", "250"}},
                        body, {}, /*may_wait=*/false);
  ASSERT_TRUE(std::holds_alternative<Rejection>(first));
  const Rejection& queued = std::get<Rejection>(first);
  ASSERT_TRUE(queued.queueable);
  ASSERT_NE(queued.pending, nullptr);
  ASSERT_TRUE(p->TryEnterQueue(queued.metrics_model));

  clock_.Advance(std::chrono::seconds(2));
  auto still = p->Readmit(queued.pending, {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(still));
  EXPECT_EQ(std::get<Rejection>(still).pending, queued.pending);  // the same request waits on

  clock_.Advance(std::chrono::seconds(1));
  SetLoad(/*saturated=*/false);
  auto admitted = p->Readmit(queued.pending, {});
  p->LeaveQueue();
  ASSERT_TRUE(std::holds_alternative<Admission>(admitted))
      << std::get<Rejection>(admitted).json_body;
  const Admission& a = std::get<Admission>(admitted);
  EXPECT_EQ(a.ctx->started, arrived);
  EXPECT_EQ(a.ctx->priority, -1);
  EXPECT_EQ(a.ctx->target_model, "lora-a");
  ASSERT_EQ(a.upstream_headers.size(), 1U);
  EXPECT_EQ(a.upstream_headers[0].first, "x-request-id");
  EXPECT_EQ(a.upstream_headers[0].second, a.ctx->request_id);
  ASSERT_TRUE(a.body.has_value());  // the rewrite, made from the body Admit was given
  EXPECT_NE(a.body->find("\"lora-a\""), std::string::npos);
  EXPECT_EQ(Requests(), 1);
  EXPECT_EQ(SeriesValue(metrics_->registry().Expose(),
                        "llm_d_epp_model_rewrite_decisions_total{model_rewrite_name=\"flag\","
                        "model_name=\"m\",target_model=\"lora-a\"}"),
            1);

  // Spent once admitted: a second Readmit is the transport's mistake, answered 500.
  auto again = p->Readmit(queued.pending, {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(again));
  EXPECT_EQ(std::get<Rejection>(again).http_status, 500);
  EXPECT_FALSE(std::get<Rejection>(again).queueable);
  p->OnResponseHeaders(*a.ctx, 200, "application/json");
  p->OnDone(*a.ctx);
}

// A request with no upstream answer is error 502, or 499 when its client had already left;
// one the transport refused itself is counted without a model.
TEST_F(PipelineQueueMetricsTest, NoAnswerIs502Or499WhenTheClientLeftAndRefusalsCount) {
  SetUpPool(2);
  auto p = MakeWithMetrics(/*max_queued=*/0);
  auto error_total = [&](std::string_view code) {
    return SeriesValue(metrics_->registry().Expose(),
                       fmt::format("llm_d_epp_request_error_total{{model_name=\"m\","
                                   "target_model_name=\"m\",error_code=\"{}\"}}",
                                   code));
  };
  Admission unreachable = AdmitCompletion(*p, "a");
  p->OnDone(*unreachable.ctx);
  Admission left = AdmitCompletion(*p, "b");
  left.ctx->client_gone = true;
  p->OnDone(*left.ctx);
  EXPECT_EQ(error_total("502"), 1);
  EXPECT_EQ(error_total("499"), 1);

  p->CountRefused(405);
  EXPECT_EQ(SeriesValue(metrics_->registry().Expose(),
                        "llm_d_epp_request_error_total{model_name=\"\",target_model_name=\"\","
                        "error_code=\"405\"}"),
            1);
  EXPECT_EQ(Requests(), 3);
}

TEST_F(PipelineQueueMetricsTest, RejectionsOutsideTheQueueAreCountedOnce) {
  SetUpPool(2);
  auto p = MakeWithMetrics(/*max_queued=*/0);
  SetLoad(/*saturated=*/true);
  auto shed = p->Admit("/v1/completions", sheddable_, Completion("x"), {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(shed));
  EXPECT_FALSE(std::get<Rejection>(shed).queueable);
  auto bad = p->Admit("/v1/completions", {}, R"({"prompt":"no model"})", {});
  ASSERT_TRUE(std::holds_alternative<Rejection>(bad));
  EXPECT_EQ(Requests(), 2);
  EXPECT_EQ(Errors(), 2);
}

TEST_F(PipelineTest, BodilessModelsRequestPicksAReadyEndpoint) {
  SetUpPool(3);
  auto p = Make();
  auto r = p->Admit("/v1/models", {}, "", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(r));
  EXPECT_GE(ds_.Current()->Find(std::get<Admission>(r).endpoints.front()), 0);
  EXPECT_EQ(std::get<Admission>(r).ctx->handle, sched::kNoPickHandle);
  p->OnDone(*std::get<Admission>(r).ctx);
}

TEST_F(PipelineTest, FirstBodyChunkIsTheFirstTokenAndStreamingUsageIsRead) {
  SetUpPool(1);
  auto p = Make();
  auto r = p->Admit("/v1/completions", {}, R"({"model":"m","prompt":"x","stream":true})", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(r));
  auto& ctx = *std::get<Admission>(r).ctx;
  EXPECT_TRUE(ctx.client_stream);
  p->OnResponseHeaders(ctx, 200, "text/event-stream; charset=utf-8");
  EXPECT_TRUE(ctx.streaming);
  clock_.Advance(std::chrono::milliseconds(30));
  p->OnResponseBody(ctx, "data: {\"choices\":[]}\n\n", false);
  EXPECT_EQ(ctx.first_byte - ctx.started, std::chrono::milliseconds(30));
  p->OnResponseBody(ctx, "data: {\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}\n\n",
                    false);
  p->OnResponseBody(ctx, "data: [DONE]\n\n", true);
  EXPECT_EQ(ctx.usage.usage().completion_tokens, 3);
  p->OnDone(ctx);
}

TEST_F(PipelineTest, GeneratedRequestIdIsAVersion4Uuid) {
  SetUpPool(1);
  auto p = Make();
  const std::regex uuid("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto r = p->Admit("/v1/completions", {}, Completion("x"), {});
    ASSERT_TRUE(std::holds_alternative<Admission>(r));
    auto& a = std::get<Admission>(r);
    EXPECT_TRUE(std::regex_match(a.ctx->request_id, uuid)) << a.ctx->request_id;
    ASSERT_EQ(a.upstream_headers.size(), 1u);
    EXPECT_EQ(a.upstream_headers[0].second, a.ctx->request_id);
    ids.insert(a.ctx->request_id);
    p->OnDone(*a.ctx);
  }
  EXPECT_EQ(ids.size(), 20u);
}

// One request's series: labelled by model and rewrite target, each observed once, and only
// the series that were observed appear (no streaming="true" TTFT for a JSON response).
TEST_F(PipelineQueueMetricsTest, ObservesEachRequestOnceUnderItsModelAndTargetLabels) {
  SetUpPool(2);
  auto p = MakeWithMetrics(0);
  const HeaderList rewrite = {{"x-gateway-model-name-rewrite", "t"}};
  for (int i = 0; i < 2; ++i) {
    auto r = p->Admit("/v1/completions", rewrite, Completion("hello"), {});
    ASSERT_TRUE(std::holds_alternative<Admission>(r));
    auto& ctx = *std::get<Admission>(r).ctx;
    p->OnResponseHeaders(ctx, 200, "application/json");
    p->OnResponseBody(ctx, R"({"usage":{"prompt_tokens":2,"completion_tokens":1}})", true);
    p->OnDone(ctx);
  }
  std::string text = metrics_->registry().Expose();
  EXPECT_EQ(SeriesValue(text, R"(llm_d_epp_request_total{model_name="m",target_model_name="t"})"),
            2);
  EXPECT_EQ(SeriesValue(text, "llm_d_epp_request_running{"), 0);
  EXPECT_EQ(SeriesValue(text, "llm_d_epp_request_input_tokens_sum{"), 4);
  EXPECT_EQ(SeriesValue(text, "llm_d_epp_request_output_tokens_count{"), 2);
  EXPECT_EQ(SeriesValue(text, "llm_d_epp_request_duration_seconds_count{"), 2);
  EXPECT_EQ(SeriesValue(text, "llm_d_epp_request_ttft_seconds_count{"), 2);
  EXPECT_EQ(text.find("llm_d_epp_request_cached_tokens_count{"), std::string::npos);
  EXPECT_EQ(text.find(R"(streaming="true")"), std::string::npos);
  EXPECT_EQ(text.find("llm_d_epp_request_error_total{"), std::string::npos);
}

// Label cardinality stays bounded with per-request series: past kMaxModelNames distinct
// models, requests are labelled "other".
// One completions request for `model`, answered with `status`.
void ServeModel(Pipeline& p, const std::string& model, int status) {
  auto r = p.Admit("/v1/completions", {}, R"({"model":")" + model + R"(","prompt":"x"})", {});
  ASSERT_TRUE(std::holds_alternative<Admission>(r));
  p.OnResponseHeaders(*std::get<Admission>(r).ctx, status, "application/json");
  p.OnDone(*std::get<Admission>(r).ctx);
}

TEST_F(PipelineQueueMetricsTest, ModelLabelsStayBounded) {
  SetUpPool(1);
  auto p = MakeWithMetrics(0);
  // Every model answered with a success (so every name is confirmed): 100 labels, then "other".
  const size_t models = EppMetrics::kMaxModelNames + 20;
  for (size_t i = 0; i < models; ++i) ServeModel(*p, "m" + std::to_string(i), 200);
  std::string text = metrics_->registry().Expose();
  size_t series = 0;
  for (size_t pos = 0; (pos = text.find("\nllm_d_epp_request_total{", pos)) != std::string::npos;
       ++pos) {
    ++series;
  }
  EXPECT_EQ(series, EppMetrics::kMaxModelNames + 1);
  EXPECT_EQ(
      SeriesValue(text, R"(llm_d_epp_request_total{model_name="other",target_model_name="other"})"),
      20);
  EXPECT_EQ(SeriesValue(text, "llm_d_epp_request_total{"), static_cast<double>(models));
}

TEST_F(PipelineQueueMetricsTest, NamesNoServerAcceptedGetFewLabels) {
  SetUpPool(1);
  auto p = MakeWithMetrics(0);
  // Every request fails (404 from the model server): only the unconfirmed labels are used.
  const size_t models = EppMetrics::kMaxUnconfirmedModelNames + 30;
  for (size_t i = 0; i < models; ++i) ServeModel(*p, "junk" + std::to_string(i), 404);
  std::string text = metrics_->registry().Expose();
  EXPECT_EQ(
      SeriesValue(text, R"(llm_d_epp_request_total{model_name="other",target_model_name="other"})"),
      30);
  EXPECT_EQ(SeriesValue(text, R"(llm_d_epp_request_error_total{model_name="other",)"
                              R"(target_model_name="other",error_code="404"})"),
            30);
}

}  // namespace
}  // namespace zumik::epp

// POST /v1/responses and the stored responses over real HTTP on loopback: vLLM's response
// object and event sequence, previous_response_id follow-ups that hit the prefix cache on the
// replica that stored the response, GET and cancel, and the store switched off.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/http/client.h"
#include "core/http/sse.h"
#include "core/metrics/parser.h"
#include "core/metrics/query.h"
#include "fmt/format.h"
#include "sim/server/response_store.h"
#include "sim/server/sim_server.h"
#include "sim/server/test_fleet.h"

namespace zumik::sim {
namespace {

namespace json = boost::json;
using http::FetchBlocking;
using http::Method;
using testing::HasSubstr;

constexpr std::string_view kModel = "meta-llama/Llama-3.1-8B-Instruct";

class ResponsesTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    server_ = test_fleet::StartTestFleet(
        [this](SimServerOptions& options) { options.responses_store = store(); });
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Stop(std::chrono::seconds(1));
  }

  bool store() const { return GetParam(); }
  std::string Url(int replica, std::string_view path) const {
    return test_fleet::ReplicaUrl(*server_, replica, path);
  }
  http::ClientResponse Fetch(Method method, int replica, std::string_view path,
                             std::string body = "") {
    auto response = FetchBlocking(method, Url(replica, path), std::move(body),
                                  {{"Content-Type", "application/json"}});
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : http::ClientResponse{};
  }
  http::ClientResponse Create(int replica, std::string_view fields) {
    return Fetch(Method::post, replica, "/v1/responses",
                 fmt::format(R"({{"model":"{}",{}}})", kModel, fields));
  }

  std::unique_ptr<SimServer> server_;
};

// A question of ~400 tokens, so that its blocks are worth caching.
std::string LongInput(std::string_view topic) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += fmt::format("{} {} ", topic, i);
  return text;
}

void ExpectWellFormed(const json::value& r, int64_t max_output_tokens) {
  EXPECT_THAT(std::string(r.at("id").as_string()), testing::StartsWith("resp_"));
  EXPECT_EQ(r.at("object"), "response");
  EXPECT_EQ(r.at("model").as_string(), kModel);
  const int64_t output_tokens = r.at("usage").at("output_tokens").as_int64();
  EXPECT_GE(output_tokens, 1);
  EXPECT_LE(output_tokens, max_output_tokens);
  const auto& usage = r.at("usage");
  EXPECT_EQ(usage.at("total_tokens").as_int64(),
            usage.at("input_tokens").as_int64() + output_tokens);
  EXPECT_EQ(usage.at("output_tokens_details").at("reasoning_tokens"), 0);
  if (output_tokens == max_output_tokens) {
    EXPECT_EQ(r.at("status"), "incomplete");
    EXPECT_EQ(r.at("incomplete_details").at("reason"), "max_output_tokens");
  } else {
    EXPECT_EQ(r.at("status"), "completed");
  }
  const auto& item = r.at("output").at(0);
  EXPECT_THAT(std::string(item.at("id").as_string()), testing::StartsWith("msg_"));
  EXPECT_EQ(item.at("type"), "message");
  EXPECT_EQ(item.at("role"), "assistant");
  const auto& part = item.at("content").at(0);
  EXPECT_EQ(part.at("type"), "output_text");
  EXPECT_EQ(part.at("text").as_string().size(), static_cast<size_t>(output_tokens) * 4);
}

TEST_P(ResponsesTest, NonStreamingResponseInVllmShape) {
  auto response = Create(1, R"("input":"Hello there","instructions":"Be brief.",)"
                            R"("max_output_tokens":8,"temperature":0.5)");
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.Header("x-zumik-replica"), "replica-1");
  const json::value r = json::parse(response.body);
  ExpectWellFormed(r, 8);
  EXPECT_EQ(r.at("instructions"), "Be brief.");
  EXPECT_EQ(r.at("max_output_tokens"), 8);
  EXPECT_EQ(r.at("temperature"), 0.5);
  EXPECT_EQ(r.at("store"), store()) << "store:true (the default) holds only with a store";
  EXPECT_EQ(r.at("usage").at("input_tokens_details").at("cached_tokens"), 0);
  auto metrics = metrics::ParseText(Fetch(Method::get, 1, "/metrics").body);
  ASSERT_TRUE(metrics.ok());
  double finished = 0;
  for (const char* reason : {"length", "stop"}) {
    finished +=
        metrics::FindValue(*metrics, "vllm:request_success_total", {{"finished_reason", reason}})
            .value_or(0);
  }
  EXPECT_EQ(finished, 1) << "one engine request, counted as chat's are";
}

TEST_P(ResponsesTest, StreamFollowsVllmEventSequence) {
  auto response = Create(0, R"("input":"Hello there","max_output_tokens":6,"stream":true)");
  ASSERT_EQ(response.status, 200) << response.body;
  http::SseParser parser;
  ASSERT_TRUE(parser.Feed(response.body).ok());
  std::vector<std::string> types;
  std::string text;
  json::value completed;
  int64_t sequence = 0;
  while (auto event = parser.Next()) {
    const json::value data = json::parse(event->data);
    EXPECT_EQ(data.at("type").as_string(), event->event);
    EXPECT_EQ(data.at("sequence_number"), sequence++);
    if (types.empty() || types.back() != event->event) types.push_back(event->event);
    if (event->event == "response.output_text.delta") text += data.at("delta").as_string();
    if (event->event == "response.completed") completed = data.at("response");
  }
  const std::vector<std::string> expected = {
      "response.created",           "response.in_progress",
      "response.output_item.added", "response.content_part.added",
      "response.output_text.delta", "response.output_text.done",
      "response.content_part.done", "response.output_item.done",
      "response.completed"};
  EXPECT_EQ(types, expected);
  EXPECT_THAT(response.body, testing::Not(HasSubstr("[DONE]")));
  ExpectWellFormed(completed, 6);
  EXPECT_EQ(completed.at("output").at(0).at("content").at(0).at("text").as_string(), text);
}

TEST_P(ResponsesTest, FollowUpsHitTheCacheOnTheReplicaThatStoredTheResponse) {
  auto first = Create(0, fmt::format(R"("input":"{}","instructions":"Be brief.",)"
                                     R"("max_output_tokens":16)",
                                     LongInput("tea")));
  ASSERT_EQ(first.status, 200) << first.body;
  const json::value r1 = json::parse(first.body);
  const std::string id(r1.at("id").as_string());
  const std::string follow_up =
      fmt::format(R"("input":"And coffee?","instructions":"Be brief.","previous_response_id":"{}",)"
                  R"("max_output_tokens":8)",
                  id);
  auto second = Create(0, follow_up);
  auto get = Fetch(Method::get, 0, "/v1/responses/" + id);
  auto cancel = Fetch(Method::post, 0, "/v1/responses/" + id + "/cancel");
  auto elsewhere = Create(1, follow_up);
  auto unknown = Fetch(Method::get, 0, "/v1/responses/resp_nope");

  if (!store()) {
    // vLLM without VLLM_ENABLE_RESPONSES_API_STORE: `store` is ignored, nothing is kept.
    EXPECT_EQ(second.status, 404) << second.body;
    EXPECT_THAT(second.body, HasSubstr(fmt::format("Response with id '{}' not found.", id)));
    EXPECT_EQ(get.status, 404);
    EXPECT_EQ(cancel.status, 404);
    return;
  }
  ASSERT_EQ(second.status, 200) << second.body;
  const json::value r2 = json::parse(second.body);
  ExpectWellFormed(r2, 8);
  EXPECT_EQ(r2.at("previous_response_id").as_string(), id);
  EXPECT_EQ(r2.at("instructions"), "Be brief.");
  const auto& usage1 = r1.at("usage");
  const auto& usage2 = r2.at("usage");
  // The follow-up repeats the instructions (they do not carry over) and renders instructions +
  // question + answer + new question: the first prompt and its answer are cached, whole blocks
  // of them.
  EXPECT_GT(usage2.at("input_tokens").as_int64(),
            usage1.at("input_tokens").as_int64() + usage1.at("output_tokens").as_int64());
  EXPECT_GE(usage2.at("input_tokens_details").at("cached_tokens").as_int64(),
            usage1.at("input_tokens").as_int64() - 16);

  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, first.body);
  EXPECT_EQ(get.Header("x-zumik-replica"), "replica-0");
  EXPECT_EQ(cancel.status, 400);
  EXPECT_THAT(cancel.body, HasSubstr("Cannot cancel a synchronous response."));
  EXPECT_EQ(elsewhere.status, 404) << "each replica keeps its own responses";
  EXPECT_EQ(unknown.status, 404);
  EXPECT_THAT(unknown.body, HasSubstr(R"("type":"invalid_request_error")"));

  // A chain: the third turn continues the second.
  const std::string id2(r2.at("id").as_string());
  auto third = Create(0, fmt::format(R"("input":[{{"role":"user","content":[{{"type":)"
                                     R"("input_text","text":"Thanks"}}]}}],)"
                                     R"("instructions":"Be brief.","previous_response_id":"{}",)"
                                     R"("max_output_tokens":4)",
                                     id2));
  ASSERT_EQ(third.status, 200) << third.body;
  const json::value r3 = json::parse(third.body);
  EXPECT_GE(r3.at("usage").at("input_tokens_details").at("cached_tokens").as_int64(),
            usage2.at("input_tokens").as_int64() - 16);
}

TEST_P(ResponsesTest, StoreFalseIsNotKept) {
  auto response = Create(0, R"("input":"Hi","max_output_tokens":4,"store":false)");
  ASSERT_EQ(response.status, 200) << response.body;
  const json::value r = json::parse(response.body);
  EXPECT_EQ(r.at("store"), false);
  const std::string id(r.at("id").as_string());
  EXPECT_EQ(Fetch(Method::get, 0, "/v1/responses/" + id).status, 404);
}

TEST_P(ResponsesTest, ErrorsAsVllmGivesThem) {
  auto unknown_model = Fetch(Method::post, 0, "/v1/responses", R"({"model":"x","input":"Hi"})");
  EXPECT_EQ(unknown_model.status, 404);
  EXPECT_THAT(unknown_model.body, HasSubstr("The model `x` does not exist."));
  auto background = Create(0, R"("input":"Hi","background":true)");
  EXPECT_EQ(background.status, 400);
  EXPECT_THAT(background.body, HasSubstr("not supported by the simulator"));
  auto too_long = Create(0, R"("input":"Hi","max_output_tokens":131072)");
  EXPECT_EQ(too_long.status, 400);
  // vLLM's routes: GET /v1/responses/{id} and POST /v1/responses/{id}/cancel only.
  auto post_stored = Fetch(Method::post, 0, "/v1/responses/resp_1");
  EXPECT_EQ(post_stored.status, 405) << post_stored.body;
  EXPECT_EQ(post_stored.Header("Allow"), "GET, HEAD");
  auto get_cancel = Fetch(Method::get, 0, "/v1/responses/resp_1/cancel");
  EXPECT_EQ(get_cancel.status, 405) << get_cancel.body;
  EXPECT_EQ(get_cancel.Header("Allow"), "POST");
  auto models = Fetch(Method::delete_, 0, "/v1/models");
  EXPECT_EQ(models.Header("Allow"), "GET, HEAD");  // a GET route answers HEAD too
}

std::shared_ptr<const StoredResponse> Stored(std::string body) {
  return std::make_shared<const StoredResponse>(
      StoredResponse{.conversation = {}, .body = std::move(body)});
}

TEST(ResponseStore, DropsTheLeastRecentlyUsedPastItsCapacity) {
  ResponseStore store(2);
  store.Put("a", Stored("A"));
  store.Put("b", Stored("B"));
  ASSERT_NE(store.Get("a"), nullptr);  // now b is the least recently used
  store.Put("c", Stored("C"));
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Get("b"), nullptr);
  EXPECT_EQ(store.Get("a")->body, "A");
  EXPECT_EQ(store.Get("c")->body, "C");
  store.Put("c", Stored("C2"));  // replacing keeps one entry
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Get("c")->body, "C2");
}

TEST(ResponseStore, ZeroCapacityKeepsNothing) {
  ResponseStore store(0);
  store.Put("a", Stored("A"));
  EXPECT_EQ(store.Get("a"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Store, ResponsesTest, testing::Bool(),
                         [](const testing::TestParamInfo<bool>& param) {
                           return param.param ? "StoreOn" : "StoreOff";
                         });

}  // namespace
}  // namespace zumik::sim

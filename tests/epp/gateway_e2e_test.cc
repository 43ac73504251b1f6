// The EPP gateway end to end: `zumik epp --listen-http` in front of a `zumik sim` fleet.
// Streaming and not, bad input, retries on a dead endpoint, an upstream dying mid-stream, a
// client cancelling, and Agent-Execution-Profile on every response.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/http/client.h"
#include "epp_support/epp_test_helpers.h"
#include "fmt/format.h"
#include "sched/request.h"
#include "support/process.h"

namespace zumik {
namespace {

using epp_testing::Eventually;
using testing::ChildProcess;
using testing::PickFreePort;
using testing::PickFreePortRange;
using testing::WaitForPort;
using testing::ZumikBinary;

constexpr std::string_view kModel = "meta-llama/Llama-3.1-8B-Instruct";

std::string CompletionBody(int max_tokens, bool stream, std::string_view prompt = "Hello there") {
  boost::json::object body;
  body["model"] = kModel;
  body["prompt"] = prompt;
  body["max_tokens"] = max_tokens;
  body["stream"] = stream;
  if (stream) body["stream_options"] = boost::json::object{{"include_usage", true}};
  return boost::json::serialize(body);
}

struct Fleet {
  std::unique_ptr<ChildProcess> sim;
  std::unique_ptr<ChildProcess> epp;
  int sim_port = 0;
  int replicas = 0;
  int gateway_port = 0;
  int metrics_port = 0;
  std::string dir;

  // `extra_endpoints` go first in the --endpoints list (e.g. a dead port).
  void Start(int n, const std::vector<std::string>& extra_endpoints = {},
             const std::vector<std::string>& epp_flags = {},
             const std::vector<std::string>& sim_flags = {}) {
    dir = testing::MakeTempDir("epp-e2e");
    replicas = n;
    sim_port = PickFreePortRange(n);
    std::vector<std::string> sim_argv = {ZumikBinary(),     "sim",      "--replicas",
                                         std::to_string(n), "--port",   std::to_string(sim_port),
                                         "--host",          "127.0.0.1"};
    for (auto& f : sim_flags) sim_argv.push_back(f);
    sim = std::make_unique<ChildProcess>(sim_argv, dir + "/sim.log");
    for (int i = 0; i < n; ++i) ASSERT_TRUE(WaitForPort(sim_port + i, std::chrono::seconds(10)));
    std::string endpoints;
    for (const auto& e : extra_endpoints) endpoints += e + ",";
    for (int i = 0; i < n; ++i) {
      endpoints += "127.0.0.1:" + std::to_string(sim_port + i) + (i + 1 < n ? "," : "");
    }
    gateway_port = PickFreePort();
    metrics_port = PickFreePort();
    std::vector<std::string> argv = {ZumikBinary(),
                                     "epp",
                                     "--endpoints",
                                     endpoints,
                                     "--listen-http",
                                     std::to_string(gateway_port),
                                     "--metrics-port",
                                     std::to_string(metrics_port),
                                     "--host",
                                     "127.0.0.1",
                                     "--scrape-interval",
                                     "20ms"};
    for (auto& f : epp_flags) argv.push_back(f);
    epp = std::make_unique<ChildProcess>(argv, dir + "/epp.log");
    ASSERT_TRUE(WaitForPort(gateway_port, std::chrono::seconds(10))) << epp->ReadLog();
  }

  std::string Url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(gateway_port) + std::string(path);
  }

  absl::StatusOr<http::ClientResponse> Post(std::string_view path, std::string body,
                                            http::Headers headers = {}) const {
    headers.emplace_back("Content-Type", "application/json");
    return http::FetchBlocking(http::Method::post, Url(path), std::move(body), std::move(headers));
  }
};

// A raw HTTP/1.1 exchange on a blocking socket, so the test controls when the client leaves.
class RawClient {
 public:
  explicit RawClient(int port) : socket_(io_) {
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                            static_cast<uint16_t>(port));
    socket_.connect(endpoint);
  }
  void Send(std::string_view path, std::string_view body) {
    std::string request = "POST " + std::string(path) +
                          " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
    boost::asio::write(socket_, boost::asio::buffer(request));
  }
  // Reads until `needle` appears or the connection ends; returns all bytes so far.
  std::string ReadUntil(std::string_view needle) {
    char buf[4096];
    while (received_.find(needle) == std::string::npos) {
      boost::system::error_code ec;
      size_t n = socket_.read_some(boost::asio::buffer(buf), ec);
      if (ec) break;
      received_.append(buf, n);
    }
    return received_;
  }
  std::string ReadToEnd() { return ReadUntil("\x01never\x02"); }
  void Close() {
    boost::system::error_code ec;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
  std::string received_;
};

double SimRunning(int port) {
  auto r = http::FetchBlocking(http::Method::get,
                               "http://127.0.0.1:" + std::to_string(port) + "/metrics");
  if (!r.ok()) return -1;
  return epp_testing::MetricSum(r->body, "vllm:num_requests_running{");
}

TEST(EppGateway, ProxiesCompletionsAndAddsTheProfileHeader) {
  Fleet fleet;
  fleet.Start(2);
  auto r = fleet.Post("/v1/completions", CompletionBody(8, false));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
  auto json = boost::json::parse(r->body);
  EXPECT_EQ(json.at("object").as_string(), "text_completion");
  EXPECT_GT(json.at("usage").at("completion_tokens").as_int64(), 0);

  auto chat = fleet.Post("/v1/chat/completions",
                         R"({"model":"meta-llama/Llama-3.1-8B-Instruct","max_tokens":4,)"
                         R"("messages":[{"role":"user","content":"hi"}]})");
  ASSERT_TRUE(chat.ok());
  EXPECT_EQ(chat->status, 200) << chat->body;
  EXPECT_EQ(chat->Header("Agent-Execution-Profile"), "byoc_epp");

  auto models = http::FetchBlocking(http::Method::get, fleet.Url("/v1/models"));
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->status, 200);
  EXPECT_NE(models->body.find(kModel), std::string::npos);
  // HEAD gets the head a GET gets, with the length of the body a GET carries.
  auto head = http::FetchBlocking(http::Method::head, fleet.Url("/v1/models"));
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->Header("Content-Length"), std::to_string(models->body.size()));
  EXPECT_EQ(head->body, "");
  EXPECT_EQ(head->Header("Agent-Execution-Profile"), "byoc_epp");
  EXPECT_EQ(models->Header("Agent-Execution-Profile"), "byoc_epp");

  // A model-name rewrite header: the replica is asked for the rewritten model. It serves only
  // kModel, so the client's name alone is its 404 model_not_found.
  const std::string aliased =
      R"({"model":"team-alias","prompt":"Hello there","max_tokens":4,"temperature":0.50})";
  auto unknown = fleet.Post("/v1/completions", aliased);
  ASSERT_TRUE(unknown.ok());
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  auto rewritten =
      fleet.Post("/v1/completions", aliased, {{"x-llm-d-model-name-rewrite", std::string(kModel)}});
  ASSERT_TRUE(rewritten.ok());
  EXPECT_EQ(rewritten->status, 200) << rewritten->body;
  // The client reads back the name it asked for, as llm-d-router writes responses.
  EXPECT_EQ(boost::json::parse(rewritten->body).at("model").as_string(), "team-alias");
}

// --model-rewrite: a weighted split of one client-facing name over the served model and a
// model the fleet does not serve (its 404s show the split), with the client's name written
// back into every response, streamed or not, and each decision counted.
TEST(EppGateway, ModelRewriteFlagSplitsTrafficAndWritesTheClientNameBack) {
  Fleet fleet;
  fleet.Start(2, {},
              {"--model-rewrite", fmt::format("team-alias={}:3,not-served:1", kModel),
               "--model-rewrite", fmt::format("*={}", kModel)});
  const std::string aliased = R"({"model":"team-alias","prompt":"Hello","max_tokens":3})";
  int served = 0;
  int missing = 0;
  for (int i = 0; i < 80; ++i) {
    auto r = fleet.Post("/v1/completions", aliased);
    ASSERT_TRUE(r.ok()) << r.status();
    if (r->status == 200) {
      ++served;
      EXPECT_EQ(boost::json::parse(r->body).at("model").as_string(), "team-alias") << r->body;
      EXPECT_EQ(r->body.find(kModel), std::string::npos) << r->body;
    } else {
      ++missing;
      EXPECT_EQ(r->status, 404) << r->body;
    }
  }
  // 3:1 by weight: 60 expected of 80 (binomial sd 3.9).
  EXPECT_GT(served, 45);
  EXPECT_GT(missing, 5);

  // A model no rule names exactly takes the "*" rule; streamed events carry the client name.
  std::string body = CompletionBody(12, true);
  const std::string from = fmt::format("\"model\":\"{}\"", kModel);
  body.replace(body.find(from), from.size(), "\"model\":\"any-name\"");
  auto streamed = fleet.Post("/v1/completions", body);
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  ASSERT_EQ(streamed->status, 200) << streamed->body;
  EXPECT_NE(streamed->body.find("data: [DONE]"), std::string::npos);
  EXPECT_NE(streamed->body.find("\"model\":\"any-name\""), std::string::npos) << streamed->body;
  EXPECT_EQ(streamed->body.find(kModel), std::string::npos) << streamed->body;

  auto metrics = http::FetchBlocking(
      http::Method::get, "http://127.0.0.1:" + std::to_string(fleet.metrics_port) + "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(
      epp_testing::MetricSum(metrics->body,
                             "llm_d_epp_model_rewrite_decisions_total{model_rewrite_name=\"flag\","
                             "model_name=\"team-alias\",target_model=\"not-served\"}"),
      missing);
}

TEST(EppGateway, ABadModelRewriteFlagIsRefusedWithTheExpectedForm) {
  ChildProcess epp({ZumikBinary(), "epp", "--endpoints", "127.0.0.1:1", "--listen-http",
                    std::to_string(PickFreePort()), "--model-rewrite", "team-alias"},
                   testing::MakeTempDir("epp-flag") + "/epp.log");
  EXPECT_EQ(epp.Wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(epp.ReadLog().find("MODEL=TARGET[:WEIGHT]"), std::string::npos) << epp.ReadLog();
}

// A chat request with n = 2 against the simulator's real output: the engine caches both
// samples after the prompt and the client may continue with either, so the gateway indexes
// prompt + each sample (the prefix index grows by both), and a follow-up carrying the second
// sample goes home.
TEST(EppGateway, IndexesEverySampleOfARequestWithSeveral) {
  Fleet fleet;
  fleet.Start(2);
  const std::string metrics_url =
      "http://127.0.0.1:" + std::to_string(fleet.metrics_port) + "/metrics";
  auto index_size = [&] {
    auto metrics = http::FetchBlocking(http::Method::get, metrics_url);
    return metrics.ok() ? epp_testing::MetricSum(metrics->body, "llm_d_epp_prefix_indexer_size ")
                        : -1.0;
  };
  const double before = index_size();
  const boost::json::object user{{"role", "user"}, {"content", "Tell me a long story, please."}};
  boost::json::object first{{"model", kModel},
                            {"messages", boost::json::array{user}},
                            {"n", 2},
                            {"max_tokens", 80},
                            {"ignore_eos", true}};
  auto r = fleet.Post("/v1/chat/completions", boost::json::serialize(first));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->status, 200) << r->body;
  const std::string home(r->Header("x-zumik-replica"));
  const boost::json::value response = boost::json::parse(r->body);
  const boost::json::array& choices = response.at("choices").as_array();
  ASSERT_EQ(choices.size(), 2u) << r->body;

  // Blocks of 64 bytes (4 x the simulator's 16-token block) over prompt + each sample, as the
  // prompt renderer writes the conversation; the two chains share their leading full blocks.
  std::string prompt;
  sched::AppendChatMessage(prompt, "user", user.at("content").as_string());
  std::vector<std::string> histories;
  for (const boost::json::value& choice : choices) {
    std::string history = prompt;
    sched::AppendChatMessage(history, "assistant", choice.at("message").at("content").as_string());
    histories.push_back(std::move(history));
  }
  size_t shared = 0;
  while (shared < histories[0].size() && shared < histories[1].size() &&
         histories[0][shared] == histories[1][shared]) {
    ++shared;
  }
  const size_t blocks = histories[0].size() / 64 + histories[1].size() / 64 - shared / 64;
  const auto both = static_cast<double>(blocks);
  // The completion is reported right after the response's last byte.
  EXPECT_TRUE(Eventually([&] { return index_size() - before >= both; }, std::chrono::seconds(5)))
      << "index grew by " << index_size() - before << ", expected " << both << " blocks";

  boost::json::object next{
      {"model", kModel},
      {"messages", boost::json::array{user,
                                      {{"role", "assistant"},
                                       {"content", choices[1].at("message").at("content")}},
                                      {{"role", "user"}, {"content", "And then?"}}}},
      {"max_tokens", 4}};
  auto follow_up = fleet.Post("/v1/chat/completions", boost::json::serialize(next));
  ASSERT_TRUE(follow_up.ok()) << follow_up.status();
  ASSERT_EQ(follow_up->status, 200) << follow_up->body;
  EXPECT_EQ(follow_up->Header("x-zumik-replica"), home);
}

// The Responses API's stored responses live on the replica that answered (vLLM keeps them in
// its API server's memory): the gateway must send previous_response_id follow-ups and
// GET /v1/responses/{id} there, or the replica answers 404. Several conversations, so that they
// start on different replicas.
TEST(EppGateway, ResponsesFollowUpsAndLookupsGoToTheReplicaThatStoredTheResponse) {
  Fleet fleet;
  fleet.Start(4, {}, {}, {"--responses-store"});
  std::set<std::string> homes;
  for (int conversation = 0; conversation < 8; ++conversation) {
    std::string question;
    for (int i = 0; i < 60; ++i) question += fmt::format("topic {} part {} ", conversation, i);
    boost::json::object first{{"model", kModel},
                              {"input", question},
                              {"instructions", "Be brief."},
                              {"max_output_tokens", 16}};
    auto r = fleet.Post("/v1/responses", boost::json::serialize(first));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    const std::string home(r->Header("x-zumik-replica"));
    ASSERT_FALSE(home.empty());
    homes.insert(home);
    std::string id(boost::json::parse(r->body).at("id").as_string());
    for (int turn = 0; turn < 3; ++turn) {
      boost::json::object next{{"model", kModel},
                               {"input", fmt::format("And then {}?", turn)},
                               {"instructions", "Be brief."},  // they do not carry over
                               {"previous_response_id", id},
                               {"max_output_tokens", 8},
                               {"stream", turn == 1}};
      auto follow_up = fleet.Post("/v1/responses", boost::json::serialize(next));
      ASSERT_TRUE(follow_up.ok()) << follow_up.status();
      ASSERT_EQ(follow_up->status, 200)
          << "conversation " << conversation << " turn " << turn << ": " << follow_up->body;
      EXPECT_EQ(follow_up->Header("x-zumik-replica"), home);
      boost::json::value response;
      if (turn == 1) {
        // The last event, response.completed, carries the whole response.
        const std::string& body = follow_up->body;
        const size_t data = body.rfind("data: ");
        ASSERT_NE(data, std::string::npos) << body;
        response = boost::json::parse(body.substr(data + 6)).at("response");
      } else {
        response = boost::json::parse(follow_up->body);
      }
      EXPECT_GT(response.at("usage").at("input_tokens_details").at("cached_tokens").as_int64(), 0)
          << "conversation " << conversation << " turn " << turn;
      id = std::string(response.at("id").as_string());
    }
    auto stored = http::FetchBlocking(http::Method::get, fleet.Url("/v1/responses/" + id));
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->status, 200) << stored->body;
    EXPECT_EQ(stored->Header("x-zumik-replica"), home);
    EXPECT_EQ(boost::json::parse(stored->body).at("id").as_string(), id);
  }
  EXPECT_GE(homes.size(), 2u) << "conversations spread over the fleet";
}

TEST(EppGateway, StreamsSseThroughWithUsageAndDone) {
  Fleet fleet;
  fleet.Start(2);
  auto r = fleet.Post("/v1/completions", CompletionBody(12, true));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->Header("Content-Type").find("text/event-stream"), std::string_view::npos);
  EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
  EXPECT_NE(r->body.find("\"usage\""), std::string::npos);
  EXPECT_NE(r->body.find("data: [DONE]"), std::string::npos);

  // The first event reaches the client before the upstream has finished (no buffering): a
  // long stream's first event arrives while the sim is still running the request.
  RawClient raw(fleet.gateway_port);
  raw.Send("/v1/completions", CompletionBody(400, true));
  std::string first = raw.ReadUntil("data: ");
  EXPECT_NE(first.find("200 OK"), std::string::npos);
  EXPECT_EQ(first.find("[DONE]"), std::string::npos);
  EXPECT_GE(SimRunning(fleet.sim_port) + SimRunning(fleet.sim_port + 1), 1);
  std::string all = raw.ReadUntil("data: [DONE]");
  EXPECT_NE(all.find("data: [DONE]"), std::string::npos);
}

TEST(EppGateway, AnswersBadInputWithJsonErrorsCarryingTheHeader) {
  Fleet fleet;
  fleet.Start(1, {}, {"--max-body-bytes", "65536"});
  struct Case {
    std::string path;
    std::string body;
    int status;
  };
  std::vector<Case> cases = {
      {"/v1/completions", "{not json", 400},
      {"/v1/completions", R"({"prompt":"x"})", 400},
      {"/v1/chat/completions", R"({"model":"m","messages":7})", 400},
      {"/v1/completions", std::string("{\"model\":\"m\",\"prompt\":\"\xff\xfe\"}"), 400},
      {"/not/a/path", "{}", 404},
  };
  for (const auto& c : cases) {
    auto r = fleet.Post(c.path, c.body);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, c.status) << c.path << " " << c.body;
    EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp") << c.body;
    auto json = boost::json::parse(r->body);
    EXPECT_TRUE(json.at("error").at("message").is_string()) << r->body;
  }
  // Oversized bodies are refused by the server itself (413), still with the header.
  auto big = fleet.Post("/v1/completions", std::string(100'000, 'x'));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->status, 413);
  EXPECT_EQ(big->Header("Agent-Execution-Profile"), "byoc_epp");
  // An upstream error status passes through unchanged, with the header.
  auto upstream_error = fleet.Post("/v1/completions", R"({"model":"m","prompt":"x"})");
  ASSERT_TRUE(upstream_error.ok());
  EXPECT_EQ(upstream_error->status, 404) << upstream_error->body;  // the sim has no model "m"
  EXPECT_EQ(upstream_error->Header("Agent-Execution-Profile"), "byoc_epp");
}

TEST(EppGateway, AnswersAWrongMethodWith405AndAllow) {
  Fleet fleet;
  fleet.Start(1);
  struct Case {
    http::Method method;
    std::string path;
    std::string allow;
  };
  const std::vector<Case> cases = {
      {http::Method::get, "/v1/completions", "POST"},
      {http::Method::delete_, "/v1/chat/completions", "POST"},
      {http::Method::put, "/v1/embeddings?x=1", "POST"},
      {http::Method::post, "/v1/models", "GET, HEAD"},
      {http::Method::delete_, "/v1/responses/resp_1", "GET"},
      {http::Method::get, "/v1/responses/resp_1/cancel", "POST"},
  };
  for (const auto& c : cases) {
    auto r = http::FetchBlocking(c.method, fleet.Url(c.path), "{}");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 405) << http::MethodName(c.method) << " " << c.path << ": " << r->body;
    EXPECT_EQ(r->Header("Allow"), c.allow) << c.path;
    EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
    auto json = boost::json::parse(r->body);
    EXPECT_NE(json.at("error").at("message").as_string().find("not allowed"),
              boost::json::string::npos)
        << r->body;
  }
  // Each refusal is a request and an error in the gateway's metrics.
  auto metrics = http::FetchBlocking(
      http::Method::get, "http://127.0.0.1:" + std::to_string(fleet.metrics_port) + "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(epp_testing::MetricSum(metrics->body,
                                   "llm_d_epp_request_error_total{model_name=\"\","
                                   "target_model_name=\"\",error_code=\"405\"}"),
            static_cast<double>(cases.size()))
      << metrics->body;
  // The gateway keeps serving, and the right methods still pass.
  auto models = http::FetchBlocking(http::Method::get, fleet.Url("/v1/models"));
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->status, 200);
  auto ok = fleet.Post("/v1/completions", CompletionBody(2, false));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200) << ok->body;
}

// The client's path decides which API a request is; what goes upstream is the model server's
// own path for that API, so no target can reach another upstream route, port or host.
TEST(EppGateway, SendsUpstreamOnlyTheModelServersOwnPath) {
  Fleet fleet;
  fleet.Start(1);
  for (std::string_view target : {"/metrics#/v1/completions", "0/v1/completions",
                                  "x/v1/completions", "http://127.0.0.1:1/v1/completions"}) {
    RawClient client(fleet.gateway_port);
    client.Send(target, CompletionBody(2, false));
    const std::string response = client.ReadUntil("}}");
    EXPECT_EQ(response.substr(0, 12), "HTTP/1.1 400") << target << ": " << response;
    EXPECT_NE(response.find("Agent-Execution-Profile: byoc_epp"), std::string::npos) << response;
    EXPECT_NE(response.find("must be a path starting with '/'"), std::string::npos) << response;
  }
  for (std::string_view path :
       {"/v1/completions/", "/openai/v1/completions?api-version=1", "/x/../v1/completions"}) {
    auto r = fleet.Post(path, CompletionBody(2, false));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
    EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
  }
  // /ready is asked of the model server as /health (vLLM has no /ready).
  auto ready = http::FetchBlocking(http::Method::get, fleet.Url("/ready"));
  ASSERT_TRUE(ready.ok()) << ready.status();
  EXPECT_EQ(ready->status, 200) << ready->body;
  // A stored response's id is one plain segment: a dot segment is no response id.
  auto dots = http::FetchBlocking(http::Method::get, fleet.Url("/v1/responses/.."));
  ASSERT_TRUE(dots.ok()) << dots.status();
  EXPECT_EQ(dots->status, 404) << dots->body;
}

TEST(EppGateway, RetriesTheNextEndpointWhenConnectingFails) {
  int dead = PickFreePort();  // nothing listens here
  Fleet fleet;
  fleet.Start(1, {"127.0.0.1:" + std::to_string(dead)}, {"--config", "round-robin"});
  // Round-robin makes the dead endpoint the primary every other request.
  for (int i = 0; i < 6; ++i) {
    auto r = fleet.Post("/v1/completions", CompletionBody(2, i % 2 == 0));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
  }
}

// A model server that hangs (SIGSTOP: it accepts connections but answers nothing, /metrics
// included) gets no new requests once its scrapes have gone unanswered for
// --unresponsive-after, and is picked again when it answers.
TEST(EppGateway, AHungModelServerIsNotPickedWhileOthersAnswer) {
  const std::string dir = testing::MakeTempDir("epp-hung");
  const int hung_port = PickFreePort();
  ChildProcess hung({ZumikBinary(), "sim", "--replicas", "1", "--port", std::to_string(hung_port),
                     "--host", "127.0.0.1"},
                    dir + "/hung-sim.log");
  ASSERT_TRUE(WaitForPort(hung_port, std::chrono::seconds(10)));
  Fleet fleet;
  fleet.Start(1, {"127.0.0.1:" + std::to_string(hung_port)},
              {"--config", "round-robin", "--unresponsive-after", "1s"});
  auto completion = [&] {
    return http::FetchBlocking(http::Method::post, fleet.Url("/v1/completions"),
                               CompletionBody(2, false), {{"Content-Type", "application/json"}},
                               std::chrono::seconds(3));
  };
  ASSERT_TRUE(completion().ok());
  kill(hung.pid(), SIGSTOP);
  // Its last good scrape must be older than max(1 s, 2 scrape intervals + the 1 s timeout).
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  for (int i = 0; i < 6; ++i) {
    auto r = completion();
    ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
  }
  kill(hung.pid(), SIGCONT);
  // Answering again: round-robin reaches it within a few requests (its sim counts them).
  EXPECT_TRUE(epp_testing::Eventually([&] {
    auto r = completion();
    auto metrics = http::FetchBlocking(
        http::Method::get, "http://127.0.0.1:" + std::to_string(hung_port) + "/metrics");
    return r.ok() && metrics.ok() &&
           epp_testing::MetricSum(metrics->body, "vllm:request_success_total{") >= 2;
  }));
}

TEST(EppGateway, AllEndpointsDeadIs502WithTheHeader) {
  Fleet fleet;
  fleet.Start(1);
  fleet.sim->Stop();
  auto r = fleet.Post("/v1/completions", CompletionBody(2, false));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 502) << r->body;
  EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
}

TEST(EppGateway, UpstreamDeathMidStreamEndsTheStreamWithAnErrorEvent) {
  Fleet fleet;
  fleet.Start(1);
  RawClient raw(fleet.gateway_port);
  raw.Send("/v1/completions", CompletionBody(2000, true));
  std::string first = raw.ReadUntil("data: ");
  ASSERT_NE(first.find("200 OK"), std::string::npos) << first;
  kill(fleet.sim->pid(), SIGKILL);
  std::string all = raw.ReadToEnd();
  EXPECT_EQ(all.find("data: [DONE]"), std::string::npos);
  EXPECT_NE(all.find("upstream failed mid-stream"), std::string::npos)
      << all.substr(all.size() > 400 ? all.size() - 400 : 0);
  EXPECT_FALSE(all.ends_with("0\r\n\r\n")) << "a cut-short body must not look complete";
  // The gateway itself is fine.
  auto health = http::FetchBlocking(http::Method::get, fleet.Url("/healthz"));
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->Header("Agent-Execution-Profile"), "byoc_epp");
}

TEST(EppGateway, ClientCancelCancelsTheUpstreamRequest) {
  Fleet fleet;
  fleet.Start(1);
  RawClient raw(fleet.gateway_port);
  raw.Send("/v1/completions", CompletionBody(3000, true));
  raw.ReadUntil("data: ");
  EXPECT_EQ(SimRunning(fleet.sim_port), 1);
  raw.Close();
  EXPECT_TRUE(Eventually([&] { return SimRunning(fleet.sim_port) == 0; }))
      << "the sim still runs the cancelled request";
}

TEST(EppGateway, ExposesLlmDEppMetrics) {
  Fleet fleet;
  fleet.Start(2);
  ASSERT_TRUE(fleet.Post("/v1/completions", CompletionBody(4, true)).ok());
  ASSERT_TRUE(fleet.Post("/v1/completions", "{bad").ok());
  std::string url = "http://127.0.0.1:" + std::to_string(fleet.metrics_port) + "/metrics";
  std::string body;
  EXPECT_TRUE(Eventually([&] {
    auto r = http::FetchBlocking(http::Method::get, url);
    if (!r.ok()) return false;
    body = r->body;
    return body.find("llm_d_epp_ready_endpoints{name=\"zumik\"} 2") != std::string::npos;
  })) << body;
  for (std::string_view name :
       {"llm_d_epp_request_total{", "llm_d_epp_request_error_total{",
        "llm_d_epp_request_ttft_seconds_bucket{", "llm_d_epp_request_output_tokens_bucket{",
        "llm_d_epp_scheduler_e2e_duration_seconds_bucket",
        "llm_d_epp_average_kv_cache_utilization{", "llm_d_epp_per_endpoint_queue_size{",
        "llm_d_epp_prefix_indexer_size"}) {
    EXPECT_NE(body.find(name), std::string::npos) << name;
  }
  EXPECT_NE(body.find("error_code=\"400\""), std::string::npos);
}

TEST(EppGateway, MadeUpModelNamesDoNotTakeTheServedModelsLabel) {
  Fleet fleet;
  fleet.Start(1);
  // More unknown names than unconfirmed labels: every one is a 404 from the model server.
  const std::string from = fmt::format("\"model\":\"{}\"", kModel);
  for (int i = 0; i < 25; ++i) {
    std::string body = CompletionBody(2, false);
    body.replace(body.find(from), from.size(), fmt::format("\"model\":\"junk-{}\"", i));
    auto r = fleet.Post("/v1/completions", body);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 404) << r->body;
  }
  // The served model's first success confirms its name; from then on it has its own label.
  for (int i = 0; i < 3; ++i) {
    auto r = fleet.Post("/v1/completions", CompletionBody(2, false));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
  }
  auto metrics = http::FetchBlocking(
      http::Method::get, "http://127.0.0.1:" + std::to_string(fleet.metrics_port) + "/metrics");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  const std::string& body = metrics->body;
  const auto total = [&](std::string_view model) {
    return epp_testing::MetricSum(
        body, fmt::format("llm_d_epp_request_total{{model_name=\"{0}\",target_model_name=\"{0}\"}}",
                          model));
  };
  EXPECT_EQ(total(kModel), 2) << body;
  EXPECT_EQ(total("other"), 5 + 1) << body;  // junk-20..24, and the served model's first request
  EXPECT_EQ(total("junk-19"), 1) << body;
  EXPECT_EQ(body.find("junk-20"), std::string::npos) << body;
}

TEST(EppCommand, RejectsBadFlagsClearly) {
  std::string dir = testing::MakeTempDir("epp-cli");
  ChildProcess none({ZumikBinary(), "epp", "--endpoints", "127.0.0.1:1"}, dir + "/a.log");
  EXPECT_EQ(none.Wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(none.ReadLog().find("nothing to serve"), std::string::npos);
  ChildProcess bad({ZumikBinary(), "epp", "--endpoints", "nonsense", "--listen-http", "0",
                    "--metrics-port", "-1"},
                   dir + "/b.log");
  EXPECT_EQ(bad.Wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(bad.ReadLog().find("HOST:PORT"), std::string::npos);
  ChildProcess health({ZumikBinary(), "epp", "--endpoints", "127.0.0.1:1", "--listen-http", "0",
                       "--grpc-health-port", "0", "--metrics-port", "-1"},
                      dir + "/c.log");
  EXPECT_EQ(health.Wait(std::chrono::seconds(10)), 2);
  EXPECT_NE(health.ReadLog().find("give --listen-grpc too"), std::string::npos) << health.ReadLog();
}

}  // namespace
}  // namespace zumik

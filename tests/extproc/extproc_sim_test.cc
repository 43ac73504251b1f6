// The ext_proc server with the real EPP pipeline in front of a `zumik sim` fleet: the test
// plays Envoy — drives the ext_proc stream, forwards the request to the endpoint the EPP
// picked (over real HTTP), and feeds the model server's actual response back through the
// response half — asserting every reply.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <set>
#include <thread>

#include "epp/datastore.h"
#include "epp/extproc/envoy_harness.h"
#include "epp/extproc/server.h"
#include "epp/extproc/stream_processor.h"
#include "epp/pipeline.h"
#include "epp/scraper.h"
#include "support/process.h"

namespace zumik::epp::extproc {
namespace {

using harness::DriveRequest;
using harness::DriveResponse;
using harness::MutationHeader;
using harness::RequestSpec;

constexpr int kReplicas = 3;
constexpr char kModel[] = "meta-llama/Llama-3.1-8B-Instruct";

class ExtProcSimTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    base_port_ = zumik::testing::PickFreePortRange(kReplicas);
    fleet_ = new zumik::testing::ChildProcess(
        {zumik::testing::ZumikBinary(), "sim", "--replicas", std::to_string(kReplicas), "--port",
         std::to_string(base_port_), "--host", "127.0.0.1"},
        zumik::testing::MakeTempDir("extproc_sim") + "/sim.log");
    for (int i = 0; i < kReplicas; ++i) {
      ASSERT_TRUE(zumik::testing::WaitForPort(base_port_ + i, std::chrono::seconds(15)))
          << fleet_->ReadLog();
    }
  }
  static void TearDownTestSuite() {
    delete fleet_;
    fleet_ = nullptr;
  }

  void SetUp() override {
    std::vector<EndpointSpec> specs;
    for (int i = 0; i < kReplicas; ++i) {
      EndpointSpec spec;
      spec.address = Address(i);
      specs.push_back(spec);
    }
    datastore_.SetEndpoints(specs);
    scraper_ = std::make_unique<Scraper>(io_, datastore_, ScraperOptions{});
    scraper_->Start();
    io_thread_ = std::thread([this] { io_.run(); });
    PipelineOptions options;
    options.profile_header = "byoc_epp";
    auto pipeline = Pipeline::Create(options, datastore_);
    ASSERT_TRUE(pipeline.ok()) << pipeline.status();
    pipeline_ = std::move(*pipeline);
    ExtProcOptions server_options;
    server_options.host = "127.0.0.1";
    server_options.port = 0;
    server_options.drain_timeout = std::chrono::milliseconds(200);
    auto server = StartExtProcServer(server_options, pipeline_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ =
        std::make_unique<harness::EnvoyClient>(fmt::format("127.0.0.1:{}", server_->port()), false);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    scraper_->Stop();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
  }

  static std::string Address(int i) { return fmt::format("127.0.0.1:{}", base_port_ + i); }
  static std::string ChatBody(bool stream, std::string_view prompt) {
    return fmt::format(
        R"({{"model":"{}","messages":[{{"role":"user","content":"{}"}}],"max_tokens":8,"stream":{}{}}})",
        kModel, prompt, stream ? "true" : "false",
        stream ? R"(,"stream_options":{"include_usage":true})" : "");
  }

  static inline int base_port_ = 0;
  static inline zumik::testing::ChildProcess* fleet_ = nullptr;
  boost::asio::io_context io_;
  Datastore datastore_;
  std::unique_ptr<Scraper> scraper_;
  std::thread io_thread_;
  std::shared_ptr<Pipeline> pipeline_;
  std::unique_ptr<ExtProcServer> server_;
  std::unique_ptr<harness::EnvoyClient> client_;
};

// One request through the EPP as Envoy would run it. `exclusive`: no other stream is in
// flight, so the pipeline's in-flight count for the pick is exactly this request.
void ExpectExchange(harness::EnvoyClient& client, Pipeline& pipeline, bool stream_response,
                    const std::set<std::string>& eligible,
                    const std::optional<std::vector<std::string>>& subset = std::nullopt,
                    bool exclusive = true) {
  auto stream = client.Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.headers = {{"content-type", "application/json"}};
  spec.body = fmt::format(
      R"({{"model":"{}","messages":[{{"role":"user","content":"{}"}}],"max_tokens":8,"stream":{}{}}})",
      kModel, std::string(3000, 'p'), stream_response ? "true" : "false",
      stream_response ? R"(,"stream_options":{"include_usage":true})" : "");
  spec.chunk_bytes = 1024;
  spec.subset = subset;
  auto request = DriveRequest(*stream, spec);
  ASSERT_FALSE(request.immediate.has_value()) << request.immediate->DebugString();
  ASSERT_TRUE(request.headers_reply.has_value());
  auto pick = harness::ReadPick(*request.headers_reply);
  EXPECT_TRUE(pick.clear_route_cache);
  ASSERT_TRUE(pick.destination.has_value());
  EXPECT_EQ(pick.metadata_destination, pick.destination);
  const auto& endpoints = pick.endpoints;
  for (const auto& endpoint : endpoints) EXPECT_TRUE(eligible.count(endpoint)) << endpoint;
  EXPECT_EQ(std::set<std::string>(endpoints.begin(), endpoints.end()).size(), endpoints.size());
  EXPECT_EQ(pick.content_length, std::to_string(spec.body.size()));
  const auto& common = request.headers_reply->request_headers().response();
  EXPECT_TRUE(MutationHeader(common.header_mutation(), "x-request-id").has_value());
  EXPECT_EQ(request.body, spec.body);
  if (exclusive) {
    EXPECT_EQ(pipeline.InFlight(endpoints.front()), 1);
  }

  // Envoy forwards to the first endpoint and streams the model server's answer back.
  harness::UpstreamResponse upstream =
      harness::ForwardToEndpoint(endpoints.front(), spec.path, request.body);
  ASSERT_EQ(upstream.status, 200) << upstream.body;
  auto response =
      DriveResponse(*stream, upstream.status, upstream.content_type,
                    harness::SplitIntoChunks(upstream.body, 100), false, endpoints.front());
  ASSERT_TRUE(response.headers_reply.has_value());
  EXPECT_EQ(MutationHeader(response.headers_reply->response_headers().response().header_mutation(),
                           "agent-execution-profile"),
            "byoc_epp");
  EXPECT_EQ(response.body, upstream.body);
  if (stream_response) {
    EXPECT_THAT(upstream.content_type, ::testing::HasSubstr("text/event-stream"));
    EXPECT_THAT(response.body, ::testing::HasSubstr("data: [DONE]"));
  }
  stream->CloseSend();
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_TRUE(stream->Finish().ok());
  // The server completes the request (OnDone) before it ends the stream.
  if (exclusive) {
    EXPECT_EQ(pipeline.InFlight(endpoints.front()), 0);
  }
}

TEST_F(ExtProcSimTest, NonStreamingChatIsPickedForwardedAndObserved) {
  std::set<std::string> all;
  for (int i = 0; i < kReplicas; ++i) all.insert(Address(i));
  ExpectExchange(*client_, *pipeline_, false, all);
}

TEST_F(ExtProcSimTest, StreamingChatPassesThroughSse) {
  std::set<std::string> all;
  for (int i = 0; i < kReplicas; ++i) all.insert(Address(i));
  ExpectExchange(*client_, *pipeline_, true, all);
}

TEST_F(ExtProcSimTest, SubsetHintConfinesThePickToTheSubset) {
  for (int i = 0; i < 5; ++i) {
    ExpectExchange(*client_, *pipeline_, false, {Address(1)}, std::vector<std::string>{Address(1)});
  }
}

TEST_F(ExtProcSimTest, SubsetOutsideThePoolIs503) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.body = ChatBody(false, "hi");
  spec.subset = std::vector<std::string>{"10.255.255.1:8000"};
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.immediate.has_value());
  EXPECT_EQ(request.immediate->immediate_response().status().code(), 503);
  EXPECT_TRUE(boost::json::parse(request.immediate->immediate_response().body()).is_object());
}

TEST_F(ExtProcSimTest, MissingModelIs400WithAJsonError) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.body = R"({"messages":[{"role":"user","content":"hi"}]})";
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.immediate.has_value());
  const auto& immediate = request.immediate->immediate_response();
  EXPECT_EQ(immediate.status().code(), 400);
  auto json = boost::json::parse(immediate.body());
  ASSERT_TRUE(json.is_object());
  EXPECT_TRUE(json.as_object().contains("error"));
  EXPECT_EQ(MutationHeader(immediate.headers(), "content-type"), "application/json");
  EXPECT_EQ(MutationHeader(immediate.headers(), "agent-execution-profile"), "byoc_epp");
}

TEST_F(ExtProcSimTest, MalformedAndNonUtf8BodiesAreRejectedCleanly) {
  for (const std::string& body :
       {std::string("{\"model\":"), std::string("{\"model\":\"\xff\xfe\"}"),
        std::string("\0\0\0", 3)}) {
    auto stream = client_->Open();
    RequestSpec spec;
    spec.path = "/v1/completions";
    spec.body = body;
    auto request = DriveRequest(*stream, spec);
    ASSERT_TRUE(request.immediate.has_value());
    EXPECT_EQ(request.immediate->immediate_response().status().code(), 400);
  }
  // The server is unaffected.
  std::set<std::string> all;
  for (int i = 0; i < kReplicas; ++i) all.insert(Address(i));
  ExpectExchange(*client_, *pipeline_, false, all);
}

TEST_F(ExtProcSimTest, ClientCancelAfterThePickReleasesTheEndpoint) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.body = ChatBody(true, "cancel me");
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.headers_reply.has_value());
  auto pick = harness::ReadPick(*request.headers_reply);
  ASSERT_FALSE(pick.endpoints.empty());
  std::string primary = pick.endpoints.front();
  EXPECT_EQ(pipeline_->InFlight(primary), 1);
  stream->Cancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server's handler notices the cancel on its own thread: wait (bounded) for the release.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pipeline_->InFlight(primary) != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(pipeline_->InFlight(primary), 0);
}

// A model-name rewrite: Envoy forwards the body the EPP sends back, with the target model and
// its new Content-Length, and the replica serves it (it knows only kModel).
TEST_F(ExtProcSimTest, AModelRewriteHeaderRewritesTheForwardedBody) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.headers = {{"x-llm-d-model-name-rewrite", kModel}};
  spec.body = R"({"model":"alias","messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
  auto request = DriveRequest(*stream, spec);
  ASSERT_FALSE(request.immediate.has_value()) << request.immediate->DebugString();
  ASSERT_TRUE(request.headers_reply.has_value());
  const std::string expected = fmt::format(
      R"({{"model":"{}","messages":[{{"role":"user","content":"hi"}}],"max_tokens":4}})", kModel);
  EXPECT_EQ(request.body, expected);
  auto pick = harness::ReadPick(*request.headers_reply);
  EXPECT_EQ(pick.content_length, std::to_string(expected.size()));
  ASSERT_FALSE(pick.endpoints.empty());
  harness::UpstreamResponse upstream =
      harness::ForwardToEndpoint(pick.endpoints.front(), spec.path, request.body);
  EXPECT_EQ(upstream.status, 200) << upstream.body;

  // The response goes back through the EPP in pieces cut inside the model name: the client
  // reads its own name back, and Content-Length goes (the body's length changed).
  const std::string served = fmt::format(R"("model":"{}")", kModel);
  const size_t at = upstream.body.find(served);
  ASSERT_NE(at, std::string::npos) << upstream.body;
  std::vector<std::string> chunks = {upstream.body.substr(0, at + 5),
                                     upstream.body.substr(at + 5, 12),
                                     upstream.body.substr(at + 17)};
  auto response = harness::DriveResponse(*stream, 200, upstream.content_type, chunks);
  ASSERT_TRUE(response.headers_reply.has_value());
  const auto& mutation = response.headers_reply->response_headers().response().header_mutation();
  EXPECT_THAT(mutation.remove_headers(), ::testing::ElementsAre("content-length"));
  std::string want = upstream.body;
  want.replace(at, served.size(), R"("model":"alias")");
  EXPECT_EQ(response.body, want);
  stream->CloseSend();
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_TRUE(stream->Finish().ok());
}

// Envoy walked the fallback list (the primary refused the connection) and says so in the
// response headers' metadata: the request and its load move to that endpoint (the prefix index
// follows too: PipelineTest.AnEndpointReportedAsServingTakesOverTheRequest).
TEST_F(ExtProcSimTest, TheEndpointEnvoyReportsAsServedTakesOverTheRequest) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.body = ChatBody(false, std::string(3000, 'f'));
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.headers_reply.has_value());
  auto pick = harness::ReadPick(*request.headers_reply);
  ASSERT_GE(pick.endpoints.size(), 2u);
  const std::string primary = pick.endpoints[0];
  const std::string fallback = pick.endpoints[1];
  EXPECT_EQ(pipeline_->InFlight(primary), 1);

  harness::UpstreamResponse upstream =
      harness::ForwardToEndpoint(fallback, spec.path, request.body);
  ASSERT_EQ(upstream.status, 200) << upstream.body;
  ASSERT_TRUE(stream->Send(harness::ResponseHeaders(200, upstream.content_type, false, fallback)));
  auto headers_reply = stream->Receive();
  ASSERT_TRUE(headers_reply.has_value());
  EXPECT_TRUE(headers_reply->has_response_headers());
  EXPECT_EQ(pipeline_->InFlight(primary), 0);
  EXPECT_EQ(pipeline_->InFlight(fallback), 1);
  ASSERT_TRUE(stream->Send(harness::ResponseBody(upstream.body, true)));
  auto body_reply = stream->Receive();
  ASSERT_TRUE(body_reply.has_value());
  EXPECT_EQ(body_reply->response_body().response().body_mutation().streamed_response().body(),
            upstream.body);
  stream->CloseSend();
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(pipeline_->InFlight(fallback), 0);
  EXPECT_EQ(pipeline_->SchedulerStats().in_flight, 0);
}

TEST_F(ExtProcSimTest, ConcurrentStreamsSpreadOverTheFleet) {
  std::set<std::string> all;
  for (int i = 0; i < kReplicas; ++i) all.insert(Address(i));
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        ExpectExchange(*client_, *pipeline_, i % 2 == 0, all, std::nullopt, false);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < kReplicas; ++i) EXPECT_EQ(pipeline_->InFlight(Address(i)), 0);
}

}  // namespace
}  // namespace zumik::epp::extproc

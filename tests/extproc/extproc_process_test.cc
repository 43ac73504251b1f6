// `zumik epp --listen-grpc` as a real process in front of a `zumik sim --replicas 3` process:
// the Envoy-like harness connects to the binary over loopback gRPC — plaintext, TLS with the
// EPP's generated self-signed certificate (verification skipped, as gateways are configured
// for the EPP), and TLS with a mounted certificate the client verifies against its CA — and
// asserts the wire replies, the health service, and the binary's /metrics.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/http/client.h"
#include "epp/extproc/envoy_harness.h"
#include "epp/extproc/self_signed.h"
#include "epp/extproc/server.h"
#include "epp/extproc/stream_processor.h"
#include "epp_support/epp_test_helpers.h"
#include "support/process.h"

namespace zumik::epp::extproc {
namespace {

using harness::DriveRequest;
using harness::DriveResponse;
using harness::EnvoyClient;
using harness::MutationHeader;
using harness::RequestSpec;
using HealthStatus = ::grpc::health::v1::HealthCheckResponse;
using zumik::epp_testing::MetricSum;
using zumik::testing::ChildProcess;

constexpr int kReplicas = 3;
constexpr char kModel[] = "meta-llama/Llama-3.1-8B-Instruct";

enum class Transport { kPlaintext, kSelfSignedTls, kMountedTls };

std::string TransportName(const ::testing::TestParamInfo<Transport>& info) {
  switch (info.param) {
    case Transport::kPlaintext:
      return "Plaintext";
    case Transport::kSelfSignedTls:
      return "SelfSignedTls";
    case Transport::kMountedTls:
      return "MountedTls";
  }
  return "Unknown";
}

struct EppProcess {
  std::unique_ptr<ChildProcess> child;
  int grpc_port = 0;
  int metrics_port = 0;
  int health_port = 0;  // --grpc-health-port (the TLS ones: as the chart runs it); 0 = none
};

std::string ChatBody(std::string_view content, bool stream) {
  boost::json::object message{{"role", "user"}, {"content", content}};
  boost::json::object body{{"model", kModel},
                           {"messages", boost::json::array{message}},
                           {"max_tokens", 8},
                           {"stream", stream}};
  if (stream) body["stream_options"] = boost::json::object{{"include_usage", true}};
  return boost::json::serialize(body);
}

class ExtProcProcessTest : public ::testing::TestWithParam<Transport> {
 protected:
  static void SetUpTestSuite() {
    dir_ = zumik::testing::MakeTempDir("extproc-process");
    base_port_ = zumik::testing::PickFreePortRange(kReplicas);
    sim_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{zumik::testing::ZumikBinary(), "sim", "--replicas",
                                 std::to_string(kReplicas), "--port", std::to_string(base_port_),
                                 "--host", "127.0.0.1"},
        dir_ + "/sim.log");
    for (int i = 0; i < kReplicas; ++i) {
      ASSERT_TRUE(zumik::testing::WaitForPort(base_port_ + i, std::chrono::seconds(15)))
          << sim_->ReadLog();
    }
    // The mounted certificate: the client trusts exactly it (its own CA), as a gateway does
    // when given the EPP's CA.
    auto pair = GenerateSelfSignedCertificate("epp.test");
    ASSERT_TRUE(pair.ok()) << pair.status();
    root_pem_ = pair->certificate_pem;
    std::ofstream(dir_ + "/tls.crt") << pair->certificate_pem;
    std::ofstream(dir_ + "/tls.key") << pair->private_key_pem;

    std::string endpoints;
    for (int i = 0; i < kReplicas; ++i) endpoints += (i ? "," : "") + Address(i);
    for (Transport transport :
         {Transport::kPlaintext, Transport::kSelfSignedTls, Transport::kMountedTls}) {
      EppProcess& epp = epps_[static_cast<int>(transport)];
      epp.grpc_port = zumik::testing::PickFreePort();
      epp.metrics_port = zumik::testing::PickFreePort();
      std::vector<std::string> argv = {zumik::testing::ZumikBinary(),
                                       "epp",
                                       "--endpoints",
                                       endpoints,
                                       "--listen-grpc",
                                       std::to_string(epp.grpc_port),
                                       "--metrics-port",
                                       std::to_string(epp.metrics_port),
                                       "--host",
                                       "127.0.0.1",
                                       "--scrape-interval",
                                       "20ms"};
      if (transport != Transport::kPlaintext) {
        epp.health_port = zumik::testing::PickFreePort();
        argv.insert(argv.end(),
                    {"--grpc-tls", "--grpc-health-port", std::to_string(epp.health_port)});
      }
      if (transport == Transport::kMountedTls) {
        argv.insert(argv.end(),
                    {"--grpc-cert", dir_ + "/tls.crt", "--grpc-key", dir_ + "/tls.key"});
      }
      epp.child = std::make_unique<ChildProcess>(
          argv, fmt::format("{}/epp-{}.log", dir_, static_cast<int>(transport)));
      ASSERT_TRUE(zumik::testing::WaitForPort(epp.grpc_port, std::chrono::seconds(15)))
          << epp.child->ReadLog();
      ASSERT_TRUE(zumik::testing::WaitForPort(epp.metrics_port, std::chrono::seconds(15)))
          << epp.child->ReadLog();
      if (epp.health_port > 0) {
        ASSERT_TRUE(zumik::testing::WaitForPort(epp.health_port, std::chrono::seconds(15)))
            << epp.child->ReadLog();
      }
    }
  }
  static void TearDownTestSuite() {
    for (auto& epp : epps_) epp.child.reset();
    sim_.reset();
  }

  void SetUp() override {
    const EppProcess& epp = Epp();
    ASSERT_TRUE(epp.child && epp.child->running()) << (epp.child ? epp.child->ReadLog() : "");
    std::string target = fmt::format("127.0.0.1:{}", epp.grpc_port);
    switch (GetParam()) {
      case Transport::kPlaintext:
        client_ = std::make_unique<EnvoyClient>(target, false);
        break;
      case Transport::kSelfSignedTls:
        client_ = std::make_unique<EnvoyClient>(target, true);
        break;
      case Transport::kMountedTls:
        client_ = std::make_unique<EnvoyClient>(target, true, root_pem_);
        break;
    }
  }

  EppProcess& Epp() const { return epps_[static_cast<int>(GetParam())]; }
  static std::string Address(int i) { return fmt::format("127.0.0.1:{}", base_port_ + i); }
  static std::set<std::string> Fleet() {
    std::set<std::string> fleet;
    for (int i = 0; i < kReplicas; ++i) fleet.insert(Address(i));
    return fleet;
  }
  std::string Metrics() {
    auto r = http::FetchBlocking(http::Method::get,
                                 fmt::format("http://127.0.0.1:{}/metrics", Epp().metrics_port));
    return r.ok() && r->status == 200 ? r->body : std::string();
  }

  static inline std::string dir_;
  static inline int base_port_ = 0;
  static inline std::string root_pem_;
  static inline std::unique_ptr<ChildProcess> sim_;
  static inline EppProcess epps_[3];
  std::unique_ptr<EnvoyClient> client_;
};

// One request as Envoy runs it: pick, forward to the primary, stream the answer back.
TEST_P(ExtProcProcessTest, PicksAFleetEndpointAndObservesTheResponse) {
  for (bool stream_response : {false, true}) {
    SCOPED_TRACE(stream_response ? "streaming" : "not streaming");
    double before = MetricSum(Metrics(), "llm_d_epp_request_total{");
    auto stream = client_->Open();
    RequestSpec spec;
    spec.path = "/v1/chat/completions";
    spec.headers = {{"content-type", "application/json"}};
    // Over one 62,000-byte body chunk, so the body comes back in several.
    spec.body = ChatBody(std::string(70000, 'p'), stream_response);
    spec.chunk_bytes = 8192;
    auto request = DriveRequest(*stream, spec);
    ASSERT_FALSE(request.immediate.has_value()) << request.immediate->DebugString();
    ASSERT_TRUE(request.headers_reply.has_value());

    // The primary and its fallbacks: distinct fleet members, the whole fleet of three here.
    auto pick = harness::ReadPick(*request.headers_reply);
    EXPECT_EQ(std::set<std::string>(pick.endpoints.begin(), pick.endpoints.end()), Fleet());
    EXPECT_EQ(pick.endpoints.size(), static_cast<size_t>(kReplicas));
    ASSERT_TRUE(pick.destination.has_value());
    EXPECT_EQ(pick.metadata_destination, pick.destination);
    EXPECT_TRUE(pick.clear_route_cache);
    EXPECT_EQ(pick.content_length, std::to_string(spec.body.size()));

    // The body comes back whole, in chunks of at most 62,000 bytes, the last marked.
    EXPECT_EQ(request.body, spec.body);
    ASSERT_GE(request.body_replies.size(), 2u);
    for (const auto& reply : request.body_replies) {
      EXPECT_LE(reply.request_body().response().body_mutation().streamed_response().body().size(),
                kMaxBodyChunkBytes);
    }
    EXPECT_TRUE(request.body_replies.back()
                    .request_body()
                    .response()
                    .body_mutation()
                    .streamed_response()
                    .end_of_stream());

    // Envoy forwards to the primary and streams the model server's answer back.
    auto upstream = harness::ForwardToEndpoint(pick.endpoints.front(), spec.path, request.body);
    ASSERT_EQ(upstream.status, 200) << upstream.body;
    auto response = DriveResponse(*stream, upstream.status, upstream.content_type,
                                  harness::SplitIntoChunks(upstream.body, 100));
    ASSERT_TRUE(response.headers_reply.has_value());
    EXPECT_EQ(
        MutationHeader(response.headers_reply->response_headers().response().header_mutation(),
                       "agent-execution-profile"),
        "byoc_epp");
    EXPECT_EQ(response.body, upstream.body);
    if (stream_response) {
      EXPECT_THAT(response.body, ::testing::HasSubstr("data: [DONE]"));
    }
    stream->CloseSend();
    EXPECT_FALSE(stream->Receive().has_value());
    EXPECT_TRUE(stream->Finish().ok());

    // The binary's /metrics counted it, under its model.
    std::string metrics = Metrics();
    EXPECT_EQ(MetricSum(metrics, "llm_d_epp_request_total{") - before, 1) << metrics;
    EXPECT_GE(MetricSum(metrics, fmt::format("llm_d_epp_request_total{{model_name=\"{}\"", kModel)),
              1);
  }
}

TEST_P(ExtProcProcessTest, HealthServiceReportsLivenessAndReadiness) {
  auto health = [&](const std::string& service) {
    auto status = client_->Check(service);
    return status.ok() ? static_cast<int>(*status) : -1;
  };
  EXPECT_EQ(health(""), HealthStatus::SERVING);
  EXPECT_EQ(health("liveness"), HealthStatus::SERVING);
  EXPECT_EQ(health("readiness"), HealthStatus::SERVING);
  EXPECT_EQ(health(std::string(kExtProcServiceName)), HealthStatus::SERVING);
  EXPECT_EQ(client_->Check("some.other.Service").status().code(), absl::StatusCode::kNotFound);
  if (Epp().health_port == 0) return;
  // With TLS on ext_proc, a kubelet-style plaintext probe reaches the health port.
  EnvoyClient probe(fmt::format("127.0.0.1:{}", Epp().health_port), false);
  for (const char* service : {"liveness", "readiness", kExtProcServiceName}) {
    EXPECT_EQ(probe.Check(service).value_or(HealthStatus::UNKNOWN), HealthStatus::SERVING)
        << service;
  }
}

TEST_P(ExtProcProcessTest, BodyWithoutAModelIsAnImmediate400) {
  std::string before = Metrics();
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.headers = {{"content-type", "application/json"}};
  spec.body = R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.immediate.has_value());
  EXPECT_FALSE(request.headers_reply.has_value());
  const auto& immediate = request.immediate->immediate_response();
  EXPECT_EQ(immediate.status().code(), 400);
  boost::system::error_code ec;
  auto json = boost::json::parse(immediate.body(), ec);
  ASSERT_FALSE(ec) << immediate.body();
  ASSERT_TRUE(json.is_object());
  ASSERT_TRUE(json.as_object().contains("error"));
  EXPECT_THAT(std::string(json.at("error").at("message").as_string()),
              ::testing::HasSubstr("model"));
  EXPECT_EQ(MutationHeader(immediate.headers(), "content-type"), "application/json");
  EXPECT_EQ(MutationHeader(immediate.headers(), "agent-execution-profile"), "byoc_epp");
  stream->CloseSend();
  stream->Finish();
  std::string after = Metrics();
  EXPECT_EQ(MetricSum(after, "llm_d_epp_request_error_total{") -
                MetricSum(before, "llm_d_epp_request_error_total{"),
            1);
  EXPECT_GE(MetricSum(after,
                      "llm_d_epp_request_error_total{model_name=\"\",target_model_name="
                      "\"\",error_code=\"400\"}"),
            1);
}

// Envoy resets the stream when its downstream client leaves: a request picked but never
// answered is counted as error 499 (client closed request), not as a 502 of the model server.
TEST_P(ExtProcProcessTest, AStreamResetBeforeTheResponseCountsAs499) {
  auto error_series = [](int code) {
    return fmt::format(
        "llm_d_epp_request_error_total{{model_name=\"{0}\",target_model_name=\"{0}\","
        "error_code=\"{1}\"}}",
        kModel, code);
  };
  const std::string error_499 = error_series(499);
  const std::string error_502 = error_series(502);
  const std::string metrics_before = Metrics();
  const double before = MetricSum(metrics_before, error_499);
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.headers = {{"content-type", "application/json"}};
  spec.body = ChatBody("the client leaves before any answer", false);
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.headers_reply.has_value());
  stream->Cancel();
  std::string metrics;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    metrics = Metrics();
  } while (MetricSum(metrics, error_499) == before && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(MetricSum(metrics, error_499) - before, 1) << metrics;
  EXPECT_EQ(MetricSum(metrics, error_502), MetricSum(metrics_before, error_502)) << metrics;
}

TEST_P(ExtProcProcessTest, ConcurrentStreamsAllGetAnEndpoint) {
  std::vector<std::thread> threads;
  threads.reserve(4);
  std::atomic<int> picked{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        auto stream = client_->Open();
        RequestSpec spec;
        spec.path = "/v1/completions";
        spec.body =
            fmt::format(R"({{"model":"{}","prompt":"request {}","max_tokens":2}})", kModel, i);
        auto request = DriveRequest(*stream, spec);
        if (!request.headers_reply.has_value() || request.body != spec.body) continue;
        auto pick = harness::ReadPick(*request.headers_reply);
        if (pick.endpoints.empty() || !Fleet().count(pick.endpoints.front())) continue;
        auto response = DriveResponse(*stream, 200, "application/json", {"{\"usage\":{}}"});
        stream->CloseSend();
        if (response.headers_reply.has_value() && !stream->Receive().has_value() &&
            stream->Finish().ok()) {
          picked++;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(picked.load(), 20);
}

INSTANTIATE_TEST_SUITE_P(Transports, ExtProcProcessTest,
                         ::testing::Values(Transport::kPlaintext, Transport::kSelfSignedTls,
                                           Transport::kMountedTls),
                         TransportName);

// A plaintext client cannot talk to the TLS port (and the other way round): TLS is really on.
TEST(ExtProcProcessTlsTest, PlaintextClientIsRefusedByTheTlsPort) {
  std::string dir = zumik::testing::MakeTempDir("extproc-tls-refuse");
  int grpc_port = zumik::testing::PickFreePort();
  int sim_port = zumik::testing::PickFreePort();
  ChildProcess epp(
      {zumik::testing::ZumikBinary(), "epp", "--endpoints", fmt::format("127.0.0.1:{}", sim_port),
       "--listen-grpc", std::to_string(grpc_port), "--metrics-port", "-1", "--host", "127.0.0.1",
       "--grpc-tls"},
      dir + "/epp.log");
  ASSERT_TRUE(zumik::testing::WaitForPort(grpc_port, std::chrono::seconds(15))) << epp.ReadLog();
  EnvoyClient tls(fmt::format("127.0.0.1:{}", grpc_port), true);
  EXPECT_EQ(tls.Check("liveness").value_or(HealthStatus::UNKNOWN), HealthStatus::SERVING);
  EnvoyClient plaintext(fmt::format("127.0.0.1:{}", grpc_port), false);
  EXPECT_FALSE(plaintext.Check("liveness").ok());
}

}  // namespace
}  // namespace zumik::epp::extproc

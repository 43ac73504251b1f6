// The ext_proc gRPC server end to end over loopback, driven by the Envoy-like harness against
// a fake pipeline: full exchanges, health, TLS, cancel, bad input, concurrency, shutdown.
#include "epp/extproc/server.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "epp/extproc/envoy_harness.h"
#include "epp/extproc/fake_backend.h"
#include "epp/extproc/self_signed.h"
#include "epp/extproc/stream_processor.h"

#ifdef ZUMIK_EXTPROC_HAVE_PIPELINE
#include "epp/datastore.h"
#include "epp/pipeline.h"
#endif

namespace zumik::epp::extproc {
namespace {

using harness::DriveRequest;
using harness::DriveResponse;
using harness::EnvoyClient;
using harness::MutationHeader;
using harness::RequestSpec;
using ::testing::IsEmpty;
using HealthStatus = ::grpc::health::v1::HealthCheckResponse;

// The serving status, or -1 when the Check RPC failed.
int Health(EnvoyClient& client, const std::string& service) {
  auto status = client.Check(service);
  return status.ok() ? static_cast<int>(*status) : -1;
}

// The next status a Watch stream sends, or -1 when the stream ended.
int NextStatus(grpc::ClientReader<HealthStatus>& watch) {
  HealthStatus update;
  return watch.Read(&update) ? static_cast<int>(update.status()) : -1;
}

ExtProcOptions LoopbackOptions() {
  ExtProcOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.drain_timeout = std::chrono::milliseconds(200);
  return options;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = std::make_shared<FakeBackend>();
    auto server = StartExtProcServer(LoopbackOptions(), backend_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    client_ = std::make_unique<EnvoyClient>(fmt::format("127.0.0.1:{}", server_->port()), false);
  }

  // grpc.health.v1.Health/Watch on the test's connection.
  std::unique_ptr<grpc::ClientReader<HealthStatus>> Watch(grpc::ClientContext& context,
                                                          const std::string& service) {
    if (health_ == nullptr) health_ = ::grpc::health::v1::Health::NewStub(client_->channel());
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ::grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    return health_->Watch(&context, request);
  }

  std::shared_ptr<FakeBackend> backend_;
  std::unique_ptr<ExtProcServer> server_;
  std::unique_ptr<EnvoyClient> client_;
  std::unique_ptr<::grpc::health::v1::Health::Stub> health_;
};

TEST_F(ServerTest, ServesAFullStreamingExchangeAsEnvoyDrivesIt) {
  backend_->Admit({"10.1.0.5:8000", "10.1.0.6:8000"}, {}, {});
  auto stream = client_->Open();
  RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.headers = {{"content-type", "application/json"}, {"x-request-id", "abc"}};
  spec.body = R"({"model":"llama","messages":[{"role":"user","content":")" +
              std::string(40000, 'q') + R"("}],"stream":true})";
  spec.chunk_bytes = 16384;
  auto request = DriveRequest(*stream, spec);
  ASSERT_FALSE(request.immediate.has_value());
  ASSERT_TRUE(request.headers_reply.has_value());
  const auto& common = request.headers_reply->request_headers().response();
  EXPECT_TRUE(common.clear_route_cache());
  EXPECT_EQ(MutationHeader(common.header_mutation(), "x-gateway-destination-endpoint"),
            "10.1.0.5:8000,10.1.0.6:8000");
  EXPECT_EQ(MutationHeader(common.header_mutation(), "content-length"),
            std::to_string(spec.body.size()));
  EXPECT_EQ(request.headers_reply->dynamic_metadata()
                .fields()
                .at("envoy.lb")
                .struct_value()
                .fields()
                .at("x-gateway-destination-endpoint")
                .string_value(),
            "10.1.0.5:8000,10.1.0.6:8000");
  ASSERT_EQ(request.body_replies.size(), 1u);
  EXPECT_EQ(request.body, spec.body);

  auto admits = backend_->admits();
  ASSERT_EQ(admits.size(), 1u);
  EXPECT_EQ(admits[0].path, "/v1/chat/completions");
  EXPECT_EQ(admits[0].body, spec.body);

  std::vector<std::string> sse = {"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n",
                                  "data: [DONE]\n\n"};
  auto response = DriveResponse(*stream, 200, "text/event-stream", sse);
  ASSERT_TRUE(response.headers_reply.has_value());
  EXPECT_EQ(MutationHeader(response.headers_reply->response_headers().response().header_mutation(),
                           "agent-execution-profile"),
            "byoc_epp");
  ASSERT_EQ(response.body_replies.size(), 2u);
  EXPECT_FALSE(response.body_replies[0]
                   .response_body()
                   .response()
                   .body_mutation()
                   .streamed_response()
                   .end_of_stream());
  EXPECT_TRUE(response.body_replies[1]
                  .response_body()
                  .response()
                  .body_mutation()
                  .streamed_response()
                  .end_of_stream());
  EXPECT_EQ(response.body, sse[0] + sse[1]);
  stream->CloseSend();
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_TRUE(stream->Finish().ok());

  ASSERT_TRUE(backend_->WaitDone(0));
  auto ctx = backend_->context(0);
  EXPECT_EQ(ctx.response_status, 200);
  EXPECT_EQ(ctx.content_type, "text/event-stream");
  EXPECT_EQ(ctx.response_body, sse[0] + sse[1]);
  EXPECT_EQ(ctx.done_calls, 1);
}

TEST_F(ServerTest, FourHundredKilobyteBodyComesBackInSevenChunks) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = std::string(size_t{400} * 1024, 'z');
  spec.chunk_bytes = 65536;
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.headers_reply.has_value());
  ASSERT_EQ(request.body_replies.size(), 7u);
  for (const auto& reply : request.body_replies) {
    EXPECT_LE(reply.request_body().response().body_mutation().streamed_response().body().size(),
              kMaxBodyChunkBytes);
  }
  EXPECT_EQ(request.body, spec.body);
}

// The server builds each message's replies on a per-stream arena that it resets before the
// next read: a long token stream (hundreds of messages of varying size) must come back intact.
TEST_F(ServerTest, LongStreamedResponseIsEchoedChunkByChunk) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = R"({"model":"m","prompt":"p"})";
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.headers_reply.has_value());
  EXPECT_EQ(request.body, spec.body);
  std::vector<std::string> chunks;
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    chunks.push_back(fmt::format("data: {{\"i\":{},\"pad\":\"{}\"}}\n\n", i,
                                 std::string(static_cast<size_t>(i * 37 % 5000), 'x')));
    expected += chunks.back();
  }
  auto response = DriveResponse(*stream, 200, "text/event-stream", chunks);
  ASSERT_TRUE(response.headers_reply.has_value());
  ASSERT_EQ(response.body_replies.size(), chunks.size());
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto& streamed =
        response.body_replies[i].response_body().response().body_mutation().streamed_response();
    EXPECT_EQ(streamed.body(), chunks[i]) << i;
    EXPECT_EQ(streamed.end_of_stream(), i + 1 == chunks.size()) << i;
  }
  EXPECT_EQ(response.body, expected);
  stream->CloseSend();
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerTest, SubsetHintIsHonoured) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = "{}";
  spec.subset = std::vector<std::string>{"10.9.9.9:8000"};
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.headers_reply.has_value());
  ASSERT_EQ(backend_->admits().size(), 1u);
  EXPECT_EQ(backend_->admits()[0].subset, *spec.subset);
}

TEST_F(ServerTest, RejectionIsAnImmediateResponseAndTheServerEndsTheStreamOk) {
  backend_->Reject(BackendRejection{429, R"({"error":{"message":"saturated"}})",
                                    "rejected-saturated", false, "", nullptr});
  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = "{}";
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.immediate.has_value());
  EXPECT_EQ(request.immediate->immediate_response().status().code(), 429);
  EXPECT_EQ(request.immediate->immediate_response().body(), R"({"error":{"message":"saturated"}})");
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ServerTest, ProtocolViolationEndsTheStreamWithInvalidArgument) {
  auto stream = client_->Open();
  ASSERT_TRUE(stream->Send(harness::RequestBody("{}", true)));
  EXPECT_FALSE(stream->Receive().has_value());
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("request_body"));
}

TEST_F(ServerTest, MalformedProtobufBytesFailTheStreamAndTheServerKeepsServing) {
  grpc::GenericStub generic(client_->channel());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  // A field 2 (request_headers) length-delimited header that claims more bytes than follow.
  const char garbage[] = "\x12\xff\xff\xff\x0f\x01\x02";
  grpc::Slice slice(garbage, sizeof(garbage) - 1);
  grpc::ByteBuffer buffer(&slice, 1);
  auto call =
      generic.PrepareCall(&context, "/envoy.service.ext_proc.v3.ExternalProcessor/Process", &cq);
  void* tag = nullptr;
  bool ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  call->Write(buffer, reinterpret_cast<void*>(2));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(3));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_FALSE(ok);  // no reply: the server failed the stream
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(4));
  ASSERT_TRUE(cq.Next(&tag, &ok));
  EXPECT_FALSE(status.ok());
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  EXPECT_THAT(backend_->admits(), IsEmpty());

  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = "{}";
  EXPECT_TRUE(DriveRequest(*stream, spec).headers_reply.has_value());
}

TEST_F(ServerTest, ClientCancelMidResponseCompletesTheRequest) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = "{}";
  ASSERT_TRUE(DriveRequest(*stream, spec).headers_reply.has_value());
  ASSERT_TRUE(stream->Send(harness::ResponseHeaders(200, "text/event-stream", false)));
  ASSERT_TRUE(stream->Receive().has_value());
  ASSERT_TRUE(stream->Send(harness::ResponseBody("data: {}\n\n", false)));
  ASSERT_TRUE(stream->Receive().has_value());
  stream->Cancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(backend_->WaitDone(0));
  EXPECT_EQ(backend_->context(0).done_calls, 1);
  EXPECT_FALSE(backend_->context(0).response_ended);
}

TEST_F(ServerTest, ClientCancelBeforeTheBodyEndsNeverPicks) {
  auto stream = client_->Open();
  ASSERT_TRUE(stream->Send(harness::RequestHeaders("POST", "/v1/completions", {}, false)));
  ASSERT_TRUE(stream->Send(harness::RequestBody("{\"model\":", false)));
  stream->Cancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // A later stream on the same connection still works, and the cancelled one never admitted.
  auto next = client_->Open();
  RequestSpec spec;
  spec.body = "{}";
  ASSERT_TRUE(DriveRequest(*next, spec).headers_reply.has_value());
  auto admits = backend_->admits();
  ASSERT_EQ(admits.size(), 1u);
  EXPECT_EQ(admits[0].body, "{}");
}

TEST_F(ServerTest, ConcurrentStreamsAreEachAnsweredWithTheirOwnBody) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  std::atomic<int> good{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto stream = client_->Open();
        RequestSpec spec;
        spec.body = fmt::format(R"({{"model":"m","prompt":"{}-{}"}})", t, i);
        auto request = DriveRequest(*stream, spec);
        auto response = DriveResponse(*stream, 200, "application/json", {"{\"usage\":{}}"});
        if (request.headers_reply.has_value() && request.body == spec.body &&
            response.body == "{\"usage\":{}}") {
          good++;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(good.load(), kThreads * kPerThread);
  EXPECT_EQ(backend_->admits().size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(ServerTest, HealthReportsLivenessReadinessAndTheExtProcService) {
  EXPECT_EQ(Health(*client_, ""), HealthStatus::SERVING);
  EXPECT_EQ(Health(*client_, "liveness"), HealthStatus::SERVING);
  EXPECT_EQ(Health(*client_, "readiness"), HealthStatus::SERVING);
  EXPECT_EQ(Health(*client_, kExtProcServiceName), HealthStatus::SERVING);
  EXPECT_EQ(client_->Check("some.other.Service").status().code(), absl::StatusCode::kNotFound);

  server_->SetReady(false);
  EXPECT_EQ(Health(*client_, "liveness"), HealthStatus::SERVING);
  EXPECT_EQ(Health(*client_, "readiness"), HealthStatus::NOT_SERVING);
  EXPECT_EQ(Health(*client_, kExtProcServiceName), HealthStatus::NOT_SERVING);
  server_->SetReady(true);
  EXPECT_EQ(Health(*client_, "readiness"), HealthStatus::SERVING);
}

TEST_F(ServerTest, HealthWatchStreamsEachChangeAndEndsAtShutdown) {
  grpc::ClientContext context;
  auto watch = Watch(context, "readiness");
  EXPECT_EQ(NextStatus(*watch), HealthStatus::SERVING);
  server_->SetReady(false);
  EXPECT_EQ(NextStatus(*watch), HealthStatus::NOT_SERVING);
  server_->SetReady(true);
  EXPECT_EQ(NextStatus(*watch), HealthStatus::SERVING);
  server_->Shutdown();
  EXPECT_EQ(NextStatus(*watch), HealthStatus::NOT_SERVING);
  EXPECT_EQ(NextStatus(*watch), -1);
  EXPECT_FALSE(watch->Finish().ok());
}

TEST_F(ServerTest, HealthWatchOfAnUnknownServiceSaysSo) {
  grpc::ClientContext context;
  auto watch = Watch(context, "some.other.Service");
  EXPECT_EQ(NextStatus(*watch), HealthStatus::SERVICE_UNKNOWN);
  context.TryCancel();
  EXPECT_EQ(NextStatus(*watch), -1);
  EXPECT_EQ(watch->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ServerTest, ShutdownEndsOpenStreamsAndCompletesTheirRequests) {
  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = "{}";
  ASSERT_TRUE(DriveRequest(*stream, spec).headers_reply.has_value());
  server_->Shutdown();
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_FALSE(stream->Finish().ok());
  EXPECT_EQ(backend_->context(0).done_calls, 1);
  server_->Shutdown();  // idempotent
}

// --- The admission queue: a saturated request waits on an alarm, not on the serving thread.

// Waits (up to 10 s) until `count` requests hold a place in the fake backend's queue.
bool WaitQueued(const FakeBackend& backend, int count) {
  for (int i = 0; i < 10000 && backend.queued() != count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return backend.queued() == count;
}

TEST_F(ServerTest, QueuedRequestDoesNotStallOtherStreamsAndIsAnsweredOnceAdmitted) {
  backend_->SetQueue(4, std::chrono::seconds(30));
  backend_->SetSaturated("/v1/slow", true);
  harness::RequestOutcome waiting;
  auto slow_stream = client_->Open();
  std::thread slow([&] {
    RequestSpec spec;
    spec.path = "/v1/slow";
    spec.body = R"({"slow":true})";
    waiting = DriveRequest(*slow_stream, spec);
  });
  ASSERT_TRUE(WaitQueued(*backend_, 1));
  // The server has one serving thread (the default): this stream is served meanwhile.
  auto fast_stream = client_->Open();
  RequestSpec fast;
  fast.body = R"({"fast":true})";
  auto answered = DriveRequest(*fast_stream, fast);
  ASSERT_TRUE(answered.headers_reply.has_value());
  EXPECT_EQ(answered.body, fast.body);
  EXPECT_EQ(backend_->queued(), 1);

  backend_->SetSaturated("/v1/slow", false);
  slow.join();
  ASSERT_TRUE(waiting.headers_reply.has_value());
  EXPECT_EQ(waiting.body, R"({"slow":true})");
  EXPECT_EQ(backend_->queued(), 0);
  EXPECT_EQ(backend_->queue_entries(), 1);
}

TEST_F(ServerTest, QueuedRequestGetsTheTimeoutRejectionAfterTheQueueTtl) {
  backend_->SetQueue(4, std::chrono::milliseconds(30));
  backend_->SetSaturated("/v1/completions", true);
  auto stream = client_->Open();
  RequestSpec spec;
  spec.body = "{}";
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.immediate.has_value());
  EXPECT_EQ(request.immediate->immediate_response().status().code(), 429);
  EXPECT_EQ(MutationHeader(request.immediate->immediate_response().headers(),
                           "x-llm-d-request-dropped-reason"),
            "rejected-ttl-expired");
  EXPECT_FALSE(stream->Receive().has_value());
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(backend_->queued(), 0);
}

// Envoy cancels the stream when its client goes away. A queued request then leaves the queue
// at once (it is not admitted later, nor held until its TTL), so its place goes to the next.
TEST_F(ServerTest, CancelledQueuedRequestGivesUpItsPlaceAtOnce) {
  backend_->SetQueue(1, std::chrono::hours(1));
  backend_->SetSaturated("/v1/completions", true);
  auto send_request = [](harness::EnvoyStream& stream) {
    return stream.Send(harness::RequestHeaders("POST", "/v1/completions", {}, false)) &&
           stream.Send(harness::RequestBody("{}", true));
  };
  auto first = client_->Open();
  ASSERT_TRUE(send_request(*first));
  ASSERT_TRUE(WaitQueued(*backend_, 1));
  first->Cancel();
  EXPECT_EQ(first->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitQueued(*backend_, 0));

  // The only place is free again: the next saturated request waits instead of a 429.
  auto second = client_->Open();
  ASSERT_TRUE(send_request(*second));
  ASSERT_TRUE(WaitQueued(*backend_, 1));
  EXPECT_EQ(backend_->queue_entries(), 2);
  second->Cancel();
  EXPECT_EQ(second->Finish().error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(WaitQueued(*backend_, 0));
}

TEST_F(ServerTest, ShutdownAnswersQueuedRequestsWithoutWaitingForTheirTtl) {
  backend_->SetQueue(4, std::chrono::hours(1));
  backend_->SetSaturated("/v1/completions", true);
  harness::RequestOutcome waiting;
  auto stream = client_->Open();
  std::thread client([&] {
    RequestSpec spec;
    spec.body = "{}";
    waiting = DriveRequest(*stream, spec);
  });
  ASSERT_TRUE(WaitQueued(*backend_, 1));
  server_->Shutdown();
  client.join();
  ASSERT_TRUE(waiting.immediate.has_value());
  EXPECT_EQ(waiting.immediate->immediate_response().status().code(), 429);
  EXPECT_EQ(backend_->queued(), 0);
}

#ifdef ZUMIK_EXTPROC_HAVE_PIPELINE
// With the real pipeline's bounded queue on (`--max-queued`), a sheddable request refused for
// saturation waits without blocking the serving thread: a normal request on another stream is
// picked meanwhile, and the sheddable one gets the pipeline's 429 when its queue_ttl ends.
TEST(ServerPipelineQueueTest, SheddableRequestWaitsWhileOthersArePicked) {
  Datastore datastore;
  std::vector<EndpointSpec> specs(1);
  specs[0].address = "10.0.0.1:8000";
  datastore.SetEndpoints(specs);  // never scraped: saturated for sheddable requests
  PipelineOptions pipeline_options;
  pipeline_options.max_queued = 4;
  pipeline_options.queue_ttl = std::chrono::milliseconds(500);
  auto pipeline = Pipeline::Create(pipeline_options, datastore);
  ASSERT_TRUE(pipeline.ok()) << pipeline.status();
  std::shared_ptr<Pipeline> shared = std::move(*pipeline);
  auto server = StartExtProcServer(LoopbackOptions(), shared);
  ASSERT_TRUE(server.ok()) << server.status();
  EnvoyClient client(fmt::format("127.0.0.1:{}", (*server)->port()), false);

  harness::RequestOutcome sheddable;
  auto sheddable_stream = client.Open();
  std::thread waiting([&] {
    RequestSpec spec;
    spec.headers = {{"x-llm-d-inference-objective", "-1"}};
    spec.body = R"({"model":"m","prompt":"x"})";
    sheddable = DriveRequest(*sheddable_stream, spec);
  });
  for (int i = 0; i < 10000 && shared->queued() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_EQ(shared->queued(), 1);
  auto stream = client.Open();
  RequestSpec normal;
  normal.body = R"({"model":"m","prompt":"y"})";
  auto picked = DriveRequest(*stream, normal);
  ASSERT_TRUE(picked.headers_reply.has_value());
  EXPECT_EQ(harness::ReadPick(*picked.headers_reply).destination, "10.0.0.1:8000");
  EXPECT_EQ(shared->queued(), 1);  // still waiting

  waiting.join();
  ASSERT_TRUE(sheddable.immediate.has_value());
  EXPECT_EQ(sheddable.immediate->immediate_response().status().code(), 429);
  EXPECT_EQ(MutationHeader(sheddable.immediate->immediate_response().headers(),
                           "x-llm-d-request-dropped-reason"),
            "rejected-ttl-expired");
  EXPECT_EQ(shared->queued(), 0);
}
#endif

TEST(ServerTlsTest, SelfSignedCertificateServesTls) {
  auto backend = std::make_shared<FakeBackend>();
  ExtProcOptions options = LoopbackOptions();
  options.tls.enabled = true;
  auto server = StartExtProcServer(options, backend);
  ASSERT_TRUE(server.ok()) << server.status();
  EnvoyClient client(fmt::format("127.0.0.1:{}", (*server)->port()), /*tls=*/true);
  auto stream = client.Open();
  RequestSpec spec;
  spec.body = "{}";
  auto request = DriveRequest(*stream, spec);
  ASSERT_TRUE(request.headers_reply.has_value());
  EXPECT_EQ(Health(client, kExtProcServiceName), HealthStatus::SERVING);

  EnvoyClient plaintext(fmt::format("127.0.0.1:{}", (*server)->port()), /*tls=*/false);
  EXPECT_FALSE(plaintext.Check("").ok());
}

// TLS on ext_proc, the health service alone in plaintext on its own port (what Kubernetes'
// gRPC probes can reach), kept in step with the ext_proc port's.
TEST(ServerTlsTest, APlaintextHealthPortServesHealthOnlyAndFollowsReadiness) {
  auto backend = std::make_shared<FakeBackend>();
  ExtProcOptions options = LoopbackOptions();
  options.tls.enabled = true;
  options.health_port = 0;
  auto server = StartExtProcServer(options, backend);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->health_port(), 0);
  EXPECT_NE((*server)->health_port(), (*server)->port());
  EnvoyClient probe(fmt::format("127.0.0.1:{}", (*server)->health_port()), /*tls=*/false);
  EnvoyClient envoy(fmt::format("127.0.0.1:{}", (*server)->port()), /*tls=*/true);
  for (const char* service : {"", "liveness", "readiness", kExtProcServiceName}) {
    EXPECT_EQ(Health(probe, service), HealthStatus::SERVING) << service;
  }
  EXPECT_EQ(probe.Check("some.other.Service").status().code(), absl::StatusCode::kNotFound);

  (*server)->SetReady(false);
  EXPECT_EQ(Health(probe, "readiness"), HealthStatus::NOT_SERVING);
  EXPECT_EQ(Health(envoy, "readiness"), HealthStatus::NOT_SERVING);
  EXPECT_EQ(Health(probe, "liveness"), HealthStatus::SERVING);
  (*server)->SetReady(true);
  EXPECT_EQ(Health(probe, kExtProcServiceName), HealthStatus::SERVING);

  // No ext_proc on the plaintext port.
  auto stream = probe.Open();
  RequestSpec spec;
  spec.body = "{}";
  auto request = DriveRequest(*stream, spec);
  EXPECT_FALSE(request.headers_reply.has_value());
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(backend->admits().empty());

  (*server)->Shutdown();
  EXPECT_FALSE(probe.Check("liveness").ok());
}

TEST(ServerTlsTest, WithoutAHealthPortThereIsNone) {
  auto server = StartExtProcServer(LoopbackOptions(), std::make_shared<FakeBackend>());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ((*server)->health_port(), -1);
}

TEST(ServerTlsTest, AHealthPortInUseIsAClearError) {
  auto first = StartExtProcServer(LoopbackOptions(), std::make_shared<FakeBackend>());
  ASSERT_TRUE(first.ok()) << first.status();
  ExtProcOptions options = LoopbackOptions();
  options.health_port = (*first)->port();  // taken
  auto second = StartExtProcServer(options, std::make_shared<FakeBackend>());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()), ::testing::HasSubstr("gRPC health"));
}

TEST(ServerTlsTest, MountedCertificateAndKeyAreServedAndVerifiable) {
  auto pair = GenerateSelfSignedCertificate("epp.test");
  ASSERT_TRUE(pair.ok()) << pair.status();
  std::string dir = ::testing::TempDir();
  std::string cert_file = dir + "/extproc_tls.crt";
  std::string key_file = dir + "/extproc_tls.key";
  std::ofstream(cert_file) << pair->certificate_pem;
  std::ofstream(key_file) << pair->private_key_pem;
  ExtProcOptions options = LoopbackOptions();
  options.tls = {true, cert_file, key_file};
  auto server = StartExtProcServer(options, std::make_shared<FakeBackend>());
  ASSERT_TRUE(server.ok()) << server.status();
  EnvoyClient client(fmt::format("127.0.0.1:{}", (*server)->port()), true, pair->certificate_pem);
  EXPECT_EQ(Health(client, "liveness"), HealthStatus::SERVING);
  std::remove(cert_file.c_str());
  std::remove(key_file.c_str());
}

TEST(ServerStartTest, ReportsUnreadableCertificateAndHalfConfiguredTls) {
  ExtProcOptions options = LoopbackOptions();
  options.tls = {true, "/nonexistent/tls.crt", "/nonexistent/tls.key"};
  auto server = StartExtProcServer(options, std::make_shared<FakeBackend>());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(server.status().message()), ::testing::HasSubstr("/nonexistent/tls.crt"));
  options.tls = {true, "/some/tls.crt", ""};
  EXPECT_EQ(StartExtProcServer(options, std::make_shared<FakeBackend>()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ServerStartTest, PortInUseIsUnavailable) {
  auto first = StartExtProcServer(LoopbackOptions(), std::make_shared<FakeBackend>());
  ASSERT_TRUE(first.ok());
  ExtProcOptions options = LoopbackOptions();
  options.port = (*first)->port();
  auto second = StartExtProcServer(options, std::make_shared<FakeBackend>());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace zumik::epp::extproc

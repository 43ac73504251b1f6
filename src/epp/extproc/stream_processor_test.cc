// StreamProcessor: the ext_proc protocol, message by message, against a fake pipeline.
#include "epp/extproc/stream_processor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "epp/extproc/envoy_harness.h"
#include "epp/extproc/fake_backend.h"

namespace zumik::epp::extproc {
namespace {

using harness::MutationHeader;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ReplyList = std::vector<ext_proc_pb::ProcessingResponse>;

class StreamProcessorTest : public ::testing::Test {
 protected:
  ReplyList Send(const ext_proc_pb::ProcessingRequest& request) {
    ReplyList out;
    absl::Status status = processor_->Handle(request, out);
    EXPECT_TRUE(status.ok()) << status;
    return out;
  }
  absl::Status SendExpectingError(const ext_proc_pb::ProcessingRequest& request) {
    ReplyList out;
    absl::Status status = processor_->Handle(request, out);
    EXPECT_THAT(out, IsEmpty());
    return status;
  }
  // Headers + body (one chunk, end_of_stream) of a chat request; returns the replies.
  // RetryAdmit / QueueTimedOut, replies copied out.
  ReplyList Retry() {
    Replies out;
    processor_->RetryAdmit(out);
    return ReplyList(out.begin(), out.end());
  }
  ReplyList TimeOut() {
    Replies out;
    processor_->QueueTimedOut(out);
    return ReplyList(out.begin(), out.end());
  }
  ReplyList SendRequest(std::string_view body) {
    EXPECT_THAT(Send(harness::RequestHeaders("POST", "/v1/chat/completions", {}, false)),
                IsEmpty());
    return Send(harness::RequestBody(body, true));
  }
  static std::string LbMetadata(const ext_proc_pb::ProcessingResponse& reply) {
    const auto& fields = reply.dynamic_metadata().fields();
    auto ns = fields.find("envoy.lb");
    if (ns == fields.end()) return "<no envoy.lb>";
    auto key = ns->second.struct_value().fields().find("x-gateway-destination-endpoint");
    if (key == ns->second.struct_value().fields().end()) return "<no key>";
    return key->second.string_value();
  }

  FakeBackend backend_;
  std::unique_ptr<StreamProcessor> processor_ = std::make_unique<StreamProcessor>(backend_);
};

// The server's path: replies built on a protobuf Arena (Handle's Replies overload) are the
// same bytes as the heap-built ones, through a whole exchange (pick, body echo, response).
TEST_F(StreamProcessorTest, RepliesBuiltOnAnArenaMatchTheHeapOnes) {
  backend_.Admit({"10.0.0.7:8000", "10.0.0.8:8000"}, {{"X-Session", "s1"}},
                 {{"X-Served-By", "r1"}});
  std::vector<ext_proc_pb::ProcessingRequest> exchange = {
      harness::RequestHeaders("POST", "/v1/chat/completions", {{"content-length", "5000"}}, false),
      harness::RequestBody(std::string(5000, 'b'), true),
      harness::ResponseHeaders(200, "text/event-stream", false),
      harness::ResponseBody("data: a\n\n", false),
      harness::ResponseBody("data: [DONE]\n\n", true),
  };
  StreamProcessor on_arena(backend_);
  for (const auto& request : exchange) {
    google::protobuf::Arena arena;
    auto* replies = google::protobuf::Arena::CreateMessage<Replies>(&arena);
    ASSERT_TRUE(on_arena.Handle(request, *replies).ok());
    ReplyList expected = Send(request);
    ASSERT_EQ(replies->size(), static_cast<int>(expected.size()));
    for (int i = 0; i < replies->size(); ++i) {
      EXPECT_EQ((*replies)[i].DebugString(), expected[static_cast<size_t>(i)].DebugString());
    }
  }
  ASSERT_EQ(backend_.admits().size(), 2u);
}

TEST_F(StreamProcessorTest, BuffersBodyUntilEndOfStreamThenAnswersHeadersAndBody) {
  backend_.Admit({"10.0.0.7:8000"});
  std::string body = R"({"model":"m","prompt":"hello"})";
  EXPECT_THAT(
      Send(harness::RequestHeaders("POST", "/v1/completions", {{"X-Request-Id", "r1"}}, false)),
      IsEmpty());
  EXPECT_THAT(Send(harness::RequestBody(body.substr(0, 10), false)), IsEmpty());
  ReplyList replies = Send(harness::RequestBody(body.substr(10), true));
  ASSERT_EQ(replies.size(), 2u);

  const auto& headers = replies[0];
  ASSERT_TRUE(headers.has_request_headers());
  const auto& common = headers.request_headers().response();
  EXPECT_EQ(common.status(), ext_proc_pb::CommonResponse::CONTINUE);
  EXPECT_TRUE(common.clear_route_cache());
  EXPECT_FALSE(common.has_body_mutation());
  ASSERT_EQ(common.header_mutation().set_headers_size(), 2);
  EXPECT_EQ(common.header_mutation().set_headers(0).header().key(),
            "x-gateway-destination-endpoint");
  EXPECT_EQ(common.header_mutation().set_headers(0).header().raw_value(), "10.0.0.7:8000");
  EXPECT_EQ(common.header_mutation().set_headers(0).header().value(), "");
  // Only `header` is set: no append / append_action / keep_empty_value on the wire.
  for (const auto& option : common.header_mutation().set_headers()) {
    envoy::config::core::v3::HeaderValueOption only_header;
    *only_header.mutable_header() = option.header();
    EXPECT_EQ(option.SerializeAsString(), only_header.SerializeAsString());
  }
  EXPECT_EQ(common.header_mutation().set_headers(1).header().key(), "content-length");
  EXPECT_EQ(common.header_mutation().set_headers(1).header().raw_value(),
            std::to_string(body.size()));
  EXPECT_THAT(common.header_mutation().remove_headers(), IsEmpty());
  EXPECT_EQ(LbMetadata(headers), "10.0.0.7:8000");
  EXPECT_EQ(headers.dynamic_metadata().fields_size(), 1);

  ASSERT_TRUE(replies[1].has_request_body());
  const auto& mutation = replies[1].request_body().response().body_mutation();
  ASSERT_TRUE(mutation.has_streamed_response());
  EXPECT_EQ(mutation.streamed_response().body(), body);
  EXPECT_TRUE(mutation.streamed_response().end_of_stream());
  EXPECT_FALSE(replies[1].has_dynamic_metadata());
  EXPECT_FALSE(replies[1].request_body().response().clear_route_cache());

  auto admits = backend_.admits();
  ASSERT_EQ(admits.size(), 1u);
  EXPECT_EQ(admits[0].path, "/v1/completions");
  EXPECT_EQ(admits[0].body, body);
  EXPECT_THAT(admits[0].subset, IsEmpty());
  EXPECT_THAT(admits[0].headers,
              ::testing::Contains(Pair("x-request-id", "r1")));  // names lower-cased
  EXPECT_FALSE(processor_->finished());
}

TEST_F(StreamProcessorTest, DestinationCarriesFallbacksIdenticallyInHeaderAndMetadata) {
  backend_.Admit({"10.0.0.1:8000", "10.0.0.2:8000", "[fd00::3]:8000"});
  ReplyList replies = SendRequest(R"({"model":"m"})");
  ASSERT_GE(replies.size(), 1u);
  auto header = MutationHeader(replies[0].request_headers().response().header_mutation(),
                               "x-gateway-destination-endpoint");
  EXPECT_EQ(header, "10.0.0.1:8000,10.0.0.2:8000,[fd00::3]:8000");
  EXPECT_EQ(LbMetadata(replies[0]), *header);
}

TEST_F(StreamProcessorTest, LargeBodyIsEchoedInChunksOfAtMost62000Bytes) {
  std::string body(150000, 'x');
  ReplyList replies = SendRequest(body);
  ASSERT_EQ(replies.size(), 4u);
  std::vector<size_t> sizes;
  std::string echoed;
  for (size_t i = 1; i < replies.size(); ++i) {
    const auto& streamed = replies[i].request_body().response().body_mutation().streamed_response();
    sizes.push_back(streamed.body().size());
    echoed += streamed.body();
    EXPECT_EQ(streamed.end_of_stream(), i + 1 == replies.size()) << i;
  }
  EXPECT_THAT(sizes, ElementsAre(62000, 62000, 26000));
  EXPECT_EQ(echoed, body);
  EXPECT_EQ(
      MutationHeader(replies[0].request_headers().response().header_mutation(), "content-length"),
      "150000");
}

TEST_F(StreamProcessorTest, EmptyBodyIsOneEmptyEndOfStreamChunkWithoutContentLength) {
  ReplyList replies = SendRequest("");
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(
      MutationHeader(replies[0].request_headers().response().header_mutation(), "content-length"),
      std::nullopt);
  const auto& streamed = replies[1].request_body().response().body_mutation().streamed_response();
  EXPECT_EQ(streamed.body(), "");
  EXPECT_TRUE(streamed.end_of_stream());
}

TEST_F(StreamProcessorTest, BodilessRequestIsAnsweredOnHeaders) {
  ReplyList replies = Send(harness::RequestHeaders("GET", "/v1/models", {}, true));
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_request_headers());
  EXPECT_TRUE(replies[0].request_headers().response().clear_route_cache());
  EXPECT_EQ(replies[0].request_headers().response().header_mutation().set_headers_size(), 1);
  EXPECT_EQ(LbMetadata(replies[0]), "10.0.0.1:8000");
  ASSERT_EQ(backend_.admits().size(), 1u);
  EXPECT_EQ(backend_.admits()[0].path, "/v1/models");
  EXPECT_EQ(backend_.admits()[0].body, "");
}

TEST_F(StreamProcessorTest, SubsetHintFromHeadersOrBodyMetadataRestrictsThePick) {
  std::vector<std::string> subset = {"10.0.0.2:8000", "10.0.0.3:8000"};
  Send(harness::RequestHeaders("POST", "/v1/completions", {}, false, subset));
  Send(harness::RequestBody("{}", true));
  ASSERT_EQ(backend_.admits().size(), 1u);
  EXPECT_EQ(backend_.admits()[0].subset, subset);

  StreamProcessor second(backend_);
  ReplyList out;
  ASSERT_TRUE(
      second.Handle(harness::RequestHeaders("POST", "/v1/completions", {}, false), out).ok());
  ASSERT_TRUE(second.Handle(harness::RequestBody("{}", true, subset), out).ok());
  ASSERT_EQ(backend_.admits().size(), 2u);
  EXPECT_EQ(backend_.admits()[1].subset, subset);
}

TEST_F(StreamProcessorTest, SubsetHintAsOneCommaSeparatedStringIsAccepted) {
  auto headers = harness::RequestHeaders("POST", "/v1/completions", {}, false);
  (*(*headers.mutable_metadata_context()->mutable_filter_metadata())["envoy.lb.subset_hint"]
        .mutable_fields())["x-gateway-destination-endpoint-subset"]
      .set_string_value("10.0.0.2:8000, 10.0.0.3:8000");
  Send(headers);
  Send(harness::RequestBody("{}", true));
  ASSERT_EQ(backend_.admits().size(), 1u);
  EXPECT_THAT(backend_.admits()[0].subset, ElementsAre("10.0.0.2:8000", "10.0.0.3:8000"));
}

TEST_F(StreamProcessorTest, EmptySubsetHintIsAnswered503WithoutAsking) {
  Send(harness::RequestHeaders("POST", "/v1/completions", {}, false, std::vector<std::string>{}));
  ReplyList replies = Send(harness::RequestBody("{}", true));
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_immediate_response());
  EXPECT_EQ(replies[0].immediate_response().status().code(), 503);
  EXPECT_EQ(
      MutationHeader(replies[0].immediate_response().headers(), "x-llm-d-request-dropped-reason"),
      "rejected-no-endpoints");
  EXPECT_THAT(replies[0].immediate_response().body(), ::testing::HasSubstr("\"code\":503"));
  EXPECT_THAT(backend_.admits(), IsEmpty());
  EXPECT_TRUE(processor_->finished());
}

struct RejectionCase {
  int status;
  std::string dropped_reason;
};

class RejectionTest : public StreamProcessorTest,
                      public ::testing::WithParamInterface<RejectionCase> {};

TEST_P(RejectionTest, BecomesImmediateResponseWithTheJsonBody) {
  const RejectionCase& c = GetParam();
  std::string json = R"({"error":{"message":"nope","type":"t","param":null,"code":)" +
                     std::to_string(c.status) + "}}";
  backend_.Reject(BackendRejection{c.status, json, c.dropped_reason, false, "", nullptr});
  ReplyList replies = SendRequest(R"({"model":"m"})");
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_immediate_response());
  const auto& immediate = replies[0].immediate_response();
  EXPECT_EQ(static_cast<int>(immediate.status().code()), c.status);
  EXPECT_EQ(immediate.body(), json);
  EXPECT_EQ(MutationHeader(immediate.headers(), "content-type"), "application/json");
  EXPECT_EQ(MutationHeader(immediate.headers(), "agent-execution-profile"), "byoc_epp");
  EXPECT_EQ(MutationHeader(immediate.headers(), "x-llm-d-request-dropped-reason"),
            c.dropped_reason.empty() ? std::nullopt : std::optional(c.dropped_reason));
  EXPECT_FALSE(immediate.has_grpc_status());
  EXPECT_EQ(immediate.details(), "zumik_epp_" + std::to_string(c.status));
  EXPECT_FALSE(replies[0].has_dynamic_metadata());
  EXPECT_TRUE(processor_->finished());
  EXPECT_EQ(backend_.contexts(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Statuses, RejectionTest,
                         ::testing::Values(RejectionCase{400, ""},
                                           RejectionCase{429, "rejected-saturated"},
                                           RejectionCase{503, "rejected-no-endpoints"}));

TEST_F(StreamProcessorTest, OversizedBodyIs413WithoutAsking) {
  backend_.set_max_body_bytes(100);
  Send(harness::RequestHeaders("POST", "/v1/completions", {{"content-length", "120"}}, false));
  EXPECT_THAT(Send(harness::RequestBody(std::string(60, 'a'), false)), IsEmpty());
  ReplyList replies = Send(harness::RequestBody(std::string(60, 'a'), true));
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_immediate_response());
  EXPECT_EQ(replies[0].immediate_response().status().code(), 413);
  EXPECT_THAT(replies[0].immediate_response().body(),
              ::testing::HasSubstr("request body exceeds 100 bytes"));
  EXPECT_THAT(backend_.admits(), IsEmpty());
  EXPECT_TRUE(processor_->finished());
  ReplyList out;
  EXPECT_EQ(processor_->Handle(harness::RequestBody("x", true), out).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(StreamProcessorTest, AdmissionWithoutEndpointsIs503AndCompletesTheContext) {
  backend_.Admit({});
  ReplyList replies = SendRequest("{}");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].immediate_response().status().code(), 503);
  EXPECT_EQ(backend_.context(0).done_calls, 1);
}

TEST_F(StreamProcessorTest, UpstreamHeadersFromTheAdmissionAreSetOnTheRequest) {
  backend_.Admit({"10.0.0.1:8000"}, {{"X-Request-Id", "generated"}}, {{"x-session-token", "s"}});
  ReplyList replies = SendRequest("{}");
  ASSERT_GE(replies.size(), 1u);
  const auto& mutation = replies[0].request_headers().response().header_mutation();
  EXPECT_EQ(MutationHeader(mutation, "x-request-id"), "generated");
  ReplyList response = Send(harness::ResponseHeaders(200, "application/json", false));
  ASSERT_EQ(response.size(), 1u);
  EXPECT_EQ(MutationHeader(response[0].response_headers().response().header_mutation(),
                           "x-session-token"),
            "s");
}

TEST_F(StreamProcessorTest, ResponseHeadersGetTheProfileHeaderAndReportStatus) {
  backend_.set_profile_header("byoc_epp_test");
  SendRequest("{}");
  ReplyList replies =
      Send(harness::ResponseHeaders(429, "text/event-stream; charset=utf-8", false));
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_response_headers());
  const auto& common = replies[0].response_headers().response();
  EXPECT_FALSE(common.clear_route_cache());
  EXPECT_FALSE(common.has_body_mutation());
  ASSERT_EQ(common.header_mutation().set_headers_size(), 1);
  EXPECT_EQ(common.header_mutation().set_headers(0).header().key(), "agent-execution-profile");
  EXPECT_EQ(common.header_mutation().set_headers(0).header().raw_value(), "byoc_epp_test");
  EXPECT_FALSE(replies[0].has_dynamic_metadata());
  EXPECT_EQ(backend_.context(0).response_status, 429);
  EXPECT_EQ(backend_.context(0).content_type, "text/event-stream; charset=utf-8");
  EXPECT_EQ(backend_.context(0).done_calls, 0);
}

TEST_F(StreamProcessorTest, TheServedEndpointInTheResponseMetadataReachesTheBackend) {
  backend_.Admit({"10.0.0.7:8000", "10.0.0.9:80"});
  SendRequest("{}");
  ReplyList replies = Send(harness::ResponseHeaders(200, "application/json", false, "10.0.0.9:80"));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].has_response_headers());
  EXPECT_EQ(backend_.context(0).served_by, "10.0.0.9:80");
  EXPECT_EQ(backend_.context(0).response_status, 200);

  // Without the metadata, with another namespace, an empty value or a non-string value:
  // nothing is reported.
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant);
    processor_ = std::make_unique<StreamProcessor>(backend_);
    SendRequest("{}");
    auto headers = harness::ResponseHeaders(200, "application/json", false);
    auto& namespaces = *headers.mutable_metadata_context()->mutable_filter_metadata();
    if (variant == 1) {
      (*namespaces["envoy.lb.other"].mutable_fields())[std::string(kServedKey)].set_string_value(
          "10.0.0.9:80");
    } else if (variant == 2) {
      (*namespaces[std::string(kLbMetadataNamespace)].mutable_fields())[std::string(kServedKey)]
          .set_string_value("");
    } else if (variant == 3) {
      (*namespaces[std::string(kLbMetadataNamespace)].mutable_fields())[std::string(kServedKey)]
          .set_number_value(1);
    }
    Send(headers);
    EXPECT_EQ(backend_.context(backend_.admits().size() - 1).served_by, "");
  }
}

TEST_F(StreamProcessorTest, ResponseBodyStreamsThroughAndCompletesOnce) {
  SendRequest("{}");
  Send(harness::ResponseHeaders(200, "text/event-stream", false));
  std::vector<std::string> chunks = {"data: {\"a\":1}\n\n", std::string(70000, 'b'),
                                     "data: [DONE]\n\n"};
  std::string echoed;
  for (size_t i = 0; i < chunks.size(); ++i) {
    bool last = i + 1 == chunks.size();
    ReplyList replies = Send(harness::ResponseBody(chunks[i], last));
    ASSERT_EQ(replies.size(), chunks[i].size() > 62000 ? 2u : 1u);
    for (size_t k = 0; k < replies.size(); ++k) {
      ASSERT_TRUE(replies[k].has_response_body());
      const auto& s = replies[k].response_body().response().body_mutation().streamed_response();
      EXPECT_LE(s.body().size(), kMaxBodyChunkBytes);
      EXPECT_EQ(s.end_of_stream(), last && k + 1 == replies.size());
      echoed += s.body();
    }
    EXPECT_EQ(backend_.context(0).done_calls, last ? 1 : 0);
  }
  EXPECT_EQ(echoed, chunks[0] + chunks[1] + chunks[2]);
  EXPECT_EQ(backend_.context(0).response_body, echoed);
  EXPECT_TRUE(backend_.context(0).response_ended);
  processor_.reset();
  EXPECT_EQ(backend_.context(0).done_calls, 1);  // not again on destruction
}

TEST_F(StreamProcessorTest, ResponseHeadersWithEndOfStreamCompleteTheRequest) {
  SendRequest("{}");
  Send(harness::ResponseHeaders(204, "", true));
  EXPECT_EQ(backend_.context(0).response_status, 204);
  EXPECT_TRUE(backend_.context(0).response_ended);
  EXPECT_EQ(backend_.context(0).done_calls, 1);
}

TEST_F(StreamProcessorTest, CancelAfterThePickCompletesTheRequestOnce) {
  SendRequest("{}");
  Send(harness::ResponseHeaders(200, "text/event-stream", false));
  Send(harness::ResponseBody("data: x\n\n", false));
  processor_->Abort();
  EXPECT_EQ(backend_.context(0).done_calls, 1);
  EXPECT_EQ(backend_.context(0).peer_gone_calls, 1);  // counted as the client's leaving
  processor_.reset();
  EXPECT_EQ(backend_.context(0).done_calls, 1);
  EXPECT_EQ(backend_.context(0).peer_gone_calls, 1);
}

TEST_F(StreamProcessorTest, AStreamEndingAfterACompleteExchangeIsNoPeerGone) {
  SendRequest("{}");
  Send(harness::ResponseHeaders(200, "application/json", false));
  Send(harness::ResponseBody("{}", true));
  EXPECT_EQ(backend_.context(0).done_calls, 1);
  processor_->Abort();  // the half-close that follows
  processor_.reset();
  EXPECT_EQ(backend_.context(0).done_calls, 1);
  EXPECT_EQ(backend_.context(0).peer_gone_calls, 0);
}

TEST_F(StreamProcessorTest, TrailersEndTheRequestBody) {
  Send(harness::RequestHeaders("POST", "/v1/completions", {}, false));
  Send(harness::RequestBody("{\"model\":", false));
  Send(harness::RequestBody("\"m\"}", false));
  ReplyList replies = Send(harness::RequestTrailers());
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_TRUE(replies[0].has_request_headers());
  EXPECT_EQ(replies[1].request_body().response().body_mutation().streamed_response().body(),
            "{\"model\":\"m\"}");
  EXPECT_TRUE(
      replies[1].request_body().response().body_mutation().streamed_response().end_of_stream());
  ASSERT_TRUE(replies[2].has_request_trailers());
  EXPECT_FALSE(replies[2].request_trailers().has_header_mutation());
}

TEST_F(StreamProcessorTest, ResponseTrailersAreAnsweredAndCompleteTheRequest) {
  SendRequest("{}");
  Send(harness::ResponseHeaders(200, "application/grpc", false));
  Send(harness::ResponseBody("abc", false));
  ReplyList replies = Send(harness::ResponseTrailers());
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_response_trailers());
  EXPECT_TRUE(backend_.context(0).response_ended);
  EXPECT_EQ(backend_.context(0).done_calls, 1);
}

// A backend that rewrites the response (the model name written back): Content-Length goes from
// the response headers, the rewritten chunks are what Envoy gets, and bytes held back at the
// last chunk go out before the trailers' reply.
TEST_F(StreamProcessorTest, ARewrittenResponseDropsContentLengthAndFlushesBeforeTrailers) {
  backend_.set_rewrite_responses(true);
  SendRequest("{}");
  ReplyList headers = Send(harness::ResponseHeaders(200, "application/json", false));
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_THAT(headers[0].response_headers().response().header_mutation().remove_headers(),
              ElementsAre("content-length"));
  ReplyList first = Send(harness::ResponseBody("xab", false));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].response_body().response().body_mutation().streamed_response().body(), "xAA");
  ReplyList replies = Send(harness::ResponseTrailers());
  ASSERT_EQ(replies.size(), 2u);
  const auto& rest = replies[0].response_body().response().body_mutation().streamed_response();
  EXPECT_EQ(rest.body(), "b");
  EXPECT_FALSE(rest.end_of_stream());
  EXPECT_TRUE(replies[1].has_response_trailers());
  // The pipeline observed the upstream's bytes, not the rewritten ones.
  EXPECT_EQ(backend_.context(0).response_body, "xab");
}

TEST_F(StreamProcessorTest, RawValueWinsOverValueAndThePathLosesItsQuery) {
  ext_proc_pb::ProcessingRequest request;
  auto* map = request.mutable_request_headers()->mutable_headers();
  auto* path = map->add_headers();
  path->set_key(":path");
  path->set_value("/ignored");
  path->set_raw_value("/v1/chat/completions?api-version=1");
  auto* legacy = map->add_headers();
  legacy->set_key("X-Legacy");
  legacy->set_value("v");
  Send(request);
  Send(harness::RequestBody("{}", true));
  ASSERT_EQ(backend_.admits().size(), 1u);
  EXPECT_EQ(backend_.admits()[0].path, "/v1/chat/completions");
  EXPECT_THAT(
      backend_.admits()[0].headers,
      ElementsAre(Pair(":path", "/v1/chat/completions?api-version=1"), Pair("x-legacy", "v")));
}

TEST_F(StreamProcessorTest, MissingPathFallsBackToForwardedPathThenCompletions) {
  ext_proc_pb::ProcessingRequest request;
  auto* h = request.mutable_request_headers()->mutable_headers()->add_headers();
  h->set_key("x-forwarded-path");
  h->set_raw_value("/v1/embeddings");
  Send(request);
  Send(harness::RequestBody("{}", true));
  StreamProcessor bare(backend_);
  ReplyList out;
  ext_proc_pb::ProcessingRequest empty_headers;
  empty_headers.mutable_request_headers();
  ASSERT_TRUE(bare.Handle(empty_headers, out).ok());
  ASSERT_TRUE(bare.Handle(harness::RequestBody("{}", true), out).ok());
  ASSERT_EQ(backend_.admits().size(), 2u);
  EXPECT_EQ(backend_.admits()[0].path, "/v1/embeddings");
  EXPECT_EQ(backend_.admits()[1].path, "/v1/completions");
}

TEST_F(StreamProcessorTest, NonUtf8BodyBytesReachThePipelineAndAreEchoedVerbatim) {
  std::string body = "{\"model\":\"\xff\xfe\x80\"}";
  body.push_back('\0');
  ReplyList replies = SendRequest(body);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_EQ(backend_.admits()[0].body, body);
  EXPECT_EQ(replies[1].request_body().response().body_mutation().streamed_response().body(), body);
}

struct ViolationCase {
  std::string name;
  std::vector<ext_proc_pb::ProcessingRequest> before;
  ext_proc_pb::ProcessingRequest offending;
};

std::vector<ViolationCase> Violations() {
  auto headers = harness::RequestHeaders("POST", "/v1/completions", {}, false);
  auto body_end = harness::RequestBody("{}", true);
  return {
      {"EmptyRequest", {}, ext_proc_pb::ProcessingRequest()},
      {"BodyBeforeHeaders", {}, harness::RequestBody("{}", true)},
      {"TrailersBeforeHeaders", {}, harness::RequestTrailers()},
      {"HeadersTwice", {headers}, headers},
      {"BodyAfterEndOfStream", {headers, body_end}, harness::RequestBody("{}", true)},
      {"ResponseHeadersBeforeAnswer", {headers}, harness::ResponseHeaders(200, "", false)},
      {"ResponseBodyBeforeAnswer", {headers}, harness::ResponseBody("x", true)},
      {"ResponseTrailersBeforeAnswer", {headers}, harness::ResponseTrailers()},
      {"ResponseBodyAfterEnd",
       {headers, body_end, harness::ResponseHeaders(200, "", true)},
       harness::ResponseBody("x", true)},
  };
}

class ViolationTest : public ::testing::TestWithParam<ViolationCase> {};

TEST_P(ViolationTest, EndsTheStreamWithInvalidArgumentAndCompletesOnce) {
  FakeBackend backend;
  {
    StreamProcessor processor(backend);
    ReplyList out;
    for (const auto& request : GetParam().before) ASSERT_TRUE(processor.Handle(request, out).ok());
    out.clear();
    absl::Status status = processor.Handle(GetParam().offending, out);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(out, IsEmpty());
    processor.Fail();
  }
  for (size_t i = 0; i < backend.contexts(); ++i) {
    EXPECT_EQ(backend.context(i).done_calls, 1);
    EXPECT_EQ(backend.context(i).peer_gone_calls, 0);  // our error, not a client that left
  }
}

std::string ViolationName(const ::testing::TestParamInfo<ViolationCase>& param_info) {
  return param_info.param.name;
}

INSTANTIATE_TEST_SUITE_P(Protocol, ViolationTest, ::testing::ValuesIn(Violations()), ViolationName);

TEST(ErrorJsonTest, IsAnOpenAiErrorObjectWithEscaping) {
  EXPECT_EQ(
      ErrorJson("bad \"x\"", "invalid_request_error", 413),
      R"({"error":{"message":"bad \"x\"","type":"invalid_request_error","param":null,"code":413}})");
}

// --- The admission queue (Backend::TryEnterQueue): the server retries on an alarm. --------

TEST_F(StreamProcessorTest, QueuedRequestIsAnsweredWhenARetryAdmits) {
  backend_.SetQueue(1, std::chrono::seconds(5));
  backend_.SetSaturated("/v1/chat/completions", true);
  EXPECT_THAT(SendRequest("{}"), IsEmpty());
  EXPECT_TRUE(processor_->queued());
  EXPECT_EQ(backend_.queued(), 1);
  EXPECT_THAT(Retry(), IsEmpty());  // still saturated: keeps waiting, sends nothing
  EXPECT_TRUE(processor_->queued());
  // While it waits, Envoy has nothing to send; anything it sends is a protocol error.
  EXPECT_FALSE(SendExpectingError(harness::ResponseHeaders(200, "", false)).ok());

  backend_.SetSaturated("/v1/chat/completions", false);
  ReplyList out = Retry();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[0].has_request_headers());
  EXPECT_EQ(out[1].request_body().response().body_mutation().streamed_response().body(), "{}");
  EXPECT_FALSE(processor_->queued());
  EXPECT_EQ(backend_.queued(), 0);
  EXPECT_EQ(backend_.queue_entries(), 1);
  EXPECT_EQ(backend_.admits().size(), 3u);
  // Each retry handed back what the attempt before it was refused with.
  EXPECT_THAT(backend_.readmits(), ElementsAre(1u, 2u));
}

TEST_F(StreamProcessorTest, FullQueueAnswersTheSaturationRejectionAtOnce) {
  backend_.SetQueue(0, std::chrono::seconds(5));
  backend_.SetSaturated("/v1/chat/completions", true);
  ReplyList replies = SendRequest("{}");
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].immediate_response().status().code(), 429);
  EXPECT_EQ(
      MutationHeader(replies[0].immediate_response().headers(), "x-llm-d-request-dropped-reason"),
      "rejected-saturated");
  EXPECT_FALSE(processor_->queued());
  EXPECT_TRUE(processor_->finished());
  EXPECT_EQ(backend_.queue_entries(), 0);
}

TEST_F(StreamProcessorTest, QueueTimeoutIsTheBackendsRejectionAndLeavesTheQueue) {
  backend_.SetQueue(1, std::chrono::seconds(5));
  backend_.SetSaturated("/v1/chat/completions", true);
  EXPECT_THAT(SendRequest("{}"), IsEmpty());
  ReplyList out = TimeOut();
  ASSERT_EQ(out.size(), 1u);
  const auto& immediate = out[0].immediate_response();
  EXPECT_EQ(immediate.status().code(), 429);
  EXPECT_EQ(immediate.body(), R"({"error":{"message":"expired","model":"fake-model"}})");
  EXPECT_EQ(MutationHeader(immediate.headers(), "x-llm-d-request-dropped-reason"),
            "rejected-ttl-expired");
  EXPECT_TRUE(processor_->finished());
  EXPECT_EQ(backend_.queued(), 0);
}

TEST_F(StreamProcessorTest, StreamGoneWhileQueuedLeavesTheQueue) {
  backend_.SetQueue(1, std::chrono::seconds(5));
  backend_.SetSaturated("/v1/chat/completions", true);
  EXPECT_THAT(SendRequest("{}"), IsEmpty());
  EXPECT_EQ(backend_.queued(), 1);
  processor_.reset();
  EXPECT_EQ(backend_.queued(), 0);
  EXPECT_EQ(backend_.contexts(), 0u);  // never admitted
}

TEST_F(StreamProcessorTest, TrailersEndingAQueuedBodyAreAnsweredAfterTheBody) {
  backend_.SetQueue(1, std::chrono::seconds(5));
  backend_.SetSaturated("/v1/completions", true);
  EXPECT_THAT(Send(harness::RequestHeaders("POST", "/v1/completions", {}, false)), IsEmpty());
  EXPECT_THAT(Send(harness::RequestBody("{}", false)), IsEmpty());
  EXPECT_THAT(Send(harness::RequestTrailers()), IsEmpty());
  EXPECT_TRUE(processor_->queued());
  backend_.SetSaturated("/v1/completions", false);
  ReplyList out = Retry();
  ASSERT_EQ(out.size(), 3u);
  EXPECT_TRUE(out[0].has_request_headers());
  EXPECT_TRUE(out[1].has_request_body());
  EXPECT_TRUE(out[2].has_request_trailers());
}

}  // namespace
}  // namespace zumik::epp::extproc

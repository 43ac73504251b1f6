// The ext_proc message handler for one gRPC stream (= one HTTP request/response through
// Envoy), FULL_DUPLEX_STREAMED as the Gateway API Inference Extension's endpoint picker speaks
// it: buffer the request body to end_of_stream, admit + pick once, answer with the
// request-headers mutation (x-gateway-destination-endpoint, Content-Length, clear_route_cache)
// and envoy.lb dynamic metadata, then echo the body in chunks of at most 62,000 bytes; pass the
// response through, adding Agent-Execution-Profile. No gRPC types beyond the messages, so it is
// unit-tested and fuzzed without a server.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "envoy/service/ext_proc/v3/external_processor.pb.h"
#include "epp/extproc/backend.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace zumik::epp::extproc {

namespace ext_proc_pb = ::envoy::service::ext_proc::v3;

// The replies one message produces, in order. A RepeatedPtrField so the server can build them
// on a protobuf Arena (created with one, Add() allocates there).
using Replies = google::protobuf::RepeatedPtrField<ext_proc_pb::ProcessingResponse>;

// Envoy's ext_proc limit on one body message is 64 KiB; upstream keeps a margin.
inline constexpr size_t kMaxBodyChunkBytes = 62000;
inline constexpr std::string_view kDestinationHeader = "x-gateway-destination-endpoint";
inline constexpr std::string_view kLbMetadataNamespace = "envoy.lb";
// In kLbMetadataNamespace of the response's metadata_context: the endpoint that served it.
inline constexpr std::string_view kServedKey = "x-gateway-destination-endpoint-served";
inline constexpr std::string_view kSubsetNamespace = "envoy.lb.subset_hint";
inline constexpr std::string_view kSubsetKey = "x-gateway-destination-endpoint-subset";
// Lower case: HTTP/2 forbids upper-case field names, and header names are case-insensitive.
inline constexpr std::string_view kProfileHeader = "agent-execution-profile";
inline constexpr std::string_view kDroppedReasonHeader = "x-llm-d-request-dropped-reason";

class StreamProcessor {
 public:
  explicit StreamProcessor(Backend& backend) : backend_(backend) {}
  // Completes the request with the backend (OnDone) if a stream ends before its response did.
  ~StreamProcessor();
  StreamProcessor(const StreamProcessor&) = delete;
  StreamProcessor& operator=(const StreamProcessor&) = delete;

  // Handles one message from Envoy and appends the replies to send, in order, to `out`.
  // A non-OK status means: end the stream with that status (protocol violation by the peer).
  absl::Status Handle(const ext_proc_pb::ProcessingRequest& request, Replies& out);
  // The same, appending copies to a vector (tests, benchmarks, the fuzzer).
  absl::Status Handle(const ext_proc_pb::ProcessingRequest& request,
                      std::vector<ext_proc_pb::ProcessingResponse>& out);

  // An ImmediateResponse was sent: the server ends the stream with OK; Envoy stops calling.
  bool finished() const { return finished_; }
  // The exchange is over (response complete, rejected, or aborted).
  bool complete() const { return phase_ == Phase::kDone; }
  // The stream went away (client cancel, transport error): tells the backend now, as a peer
  // that left (Backend::OnPeerGone) when the exchange was not complete.
  void Abort();
  // The stream ends with our error status (Handle's non-OK status): tells the backend now.
  void Fail();

  // The backend's admission queue (Backend::TryEnterQueue): the request body is complete but
  // the request waits in the queue; nothing is sent until RetryAdmit or QueueTimedOut answers.
  bool queued() const { return phase_ == Phase::kQueued; }
  // Tries the admission again (every kAdmitRetryInterval): replies as Handle does, or stays
  // queued.
  void RetryAdmit(Replies& out);
  // The wait is over (Backend::queue_ttl, or the server is shutting down): the backend's
  // timeout rejection as an immediate response.
  void QueueTimedOut(Replies& out);

 private:
  enum class Phase {
    kAwaitRequestHeaders,
    kRequestBody,  // buffering until end_of_stream
    kQueued,       // complete, waiting in the backend's admission queue
    kAdmitted,     // request answered; response events may come
    kDone,
  };

  absl::Status OnRequestHeaders(const ext_proc_pb::ProcessingRequest& request, Replies& out);
  absl::Status OnRequestBody(const ext_proc_pb::HttpBody& body, Replies& out);
  absl::Status OnRequestTrailers(Replies& out);
  absl::Status OnResponseHeaders(const ext_proc_pb::HttpHeaders& headers, Replies& out);
  absl::Status OnResponseBody(const ext_proc_pb::HttpBody& body, Replies& out);
  absl::Status OnResponseTrailers(Replies& out);

  // Reads envoy.lb.subset_hint from a message's metadata_context, if it carries one.
  void CaptureSubset(const ext_proc_pb::ProcessingRequest& request);
  // Tells the backend which endpoint served the request, if the response headers' metadata
  // says (envoy.lb x-gateway-destination-endpoint-served).
  void ReportServed(const ext_proc_pb::ProcessingRequest& request);
  // Body complete (or bodiless): admit, then answer headers (+ body chunks when has_body).
  void Admit(bool has_body, Replies& out);
  void Reject(int http_status, std::string_view json_body, std::string_view dropped_reason,
              Replies& out);
  void Finish();
  void LeaveQueue();

  Backend& backend_;
  Phase phase_ = Phase::kAwaitRequestHeaders;
  bool finished_ = false;
  bool response_ended_ = false;
  std::string path_;
  HeaderList headers_;
  std::string body_;
  // Absent = no hint (whole pool); present but empty = nothing eligible (503).
  std::optional<std::vector<std::string>> subset_;
  bool in_queue_ = false;  // holds a place in the backend's admission queue
  bool queued_has_body_ = false;
  std::shared_ptr<void> queued_request_;  // the backend's parsed request, while queued
  bool trailers_reply_pending_ = false;   // request trailers ended the body of a queued request
  std::string queue_model_;               // the model the queue place was taken under
  std::shared_ptr<void> ctx_;
  HeaderList client_response_headers_;
};

// {"error":{"message":...,"type":...,"param":null,"code":...}} for errors the server raises
// itself (oversized body, empty subset).
std::string ErrorJson(std::string_view message, std::string_view type, int code);

}  // namespace zumik::epp::extproc

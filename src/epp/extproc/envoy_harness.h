// Test support: an Envoy-like ext_proc client. It drives Process streams the way Envoy's
// ext_proc filter does in FULL_DUPLEX_STREAMED mode (request headers with lower-case names
// and raw_value, body chunks sent without waiting, metadata_context carrying the
// envoy.lb.subset_hint, response headers, response body chunks, trailers, client cancel) and
// collects every reply so tests can assert each field. Also a grpc.health.v1 client.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "epp/extproc/backend.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace zumik::epp::extproc::harness {

namespace ext_proc_pb = ::envoy::service::ext_proc::v3;

// --- Messages as Envoy builds them ---------------------------------------------------------
// Pseudo-headers first, then `headers`; names lower-cased, values in raw_value.
ext_proc_pb::ProcessingRequest RequestHeaders(
    std::string_view method, std::string_view path, const HeaderList& headers, bool end_of_stream,
    const std::optional<std::vector<std::string>>& subset = std::nullopt);
ext_proc_pb::ProcessingRequest RequestBody(
    std::string_view chunk, bool end_of_stream,
    const std::optional<std::vector<std::string>>& subset = std::nullopt);
ext_proc_pb::ProcessingRequest RequestTrailers();
// With `served` non-empty, the metadata_context says which endpoint served the response
// (envoy.lb {x-gateway-destination-endpoint-served: served}), as Envoy sends it.
ext_proc_pb::ProcessingRequest ResponseHeaders(int status, std::string_view content_type,
                                               bool end_of_stream, std::string_view served = {});
ext_proc_pb::ProcessingRequest ResponseBody(std::string_view chunk, bool end_of_stream);
ext_proc_pb::ProcessingRequest ResponseTrailers();
// Adds envoy.lb.subset_hint {x-gateway-destination-endpoint-subset: [addresses]}.
void SetSubsetHint(ext_proc_pb::ProcessingRequest& request,
                   const std::vector<std::string>& addresses);

// Reads a header value (raw_value, else value) from a mutation; nullopt if absent.
std::optional<std::string> MutationHeader(const ext_proc_pb::HeaderMutation& mutation,
                                          std::string_view key);

// --- One stream ----------------------------------------------------------------------------
class EnvoyStream {
 public:
  EnvoyStream(ext_proc_pb::ExternalProcessor::Stub& stub, std::chrono::milliseconds deadline);
  ~EnvoyStream();

  bool Send(const ext_proc_pb::ProcessingRequest& request);
  // Blocks for the next reply; nullopt when the server ended the stream (see Finish).
  std::optional<ext_proc_pb::ProcessingResponse> Receive();
  void CloseSend();
  // The stream's final status (call after Receive returned nullopt, or after CloseSend).
  grpc::Status Finish();
  // Envoy resets the stream (downstream client went away).
  void Cancel();

 private:
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<ext_proc_pb::ProcessingRequest, ext_proc_pb::ProcessingResponse>>
      stream_;
  bool finished_ = false;
};

// What the request half of an exchange produced.
struct RequestOutcome {
  std::optional<ext_proc_pb::ProcessingResponse> headers_reply;  // has request_headers
  std::vector<ext_proc_pb::ProcessingResponse> body_replies;     // request_body, in order
  std::string body;  // the reassembled streamed_response bodies
  std::optional<ext_proc_pb::ProcessingResponse> immediate;       // has immediate_response
  std::optional<ext_proc_pb::ProcessingResponse> trailers_reply;  // has request_trailers
  bool stream_ended = false;  // the server closed the stream instead of replying
};

struct RequestSpec {
  std::string method = "POST";
  std::string path = "/v1/completions";
  HeaderList headers;  // besides the pseudo-headers
  std::string body;    // empty + bodiless = a GET-like request (headers end_of_stream)
  bool bodiless = false;
  size_t chunk_bytes = 16384;  // Envoy forwards the body as it arrives, in chunks
  std::optional<std::vector<std::string>> subset;
  bool trailers = false;  // end the body with trailers instead of end_of_stream
};

// Sends the request half and reads replies until the request is answered (headers reply +
// body through end_of_stream, or an immediate response).
RequestOutcome DriveRequest(EnvoyStream& stream, const RequestSpec& spec);

struct ResponseOutcome {
  std::optional<ext_proc_pb::ProcessingResponse> headers_reply;  // has response_headers
  std::vector<ext_proc_pb::ProcessingResponse> body_replies;
  std::string body;
  std::optional<ext_proc_pb::ProcessingResponse> trailers_reply;
};

// Sends response headers (with the served endpoint in their metadata when `served` is not
// empty), then each chunk (the last with end_of_stream unless `trailers`), reading the echoed
// chunk(s) after each one as Envoy forwards them downstream.
ResponseOutcome DriveResponse(EnvoyStream& stream, int status, std::string_view content_type,
                              const std::vector<std::string>& chunks, bool trailers = false,
                              std::string_view served = {});

// The pick as Envoy reads it from the request headers reply.
struct Pick {
  std::optional<std::string> destination;           // x-gateway-destination-endpoint
  std::vector<std::string> endpoints;               // `destination` split at commas
  std::optional<std::string> metadata_destination;  // envoy.lb dynamic metadata, same key
  std::optional<std::string> content_length;        // the Content-Length header mutation
  bool clear_route_cache = false;
};
Pick ReadPick(const ext_proc_pb::ProcessingResponse& headers_reply);

// `body` cut into pieces of `size` bytes, as an upstream's response arrives.
std::vector<std::string> SplitIntoChunks(std::string_view body, size_t size);

// --- The upstream leg ----------------------------------------------------------------------
struct UpstreamResponse {
  int status = 0;  // 0: could not connect or no HTTP response
  std::string content_type;
  std::string body;  // de-chunked
};

// What Envoy does after the pick: one HTTP/1.1 POST of `body` to `endpoint` ("ip:port",
// IPv4), read to the end (Connection: close, 10 s receive timeout).
UpstreamResponse ForwardToEndpoint(const std::string& endpoint, std::string_view path,
                                   std::string_view body);

// --- A connection --------------------------------------------------------------------------
class EnvoyClient {
 public:
  // `tls`: connect with TLS, not verifying the server certificate (what gateways do with the
  // EPP's self-signed certificate). `root_pem` non-empty: verify against it instead, as
  // server name "localhost".
  EnvoyClient(const std::string& target, bool tls, const std::string& root_pem = "");

  std::unique_ptr<EnvoyStream> Open(std::chrono::milliseconds deadline = std::chrono::seconds(10));
  // grpc.health.v1.Health/Check; the serving status, or the RPC error.
  absl::StatusOr<::grpc::health::v1::HealthCheckResponse::ServingStatus> Check(
      const std::string& service);
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<ext_proc_pb::ExternalProcessor::Stub> stub_;
  std::unique_ptr<::grpc::health::v1::Health::Stub> health_;
};

}  // namespace zumik::epp::extproc::harness

// The Envoy-like ext_proc test client; see envoy_harness.h.
#include "epp/extproc/envoy_harness.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "epp/extproc/stream_processor.h"

namespace zumik::epp::extproc::harness {
namespace {

void AddEnvoyHeader(envoy::config::core::v3::HeaderMap* map, std::string_view key,
                    std::string_view value) {
  auto* header = map->add_headers();
  std::string lower(key);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  header->set_key(lower);
  header->set_raw_value(std::string(value));
}

std::string Dechunk(std::string_view raw) {
  std::string out;
  while (!raw.empty()) {
    size_t eol = raw.find("\r\n");
    if (eol == std::string_view::npos) break;
    size_t n = std::strtoul(std::string(raw.substr(0, eol)).c_str(), nullptr, 16);
    if (n == 0) break;
    out.append(raw.substr(eol + 2, n));
    raw.remove_prefix(std::min(raw.size(), eol + 2 + n + 2));
  }
  return out;
}

}  // namespace

Pick ReadPick(const ext_proc_pb::ProcessingResponse& headers_reply) {
  // The names as the GIE protocol spells them (not the server's constants): what Envoy reads.
  const std::string destination_key = "x-gateway-destination-endpoint";
  Pick pick;
  const auto& common = headers_reply.request_headers().response();
  pick.clear_route_cache = common.clear_route_cache();
  pick.destination = MutationHeader(common.header_mutation(), destination_key);
  pick.content_length = MutationHeader(common.header_mutation(), "content-length");
  if (pick.destination.has_value()) {
    size_t start = 0;
    while (true) {
      size_t comma = pick.destination->find(',', start);
      pick.endpoints.push_back(pick.destination->substr(start, comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  const auto& namespaces = headers_reply.dynamic_metadata().fields();
  if (auto lb = namespaces.find("envoy.lb"); lb != namespaces.end()) {
    const auto& fields = lb->second.struct_value().fields();
    if (auto it = fields.find(destination_key); it != fields.end()) {
      pick.metadata_destination = it->second.string_value();
    }
  }
  return pick;
}

std::vector<std::string> SplitIntoChunks(std::string_view body, size_t size) {
  std::vector<std::string> chunks;
  for (size_t offset = 0; offset < body.size(); offset += std::max<size_t>(1, size)) {
    chunks.emplace_back(body.substr(offset, size));
  }
  return chunks;
}

UpstreamResponse ForwardToEndpoint(const std::string& endpoint, std::string_view path,
                                   std::string_view body) {
  UpstreamResponse response;
  size_t colon = endpoint.rfind(':');
  if (colon == std::string::npos) return response;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(std::atoi(endpoint.c_str() + colon + 1)));
  if (inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &addr.sin_addr) != 1) return response;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return response;
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string request = fmt::format(
      "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n"
      "Connection: close\r\n\r\n{}",
      path, endpoint, body.size(), body);
  std::string raw;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = write(fd, request.data() + sent, request.size() - sent);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buf[65536];
    ssize_t n;
    while (sent == request.size() && (n = read(fd, buf, sizeof(buf))) > 0) {
      raw.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  size_t header_end = raw.find("\r\n\r\n");
  size_t space = raw.find(' ');
  if (header_end == std::string::npos || space > header_end) return response;
  std::string head = raw.substr(0, header_end);
  response.status = std::atoi(head.c_str() + space + 1);
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (size_t ct = lower.find("\r\ncontent-type:"); ct != std::string::npos) {
    size_t start = head.find_first_not_of(' ', ct + 15);
    response.content_type = head.substr(start, head.find("\r\n", start) - start);
  }
  std::string payload = raw.substr(header_end + 4);
  response.body =
      lower.find("transfer-encoding: chunked") != std::string::npos ? Dechunk(payload) : payload;
  return response;
}

void SetSubsetHint(ext_proc_pb::ProcessingRequest& request,
                   const std::vector<std::string>& addresses) {
  google::protobuf::Struct& hint =
      (*request.mutable_metadata_context()
            ->mutable_filter_metadata())[std::string(kSubsetNamespace)];
  auto* list = (*hint.mutable_fields())[std::string(kSubsetKey)].mutable_list_value();
  for (const auto& address : addresses) list->add_values()->set_string_value(address);
}

ext_proc_pb::ProcessingRequest RequestHeaders(
    std::string_view method, std::string_view path, const HeaderList& headers, bool end_of_stream,
    const std::optional<std::vector<std::string>>& subset) {
  ext_proc_pb::ProcessingRequest request;
  auto* http = request.mutable_request_headers();
  auto* map = http->mutable_headers();
  AddEnvoyHeader(map, ":authority", "gateway.example");
  AddEnvoyHeader(map, ":path", path);
  AddEnvoyHeader(map, ":method", method);
  AddEnvoyHeader(map, ":scheme", "http");
  for (const auto& [key, value] : headers) AddEnvoyHeader(map, key, value);
  AddEnvoyHeader(map, "x-forwarded-proto", "http");
  http->set_end_of_stream(end_of_stream);
  if (subset.has_value()) SetSubsetHint(request, *subset);
  return request;
}

ext_proc_pb::ProcessingRequest RequestBody(std::string_view chunk, bool end_of_stream,
                                           const std::optional<std::vector<std::string>>& subset) {
  ext_proc_pb::ProcessingRequest request;
  request.mutable_request_body()->set_body(std::string(chunk));
  request.mutable_request_body()->set_end_of_stream(end_of_stream);
  if (subset.has_value()) SetSubsetHint(request, *subset);
  return request;
}

ext_proc_pb::ProcessingRequest RequestTrailers() {
  ext_proc_pb::ProcessingRequest request;
  AddEnvoyHeader(request.mutable_request_trailers()->mutable_trailers(), "x-trailer", "1");
  return request;
}

ext_proc_pb::ProcessingRequest ResponseHeaders(int status, std::string_view content_type,
                                               bool end_of_stream, std::string_view served) {
  ext_proc_pb::ProcessingRequest request;
  if (!served.empty()) {
    google::protobuf::Struct& lb =
        (*request.mutable_metadata_context()
              ->mutable_filter_metadata())[std::string(kLbMetadataNamespace)];
    (*lb.mutable_fields())[std::string(kServedKey)].set_string_value(std::string(served));
  }
  auto* http = request.mutable_response_headers();
  AddEnvoyHeader(http->mutable_headers(), ":status", fmt::format("{}", status));
  if (!content_type.empty()) AddEnvoyHeader(http->mutable_headers(), "content-type", content_type);
  AddEnvoyHeader(http->mutable_headers(), "date", "Wed, 25 Nov 2026 12:00:00 GMT");
  http->set_end_of_stream(end_of_stream);
  return request;
}

ext_proc_pb::ProcessingRequest ResponseBody(std::string_view chunk, bool end_of_stream) {
  ext_proc_pb::ProcessingRequest request;
  request.mutable_response_body()->set_body(std::string(chunk));
  request.mutable_response_body()->set_end_of_stream(end_of_stream);
  return request;
}

ext_proc_pb::ProcessingRequest ResponseTrailers() {
  ext_proc_pb::ProcessingRequest request;
  AddEnvoyHeader(request.mutable_response_trailers()->mutable_trailers(), "grpc-status", "0");
  return request;
}

std::optional<std::string> MutationHeader(const ext_proc_pb::HeaderMutation& mutation,
                                          std::string_view key) {
  for (const auto& option : mutation.set_headers()) {
    if (option.header().key() == key) {
      return option.header().raw_value().empty() ? option.header().value()
                                                 : option.header().raw_value();
    }
  }
  return std::nullopt;
}

EnvoyStream::EnvoyStream(ext_proc_pb::ExternalProcessor::Stub& stub,
                         std::chrono::milliseconds deadline) {
  context_.set_deadline(std::chrono::system_clock::now() + deadline);
  stream_ = stub.Process(&context_);
}

EnvoyStream::~EnvoyStream() {
  if (!finished_) {
    context_.TryCancel();
    stream_->Finish();
  }
}

bool EnvoyStream::Send(const ext_proc_pb::ProcessingRequest& request) {
  return stream_->Write(request);
}

std::optional<ext_proc_pb::ProcessingResponse> EnvoyStream::Receive() {
  ext_proc_pb::ProcessingResponse response;
  if (!stream_->Read(&response)) return std::nullopt;
  return response;
}

void EnvoyStream::CloseSend() { stream_->WritesDone(); }

grpc::Status EnvoyStream::Finish() {
  finished_ = true;
  return stream_->Finish();
}

void EnvoyStream::Cancel() { context_.TryCancel(); }

RequestOutcome DriveRequest(EnvoyStream& stream, const RequestSpec& spec) {
  RequestOutcome outcome;
  bool bodiless = spec.bodiless;
  stream.Send(RequestHeaders(spec.method, spec.path, spec.headers, bodiless, spec.subset));
  if (!bodiless) {
    size_t chunk = std::max<size_t>(1, spec.chunk_bytes);
    size_t offset = 0;
    do {
      size_t n = std::min(chunk, spec.body.size() - offset);
      bool last = offset + n == spec.body.size();
      if (!stream.Send(RequestBody(std::string_view(spec.body).substr(offset, n),
                                   last && !spec.trailers, spec.subset))) {
        break;
      }
      offset += n;
    } while (offset < spec.body.size());
    if (spec.trailers) stream.Send(RequestTrailers());
  }
  while (true) {
    auto reply = stream.Receive();
    if (!reply.has_value()) {
      outcome.stream_ended = true;
      return outcome;
    }
    if (reply->has_immediate_response()) {
      outcome.immediate = std::move(*reply);
      return outcome;
    }
    if (reply->has_request_headers()) {
      outcome.headers_reply = std::move(*reply);
      if (bodiless) return outcome;
      continue;
    }
    if (reply->has_request_body()) {
      const auto& streamed = reply->request_body().response().body_mutation().streamed_response();
      outcome.body += streamed.body();
      bool end = streamed.end_of_stream();
      outcome.body_replies.push_back(std::move(*reply));
      if (end && !spec.trailers) return outcome;
      continue;
    }
    if (reply->has_request_trailers()) {
      outcome.trailers_reply = std::move(*reply);
      return outcome;
    }
    // Anything else is out of order for the request half; keep it visible to the test.
    outcome.body_replies.push_back(std::move(*reply));
    return outcome;
  }
}

ResponseOutcome DriveResponse(EnvoyStream& stream, int status, std::string_view content_type,
                              const std::vector<std::string>& chunks, bool trailers,
                              std::string_view served) {
  ResponseOutcome outcome;
  stream.Send(ResponseHeaders(status, content_type, chunks.empty() && !trailers, served));
  outcome.headers_reply = stream.Receive();
  for (size_t i = 0; i < chunks.size(); ++i) {
    bool last = i + 1 == chunks.size() && !trailers;
    if (!stream.Send(ResponseBody(chunks[i], last))) return outcome;
    // One reply per ≤62,000 bytes (at least one).
    size_t expected =
        std::max<size_t>(1, (chunks[i].size() + kMaxBodyChunkBytes - 1) / kMaxBodyChunkBytes);
    for (size_t k = 0; k < expected; ++k) {
      auto reply = stream.Receive();
      if (!reply.has_value()) return outcome;
      outcome.body += reply->response_body().response().body_mutation().streamed_response().body();
      outcome.body_replies.push_back(std::move(*reply));
    }
  }
  if (trailers) {
    stream.Send(ResponseTrailers());
    outcome.trailers_reply = stream.Receive();
  }
  return outcome;
}

EnvoyClient::EnvoyClient(const std::string& target, bool tls, const std::string& root_pem) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments args;
  if (!tls) {
    credentials = grpc::InsecureChannelCredentials();
  } else if (!root_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = root_pem;
    credentials = grpc::SslCredentials(ssl);
    args.SetSslTargetNameOverride("localhost");
  } else {
    grpc::experimental::TlsChannelCredentialsOptions options;
    options.set_verify_server_certs(false);
    options.set_check_call_host(false);
    options.set_certificate_verifier(
        std::make_shared<grpc::experimental::NoOpCertificateVerifier>());
    credentials = grpc::experimental::TlsCredentials(options);
  }
  // Each client its own connection (benchmarks open several).
  args.SetInt("grpc.use_local_subchannel_pool", 1);
  channel_ = grpc::CreateCustomChannel(target, credentials, args);
  stub_ = ext_proc_pb::ExternalProcessor::NewStub(channel_);
  health_ = ::grpc::health::v1::Health::NewStub(channel_);
}

std::unique_ptr<EnvoyStream> EnvoyClient::Open(std::chrono::milliseconds deadline) {
  return std::make_unique<EnvoyStream>(*stub_, deadline);
}

absl::StatusOr<::grpc::health::v1::HealthCheckResponse::ServingStatus> EnvoyClient::Check(
    const std::string& service) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ::grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  ::grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = health_->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  return response.status();
}

}  // namespace zumik::epp::extproc::harness

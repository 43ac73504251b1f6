// The ext_proc state machine; see stream_processor.h.
#include "epp/extproc/stream_processor.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <span>
#include <utility>

#include "core/status.h"

namespace zumik::epp::extproc {
namespace {

namespace core_pb = ::envoy::config::core::v3;

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

// Envoy sends values in raw_value; older proxies (and some tests) use value.
const std::string& ValueOf(const core_pb::HeaderValue& h) {
  return h.raw_value().empty() ? h.value() : h.raw_value();
}

void AddHeader(core_pb::HeaderValueOption* option, std::string_view key, std::string_view value) {
  auto* header = option->mutable_header();
  header->set_key(std::string(key));
  header->set_raw_value(std::string(value));
}

void AddHeader(ext_proc_pb::HeaderMutation* mutation, std::string_view key,
               std::string_view value) {
  AddHeader(mutation->add_set_headers(), key, value);
}

const std::string* FindHeader(const HeaderList& headers, std::string_view key) {
  for (const auto& [k, v] : headers) {
    if (k == key) return &v;
  }
  return nullptr;
}

// Upstream reads :path, then the headers some proxies rewrite it into; the parser is chosen
// by path suffix, so the query string goes.
std::string PathOf(const HeaderList& headers) {
  const std::string* path = FindHeader(headers, ":path");
  if (path == nullptr || path->empty()) path = FindHeader(headers, "x-original-path");
  if (path == nullptr || path->empty()) path = FindHeader(headers, "x-forwarded-path");
  if (path == nullptr || path->empty()) return "/v1/completions";
  std::string_view p = *path;
  p = p.substr(0, p.find_first_of("?#"));
  return std::string(p);
}

// Appends `body` as streamed body mutations of at most kMaxBodyChunkBytes each; the last one
// carries `end_of_stream`. An empty body is one empty message.
template <typename SetBody>
void AppendChunks(std::string_view body, bool end_of_stream, SetBody set_body, Replies& out) {
  size_t offset = 0;
  do {
    size_t n = std::min(kMaxBodyChunkBytes, body.size() - offset);
    auto& response = *out.Add();
    auto* streamed = set_body(response)
                         ->mutable_response()
                         ->mutable_body_mutation()
                         ->mutable_streamed_response();
    streamed->set_body(std::string(body.substr(offset, n)));
    offset += n;
    streamed->set_end_of_stream(end_of_stream && offset == body.size());
  } while (offset < body.size());
}

// The value at namespace `ns`, key `key` of a message's metadata_context; null if absent.
const google::protobuf::Value* MetadataField(const ext_proc_pb::ProcessingRequest& request,
                                             std::string_view ns, std::string_view key) {
  if (!request.has_metadata_context()) return nullptr;
  const auto& namespaces = request.metadata_context().filter_metadata();
  auto found = namespaces.find(std::string(ns));
  if (found == namespaces.end()) return nullptr;
  auto field = found->second.fields().find(std::string(key));
  return field == found->second.fields().end() ? nullptr : &field->second;
}

}  // namespace

std::string ErrorJson(std::string_view message, std::string_view type, int code) {
  boost::json::object error;
  error["message"] = boost::json::string_view(message.data(), message.size());
  error["type"] = boost::json::string_view(type.data(), type.size());
  error["param"] = nullptr;
  error["code"] = code;
  boost::json::object root;
  root["error"] = std::move(error);
  return boost::json::serialize(root);
}

StreamProcessor::~StreamProcessor() { Finish(); }

void StreamProcessor::Abort() {
  if (ctx_ != nullptr && phase_ != Phase::kDone) backend_.OnPeerGone(ctx_.get());
  Finish();
}

void StreamProcessor::Fail() { Finish(); }

void StreamProcessor::Finish() {
  LeaveQueue();
  if (ctx_ != nullptr && phase_ != Phase::kDone) backend_.OnDone(ctx_.get());
  phase_ = Phase::kDone;
}

void StreamProcessor::LeaveQueue() {
  if (!in_queue_) return;
  in_queue_ = false;
  queued_request_.reset();
  backend_.LeaveQueue();
}

void StreamProcessor::RetryAdmit(Replies& out) {
  if (phase_ != Phase::kQueued) return;
  Admit(queued_has_body_, out);
  if (phase_ == Phase::kAdmitted && trailers_reply_pending_) {
    trailers_reply_pending_ = false;
    out.Add()->mutable_request_trailers();
  }
}

void StreamProcessor::QueueTimedOut(Replies& out) {
  if (phase_ != Phase::kQueued) return;
  LeaveQueue();
  BackendRejection rejection = backend_.QueueTimeout(queue_model_);
  Reject(rejection.http_status, rejection.json_body, rejection.dropped_reason, out);
}

absl::Status StreamProcessor::Handle(const ext_proc_pb::ProcessingRequest& request,
                                     std::vector<ext_proc_pb::ProcessingResponse>& out) {
  Replies replies;
  absl::Status status = Handle(request, replies);
  for (auto& reply : replies) out.push_back(std::move(reply));
  return status;
}

absl::Status StreamProcessor::Handle(const ext_proc_pb::ProcessingRequest& request, Replies& out) {
  if (finished_) {
    return Errorf(absl::StatusCode::kFailedPrecondition,
                  "ext_proc message after the immediate response");
  }
  if (phase_ == Phase::kQueued) {
    return Errorf(absl::StatusCode::kFailedPrecondition,
                  "ext_proc message while the request waits in the admission queue");
  }
  switch (request.request_case()) {
    case ext_proc_pb::ProcessingRequest::kRequestHeaders:
      return OnRequestHeaders(request, out);
    case ext_proc_pb::ProcessingRequest::kRequestBody:
      CaptureSubset(request);
      return OnRequestBody(request.request_body(), out);
    case ext_proc_pb::ProcessingRequest::kRequestTrailers:
      CaptureSubset(request);
      return OnRequestTrailers(out);
    case ext_proc_pb::ProcessingRequest::kResponseHeaders:
      if (phase_ == Phase::kAdmitted) ReportServed(request);
      return OnResponseHeaders(request.response_headers(), out);
    case ext_proc_pb::ProcessingRequest::kResponseBody:
      return OnResponseBody(request.response_body(), out);
    case ext_proc_pb::ProcessingRequest::kResponseTrailers:
      return OnResponseTrailers(out);
    case ext_proc_pb::ProcessingRequest::REQUEST_NOT_SET:
      break;
  }
  return Errorf(absl::StatusCode::kInvalidArgument, "ProcessingRequest without a request");
}

void StreamProcessor::ReportServed(const ext_proc_pb::ProcessingRequest& request) {
  const google::protobuf::Value* served = MetadataField(request, kLbMetadataNamespace, kServedKey);
  if (served != nullptr && served->has_string_value() && !served->string_value().empty()) {
    backend_.OnServedBy(ctx_.get(), served->string_value());
  }
}

void StreamProcessor::CaptureSubset(const ext_proc_pb::ProcessingRequest& request) {
  const google::protobuf::Value* field = MetadataField(request, kSubsetNamespace, kSubsetKey);
  if (field == nullptr) return;
  std::vector<std::string> subset;
  const google::protobuf::Value& value = *field;
  if (value.has_list_value()) {
    for (const auto& item : value.list_value().values()) {
      if (item.has_string_value() && !item.string_value().empty()) {
        subset.push_back(item.string_value());
      }
    }
  } else if (value.has_string_value()) {
    // Tolerated: one "ip:port,ip:port" string instead of a list.
    std::string_view rest = value.string_value();
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (!item.empty()) subset.emplace_back(item);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  subset_ = std::move(subset);
}

absl::Status StreamProcessor::OnRequestHeaders(const ext_proc_pb::ProcessingRequest& request,
                                               Replies& out) {
  if (phase_ != Phase::kAwaitRequestHeaders) {
    return Errorf(absl::StatusCode::kInvalidArgument, "request_headers sent twice");
  }
  const auto& headers = request.request_headers();
  headers_.reserve(static_cast<size_t>(headers.headers().headers_size()));
  for (const auto& h : headers.headers().headers()) {
    headers_.emplace_back(Lower(h.key()), ValueOf(h));
  }
  path_ = PathOf(headers_);
  CaptureSubset(request);
  if (headers.end_of_stream()) {
    Admit(/*has_body=*/false, out);
    return absl::OkStatus();
  }
  // Size the buffer once when the client announced its length (bounded by the limit).
  if (const std::string* length = FindHeader(headers_, "content-length"); length != nullptr) {
    size_t n = 0;
    auto [ptr, ec] = std::from_chars(length->data(), length->data() + length->size(), n);
    if (ec == std::errc() && ptr == length->data() + length->size() &&
        n <= backend_.max_body_bytes()) {
      body_.reserve(n);
    }
  }
  phase_ = Phase::kRequestBody;
  return absl::OkStatus();
}

absl::Status StreamProcessor::OnRequestBody(const ext_proc_pb::HttpBody& body, Replies& out) {
  if (phase_ != Phase::kRequestBody) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "request_body outside the request body phase (headers missing, or after "
                  "end_of_stream)");
  }
  if (body.body().size() > backend_.max_body_bytes() - body_.size()) {
    std::string message = fmt::format("request body exceeds {} bytes", backend_.max_body_bytes());
    Reject(413, ErrorJson(message, "invalid_request_error", 413), "", out);
    return absl::OkStatus();
  }
  body_.append(body.body());
  if (body.end_of_stream() || body.end_of_stream_without_message()) Admit(true, out);
  return absl::OkStatus();
}

absl::Status StreamProcessor::OnRequestTrailers(Replies& out) {
  if (phase_ == Phase::kAwaitRequestHeaders) {
    return Errorf(absl::StatusCode::kInvalidArgument, "request_trailers before request_headers");
  }
  // With trailers, the last body message may not carry end_of_stream: trailers end the body.
  if (phase_ == Phase::kRequestBody) Admit(true, out);
  if (phase_ == Phase::kQueued) {
    trailers_reply_pending_ = true;  // sent after the headers and body replies
    return absl::OkStatus();
  }
  if (finished_) return absl::OkStatus();
  out.Add()->mutable_request_trailers();
  return absl::OkStatus();
}

void StreamProcessor::Admit(bool has_body, Replies& out) {
  if (subset_.has_value() && subset_->empty()) {
    Reject(503, ErrorJson("no endpoint in the subset hint is eligible", "service_unavailable", 503),
           "rejected-no-endpoints", out);
    return;
  }
  std::span<const std::string> subset;
  if (subset_.has_value()) subset = *subset_;
  AdmitResult result = in_queue_ ? backend_.Readmit(queued_request_, path_, headers_, body_, subset)
                                 : backend_.Admit(path_, headers_, body_, subset);
  if (auto* rejection = std::get_if<BackendRejection>(&result)) {
    if (rejection->queueable && !in_queue_ && backend_.TryEnterQueue(rejection->model)) {
      in_queue_ = true;
      queue_model_ = rejection->model;
    }
    if (rejection->queueable && in_queue_) {
      phase_ = Phase::kQueued;
      queued_request_ = std::move(rejection->pending);
      queued_has_body_ = has_body;
      return;
    }
    LeaveQueue();
    Reject(rejection->http_status, rejection->json_body, rejection->dropped_reason, out);
    return;
  }
  LeaveQueue();
  auto& admission = std::get<BackendAdmission>(result);
  ctx_ = std::move(admission.ctx);
  client_response_headers_ = std::move(admission.response_headers);
  if (has_body && admission.body) body_ = std::move(*admission.body);
  phase_ = Phase::kAdmitted;
  if (admission.endpoints.empty()) {
    // A backend that admits must pick; treat an empty pick as "no endpoints".
    Reject(503, ErrorJson("no ready endpoints", "service_unavailable", 503),
           "rejected-no-endpoints", out);
    return;
  }

  std::string destination;
  for (const auto& endpoint : admission.endpoints) {
    if (!destination.empty()) destination += ',';
    destination += endpoint;
  }
  auto& headers_response = *out.Add();
  auto* common = headers_response.mutable_request_headers()->mutable_response();
  common->set_clear_route_cache(true);
  auto* mutation = common->mutable_header_mutation();
  AddHeader(mutation, kDestinationHeader, destination);
  if (has_body && !body_.empty()) {
    AddHeader(mutation, "content-length", fmt::format("{}", body_.size()));
  }
  for (const auto& [key, value] : admission.upstream_headers) {
    AddHeader(mutation, Lower(key), value);
  }
  // Built in place: a Value built aside and moved in is copied when the reply is on an arena.
  google::protobuf::Value& lb = (*headers_response.mutable_dynamic_metadata()
                                      ->mutable_fields())[std::string(kLbMetadataNamespace)];
  (*lb.mutable_struct_value()->mutable_fields())[std::string(kDestinationHeader)].set_string_value(
      std::move(destination));

  if (has_body && body_.size() <= kMaxBodyChunkBytes) {
    // One chunk: the buffered body moves into it (no copy).
    auto* streamed = out.Add()
                         ->mutable_request_body()
                         ->mutable_response()
                         ->mutable_body_mutation()
                         ->mutable_streamed_response();
    streamed->set_body(std::move(body_));
    streamed->set_end_of_stream(true);
  } else if (has_body) {
    AppendChunks(
        body_, /*end_of_stream=*/true,
        [](ext_proc_pb::ProcessingResponse& r) { return r.mutable_request_body(); }, out);
  }
  std::string().swap(body_);  // the request body is not needed any more
}

void StreamProcessor::Reject(int http_status, std::string_view json_body,
                             std::string_view dropped_reason, Replies& out) {
  auto* immediate = out.Add()->mutable_immediate_response();
  immediate->mutable_status()->set_code(static_cast<envoy::type::v3::StatusCode>(http_status));
  auto* headers = immediate->mutable_headers();
  AddHeader(headers, "content-type", "application/json");
  AddHeader(headers, kProfileHeader, backend_.profile_header());
  if (!dropped_reason.empty()) AddHeader(headers, kDroppedReasonHeader, dropped_reason);
  immediate->set_body(std::string(json_body));
  immediate->set_details(fmt::format("zumik_epp_{}", http_status));
  finished_ = true;
  Finish();
}

absl::Status StreamProcessor::OnResponseHeaders(const ext_proc_pb::HttpHeaders& headers,
                                                Replies& out) {
  if (phase_ != Phase::kAdmitted) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "response_headers before the request was answered");
  }
  int status = 0;
  std::string content_type;
  for (const auto& h : headers.headers().headers()) {
    std::string key = Lower(h.key());
    const std::string& value = ValueOf(h);
    if (key == ":status") {
      int parsed = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
      if (ec == std::errc() && ptr == value.data() + value.size()) status = parsed;
    } else if (key == "content-type") {
      content_type = value;
    }
  }
  backend_.OnResponseHeaders(ctx_.get(), status, content_type);
  auto* mutation =
      out.Add()->mutable_response_headers()->mutable_response()->mutable_header_mutation();
  AddHeader(mutation, kProfileHeader, backend_.profile_header());
  for (const auto& [key, value] : client_response_headers_) AddHeader(mutation, Lower(key), value);
  // The body Envoy gets back differs in length from the upstream's (the client's model name
  // written back): a stale Content-Length would truncate or hang the client's response.
  if (backend_.ResponseLengthMayChange(ctx_.get())) mutation->add_remove_headers("content-length");
  if (headers.end_of_stream()) {
    response_ended_ = true;
    backend_.OnResponseBody(ctx_.get(), {}, true);
    Finish();
  }
  return absl::OkStatus();
}

absl::Status StreamProcessor::OnResponseBody(const ext_proc_pb::HttpBody& body, Replies& out) {
  if (phase_ != Phase::kAdmitted || response_ended_) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "response_body before the request was answered or after end_of_stream");
  }
  bool end = body.end_of_stream() || body.end_of_stream_without_message();
  backend_.OnResponseBody(ctx_.get(), body.body(), end);
  std::string rewritten;
  std::string_view send = body.body();
  if (backend_.RewriteResponseBody(ctx_.get(), body.body(), end, rewritten)) send = rewritten;
  AppendChunks(
      send, end, [](ext_proc_pb::ProcessingResponse& r) { return r.mutable_response_body(); }, out);
  if (end) {
    response_ended_ = true;
    Finish();
  }
  return absl::OkStatus();
}

absl::Status StreamProcessor::OnResponseTrailers(Replies& out) {
  if (phase_ == Phase::kAwaitRequestHeaders || phase_ == Phase::kRequestBody) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "response_trailers before the request was answered");
  }
  if (!response_ended_ && phase_ == Phase::kAdmitted) {
    response_ended_ = true;
    backend_.OnResponseBody(ctx_.get(), {}, true);
    // Bytes the response rewrite held back go out before the trailers.
    std::string rest;
    if (backend_.RewriteResponseBody(ctx_.get(), {}, true, rest) && !rest.empty()) {
      AppendChunks(
          rest, false, [](ext_proc_pb::ProcessingResponse& r) { return r.mutable_response_body(); },
          out);
    }
  }
  Finish();
  out.Add()->mutable_response_trailers();
  return absl::OkStatus();
}

}  // namespace zumik::epp::extproc

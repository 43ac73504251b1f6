// The request pipeline as the ext_proc server sees it: one call per request event. Maps 1:1
// onto epp::Pipeline (pipeline_backend.h adapts it); tests and the fuzzer use fakes.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace zumik::epp::extproc {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct BackendAdmission {
  std::vector<std::string> endpoints;  // "ip:port": primary first, then fallbacks
  // The backend's per-request state, handed back to the On* calls (type-erased so the server
  // does not depend on the pipeline's types).
  std::shared_ptr<void> ctx;
  HeaderList upstream_headers;  // added to the request Envoy forwards upstream
  HeaderList response_headers;  // added to the response Envoy returns to the client
  // Replaces the request body Envoy forwards (and its Content-Length), when admission changed
  // it (a model-name rewrite).
  std::optional<std::string> body;
};

struct BackendRejection {
  int http_status = 500;
  std::string json_body;
  std::string dropped_reason;  // x-llm-d-request-dropped-reason ("" = none)
  // Refused only for saturation, and the backend has an admission queue: the server may hold
  // the request in it (see Backend::TryEnterQueue) and retry Admit instead of answering now.
  bool queueable = false;
  std::string model;  // the request's model, for the queue's metrics ("" if not parsed)
  // With `queueable`: the backend's parsed request, handed back to Readmit (may be null).
  std::shared_ptr<void> pending;
};

using AdmitResult = std::variant<BackendAdmission, BackendRejection>;

// Thread-safe: streams call it concurrently; one request's events arrive in order.
class Backend {
 public:
  virtual ~Backend() = default;
  // `headers` have lower-case names; `subset` = envoy.lb.subset_hint addresses, empty = all.
  virtual AdmitResult Admit(std::string_view path, const HeaderList& headers, std::string_view body,
                            std::span<const std::string> subset) = 0;
  // Retries a queued request: `pending` is its last queueable rejection's. The default admits
  // it again from scratch; a backend that kept the parsed request skips parsing the body.
  virtual AdmitResult Readmit(const std::shared_ptr<void>& /*pending*/, std::string_view path,
                              const HeaderList& headers, std::string_view body,
                              std::span<const std::string> subset) {
    return Admit(path, headers, body, subset);
  }
  // The proxy reports the endpoint ("ip:port") that actually served the request (Envoy's
  // envoy.lb x-gateway-destination-endpoint-served metadata on the response headers); called
  // before OnResponseHeaders, only when the metadata is present.
  virtual void OnServedBy(void* /*ctx*/, std::string_view /*endpoint*/) {}
  virtual void OnResponseHeaders(void* ctx, int status, std::string_view content_type) = 0;
  virtual void OnResponseBody(void* ctx, std::string_view chunk, bool end_of_stream) = 0;
  // The response is rewritten for the client (a model-name rewrite undone): true = send `out`
  // (appended to) instead of `chunk`; bytes may be held back until a later chunk or the end.
  virtual bool RewriteResponseBody(void* /*ctx*/, std::string_view /*chunk*/, bool /*end*/,
                                   std::string& /*out*/) {
    return false;
  }
  // RewriteResponseBody may change the response's length: the server drops Content-Length.
  virtual bool ResponseLengthMayChange(void* /*ctx*/) { return false; }
  // The stream went away before the exchange completed (Envoy cancelled it: its client left,
  // or the transport failed); called just before OnDone.
  virtual void OnPeerGone(void* /*ctx*/) {}
  // Idempotent; called on completion, cancel and error.
  virtual void OnDone(void* ctx) = 0;
  // Value of Agent-Execution-Profile on every client response.
  virtual const std::string& profile_header() const = 0;
  // A request body larger than this is answered 413 without calling Admit.
  virtual size_t max_body_bytes() const = 0;

  // The admission queue. Admit never blocks: a queueable rejection asks the server to take a
  // queue place (false: full or off; answer the rejection now), retry (Readmit) every
  // kAdmitRetryInterval while the result stays queueable, LeaveQueue however the wait ends,
  // and answer QueueTimeout after queue_ttl. Without a queue no rejection is queueable.
  virtual bool TryEnterQueue(std::string_view /*model*/) { return false; }
  virtual void LeaveQueue() {}
  virtual BackendRejection QueueTimeout(std::string_view /*model*/) {
    return BackendRejection{429, "", "rejected-ttl-expired", false, "", nullptr};
  }
  virtual std::chrono::milliseconds queue_ttl() const { return {}; }
};

inline constexpr std::chrono::milliseconds kAdmitRetryInterval{5};

}  // namespace zumik::epp::extproc

// The EPP request pipeline shared by both transports (the ext_proc gRPC server and the
// standalone HTTP gateway): parse the body once → admission → scheduler pick on the current
// endpoint snapshot → observe the response (status, TTFT, usage) → complete the pick.
//
// Thread-safe: Admit/On* may be called from any thread at once. Parsing and admission run
// without locks; only the Scheduler call (which is single-threaded by design) is serialised.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/rng.h"
#include "epp/body_parser.h"
#include "epp/datastore.h"
#include "epp/epp_metrics.h"
#include "epp/model_rewrite.h"
#include "epp/model_rules.h"
#include "epp/response_homes.h"
#include "epp/usage_parser.h"
#include "sched/request.h"
#include "sched/saturation.h"
#include "sched/scheduler.h"

namespace zumik::epp {

// Per-request state, created by Admit and handed back to the On* calls. A transport keeps
// the shared_ptr for the life of the request; it is not shared between threads at once
// (one request's events arrive in order).
struct RequestContext {
  sched::PickHandle handle = sched::kNoPickHandle;
  std::string request_id;
  std::string model;         // as sent by the client ("" for bodiless requests)
  std::string target_model;  // after a rewrite header or rule; "" = model
  // Writes the client's model name back into the response when the request was rewritten
  // (see Pipeline::RestoreModelName).
  std::optional<ModelNameRestorer> model_restorer;
  std::string primary;  // "ip:port" picked first
  // The endpoint that answered when the transport moved past the primary ("" = the primary);
  // set through Pipeline::OnServedBy.
  std::string served_by;
  int priority = 0;
  bool client_stream = false;  // the body asked for "stream": true
  bool streaming = false;      // the response is text/event-stream (set by OnResponseHeaders)
  int status = 0;              // upstream response status, 0 before OnResponseHeaders
  // The client left before the response ended (set by the transport when it knows): a request
  // with no upstream status then counts as error 499, not 502.
  bool client_gone = false;
  int64_t request_bytes = 0;
  int64_t response_bytes = 0;
  Time started{};
  Time first_byte{};  // zero until the first response body byte
  bool first_token_seen = false;
  bool chat = false;     // /v1/chat/completions: the response text is an assistant message
  uint32_t samples = 1;  // the request's n: choices whose texts continue the prompt
  UsageParser usage;
  // The request's metric series (null without metrics or before admission).
  EppMetrics::ModelSeries* series = nullptr;
  std::atomic<bool> done{false};
};

struct Admission {
  std::vector<std::string> endpoints;  // "ip:port": primary first, then fallbacks
  std::shared_ptr<RequestContext> ctx;
  // Headers to add to the upstream request (x-request-id when generated) and to the client
  // response (e.g. a session token from a session-affinity scorer).
  std::vector<std::pair<std::string, std::string>> upstream_headers;
  std::vector<std::pair<std::string, std::string>> response_headers;
  // The body to send upstream instead of the client's, when admission changed it: a model-name
  // rewrite header names the model the endpoint serves the request as (RewriteModel).
  std::optional<std::string> body;
};

// A request parsed for admission and not yet admitted (defined in pipeline.cc): a queued
// request is placed again from it (Pipeline::Readmit) without parsing its body again.
struct PendingRequest;

struct Rejection {
  int http_status = 500;       // 400 / 404 / 413 / 429 / 503
  std::string json_body;       // {"error":{"message","type","param","code"}}
  std::string dropped_reason;  // x-llm-d-request-dropped-reason value ("" when not shed)
  // A sheddable request refused because the pool is saturated: a transport with its own
  // (async) queue may retry it until PipelineOptions::queue_ttl (see Admit's may_wait).
  // Such a rejection is not yet counted in the metrics (see TryEnterQueue, QueueTimeout).
  bool queueable = false;
  std::string metrics_model;  // model_name label of the request ("" before the body parsed)
  // With `queueable`: the request as parsed, for Readmit; null otherwise.
  std::shared_ptr<PendingRequest> pending;
};

struct PipelineOptions {
  // Built-in policy name (sched/builtin_policies.h) or EndpointPickerConfig file.
  std::string policy = "zumik-default";
  uint64_t seed = 1;
  std::string profile_header = "byoc_epp";  // value of Agent-Execution-Profile
  sched::SaturationThresholds saturation;
  // Body larger than this is rejected with 413.
  size_t max_body_bytes = 64 << 20;
  // Fallback endpoints returned after the primary, at most.
  int max_fallbacks = 2;
  // When the picker names fewer targets, fill the fallback list with the least-loaded other
  // ready candidates (the gateway retries on them when connecting fails; Envoy walks them).
  bool fill_fallbacks = true;
  // Optional bounded queue for sheddable requests instead of an immediate 429: requests
  // wait (up to queue_ttl) for the pool to leave saturation. 0 = no queue.
  int max_queued = 0;
  Duration queue_ttl = std::chrono::seconds(5);
  // A ready endpoint whose last good scrape is older than this is not picked while another
  // candidate's is not (a hung model server answers neither requests nor /metrics). Never
  // applied when every candidate's metrics are that old, or to one never scraped. 0 = off.
  // The EPP raises it to at least two scrape intervals plus the scrape timeout.
  Duration unresponsive_after = std::chrono::seconds(5);
  // Match subset-hint entries by IP only (GIE v1.0.0 behaviour) instead of ip:port.
  bool subset_match_ip_only = false;
  // InferenceObjective priorities (by the name in header x-llm-d-inference-objective /
  // x-gateway-inference-objective) and model rewrite rules given on the command line; the
  // cluster's objects (SetClusterRules) take precedence over them. A header value that names
  // no objective but is an integer is taken as the priority itself; other names are priority 0.
  ModelRules rules;
  // Responses API ids remembered with the endpoint that answered them (see response_homes.h).
  size_t max_remembered_responses = 100'000;
};

class Pipeline {
 public:
  // `datastore` and `metrics` (may be null) must outlive the Pipeline.
  static absl::StatusOr<std::unique_ptr<Pipeline>> Create(PipelineOptions options,
                                                          Datastore& datastore,
                                                          EppMetrics* metrics = nullptr,
                                                          Clock& clock = RealClock::Instance());
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Parses the body once into an InferenceRequest (completions prompt / chat messages, model,
  // stream, priority header, session, x-llm-d-slo-ttft-ms), runs admission and the scheduler
  // on the current immutable endpoint snapshot, records the pick. `subset` =
  // envoy.lb.subset_hint addresses ("ip:port"), empty = all endpoints. Header names are
  // matched case-insensitively. A bodiless request (GET, empty body) picks a random ready
  // endpoint and needs no model.
  // With `may_wait` and the bounded queue on (max_queued > 0), a sheddable request refused for
  // saturation waits here (blocking the calling thread, polling every 5 ms) up to queue_ttl;
  // without it such a Rejection comes back with `queueable` set (the gateway queues it on a
  // timer instead of blocking an io thread; see TryEnterQueue).
  // Metrics count each request once, by its final outcome: an admission (possibly after
  // waiting) or one rejection. A queueable Rejection returned with !may_wait is not counted
  // here: the transport either gets a queue place (and retries with Readmit, whose queueable
  // rejections are not counted either) or is refused by TryEnterQueue, which counts it.
  std::variant<Admission, Rejection> Admit(
      std::string_view path, const std::vector<std::pair<std::string, std::string>>& headers,
      std::string_view body, std::span<const std::string> subset, bool may_wait = true);

  // Places a queued request again: `pending` is a queueable Rejection's. The body is not parsed
  // again, and the request keeps its id, its start time (so its durations include the wait)
  // and its model-rewrite draw. The body given to Admit must be alive and unchanged until the
  // request is admitted or given up. Counted as Admit(may_wait = false) counts.
  std::variant<Admission, Rejection> Readmit(const std::shared_ptr<PendingRequest>& pending,
                                             std::span<const std::string> subset);

  // A request the transport refused before admission (the gateway's 405 for a wrong method,
  // 400 for a target that is no path): counted as a request and an error, with no model.
  void CountRefused(int http_status) { CountRejection({}, http_status); }

  // A place in the bounded admission queue: false when it is full (or off). Call it for a
  // queueable Rejection: false means the caller answers that rejection now, and it is
  // counted here as a 429 (label `model`, e.g. Rejection::metrics_model).
  bool TryEnterQueue(std::string_view model = {});
  void LeaveQueue();
  // The 429 a request gets when its queue wait times out (counted in the metrics).
  Rejection QueueTimeout(std::string_view model);

  // The transport reports which endpoint ("ip:port") actually serves the request: the gateway
  // after moving past a primary it could not reach, the ext_proc server from Envoy's
  // envoy.lb x-gateway-destination-endpoint-served metadata. A different endpoint than the
  // primary takes over the request in the scheduler (load, prefix index, completion) and
  // becomes the home of a stored response. The primary (or "") changes nothing; an address
  // outside the pool is only remembered in ctx.served_by.
  void OnServedBy(RequestContext& ctx, std::string_view address);
  // Upstream response headers arrived: its status; `content_type` marks SSE streams.
  void OnResponseHeaders(RequestContext& ctx, int status, std::string_view content_type = {});
  // SSE or JSON usage; the first non-empty chunk = TTFT.
  void OnResponseBody(RequestContext& ctx, std::string_view chunk, bool end_of_stream);
  // Idempotent; in-flight −1; also on cancel/error.
  void OnDone(RequestContext& ctx);
  // The bytes to send the client for a response chunk: false = send `chunk` as it is; true =
  // send `out` (appended to) instead, which writes the client's model name back where a
  // rewrite changed it (and may hold bytes back until a later chunk or `end`).
  static bool RestoreModelName(RequestContext& ctx, std::string_view chunk, bool end,
                               std::string& out);

  // The InferenceObjectives and InferenceModelRewrites of the cluster (Kubernetes mode),
  // replacing the previous set; they rank before PipelineOptions::rules. Any thread.
  void SetClusterRules(std::shared_ptr<const ModelRules> rules);

  const std::string& profile_header() const { return options_.profile_header; }
  const PipelineOptions& options() const { return options_; }
  Datastore& datastore() { return datastore_; }
  sched::SchedulerStats SchedulerStats() const;
  // The scheduler's load of an endpoint address (tests, metrics); all zero if unknown.
  sched::EndpointLoad Load(std::string_view address) const;
  // Its in-flight count (sequences).
  int64_t InFlight(std::string_view address) const { return Load(address).requests; }
  // Requests waiting in the admission queue now.
  int queued() const { return queued_.load(); }
  // Responses API ids whose endpoint is remembered.
  size_t remembered_responses() const { return response_homes_.size(); }

 private:
  Pipeline(PipelineOptions options, Datastore& datastore, EppMetrics* metrics, Clock& clock);
  // Builds a rejection; counting it is up to Admit (only final outcomes count).
  Rejection Reject(int status, std::string_view message, std::string_view type,
                   std::string_view code, std::string_view label_model);
  void CountRejection(std::string_view label_model, int status);
  // `candidates` with the unresponsive ones (see PipelineOptions::unresponsive_after) marked
  // not ready, copied into `storage` when there are any; else `candidates` itself.
  std::span<const sched::Endpoint> Responsive(std::span<const sched::Endpoint> candidates, Time now,
                                              std::vector<sched::Endpoint>& storage) const;
  // The ready candidate that answered Responses API id `response_id`, if remembered.
  const sched::Endpoint* HomeOf(std::string_view response_id,
                                std::span<const sched::Endpoint> candidates);
  // A final rejection is counted (a queueable one is not final).
  std::variant<Admission, Rejection> Counted(std::variant<Admission, Rejection> result);
  // Parses the request once: what does not depend on the pool.
  std::variant<std::shared_ptr<PendingRequest>, Rejection> Prepare(
      std::string_view path, const std::vector<std::pair<std::string, std::string>>& headers,
      std::string_view body);
  // Admission and the pick on the current snapshot; a queueable rejection carries `pending`.
  std::variant<Admission, Rejection> Place(const std::shared_ptr<PendingRequest>& pending,
                                           std::span<const std::string> subset);

  PipelineOptions options_;
  Datastore& datastore_;
  EppMetrics* metrics_;
  Clock& clock_;
  Rng rng_;
  mutable std::mutex sched_mu_;
  std::unique_ptr<sched::Scheduler> scheduler_;  // guarded by sched_mu_
  std::string session_header_;                   // lower-case; fixed at creation
  bool collect_response_text_ = false;           // the policy indexes responses; fixed at creation
  std::atomic<int> queued_{0};
  std::atomic<uint64_t> request_seq_{0};
  std::atomic<uint64_t> rewrite_draws_{0};
  mutable std::mutex rules_mu_;
  std::shared_ptr<const ModelRules> cluster_rules_;  // guarded by rules_mu_; null when empty
  std::atomic<bool> have_cluster_rules_{false};      // cluster_rules_ != null, read unlocked
  ResponseHomes response_homes_;
};

}  // namespace zumik::epp

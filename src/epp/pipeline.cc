// The EPP request pipeline (see pipeline.h).
#include "epp/pipeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <thread>

#include "core/hex.h"
#include "core/http/errors.h"
#include "core/status.h"
#include "core/utf8.h"
#include "epp/ascii.h"
#include "epp/model_rewrite.h"

namespace zumik::epp {
namespace json = boost::json;

namespace {

const std::string* FindHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                              std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (EqualsIgnoreCase(key, name)) return &value;
  }
  return nullptr;
}

const std::string* FindHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                              std::string_view name, std::string_view alias) {
  const std::string* v = FindHeader(headers, name);
  return v != nullptr ? v : FindHeader(headers, alias);
}

std::string_view HostOf(std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return address;
  std::string_view host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

std::string ErrorJson(int status, std::string_view message, std::string_view type,
                      std::string_view param, std::string_view code) {
  json::object error;
  error["message"] = json::string_view(message.data(), message.size());
  std::string_view t = type.empty() ? http::ErrorTypeForStatus(status) : type;
  error["type"] = json::string_view(t.data(), t.size());
  if (param.empty()) {
    error["param"] = nullptr;
  } else {
    error["param"] = json::string_view(param.data(), param.size());
  }
  if (code.empty()) {
    error["code"] = status;
  } else {
    error["code"] = json::string_view(code.data(), code.size());
  }
  json::object root;
  root["error"] = std::move(error);
  return json::serialize(root);
}

// A random v4-style id, 8-4-4-4-12 hex digits (not cryptographic; it only has to be unique
// enough for tracing).
std::string NewRequestId(Rng& rng) {
  uint64_t a = rng.Next();
  uint64_t b = rng.Next();
  a = (a & 0xffffffffffff0fffULL) | 0x4000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  std::string id(36, '-');
  char* out = id.data();
  out = WriteHex(out, a >> 32, 8) + 1;
  out = WriteHex(out, a >> 16, 4) + 1;
  out = WriteHex(out, a, 4) + 1;
  out = WriteHex(out, b >> 48, 4) + 1;
  WriteHex(out, b, 12);
  return id;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(PipelineOptions options,
                                                           Datastore& datastore,
                                                           EppMetrics* metrics, Clock& clock) {
  std::unique_ptr<Pipeline> pipeline(new Pipeline(std::move(options), datastore, metrics, clock));
  ASSIGN_OR_RETURN(pipeline->scheduler_,
                   sched::Scheduler::FromPolicy(pipeline->options_.policy, pipeline->rng_));
  pipeline->session_header_ = pipeline->scheduler_->SessionHeaderName();
  pipeline->collect_response_text_ = pipeline->scheduler_->WantsResponseText();
  if (metrics != nullptr) {
    Pipeline* self = pipeline.get();
    metrics->WatchPool(datastore, [self] {
      sched::SchedulerStats stats = self->SchedulerStats();
      EppMetrics::SchedulerGauges gauges;
      gauges.prefix_index_entries = stats.prefix_index_entries;
      gauges.prefix_index_bytes = stats.prefix_index_bytes;
      gauges.prefix_hit_ratio = stats.prefix_looked_up_blocks > 0
                                    ? static_cast<double>(stats.prefix_hit_blocks) /
                                          static_cast<double>(stats.prefix_looked_up_blocks)
                                    : 0.0;
      gauges.in_flight = stats.in_flight;
      return gauges;
    });
  }
  return pipeline;
}

Pipeline::Pipeline(PipelineOptions options, Datastore& datastore, EppMetrics* metrics, Clock& clock)
    : options_(std::move(options)),
      datastore_(datastore),
      metrics_(metrics),
      clock_(clock),
      rng_(options_.seed),
      response_homes_(options_.max_remembered_responses) {}

Pipeline::~Pipeline() = default;

sched::SchedulerStats Pipeline::SchedulerStats() const {
  std::lock_guard lock(sched_mu_);
  return scheduler_->Stats();
}

sched::EndpointLoad Pipeline::Load(std::string_view address) const {
  auto snapshot = datastore_.Current();
  int index = snapshot->Find(address);
  if (index < 0) return {};
  std::lock_guard lock(sched_mu_);
  return scheduler_->LoadOf(snapshot->endpoints[static_cast<size_t>(index)].id);
}

Rejection Pipeline::Reject(int status, std::string_view message, std::string_view type,
                           std::string_view code, std::string_view label_model) {
  Rejection r;
  r.http_status = status;
  r.json_body = ErrorJson(status, message, type, {}, code);
  r.metrics_model = std::string(label_model);
  return r;
}

void Pipeline::CountRejection(std::string_view label_model, int status) {
  if (metrics_ == nullptr) return;
  std::string model = label_model.empty() ? std::string() : metrics_->BoundModel(label_model);
  metrics_->RequestStarted(model, model);
  metrics_->RequestError(model, model, status);
}

bool Pipeline::TryEnterQueue(std::string_view model) {
  int current = queued_.load();
  while (current < options_.max_queued) {
    if (queued_.compare_exchange_weak(current, current + 1)) return true;
  }
  // The caller answers its queueable rejection now: this is where that 429 is counted.
  CountRejection(model, 429);
  return false;
}

void Pipeline::LeaveQueue() { queued_.fetch_sub(1); }

Rejection Pipeline::QueueTimeout(std::string_view model) {
  Rejection r = Reject(429, "system saturated: request expired in the admission queue",
                       "rate_limit_error", "rejected-ttl-expired", model);
  r.dropped_reason = "rejected-ttl-expired";
  CountRejection(r.metrics_model, r.http_status);
  return r;
}

// A request parsed for admission: what Place needs, again on each retry of a queued request.
struct PendingRequest {
  ApiKind kind = ApiKind::kUnknown;
  std::string_view body;  // the caller's request body (it outlives the pending request)
  // The stored response the request names: a bodiless retrieval's path, or a Responses API
  // request's previous_response_id.
  std::string response_id;
  std::shared_ptr<RequestContext> ctx;  // null once admitted
  std::vector<std::pair<std::string, std::string>> upstream_headers;
  ParsedBody parsed;  // `request.prompt` may point into it (or into `body`)
  sched::InferenceRequest request;
  std::optional<std::string> rewrite_source;  // the model rewrite rule that decided, if any
};

std::variant<Admission, Rejection> Pipeline::Counted(std::variant<Admission, Rejection> result) {
  if (auto* rejection = std::get_if<Rejection>(&result);
      rejection != nullptr && !rejection->queueable) {
    CountRejection(rejection->metrics_model, rejection->http_status);
  }
  return result;
}

std::variant<Admission, Rejection> Pipeline::Admit(
    std::string_view path, const std::vector<std::pair<std::string, std::string>>& headers,
    std::string_view body, std::span<const std::string> subset, bool may_wait) {
  // Every request is counted once, by its final outcome: a queueable rejection is not final
  // (the request may still be admitted after waiting), so it is counted only when the queue
  // gives up on it (TryEnterQueue full, QueueTimeout) — never on each retry while waiting.
  auto prepared = Prepare(path, headers, body);
  if (auto* rejection = std::get_if<Rejection>(&prepared)) return Counted(std::move(*rejection));
  std::shared_ptr<PendingRequest> pending = std::get<std::shared_ptr<PendingRequest>>(prepared);
  auto result = Counted(Place(pending, subset));
  auto* rejection = std::get_if<Rejection>(&result);
  if (rejection == nullptr || !rejection->queueable || !may_wait) return result;
  if (!TryEnterQueue(rejection->metrics_model)) {
    rejection->queueable = false;
    rejection->pending.reset();
    return result;
  }
  std::string model = rejection->metrics_model;
  Time deadline = clock_.Now() + options_.queue_ttl;
  bool waiting = true;
  while (waiting && clock_.Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    result = Readmit(pending, subset);
    rejection = std::get_if<Rejection>(&result);
    waiting = rejection != nullptr && rejection->queueable;
  }
  LeaveQueue();
  if (waiting) return QueueTimeout(model);
  return result;
}

std::variant<Admission, Rejection> Pipeline::Readmit(const std::shared_ptr<PendingRequest>& pending,
                                                     std::span<const std::string> subset) {
  if (pending == nullptr || pending->ctx == nullptr) {
    // Not a queued request's, or one already admitted: a transport's mistake, never a client's.
    return Counted(Reject(500, "internal error: the queued request is no longer pending",
                          "server_error", {}, {}));
  }
  return Counted(Place(pending, subset));
}

std::span<const sched::Endpoint> Pipeline::Responsive(std::span<const sched::Endpoint> candidates,
                                                      Time now,
                                                      std::vector<sched::Endpoint>& storage) const {
  const Duration limit = options_.unresponsive_after;
  if (limit <= Duration::zero()) return candidates;
  const Time cutoff = now - limit;  // a last good scrape before it is too old
  auto unresponsive = [&](const sched::Endpoint& e) {
    return e.ready && e.metrics.valid && e.metrics.scraped_at < cutoff;
  };
  bool any_answering = false, any_unresponsive = false;
  for (const sched::Endpoint& e : candidates) {
    if (!e.ready || !e.metrics.valid) continue;
    (unresponsive(e) ? any_unresponsive : any_answering) = true;
  }
  // All stale: scraping itself may be what fails, and refusing everything would not help.
  if (!any_answering || !any_unresponsive) return candidates;
  storage.assign(candidates.begin(), candidates.end());
  for (sched::Endpoint& e : storage) {
    if (unresponsive(e)) e.ready = false;
  }
  return storage;
}

const sched::Endpoint* Pipeline::HomeOf(std::string_view response_id,
                                        std::span<const sched::Endpoint> candidates) {
  if (response_id.empty()) return nullptr;
  std::optional<std::string> home = response_homes_.Find(response_id);
  if (!home) return nullptr;
  for (const sched::Endpoint& e : candidates) {
    if (e.ready && e.address == *home) return &e;
  }
  return nullptr;  // gone or not ready: routed as usual (its replica answers if it has it)
}

std::variant<std::shared_ptr<PendingRequest>, Rejection> Pipeline::Prepare(
    std::string_view path, const std::vector<std::pair<std::string, std::string>>& headers,
    std::string_view body) {
  ApiKind kind = ApiKindOfPath(path);
  if (kind == ApiKind::kUnknown) {
    return Reject(404, fmt::format("unknown path '{}'", path.substr(0, 200)), "not_found_error", {},
                  {});
  }
  if (body.size() > options_.max_body_bytes) {
    return Reject(413,
                  fmt::format("request body of {} bytes is over the limit of {}", body.size(),
                              options_.max_body_bytes),
                  "invalid_request_error", {}, {});
  }

  auto pending = std::make_shared<PendingRequest>();
  pending->kind = kind;
  pending->body = body;
  auto ctx = std::make_shared<RequestContext>();
  pending->ctx = ctx;
  ctx->started = clock_.Now();
  ctx->request_bytes = static_cast<int64_t>(body.size());
  if (const std::string* id = FindHeader(headers, "x-request-id"); id != nullptr && !id->empty()) {
    ctx->request_id = *id;
  } else {
    std::lock_guard lock(sched_mu_);
    ctx->request_id = NewRequestId(rng_);
    pending->upstream_headers.emplace_back("x-request-id", ctx->request_id);
  }
  if (IsBodiless(kind)) {
    pending->response_id = ResponseIdOfPath(path);
    return pending;
  }

  // The body outlives the pending request (the caller keeps it): a prompt without escapes is
  // hashed where it stands.
  BodyParseResult parsed = ParseBody(kind, body, /*borrow_prompt=*/true);
  if (!parsed.ok) {
    Rejection r;
    r.http_status = parsed.error.http_status;
    r.json_body = ErrorJson(r.http_status, parsed.error.message, "invalid_request_error",
                            parsed.error.param, {});
    return r;
  }
  // The prompt may point into the parsed body: it is taken after the body found its place.
  pending->parsed = std::move(parsed.body);
  ParsedBody& parsed_body = pending->parsed;

  sched::InferenceRequest& request = pending->request;
  request.request_id = ctx->request_id;
  request.model = std::move(parsed_body.model);
  if (const std::string* rewrite =
          FindHeader(headers, "x-llm-d-model-name-rewrite", "x-gateway-model-name-rewrite");
      rewrite != nullptr && !rewrite->empty()) {
    if (!IsUtf8(*rewrite)) {
      // It becomes the upstream body's model: a JSON string must be UTF-8.
      return Reject(400, "the model-name rewrite header is not valid UTF-8",
                    "invalid_request_error", {}, {});
    }
    request.target_model = *rewrite;
  }
  request.prompt = parsed_body.Prompt();
  request.cache_salt = std::move(parsed_body.cache_salt);
  std::shared_ptr<const ModelRules> cluster_rules;
  if (have_cluster_rules_.load(std::memory_order_acquire)) {  // most pools have none
    std::lock_guard lock(rules_mu_);
    cluster_rules = cluster_rules_;
  }
  // An InferenceModelRewrite rule for the client's model decides over the header, as upstream
  // applies the rules after the header.
  const RewriteRule* rule = cluster_rules ? cluster_rules->RuleFor(request.model) : nullptr;
  if (rule == nullptr) rule = options_.rules.RuleFor(request.model);
  if (rule != nullptr) {
    // Draw n of the seed's SplitMix64 stream: reproducible, and lock-free across threads.
    uint64_t state = options_.seed + rewrite_draws_.fetch_add(1) * 0x9e3779b97f4a7c15ULL;
    const uint64_t draw = SplitMix64(state);
    request.target_model = ModelRules::PickTarget(*rule, draw);
    pending->rewrite_source = rule->source;
  }
  if (const std::string* objective =
          FindHeader(headers, "x-llm-d-inference-objective", "x-gateway-inference-objective");
      objective != nullptr) {
    std::optional<int> priority;
    if (cluster_rules) priority = cluster_rules->Priority(*objective);
    if (!priority) priority = options_.rules.Priority(*objective);
    if (priority) {
      request.priority = *priority;
    } else {
      int value = 0;
      auto [ptr, ec] =
          std::from_chars(objective->data(), objective->data() + objective->size(), value);
      if (ec == std::errc() && ptr == objective->data() + objective->size()) {
        request.priority = value;
      }
    }
  }
  if (!session_header_.empty()) {
    if (const std::string* session = FindHeader(headers, session_header_); session != nullptr) {
      request.session_key = *session;
    }
  }
  if (const std::string* slo = FindHeader(headers, "x-llm-d-slo-ttft-ms", "x-slo-ttft-ms");
      slo != nullptr) {
    double value = 0;
    auto [ptr, ec] = std::from_chars(slo->data(), slo->data() + slo->size(), value);
    if (ec == std::errc() && value > 0 && value < 1e9) request.slo_ttft_ms = value;
  }
  if (kind == ApiKind::kResponses) {
    ctx->usage.set_capture_response_id(true);
    pending->response_id = std::move(parsed_body.previous_response_id);
  }
  ctx->model = request.model;
  ctx->target_model = request.target_model;
  ctx->priority = request.priority;
  ctx->client_stream = parsed_body.stream;
  ctx->samples = parsed_body.n;
  request.sequences = static_cast<int32_t>(parsed_body.Sequences());  // at most 1024 x 1024
  request.batch_tokens = sched::TokensOfBytes(parsed_body.batch_bytes);
  return pending;
}

std::variant<Admission, Rejection> Pipeline::Place(const std::shared_ptr<PendingRequest>& pending,
                                                   std::span<const std::string> subset) {
  Time now = clock_.Now();
  const ApiKind kind = pending->kind;
  RequestContext& ctx = *pending->ctx;

  // The candidate endpoints: the whole pool, or the proxy's subset hint.
  std::shared_ptr<const Snapshot> snapshot = datastore_.Current();
  std::span<const sched::Endpoint> candidates = snapshot->endpoints;
  std::vector<sched::Endpoint> subset_endpoints;
  if (!subset.empty()) {
    for (const auto& e : snapshot->endpoints) {
      for (const auto& hint : subset) {
        bool match =
            options_.subset_match_ip_only ? HostOf(hint) == HostOf(e.address) : hint == e.address;
        if (match) {
          subset_endpoints.push_back(e);
          break;
        }
      }
    }
    candidates = subset_endpoints;
  }
  std::vector<sched::Endpoint> responsive_endpoints;
  candidates = Responsive(candidates, now, responsive_endpoints);
  bool any_ready = std::any_of(candidates.begin(), candidates.end(),
                               [](const sched::Endpoint& e) { return e.ready; });

  // Admitted: the request's state moves into the admission (the pending request is spent).
  auto admit = [&](Admission& admission) {
    admission.upstream_headers = std::move(pending->upstream_headers);
    ctx.primary = admission.endpoints.front();
    admission.ctx = std::move(pending->ctx);
  };
  if (IsBodiless(pending->kind)) {
    if (!any_ready) {
      Rejection r = Reject(503, "no ready endpoints", "server_error", "rejected-no-endpoints", {});
      r.dropped_reason = "rejected-no-endpoints";
      return r;
    }
    Admission admission;
    // A stored response lives on the replica that created it, and only there.
    if (const sched::Endpoint* home = HomeOf(pending->response_id, candidates)) {
      admission.endpoints.push_back(home->address);
      admit(admission);
      return admission;
    }
    std::vector<const sched::Endpoint*> ready;
    for (const auto& e : candidates) {
      if (e.ready) ready.push_back(&e);
    }
    size_t first;
    {
      std::lock_guard lock(sched_mu_);
      first = static_cast<size_t>(rng_.UniformInt(0, static_cast<int64_t>(ready.size()) - 1));
    }
    for (size_t i = 0; i < ready.size() && static_cast<int>(i) <= options_.max_fallbacks; ++i) {
      admission.endpoints.push_back(ready[(first + i) % ready.size()]->address);
    }
    admit(admission);
    return admission;
  }

  sched::InferenceRequest& request = pending->request;
  // A Responses API follow-up of a stored response goes where that response is stored: the
  // policy still picks (and accounts for it), among that endpoint alone, with no fallbacks.
  bool pinned = false;
  std::vector<sched::Endpoint> home_endpoint;
  if (kind == ApiKind::kResponses) {
    if (const sched::Endpoint* home = HomeOf(pending->response_id, candidates)) {
      home_endpoint.push_back(*home);
      candidates = home_endpoint;
      pinned = true;
    }
  }
  // The model label of a rejection (BoundModel registers the name, as admission does).
  auto label_model = [&] {
    return metrics_ != nullptr ? metrics_->BoundModel(request.model) : std::string();
  };

  if (!any_ready) {
    Rejection r = Reject(503, "no ready endpoints in the pool", "server_error",
                         "rejected-no-endpoints", label_model());
    r.dropped_reason = "rejected-no-endpoints";
    return r;
  }
  // Legacy admission: only sheddable requests are checked against saturation.
  if (request.priority < 0 && sched::IsSaturated(candidates, now, options_.saturation)) {
    Rejection r = Reject(429, "system saturated, sheddable request dropped", "rate_limit_error",
                         "rejected-saturated", label_model());
    r.dropped_reason = "rejected-saturated";
    r.queueable = options_.max_queued > 0;
    if (r.queueable) r.pending = pending;
    return r;
  }

  absl::StatusOr<sched::PickResult> pick;
  // The other ready candidates as (in-flight requests, index): sorted, least loaded first and
  // in candidate order among equals (std::stable_sort would allocate a buffer per request).
  std::vector<std::pair<int64_t, uint32_t>> fallbacks;
  auto sched_start = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(sched_mu_);
    pick = scheduler_->Pick(request, candidates, now);
    if (pick.ok() && options_.fill_fallbacks && !pinned &&
        static_cast<int>(pick->target_indices.size()) <= options_.max_fallbacks) {
      // The picker named fewer endpoints than the fallback list may hold: add the least
      // loaded other ready candidates, so a connect failure can move on.
      for (uint32_t i = 0; i < candidates.size(); ++i) {
        if (!candidates[i].ready) continue;
        if (std::find(pick->target_indices.begin(), pick->target_indices.end(), i) !=
            pick->target_indices.end()) {
          continue;
        }
        fallbacks.emplace_back(scheduler_->LoadOf(candidates[i].id).requests, i);
      }
      std::sort(fallbacks.begin(), fallbacks.end());
    }
  }
  if (metrics_ != nullptr) {
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - sched_start;
    metrics_->SchedulerDuration(took.count(), pick.ok());
  }
  if (!pick.ok()) {
    int status = http::HttpStatusFromStatus(pick.status());
    if (status != 429 && status != 503) status = 500;
    Rejection r = Reject(status, fmt::format("scheduling failed: {}", MessageOf(pick.status())), {},
                         status == 429 ? "rejected-saturated" : "", label_model());
    if (status == 429) r.dropped_reason = "rejected-saturated";
    return r;
  }

  Admission admission;
  admission.endpoints.reserve(static_cast<size_t>(options_.max_fallbacks) + 1);
  for (size_t i = 0; i < pick->target_indices.size(); ++i) {
    if (static_cast<int>(i) > options_.max_fallbacks) break;
    admission.endpoints.push_back(candidates[pick->target_indices[i]].address);
  }
  for (const auto& ranked : fallbacks) {
    if (static_cast<int>(admission.endpoints.size()) > options_.max_fallbacks) break;
    admission.endpoints.push_back(candidates[ranked.second].address);
  }
  for (auto& header : pick->response_headers) admission.response_headers.push_back(header);
  if (!request.target_model.empty() && request.target_model != request.model) {
    admission.body = RewriteModel(pending->body, request.target_model);
    ctx.model_restorer.emplace(request.target_model, request.model);
  }
  ctx.handle = pick->handle;
  // The response text continues the hashed prompt: completions append it, chat and the
  // Responses API (whose input is hashed as chat messages) an assistant message.
  if (collect_response_text_ && kind != ApiKind::kEmbeddings) {
    ctx.chat = kind != ApiKind::kCompletions;
    ctx.usage.set_collect_text(true,
                               kind == ApiKind::kResponses ? UsageParser::TextSource::kResponses
                                                           : UsageParser::TextSource::kChoice,
                               ctx.samples);
  }
  if (metrics_ != nullptr) {
    // Counted once per admitted request (a queued request is placed again on each retry).
    if (pending->rewrite_source) {
      metrics_->RewriteDecision(*pending->rewrite_source, request.model, request.target_model);
    }
    ctx.series = &metrics_->Series(request.model, request.target_model);
    metrics_->RequestStarted(*ctx.series);
    metrics_->RequestRunning(*ctx.series, 1);
  }
  admit(admission);
  return admission;
}

bool Pipeline::RestoreModelName(RequestContext& ctx, std::string_view chunk, bool end,
                                std::string& out) {
  if (!ctx.model_restorer) return false;
  ctx.model_restorer->Feed(chunk, end, out);
  return true;
}

void Pipeline::SetClusterRules(std::shared_ptr<const ModelRules> rules) {
  std::lock_guard lock(rules_mu_);
  if (rules != nullptr && rules->empty()) rules.reset();
  have_cluster_rules_.store(rules != nullptr, std::memory_order_release);
  cluster_rules_ = std::move(rules);
}

void Pipeline::OnServedBy(RequestContext& ctx, std::string_view address) {
  if (address.empty() || address == ctx.primary || address == ctx.served_by) return;
  ctx.served_by = address;
  if (ctx.handle == sched::kNoPickHandle) return;
  std::shared_ptr<const Snapshot> snapshot = datastore_.Current();
  const int index = snapshot->Find(address);
  if (index < 0) return;
  std::lock_guard lock(sched_mu_);
  scheduler_->OnServedBy(ctx.handle, snapshot->endpoints[static_cast<size_t>(index)]);
}

void Pipeline::OnResponseHeaders(RequestContext& ctx, int status, std::string_view content_type) {
  ctx.status = status;
  ctx.streaming = content_type.find("text/event-stream") != std::string_view::npos;
  ctx.usage.set_streaming(ctx.streaming);
}

void Pipeline::OnResponseBody(RequestContext& ctx, std::string_view chunk, bool end_of_stream) {
  if (!chunk.empty()) {
    ctx.response_bytes += static_cast<int64_t>(chunk.size());
    if (!ctx.first_token_seen) {
      ctx.first_token_seen = true;
      ctx.first_byte = clock_.Now();
      if (ctx.handle != sched::kNoPickHandle) {
        std::lock_guard lock(sched_mu_);
        scheduler_->OnFirstToken(ctx.handle, ctx.first_byte);
      }
      if (metrics_ != nullptr && ctx.series != nullptr) {
        metrics_->Ttft(*ctx.series, ctx.streaming, ToSeconds(ctx.first_byte - ctx.started));
      }
    }
  }
  if (end_of_stream) {
    ctx.usage.FinishWith(chunk);
  } else {
    ctx.usage.Feed(chunk);
  }
}

void Pipeline::OnDone(RequestContext& ctx) {
  if (ctx.done.exchange(true)) return;
  Time now = clock_.Now();
  ctx.usage.Finish();
  const Usage& usage = ctx.usage.usage();
  bool success = ctx.status >= 200 && ctx.status < 300;
  if (success && !ctx.usage.response_id().empty()) {
    response_homes_.Remember(ctx.usage.response_id(),
                             ctx.served_by.empty() ? ctx.primary : ctx.served_by);
  }
  if (ctx.handle != sched::kNoPickHandle) {
    sched::Completion completion;
    completion.success = success;
    completion.prompt_tokens = usage.prompt_tokens;
    completion.cached_tokens = usage.cached_tokens;
    completion.output_tokens = usage.completion_tokens;
    // Each sample as the client's next prompt carries it: completions append the text; chat
    // appends an assistant message, rendered as the prompt renderer renders one.
    const std::vector<std::string>& texts = ctx.usage.texts();
    std::vector<std::string> assistants(ctx.chat ? texts.size() : 0);
    if (success) {
      for (size_t i = 0; i < texts.size(); ++i) {
        if (texts[i].empty()) continue;
        if (ctx.chat) {
          sched::AppendChatMessage(assistants[i], "assistant", texts[i]);
          completion.response_texts.push_back(assistants[i]);
        } else {
          completion.response_texts.push_back(texts[i]);
        }
      }
    }
    std::lock_guard lock(sched_mu_);
    scheduler_->OnComplete(ctx.handle, now, completion);
  }
  if (metrics_ != nullptr && ctx.series != nullptr) {
    EppMetrics::ModelSeries& series = *ctx.series;
    metrics_->RequestRunning(series, -1);
    metrics_->RequestFinished(series, ToSeconds(now - ctx.started), ctx.request_bytes,
                              ctx.response_bytes);
    metrics_->Tokens(series, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens);
    if (success) metrics_->RequestSucceeded(series, ctx.model, ctx.target_model);
    // No response at all: 499 when the client left first (nginx's "client closed request"),
    // else 502 (connect failures).
    if (!success) {
      const int code = ctx.status != 0 ? ctx.status : ctx.client_gone ? 499 : 502;
      metrics_->RequestError(series, code);
    }
  }
}

}  // namespace zumik::epp

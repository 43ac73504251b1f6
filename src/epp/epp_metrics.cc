// The EPP's llm_d_epp_* metrics (see epp_metrics.h).
#include "epp/epp_metrics.h"

#include <fmt/format.h>

#include <cmath>

#include "core/status.h"
#include "epp/datastore.h"

namespace zumik::epp {
namespace {

template <typename Child, typename Family>
Child& Get(EppMetrics::LazySeries<Child>& lazy, Family* family,
           std::initializer_list<std::string_view> labels) {
  std::call_once(lazy.once, [&] { lazy.child = family->With(labels); });
  return *lazy.child;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EppMetrics>> EppMetrics::Create(std::string pool_name) {
  std::unique_ptr<EppMetrics> m(new EppMetrics());
  RETURN_IF_ERROR(m->Init(std::move(pool_name)));
  return m;
}

absl::Status EppMetrics::Init(std::string pool_name) {
  pool_name_ = std::move(pool_name);
  auto& r = registry_;
  const std::vector<std::string> model_labels = {"model_name", "target_model_name"};
  std::vector<double> seconds = {0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5,
                                 2,     3,     4,    5,   6,   8,   10,  15,  20,  30,   45,
                                 60,    120,   180,  240, 300, 360, 480, 600, 900, 1200, 1800};
  std::vector<double> ttft = {0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25,
                              0.5,   0.75,  1.0,   2.5,  5.0,  10,   20,   40,   80,  160};
  std::vector<double> sched_buckets = {0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001,
                                       0.002,   0.005,   0.01,    0.02,   0.05,   0.1};
  std::vector<double> tokens = metrics::ExponentialBuckets(1, 2, 24);
  std::vector<double> bytes = metrics::ExponentialBuckets(64, 4, 14);

  ASSIGN_OR_RETURN(request_total_,
                   r.AddCounter("llm_d_epp_request_total",
                                "Requests admitted or rejected, by model.", model_labels));
  ASSIGN_OR_RETURN(request_error_total_,
                   r.AddCounter("llm_d_epp_request_error_total", "Requests that failed, by code.",
                                {"model_name", "target_model_name", "error_code"}));
  ASSIGN_OR_RETURN(request_duration_,
                   r.AddHistogram("llm_d_epp_request_duration_seconds",
                                  "End-to-end request duration.", model_labels, seconds));
  ASSIGN_OR_RETURN(request_size_, r.AddHistogram("llm_d_epp_request_size_bytes",
                                                 "Request body size.", model_labels, bytes));
  ASSIGN_OR_RETURN(response_size_, r.AddHistogram("llm_d_epp_response_size_bytes",
                                                  "Response body size.", model_labels, bytes));
  ASSIGN_OR_RETURN(input_tokens_, r.AddHistogram("llm_d_epp_request_input_tokens",
                                                 "Prompt tokens (usage).", model_labels, tokens));
  ASSIGN_OR_RETURN(output_tokens_,
                   r.AddHistogram("llm_d_epp_request_output_tokens", "Completion tokens (usage).",
                                  model_labels, tokens));
  ASSIGN_OR_RETURN(
      cached_tokens_,
      r.AddHistogram("llm_d_epp_request_cached_tokens",
                     "Prompt tokens served from the prefix cache (usage).", model_labels, tokens));
  ASSIGN_OR_RETURN(request_running_,
                   r.AddGauge("llm_d_epp_request_running", "Requests in flight.", model_labels));
  ASSIGN_OR_RETURN(ttft_, r.AddHistogram("llm_d_epp_request_ttft_seconds",
                                         "Time to the first response body byte.",
                                         {"model_name", "target_model_name", "streaming"}, ttft));
  ASSIGN_OR_RETURN(scheduler_e2e_,
                   r.AddHistogram("llm_d_epp_scheduler_e2e_duration_seconds",
                                  "Time spent in the scheduler per pick.", {}, sched_buckets));
  ASSIGN_OR_RETURN(scheduler_attempts_,
                   r.AddCounter("llm_d_epp_scheduler_attempts_total",
                                "Scheduling attempts, by outcome.", {"status"}));
  ASSIGN_OR_RETURN(rewrite_decisions_,
                   r.AddCounter("llm_d_epp_model_rewrite_decisions_total",
                                "Model rewrites made by InferenceModelRewrite rules.",
                                {"model_rewrite_name", "model_name", "target_model"}));
  ASSIGN_OR_RETURN(scrape_errors_, r.AddCounter("llm_d_epp_metrics_scrape_errors_total",
                                                "Failed model-server metric scrapes."));
  ASSIGN_OR_RETURN(pool_kv_,
                   r.AddCallbackGauge("llm_d_epp_average_kv_cache_utilization",
                                      "Mean KV-cache utilization of ready endpoints.", {"name"}));
  ASSIGN_OR_RETURN(pool_queue_,
                   r.AddCallbackGauge("llm_d_epp_average_queue_size",
                                      "Mean waiting queue of ready endpoints.", {"name"}));
  ASSIGN_OR_RETURN(pool_running_,
                   r.AddCallbackGauge("llm_d_epp_average_running_requests",
                                      "Mean running requests of ready endpoints.", {"name"}));
  ASSIGN_OR_RETURN(ready_endpoints_, r.AddCallbackGauge("llm_d_epp_ready_endpoints",
                                                        "Ready endpoints in the pool.", {"name"}));
  ASSIGN_OR_RETURN(per_endpoint_queue_, r.AddCallbackGauge("llm_d_epp_per_endpoint_queue_size",
                                                           "Waiting queue per endpoint (scraped).",
                                                           {"name", "model_server_endpoint"}));
  ASSIGN_OR_RETURN(prefix_size_, r.AddCallbackGauge("llm_d_epp_prefix_indexer_size",
                                                    "Entries in the prefix index."));
  ASSIGN_OR_RETURN(prefix_hit_ratio_,
                   r.AddCallbackGauge("llm_d_epp_prefix_indexer_hit_ratio",
                                      "Prefix blocks hit / looked up, since start."));
  ASSIGN_OR_RETURN(in_flight_, r.AddCallbackGauge("llm_d_epp_scheduler_in_flight_requests",
                                                  "Requests the scheduler counts in flight."));
  return absl::OkStatus();
}

void EppMetrics::WatchPool(const Datastore& datastore,
                           std::function<SchedulerGauges()> scheduler_stats) {
  const Datastore* ds = &datastore;
  std::string pool = pool_name_;
  auto collect = [ds, pool](int which) {
    return [ds, pool, which](metrics::CallbackFamily::Emitter& emit) {
      auto snapshot = ds->Current();
      double kv = 0, queue = 0, running = 0;
      int ready = 0;
      for (const auto& e : snapshot->endpoints) {
        if (!e.ready) continue;
        ++ready;
        kv += e.metrics.kv_cache_usage;
        queue += static_cast<double>(e.metrics.waiting_requests);
        running += static_cast<double>(e.metrics.running_requests);
      }
      double n = ready > 0 ? ready : 1;
      switch (which) {
        case 0:
          emit.Emit({pool}, kv / n);
          break;
        case 1:
          emit.Emit({pool}, queue / n);
          break;
        case 2:
          emit.Emit({pool}, running / n);
          break;
        case 3:
          emit.Emit({pool}, ready);
          break;
        default: {
          size_t count = 0;
          for (const auto& e : snapshot->endpoints) {
            if (++count > kMaxEndpointSeries) break;
            emit.Emit({std::string_view(pool), std::string_view(e.address)},
                      static_cast<double>(e.metrics.waiting_requests));
          }
        }
      }
    };
  };
  handles_.push_back(pool_kv_->AddCollector(collect(0)));
  handles_.push_back(pool_queue_->AddCollector(collect(1)));
  handles_.push_back(pool_running_->AddCollector(collect(2)));
  handles_.push_back(ready_endpoints_->AddCollector(collect(3)));
  handles_.push_back(per_endpoint_queue_->AddCollector(collect(4)));
  auto stats = std::make_shared<std::function<SchedulerGauges()>>(std::move(scheduler_stats));
  handles_.push_back(prefix_size_->AddCollector([stats](metrics::CallbackFamily::Emitter& emit) {
    emit.Emit({}, static_cast<double>((*stats)().prefix_index_entries));
  }));
  handles_.push_back(
      prefix_hit_ratio_->AddCollector([stats](metrics::CallbackFamily::Emitter& emit) {
        emit.Emit({}, (*stats)().prefix_hit_ratio);
      }));
  handles_.push_back(in_flight_->AddCollector([stats](metrics::CallbackFamily::Emitter& emit) {
    emit.Emit({}, static_cast<double>((*stats)().in_flight));
  }));
}

std::string_view EppMetrics::BoundModelLocked(std::string_view model) {
  if (model.empty()) return "";
  if (model.size() > kMaxModelNameBytes) return "other";
  if (auto it = models_.find(model); it != models_.end()) return it->first;
  if (models_.size() >= kMaxModelNames || unconfirmed_ >= kMaxUnconfirmedModelNames) {
    return "other";
  }
  ++unconfirmed_;
  return models_.emplace(model, false).first->first;
}

bool EppMetrics::ConfirmModelLocked(std::string_view model) {
  if (model.empty()) return true;  // "" is its own label
  if (model.size() > kMaxModelNameBytes) return false;
  auto it = models_.find(model);
  if (it == models_.end()) {
    if (models_.size() >= kMaxModelNames) return false;
    models_.emplace(model, true);
    return true;
  }
  if (!it->second) {
    it->second = true;
    --unconfirmed_;
  }
  return true;
}

void EppMetrics::ConfirmModel(std::string_view model) {
  std::lock_guard lock(mu_);
  ConfirmModelLocked(model);
}

void EppMetrics::RequestSucceeded(ModelSeries& s, std::string_view model, std::string_view target) {
  if (s.confirmed.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(mu_);
  const bool model_has_label = ConfirmModelLocked(model);
  const bool target_has_label = target.empty() || ConfirmModelLocked(target);
  // The series was made before these names were confirmed if its labels read "other".
  if (model_has_label && target_has_label && s.model != "other" && s.target != "other") {
    s.confirmed.store(true, std::memory_order_relaxed);
  }
}

std::string EppMetrics::BoundModel(std::string_view model) {
  std::lock_guard lock(mu_);
  return std::string(BoundModelLocked(model));
}

EppMetrics::ModelSeries& EppMetrics::Series(std::string_view model, std::string_view target) {
  std::lock_guard lock(mu_);
  std::string_view m = BoundModelLocked(model);
  std::string_view t = target.empty() ? m : BoundModelLocked(target);
  if (auto it = series_.find(std::make_pair(m, t)); it != series_.end()) return *it->second;
  auto s = std::make_unique<ModelSeries>();
  s->model = std::string(m);
  s->target = std::string(t);
  auto [it, inserted] =
      series_.emplace(std::make_pair(std::string(m), std::string(t)), std::move(s));
  return *it->second;
}

void EppMetrics::RequestStarted(ModelSeries& s) {
  Get(s.requests, request_total_, {s.model, s.target}).Inc();
}

void EppMetrics::RequestError(ModelSeries& s, int code) { RequestError(s.model, s.target, code); }

void EppMetrics::RequestFinished(ModelSeries& s, double seconds, int64_t request_bytes,
                                 int64_t response_bytes) {
  Get(s.duration, request_duration_, {s.model, s.target}).Observe(seconds);
  Get(s.request_size, request_size_, {s.model, s.target})
      .Observe(static_cast<double>(request_bytes));
  Get(s.response_size, response_size_, {s.model, s.target})
      .Observe(static_cast<double>(response_bytes));
}

void EppMetrics::RequestRunning(ModelSeries& s, int delta) {
  Get(s.running, request_running_, {s.model, s.target}).Add(delta);
}

void EppMetrics::Ttft(ModelSeries& s, bool streaming, double seconds) {
  Get(s.ttft[streaming ? 1 : 0], ttft_, {s.model, s.target, streaming ? "true" : "false"})
      .Observe(seconds);
}

void EppMetrics::Tokens(ModelSeries& s, int64_t input, int64_t output, int64_t cached) {
  const std::initializer_list<std::string_view> labels = {s.model, s.target};
  if (input >= 0) Get(s.input_tokens, input_tokens_, labels).Observe(static_cast<double>(input));
  if (output >= 0) {
    Get(s.output_tokens, output_tokens_, labels).Observe(static_cast<double>(output));
  }
  if (cached >= 0) {
    Get(s.cached_tokens, cached_tokens_, labels).Observe(static_cast<double>(cached));
  }
}

void EppMetrics::RequestStarted(const std::string& model, const std::string& target) {
  request_total_->With({model, target})->Inc();
}

void EppMetrics::RequestError(const std::string& model, const std::string& target, int code) {
  std::string code_text = std::to_string(code);
  request_error_total_->With({model, target, code_text})->Inc();
}

void EppMetrics::RewriteDecision(std::string_view rule, std::string_view model,
                                 std::string_view target) {
  std::string model_label;
  std::string target_label;
  {
    std::lock_guard lock(mu_);
    model_label = BoundModelLocked(model);
    target_label = BoundModelLocked(target);
  }
  // Rule names come from the cluster's objects, not from requests.
  rewrite_decisions_->With({rule, model_label, target_label})->Inc();
}

void EppMetrics::SchedulerDuration(double seconds, bool success) {
  Get(scheduler_e2e_series_, scheduler_e2e_, {}).Observe(seconds);
  if (success) {
    Get(scheduler_success_, scheduler_attempts_, {"success"}).Inc();
  } else {
    Get(scheduler_failure_, scheduler_attempts_, {"failure"}).Inc();
  }
}

}  // namespace zumik::epp

// The registry service's Prometheus metrics (private to the service's sources).
#pragma once

#include <map>
#include <memory>
#include <string_view>
#include <utility>

#include "core/metrics/registry.h"
#include "registry/service.h"

namespace zumik::registry {

class RegistryService::Metrics {
 public:
  Metrics(RegistryService& service, metrics::Registry& registry) {
    if (auto family =
            registry.AddCounter("zumik_registry_heartbeats_total", "Heartbeats accepted.");
        family.ok()) {
      heartbeats_ = (*family)->With({});
    }
    if (auto family = registry.AddCounter("zumik_registry_registrations_total",
                                          "Registrations accepted, by outcome.", {"outcome"});
        family.ok()) {
      registrations_ = *family;
    }
    if (auto family =
            registry.AddCounter("zumik_registry_auth_failures_total",
                                "Requests rejected for a bad credential.", {"credential"});
        family.ok()) {
      auth_failures_ = *family;
    }
    if (auto family = registry.AddCounter("zumik_registry_rate_limited_total",
                                          "Requests rejected with 429.", {"credential"});
        family.ok()) {
      rate_limited_ = *family;
    }
    if (auto family = registry.AddHistogram(
            "zumik_registry_request_duration_seconds", "Request handling time by route.", {"route"},
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
        family.ok()) {
      durations_ = *family;
    }
    if (auto family = registry.AddCallbackGauge("zumik_registry_clusters",
                                                "Registered clusters by profile and status.",
                                                {"profile", "status"});
        family.ok()) {
      clusters_handle_ = (*family)->AddCollector([&service](metrics::CallbackFamily::Emitter& out) {
        std::map<std::pair<std::string_view, std::string_view>, int> counts;
        for (Profile p : {Profile::kByocEpp, Profile::kByocDynamo}) {
          for (Liveness l :
               {Liveness::kPending, Liveness::kHealthy, Liveness::kUnknown, Liveness::kOffline}) {
            counts[{ProfileName(p), LivenessName(l)}] = 0;
          }
        }
        for (const ClusterView& view : service.Snapshot("", nullptr, false)) {
          ++counts[{ProfileName(view.record.profile), LivenessName(view.liveness)}];
        }
        for (const auto& [labels, count] : counts) {
          out.Emit({labels.first, labels.second}, count);
        }
      });
    }
    if (auto family = registry.AddCallbackGauge(
            "zumik_registry_suspect",
            "1 when most clusters went stale at once and the registry suspects itself.");
        family.ok()) {
      auto handle = (*family)->Add({}, [&service] { return service.Health().suspect ? 1.0 : 0.0; });
      if (handle.ok()) suspect_handle_ = *std::move(handle);
    }
    if (auto family = registry.AddCallbackGauge("zumik_registry_pending_heartbeat_writes",
                                                "Heartbeats accepted but not yet written.");
        family.ok()) {
      auto handle = (*family)->Add(
          {}, [&service] { return static_cast<double>(service.PendingHeartbeats()); });
      if (handle.ok()) pending_handle_ = *std::move(handle);
    }
  }

  void Heartbeat() {
    if (heartbeats_) heartbeats_->Inc();
  }
  void Registration(std::string_view outcome) {
    if (registrations_ != nullptr) registrations_->With({outcome})->Inc();
  }
  void AuthFailure(std::string_view credential) {
    if (auth_failures_ != nullptr) auth_failures_->With({credential})->Inc();
  }
  void RateLimited(std::string_view credential) {
    if (rate_limited_ != nullptr) rate_limited_->With({credential})->Inc();
  }
  void Observe(std::string_view route, double seconds) {
    if (durations_ != nullptr) durations_->With({route})->Observe(seconds);
  }

 private:
  std::shared_ptr<metrics::Counter> heartbeats_;
  metrics::CounterFamily* registrations_ = nullptr;
  metrics::CounterFamily* auth_failures_ = nullptr;
  metrics::CounterFamily* rate_limited_ = nullptr;
  metrics::HistogramFamily* durations_ = nullptr;
  metrics::CallbackHandle clusters_handle_;
  metrics::CallbackHandle suspect_handle_;
  metrics::CallbackHandle pending_handle_;
};

}  // namespace zumik::registry

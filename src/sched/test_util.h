// Helpers for sched tests: crafted endpoints, plugins built from YAML parameters, and a cycle
// over hand-made candidates so each plugin can be tested alone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/config.h"
#include "core/rng.h"
#include "sched/config.h"
#include "sched/endpoint.h"
#include "sched/plugin.h"
#include "sched/registry.h"

namespace zumik::sched::testing {

inline Endpoint MakeEndpoint(EndpointId id, int64_t waiting = 0, double kv = 0,
                             int64_t running = 0) {
  Endpoint e;
  e.id = id;
  e.address = "10.0.0." + std::to_string(id) + ":8000";
  e.name = "default/pod-" + std::to_string(id);
  e.metrics.valid = true;
  e.metrics.waiting_requests = waiting;
  e.metrics.kv_cache_usage = kv;
  e.metrics.running_requests = running;
  return e;
}

// Builds a plugin of `type` from YAML parameters text ("" for none).
inline absl::StatusOr<std::unique_ptr<Plugin>> MakePlugin(const std::string& type,
                                                          const std::string& params_yaml = "",
                                                          const std::string& name = "") {
  PluginSpec spec;
  spec.type = type;
  spec.name = name.empty() ? type : name;
  spec.where = "test.yaml:1";
  if (!params_yaml.empty()) {
    auto doc = ParseYaml(params_yaml, "test.yaml");
    if (!doc.ok()) return doc.status();
    spec.parameters.reset(doc->root);
  }
  return CreatePlugin(spec, "test.yaml");
}

template <typename T>
std::unique_ptr<T> MakeTyped(const std::string& type, const std::string& params_yaml = "") {
  auto plugin = MakePlugin(type, params_yaml);
  if (!plugin.ok()) return nullptr;
  return std::unique_ptr<T>(static_cast<T*>(plugin->release()));
}

// Endpoints, loads and candidates for one hand-made cycle.
struct Fixture {
  std::vector<Endpoint> endpoints;
  std::vector<EndpointLoad> loads;
  InferenceRequest request;
  Rng rng{7};
  CycleState cycle;

  explicit Fixture(std::vector<Endpoint> eps) : endpoints(std::move(eps)), loads(endpoints.size()) {
    request.model = "m";
    cycle.request = &request;
    cycle.rng = &rng;
  }
  std::vector<Candidate> Candidates() const {
    std::vector<Candidate> out;
    for (uint32_t i = 0; i < endpoints.size(); ++i) {
      out.push_back(Candidate{&endpoints[i], &loads[i], i, 0, cycle.UncachedTokens(0)});
    }
    return out;
  }
  std::vector<double> Score(Scorer& scorer, const std::vector<Candidate>& candidates) {
    std::vector<double> out(candidates.size(), -1);
    scorer.Score(cycle, candidates, out);
    return out;
  }
};

}  // namespace zumik::sched::testing

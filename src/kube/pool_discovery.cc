// InferencePool discovery: the pool's selector and target ports joined with the ready Pods of
// its namespace, reported as endpoints whenever that set changes.
#include "kube/pool_discovery.h"

#include <algorithm>
#include <mutex>
#include <optional>

#include "core/http/url.h"
#include "core/json_path.h"
#include "core/log.h"
#include "core/status.h"
#include "kube/background_task.h"

namespace zumik::kube {
namespace asio = boost::asio;
namespace json = boost::json;

std::string PoolEndpoint::HostPort() const { return http::HostPort(address, port); }

struct PoolDiscovery::State {
  State(const asio::any_io_executor& ex, Client& c, PoolDiscoveryOptions o, Callback cb)
      : task(ex),
        client(c),
        options(std::move(o)),
        callback(std::move(cb)),
        rng(options.reflector.seed) {}

  BackgroundTask task;
  Client& client;
  PoolDiscoveryOptions options;
  Callback callback;
  Rng rng;

  // Strand-only state.
  bool pool_synced = false;
  bool pods_synced = false;
  std::optional<json::object> pool;
  Reflector::Store pods;
  std::optional<std::vector<PoolEndpoint>> reported;
  Resource pool_resource;

  // Under task.mu(). No reflector is created once the task is stopping.
  bool synced = false;
  std::string group;
  absl::Status pool_error;
  absl::Status pods_error;
  std::unique_ptr<Reflector> pool_reflector;
  std::unique_ptr<Reflector> pod_reflector;

  std::mutex& mu() const { return task.mu(); }
};

namespace {

std::map<std::string, std::string> StringMap(const json::value* value) {
  std::map<std::string, std::string> out;
  if (value == nullptr || !value->is_object()) return out;
  for (const auto& [key, v] : value->get_object()) {
    if (v.is_string()) out[std::string(key)] = std::string(v.get_string());
  }
  return out;
}

std::optional<uint16_t> PortOf(const json::value& value) {
  int64_t n = 0;
  if (value.is_int64()) {
    n = value.get_int64();
  } else if (value.is_uint64()) {
    n = static_cast<int64_t>(value.get_uint64());
  } else {
    return std::nullopt;
  }
  if (n < 1 || n > 65535) return std::nullopt;
  return static_cast<uint16_t>(n);
}

// The selector (v1: spec.selector.matchLabels; v1alpha2: spec.selector as a plain map).
std::map<std::string, std::string> PoolSelector(const json::object& pool) {
  if (const json::value* match = FindPath(pool, "spec.selector.matchLabels")) {
    return StringMap(match);
  }
  return StringMap(FindPath(pool, "spec.selector"));
}

// The target ports (v1: spec.targetPorts[].number; v1alpha2: spec.targetPortNumber), unique.
std::vector<uint16_t> PoolPorts(const json::object& pool) {
  std::vector<uint16_t> ports;
  if (const json::value* list = FindPath(pool, "spec.targetPorts"); list && list->is_array()) {
    for (const json::value& item : list->get_array()) {
      if (!item.is_object()) continue;
      if (const json::value* number = item.get_object().if_contains("number")) {
        if (auto port = PortOf(*number)) ports.push_back(*port);
      }
    }
  }
  if (const json::value* number = FindPath(pool, "spec.targetPortNumber")) {
    if (auto port = PortOf(*number)) ports.push_back(*port);
  }
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  return ports;
}

bool PodReady(const json::object& pod) {
  if (FindPath(pod, "metadata.deletionTimestamp") != nullptr) {
    const json::value* ts = FindPath(pod, "metadata.deletionTimestamp");
    if (!ts->is_null()) return false;
  }
  const json::value* phase = FindPath(pod, "status.phase");
  if (phase == nullptr || !phase->is_string() || phase->get_string() != "Running") return false;
  const json::value* ip = FindPath(pod, "status.podIP");
  if (ip == nullptr || !ip->is_string() || ip->get_string().empty()) return false;
  const json::value* conditions = FindPath(pod, "status.conditions");
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const json::value& c : conditions->get_array()) {
    if (!c.is_object()) continue;
    const json::value* type = c.get_object().if_contains("type");
    const json::value* status = c.get_object().if_contains("status");
    if (type && type->is_string() && type->get_string() == "Ready") {
      return status && status->is_string() && status->get_string() == "True";
    }
  }
  return false;
}

std::vector<PoolEndpoint> ComputeEndpoints(const json::object& pool, const Reflector::Store& pods) {
  std::vector<PoolEndpoint> endpoints;
  const auto selector = PoolSelector(pool);
  const auto ports = PoolPorts(pool);
  if (selector.empty() || ports.empty()) return endpoints;
  for (const auto& [key, pod] : pods) {
    auto labels = ObjectLabels(pod);
    bool matches = true;
    for (const auto& [k, v] : selector) {
      auto it = labels.find(k);
      if (it == labels.end() || it->second != v) {
        matches = false;
        break;
      }
    }
    if (!matches || !PodReady(pod)) continue;
    const std::string ip(FindPath(pod, "status.podIP")->get_string());
    for (uint16_t port : ports) {
      PoolEndpoint endpoint;
      endpoint.pod_name = ObjectName(pod);
      endpoint.address = ip;
      endpoint.port = port;
      endpoint.labels = labels;
      endpoints.push_back(std::move(endpoint));
    }
  }
  std::sort(endpoints.begin(), endpoints.end(), [](const PoolEndpoint& a, const PoolEndpoint& b) {
    return std::tie(a.pod_name, a.port) < std::tie(b.pod_name, b.port);
  });
  return endpoints;
}

// Runs on the strand after any change.
void Recompute(PoolDiscovery::State& state) {
  if (!state.pool_synced || !state.pods_synced) return;
  {
    std::lock_guard lock(state.mu());
    if (state.task.StoppingLocked()) return;
    state.synced = true;
  }
  std::vector<PoolEndpoint> endpoints;
  if (state.pool) endpoints = ComputeEndpoints(*state.pool, state.pods);
  if (state.reported && *state.reported == endpoints) return;
  state.reported = endpoints;
  state.callback(endpoints);
}

// A reflector of `resource` in the pool's namespace that reports to `state` while it lives:
// each synced store goes to `on_sync`, then the endpoints are recomputed; each error is kept
// in `state.*error`.
template <typename OnSync>
std::unique_ptr<Reflector> Watch(const std::shared_ptr<PoolDiscovery::State>& state,
                                 const Resource& resource, ListOptions list_options,
                                 absl::Status PoolDiscovery::State::*error, OnSync on_sync) {
  std::weak_ptr<PoolDiscovery::State> weak = state;
  return std::make_unique<Reflector>(
      state->task.executor(), state->client, resource, state->options.namespace_name,
      std::move(list_options), state->options.reflector,
      [weak, on_sync](const Reflector::Store& objects) {
        auto s = weak.lock();
        if (!s) return;
        on_sync(*s, objects);
        Recompute(*s);
      },
      [weak, error](const absl::Status& status) {
        if (auto s = weak.lock()) {
          std::lock_guard l(s->mu());
          (*s).*error = status;
        }
      });
}

void StartPoolReflector(const std::shared_ptr<PoolDiscovery::State>& state,
                        const Resource& resource) {
  std::lock_guard lock(state->mu());
  if (state->task.StoppingLocked()) return;
  state->group = resource.group;
  state->pool_resource = resource;
  ListOptions selector;
  selector.field_selector = "metadata.name=" + state->options.pool_name;
  state->pool_reflector =
      Watch(state, resource, std::move(selector), &PoolDiscovery::State::pool_error,
            [](PoolDiscovery::State& s, const Reflector::Store& objects) {
              s.pool.reset();
              for (const auto& [key, object] : objects) {
                if (ObjectName(object) == s.options.pool_name) s.pool = object;
              }
              s.pool_synced = true;
            });
  state->pool_reflector->Start();
}

// Picks the InferencePool API the server serves, then starts watching pools.
asio::awaitable<void> ProbeAndWatch(std::shared_ptr<PoolDiscovery::State> state) {
  static auto logger = Logger("kube");
  std::vector<Resource> candidates;
  const std::string& group = state->options.pool_group;
  if (group.empty() || group == kInferencePoolsV1.group) candidates.push_back(kInferencePoolsV1);
  if (group.empty() || group == kInferencePoolsV1Alpha2.group) {
    candidates.push_back(kInferencePoolsV1Alpha2);
  }
  if (candidates.empty()) {
    Resource custom{group, "v1", "inferencepools", true};
    candidates.push_back(custom);
  }
  int attempt = 0;
  while (!state->task.Stopping()) {
    bool transient = false;
    for (const Resource& candidate : candidates) {
      const std::string path = candidate.GroupVersionPath();
      absl::StatusOr<json::value> found = co_await state->client.GetPath(path);
      if (found.ok()) {
        StartPoolReflector(state, candidate);
        co_return;
      }
      if (found.status().code() != absl::StatusCode::kNotFound) {
        transient = true;
        std::lock_guard lock(state->mu());
        state->pool_error = found.status();
        logger->warn("InferencePool API discovery failed: {}", MessageOf(found.status()));
        break;
      }
    }
    if (!transient) {
      // Neither API is served (the CRD is not installed yet): report it, keep trying.
      std::lock_guard lock(state->mu());
      state->pool_error = Errorf(absl::StatusCode::kNotFound,
                                 "the InferencePool API ({}) is not served: is the CRD installed?",
                                 candidates.front().GroupVersionPath());
    }
    if (!state->pool_synced && !transient) {
      // No pool API means no pool: report the empty set once the Pods are synced.
      state->pool_synced = true;
      Recompute(*state);
    }
    const Duration delay = state->options.reflector.backoff.Delay(attempt++, state->rng);
    co_await state->task.Sleep(delay);
  }
}

}  // namespace

PoolDiscovery::PoolDiscovery(const asio::any_io_executor& executor, Client& client,
                             PoolDiscoveryOptions options, Callback callback)
    : state_(std::make_shared<State>(executor, client, std::move(options), std::move(callback))) {}

PoolDiscovery::~PoolDiscovery() { Stop(); }

void PoolDiscovery::Start() {
  auto state = state_;
  if (!state->task.Start(ProbeAndWatch(state), "InferencePool discovery")) return;
  std::lock_guard lock(state->mu());
  if (state->task.StoppingLocked()) return;
  state->pod_reflector = Watch(state, kPods, ListOptions{}, &State::pods_error,
                               [](State& s, const Reflector::Store& objects) {
                                 s.pods = objects;
                                 s.pods_synced = true;
                               });
  state->pod_reflector->Start();
}

void PoolDiscovery::Stop() {
  if (!state_->task.Stop()) return;
  // The probe has ended, so no new reflector can be created now.
  if (state_->pool_reflector) state_->pool_reflector->Stop();
  if (state_->pod_reflector) state_->pod_reflector->Stop();
}

bool PoolDiscovery::synced() const {
  std::lock_guard lock(state_->mu());
  return state_->synced;
}

std::string PoolDiscovery::pool_group() const {
  std::lock_guard lock(state_->mu());
  return state_->group;
}

absl::Status PoolDiscovery::last_error() const {
  std::lock_guard lock(state_->mu());
  if (!state_->pool_error.ok()) return state_->pool_error;
  return state_->pods_error;
}

}  // namespace zumik::kube

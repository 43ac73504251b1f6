// InferenceObjective / InferenceModelRewrite watches (see model_config_watch.h).
#include "kube/model_config_watch.h"

#include <array>
#include <mutex>
#include <set>

#include "core/log.h"
#include "core/status.h"
#include "kube/background_task.h"

namespace zumik::kube {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

// In reporting order: where two groups hold the same kind and name, the first one wins.
const std::array<const Resource*, 4> kResources = {
    &kInferenceObjectivesLlmd, &kInferenceObjectivesXK8s, &kInferenceModelRewritesLlmd,
    &kInferenceModelRewritesXK8s};

bool IsObjective(const Resource& resource) { return resource.plural == "inferenceobjectives"; }

}  // namespace

struct ModelConfigWatch::State {
  State(const asio::any_io_executor& ex, Client& c, ModelConfigWatchOptions o, Callback cb)
      : task(ex), client(c), options(std::move(o)), callback(std::move(cb)) {}

  BackgroundTask task;
  Client& client;
  ModelConfigWatchOptions options;
  Callback callback;
  // Strand-only: each resource's objects, by kResources index.
  std::array<Reflector::Store, kResources.size()> stores;

  // Under task.mu(): none is created once the task is stopping.
  std::array<std::unique_ptr<Reflector>, kResources.size()> reflectors;

  // On the strand, after a change.
  void Report() {
    if (task.Stopping()) return;
    ModelConfigObjects objects;
    std::set<std::string> seen[2];  // objective names, rewrite names
    for (size_t i = 0; i < kResources.size(); ++i) {
      const bool objective = IsObjective(*kResources[i]);
      for (const auto& [key, object] : stores[i]) {
        if (!seen[objective ? 0 : 1].insert(key).second) continue;
        (objective ? objects.objectives : objects.rewrites).push_back(object);
      }
    }
    callback(objects);
  }
};

namespace {

// Whether the API serves `resource` (its group version lists the plural). Any error reads
// as "not yet": the probe runs again later.
asio::awaitable<bool> Served(Client& client, const Resource& resource) {
  absl::StatusOr<json::value> doc = co_await client.GetPath(resource.GroupVersionPath());
  if (!doc.ok() || !doc->is_object()) co_return false;
  const json::value* list = doc->get_object().if_contains("resources");
  if (list == nullptr || !list->is_array()) co_return false;
  for (const json::value& item : list->get_array()) {
    if (!item.is_object()) continue;
    const json::value* name = item.get_object().if_contains("name");
    if (name != nullptr && name->is_string() && name->get_string() == resource.plural) {
      co_return true;
    }
  }
  co_return false;
}

void StartReflector(const std::shared_ptr<ModelConfigWatch::State>& state, size_t index) {
  std::lock_guard lock(state->task.mu());
  if (state->task.StoppingLocked()) return;
  std::weak_ptr<ModelConfigWatch::State> weak = state;
  state->reflectors[index] = std::make_unique<Reflector>(
      state->task.executor(), state->client, *kResources[index], state->options.namespace_name,
      ListOptions{}, state->options.reflector, [weak, index](const Reflector::Store& objects) {
        auto s = weak.lock();
        if (!s) return;
        s->stores[index] = objects;
        s->Report();
      });
  state->reflectors[index]->Start();
}

// Looks for the resources not watched yet until all are.
asio::awaitable<void> ProbeLoop(std::shared_ptr<ModelConfigWatch::State> state) {
  static auto logger = Logger("kube");
  std::array<bool, kResources.size()> watching{};
  while (!state->task.Stopping()) {
    bool all = true;
    for (size_t i = 0; i < kResources.size(); ++i) {
      if (watching[i]) continue;
      if (co_await Served(state->client, *kResources[i])) {
        watching[i] = true;
        logger->info("watching {}.{} in namespace {}", kResources[i]->plural, kResources[i]->group,
                     state->options.namespace_name);
        StartReflector(state, i);
      } else {
        all = false;
      }
      if (state->task.Stopping()) co_return;
    }
    if (all) co_return;
    co_await state->task.Sleep(state->options.probe_interval);
  }
}

}  // namespace

ModelConfigWatch::ModelConfigWatch(const asio::any_io_executor& executor, Client& client,
                                   ModelConfigWatchOptions options, Callback callback)
    : state_(std::make_shared<State>(executor, client, std::move(options), std::move(callback))) {}

ModelConfigWatch::~ModelConfigWatch() { Stop(); }

void ModelConfigWatch::Start() {
  state_->task.Start(ProbeLoop(state_), "InferenceObjective/InferenceModelRewrite watch");
}

void ModelConfigWatch::Stop() {
  if (!state_->task.Stop()) return;
  // The probe has ended, so no reflector can be created now.
  for (auto& reflector : state_->reflectors) {
    if (reflector) reflector->Stop();
  }
}

std::vector<std::string> ModelConfigWatch::watched() const {
  std::lock_guard lock(state_->task.mu());
  std::vector<std::string> out;
  for (size_t i = 0; i < kResources.size(); ++i) {
    if (state_->reflectors[i]) out.push_back(kResources[i]->plural + "." + kResources[i]->group);
  }
  return out;
}

}  // namespace zumik::kube

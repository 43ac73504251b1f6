// The list + watch loop behind every Kubernetes watcher: relist on 410, re-watch on timeout,
// backoff with jitter on errors.
#include "kube/reflector.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "core/log.h"
#include "core/status.h"
#include "kube/background_task.h"

namespace zumik::kube {
namespace asio = boost::asio;
namespace json = boost::json;

Duration Backoff::Delay(int attempt, Rng& rng) const {
  const double base_s = ToSeconds(initial) * std::pow(multiplier, std::min(attempt, 60));
  const double capped = std::min(base_s, ToSeconds(max));
  const double factor = 1.0 + jitter * (2.0 * rng.Uniform() - 1.0);
  return FromSeconds(std::max(0.0, capped * factor));
}

struct Reflector::State {
  State(const asio::any_io_executor& ex, Client& c, Resource r, std::string n, ListOptions s,
        ReflectorOptions o, Handler h, ErrorHandler e)
      : task(ex),
        client(c),
        resource(std::move(r)),
        ns(std::move(n)),
        selector(std::move(s)),
        options(o),
        handler(std::move(h)),
        on_error(std::move(e)),
        rng(o.seed) {}

  BackgroundTask task;
  Client& client;
  Resource resource;
  std::string ns;
  ListOptions selector;
  ReflectorOptions options;
  Handler handler;
  ErrorHandler on_error;
  Rng rng;
  Store store;

  // Under task.mu().
  ReflectorStats stats;
  WatchStream* active = nullptr;

  std::mutex& mu() const { return task.mu(); }
  bool Stopping() const { return task.Stopping(); }
  void ReportError(const absl::Status& status) {
    {
      std::lock_guard lock(mu());
      ++stats.errors;
    }
    if (on_error) on_error(status);
  }
};

namespace {

std::string KeyOf(const json::object& object, bool namespaced) {
  const std::string name = ObjectName(object);
  return namespaced ? ObjectNamespace(object) + "/" + name : name;
}

asio::awaitable<void> RunLoop(std::shared_ptr<Reflector::State> state) {
  static auto logger = Logger("kube");
  int attempt = 0;
  bool need_list = true;
  bool first = true;
  std::string rv;
  const bool namespaced = state->resource.namespaced;
  while (!state->Stopping()) {
    if (need_list) {
      absl::StatusOr<ObjectList> list =
          co_await state->client.List(state->resource, state->ns, state->selector);
      if (state->Stopping()) break;
      if (!list.ok()) {
        logger->warn("list {} failed: {}", state->resource.Path(state->ns),
                     MessageOf(list.status()));
        state->ReportError(list.status());
        const Duration delay = state->options.backoff.Delay(attempt++, state->rng);
        co_await state->task.Sleep(delay);
        continue;
      }
      Reflector::Store fresh;
      for (json::object& item : list->items) {
        std::string key = KeyOf(item, namespaced);
        fresh.emplace(std::move(key), std::move(item));
      }
      const bool changed = first || fresh != state->store;
      state->store = std::move(fresh);
      rv = list->resource_version;
      {
        std::lock_guard lock(state->mu());
        ++state->stats.lists;
        state->stats.resource_version = rv;
      }
      need_list = false;
      attempt = 0;
      first = false;
      if (state->on_error) state->on_error(absl::OkStatus());
      if (changed) state->handler(state->store);
    }

    WatchOptions watch_options;
    watch_options.selector = state->selector;
    watch_options.resource_version = rv;
    watch_options.allow_bookmarks = true;
    watch_options.timeout_seconds = state->options.watch_timeout_seconds;
    absl::StatusOr<WatchStream> stream =
        co_await state->client.Watch(state->resource, state->ns, watch_options);
    if (state->Stopping()) break;
    if (!stream.ok()) {
      if (IsGone(stream.status())) {
        std::lock_guard lock(state->mu());
        ++state->stats.gone;
        need_list = true;
        continue;
      }
      logger->warn("watch {} failed: {}", state->resource.Path(state->ns),
                   MessageOf(stream.status()));
      state->ReportError(stream.status());
      const Duration delay = state->options.backoff.Delay(attempt++, state->rng);
      co_await state->task.Sleep(delay);
      continue;
    }
    {
      std::lock_guard lock(state->mu());
      ++state->stats.watches;
      state->active = &*stream;
      if (state->task.StoppingLocked()) stream->Cancel();
    }
    bool failed = false;
    while (true) {
      absl::StatusOr<std::optional<WatchEvent>> event = co_await stream->Next();
      if (state->Stopping()) break;
      if (!event.ok()) {
        if (IsGone(event.status())) {
          std::lock_guard lock(state->mu());
          ++state->stats.gone;
          need_list = true;
        } else {
          logger->info("watch {} ended: {}", state->resource.Path(state->ns),
                       MessageOf(event.status()));
          state->ReportError(event.status());
          failed = true;
        }
        break;
      }
      if (!event->has_value()) break;  // the server ended the watch: re-watch from rv
      WatchEvent& e = **event;
      const std::string version = ObjectResourceVersion(e.object);
      if (!version.empty()) rv = version;
      if (e.type == EventType::kBookmark) {
        std::lock_guard lock(state->mu());
        ++state->stats.bookmarks;
        state->stats.resource_version = rv;
        continue;
      }
      std::string key = KeyOf(e.object, namespaced);
      if (e.type == EventType::kDeleted) {
        state->store.erase(key);
      } else {
        state->store[key] = std::move(e.object);
      }
      {
        std::lock_guard lock(state->mu());
        ++state->stats.events;
        state->stats.resource_version = rv;
      }
      attempt = 0;
      state->handler(state->store);
    }
    {
      std::lock_guard lock(state->mu());
      state->active = nullptr;
    }
    if (failed && !state->Stopping()) {
      const Duration delay = state->options.backoff.Delay(attempt++, state->rng);
      co_await state->task.Sleep(delay);
    }
  }
}

}  // namespace

Reflector::Reflector(const asio::any_io_executor& executor, Client& client, Resource resource,
                     std::string ns, ListOptions selector, ReflectorOptions options,
                     Handler handler, ErrorHandler on_error)
    : state_(std::make_shared<State>(executor, client, std::move(resource), std::move(ns),
                                     std::move(selector), options, std::move(handler),
                                     std::move(on_error))) {}

Reflector::~Reflector() { Stop(); }

void Reflector::Start() {
  state_->task.Start(RunLoop(state_), "reflector " + state_->resource.plural);
}

void Reflector::Stop() {
  state_->task.Stop([this] {
    if (state_->active != nullptr) state_->active->Cancel();
  });
}

ReflectorStats Reflector::stats() const {
  std::lock_guard lock(state_->mu());
  return state_->stats;
}

}  // namespace zumik::kube

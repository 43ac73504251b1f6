// A reflector keeps an in-memory copy of one resource collection in sync with the API server:
// LIST, then WATCH from the list's resourceVersion (with bookmarks), re-watch when a watch
// times out, relist on 410 Gone, and reconnect with exponential backoff and jitter on errors.
// After every change it calls the handler with the whole current set.
//
// Threading: everything, handler included, runs on the executor passed in (pass a strand to
// serialise several reflectors' handlers). Stop() waits for the loop to end.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/clock.h"
#include "core/rng.h"
#include "kube/client.h"

namespace zumik::kube {

// Exponential backoff with jitter: attempt n (0-based) waits
// min(max, initial * multiplier^n) * (1 ± jitter).
struct Backoff {
  Duration initial = std::chrono::milliseconds(200);
  Duration max = std::chrono::seconds(30);
  double multiplier = 2.0;
  double jitter = 0.2;

  Duration Delay(int attempt, Rng& rng) const;
};

struct ReflectorOptions {
  Backoff backoff;
  // Server-side watch timeout; the reflector re-watches from the last version after it.
  int watch_timeout_seconds = 300;
  uint64_t seed = 1;
};

struct ReflectorStats {
  uint64_t lists = 0;
  uint64_t watches = 0;
  // Relists caused by 410 Gone.
  uint64_t gone = 0;
  uint64_t bookmarks = 0;
  uint64_t events = 0;
  // Failed lists or watches (each followed by a backoff).
  uint64_t errors = 0;
  std::string resource_version;
};

class Reflector {
 public:
  // Objects by "namespace/name" (or "name" for cluster-scoped resources).
  using Store = std::map<std::string, boost::json::object>;
  // Called after the first list and after every change (not after a bookmark, nor after a
  // relist that changed nothing).
  using Handler = std::function<void(const Store& objects)>;
  // Called with each list/watch failure (not for the ordinary end of a watch) and with OK
  // after each successful list.
  using ErrorHandler = std::function<void(const absl::Status& status)>;

  // `client` must outlive the reflector. ns empty: all namespaces (or cluster-scoped).
  Reflector(const boost::asio::any_io_executor& executor, Client& client, Resource resource,
            std::string ns, ListOptions selector, ReflectorOptions options, Handler handler,
            ErrorHandler on_error = nullptr);
  ~Reflector();
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  void Start();
  // Ends the loop and waits for it; no handler runs after it returns. Must not be called on
  // the executor's only thread, nor from a handler. Idempotent.
  void Stop();

  ReflectorStats stats() const;

  // Implementation detail (shared with the background coroutines).
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace zumik::kube

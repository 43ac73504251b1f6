// The start/stop bookkeeping of an object that runs one background coroutine on a strand and
// must stop synchronously: Reflector, PoolDiscovery and ModelConfigWatch each own one.
//
// Start() spawns the coroutine once; Stop() marks the task stopping, cuts a Sleep() short and
// waits for the coroutine to end. The owner may keep its own fields under mu(), so that a
// check of stopping and a change of its own happen together (a reflector started, a watch
// stream recorded).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/strand.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "core/clock.h"

namespace zumik::kube {

class BackgroundTask {
 public:
  using Strand = boost::asio::strand<boost::asio::any_io_executor>;

  explicit BackgroundTask(const boost::asio::any_io_executor& executor);
  BackgroundTask(const BackgroundTask&) = delete;
  BackgroundTask& operator=(const BackgroundTask&) = delete;

  // The strand the coroutine runs on (and the owner's handlers, when it passes it on).
  const Strand& executor() const { return executor_; }

  // Guards the task's flags; owners may guard their own fields with it too.
  std::mutex& mu() const;
  // Whether Stop() has been called. StoppingLocked() requires mu() held; Stopping() takes it.
  bool StoppingLocked() const;
  bool Stopping() const;

  // Spawns `run` on the strand. False (and `run` never runs) when the task was started or
  // stopped before. `name` names the task in the log if it ends on an exception.
  bool Start(boost::asio::awaitable<void> run, std::string name);

  // Waits `delay`, or less when Stop() is called. Only from the coroutine (on the strand).
  boost::asio::awaitable<void> Sleep(Duration delay);

  // Marks the task stopping, running `on_stopping` under mu() (to cancel whatever the
  // coroutine waits on besides Sleep); then, when it was started, waits for the coroutine to
  // end. Call from a thread that is not the only one running the executor, never from the
  // coroutine. True for the first call, false for every later one (nothing to do).
  bool Stop(const std::function<void()>& on_stopping = nullptr);

 private:
  struct Shared;

  Strand executor_;
  // Shared with the completion and the posted timer cancel, which may outlive the owner.
  std::shared_ptr<Shared> shared_;
};

}  // namespace zumik::kube

// Start/stop bookkeeping for the Kubernetes watchers' background coroutines (see
// background_task.h).
#include "kube/background_task.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <future>

#include "core/log.h"

namespace zumik::kube {
namespace asio = boost::asio;

struct BackgroundTask::Shared {
  explicit Shared(const Strand& executor) : timer(executor), done_future(done.get_future()) {}

  asio::steady_timer timer;  // strand-only
  std::mutex mu;
  bool started = false;
  bool stopping = false;
  std::promise<void> done;
  std::future<void> done_future;
};

BackgroundTask::BackgroundTask(const asio::any_io_executor& executor)
    : executor_(asio::make_strand(executor)), shared_(std::make_shared<Shared>(executor_)) {}

std::mutex& BackgroundTask::mu() const { return shared_->mu; }

bool BackgroundTask::StoppingLocked() const { return shared_->stopping; }

bool BackgroundTask::Stopping() const {
  std::lock_guard lock(shared_->mu);
  return shared_->stopping;
}

bool BackgroundTask::Start(asio::awaitable<void> run, std::string name) {
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->started || shared_->stopping) return false;
    shared_->started = true;
  }
  asio::co_spawn(executor_, std::move(run),
                 [shared = shared_, name = std::move(name)](const std::exception_ptr& error) {
                   if (error) {
                     try {
                       std::rethrow_exception(error);
                     } catch (const std::exception& e) {
                       Logger("kube")->error("{} stopped: {}", name, e.what());
                     } catch (...) {
                       Logger("kube")->error("{} stopped on an exception", name);
                     }
                   }
                   shared->done.set_value();
                 });
  return true;
}

asio::awaitable<void> BackgroundTask::Sleep(Duration delay) {
  // Stop() sets the flag before it posts the cancel to this strand, so either the flag is
  // seen here or the cancel comes after the wait has begun.
  if (Stopping()) co_return;
  boost::system::error_code ec;
  shared_->timer.expires_after(delay);
  co_await shared_->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

bool BackgroundTask::Stop(const std::function<void()>& on_stopping) {
  bool wait = false;
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stopping) return false;
    shared_->stopping = true;
    wait = shared_->started;
    if (on_stopping) on_stopping();
  }
  if (wait) {
    asio::post(executor_, [shared = shared_] { shared->timer.cancel(); });
    shared_->done_future.wait();
  }
  return true;
}

}  // namespace zumik::kube

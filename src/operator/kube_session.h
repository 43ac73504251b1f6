// A Kubernetes client with its own I/O thread, for the operator's and preflight's synchronous
// code: each call runs one client coroutine and waits for it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <memory>
#include <thread>

#include "kube/client.h"

namespace zumik::op {

class KubeSession {
 public:
  explicit KubeSession(kube::Config config);
  ~KubeSession();
  KubeSession(const KubeSession&) = delete;
  KubeSession& operator=(const KubeSession&) = delete;

  kube::Client& client() { return *client_; }

  // Runs `awaitable` on the session's thread and waits for its result. Never call it from
  // that thread.
  template <typename T>
  T Run(boost::asio::awaitable<T> awaitable) {
    auto promise = std::make_shared<std::promise<T>>();
    auto future = promise->get_future();
    boost::asio::co_spawn(io_, std::move(awaitable), [promise](std::exception_ptr error, T value) {
      if (error) {
        promise->set_exception(error);
      } else {
        promise->set_value(std::move(value));
      }
    });
    return future.get();
  }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::unique_ptr<kube::Client> client_;
  std::thread thread_;
};

}  // namespace zumik::op

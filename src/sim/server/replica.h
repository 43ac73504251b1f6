// One simulated vLLM replica served over HTTP in real time: an Engine driven by an Asio timer
// (one step at a time, each taking its modelled duration), the OpenAI-compatible routes, and
// the replica's /metrics.
//
// Concurrency: the engine is guarded by a mutex held only for short, non-blocking calls (Add,
// Abort, Step, Stats). The driver coroutine runs on its own strand; each HTTP request's handler
// runs on its connection's strand and learns about its tokens through a RequestStream that the
// driver posts updates to (one post per request per step, at the step's end).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/clock.h"
#include "core/http/server.h"
#include "sim/engine.h"
#include "sim/openai_request.h"
#include "sim/profile.h"
#include "sim/server/vllm_metrics.h"

namespace zumik::sim {

struct ReplicaOptions {
  int index = 0;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint64_t seed = 1;
  // Request bodies above this get 413 (prompts of max_model_len tokens are ~4 bytes each).
  size_t max_body_bytes = size_t{8} * 1024 * 1024;
};

// What the driver tells a request's handler after a step.
struct StreamUpdate {
  int num_tokens = 0;      // output tokens produced so far
  int cached_tokens = -1;  // set with the first token
  int prompt_tokens = 0;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kLength;
  Time model_time{0};  // when the model produced these tokens (the step's end)
};

class RequestStream;

// Owned by shared_ptr: handlers hold weak references, so a request that outlives its replica
// (at process teardown) cannot touch it.
class Replica : public std::enable_shared_from_this<Replica> {
 public:
  Replica(boost::asio::io_context& io, Profile profile, ReplicaOptions options,
          const Clock& clock = RealClock::Instance());
  ~Replica();
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Binds the port and starts the driver. kUnavailable when the port is taken.
  absl::Status Start();
  // Graceful: stop accepting, let requests in flight finish for up to `grace`, stop the driver.
  void Stop(std::chrono::nanoseconds grace);

  uint16_t port() const { return server_ ? server_->port() : 0; }
  // True once the engine driver has exited (after Stop).
  bool driver_done() const { return driver_done_; }
  const std::string& name() const { return name_; }
  const Profile& profile() const { return profile_; }
  EngineStats Stats() const;
  std::string MetricsText() const { return metrics_->Expose(); }

 private:
  http::Router MakeRouter();
  boost::asio::awaitable<void> HandleGenerate(const http::Request& request,
                                              http::ResponseWriter& writer, Endpoint endpoint);
  boost::asio::awaitable<void> DriverLoop();
  // Queues a request in the engine and registers its stream; wakes the driver.
  // Returns the id it assigned.
  absl::StatusOr<RequestId> Submit(RequestSpec spec, const std::shared_ptr<RequestStream>& stream);
  void Abort(RequestId id);
  void WakeDriver();
  void Deliver(const StepResult& step);

  boost::asio::io_context& io_;
  const Profile profile_;
  const ReplicaOptions options_;
  const Clock& clock_;
  const std::string name_;
  std::unique_ptr<ReplicaMetrics> metrics_;

  mutable std::mutex mu_;
  Engine engine_;                                                           // guarded by mu_
  absl::flat_hash_map<RequestId, std::shared_ptr<RequestStream>> streams_;  // guarded by mu_
  absl::flat_hash_map<RequestId, Time> last_token_time_;                    // guarded by mu_
  RequestId next_id_ = 1;                                                   // guarded by mu_

  boost::asio::strand<boost::asio::io_context::executor_type> driver_strand_;
  boost::asio::steady_timer wake_timer_;  // idle wait, cancelled by WakeDriver
  boost::asio::steady_timer step_timer_;  // the modelled duration of a step
  std::atomic<bool> stopping_{false};
  std::atomic<bool> driver_done_{false};
  std::atomic<uint64_t> request_counter_{0};
  // Scratch for Deliver (driver strand only).
  absl::flat_hash_map<RequestId, StreamUpdate> updates_;

  std::unique_ptr<http::Server> server_;
};

}  // namespace zumik::sim

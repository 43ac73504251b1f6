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
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/clock.h"
#include "core/http/server.h"
#include "sim/engine.h"
#include "sim/openai_request.h"
#include "sim/profile.h"
#include "sim/server/response_store.h"
#include "sim/server/vllm_metrics.h"

namespace zumik::sim {

struct ReplicaOptions {
  int index = 0;
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  uint64_t seed = 1;
  // Request bodies above this get 413 (prompts of max_model_len tokens are ~4 bytes each).
  size_t max_body_bytes = size_t{8} * 1024 * 1024;
  // Keep `store: true` Responses API responses for previous_response_id, GET and cancel (vLLM:
  // VLLM_ENABLE_RESPONSES_API_STORE=1; off by default there too, `store` is then ignored).
  bool responses_store = false;
  size_t responses_store_capacity = ResponseStore::kDefaultCapacity;
};

// What the driver tells a request's handler after a step, for one of its engine requests.
struct StreamUpdate {
  int choice = 0;          // which engine request of the HTTP request (its choice index)
  int num_tokens = 0;      // output tokens produced so far
  int cached_tokens = -1;  // set with the first token
  int prompt_tokens = 0;
  bool finished = false;
  FinishReason finish_reason = FinishReason::kLength;
  Time model_time{0};  // when the model produced these tokens (the step's end)
};

class RequestStream;
struct InFlightRequests;

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
  // POST /v1/responses (responses_handler.cc).
  boost::asio::awaitable<void> HandleResponses(const http::Request& request,
                                               http::ResponseWriter& writer);
  // GET /v1/responses/{id} and POST /v1/responses/{id}/cancel.
  boost::asio::awaitable<void> HandleStoredResponse(const http::Request& request,
                                                    http::ResponseWriter& writer);
  boost::asio::awaitable<void> DriverLoop();
  // Submits `specs` as the choices of one RequestStream and arms the abort of the requests
  // when the returned object goes (unless its `done` is set) or the client disconnects. When
  // Submit fails, answers its 400 and returns nullptr.
  boost::asio::awaitable<std::unique_ptr<InFlightRequests>> Launch(std::vector<RequestSpec> specs,
                                                                   http::ResponseWriter& writer);
  // Queues the engine requests of one HTTP request, all or none, in one critical section (so
  // the driver sees them together, as vLLM's engine core drains the n children of a request
  // from its input queue before the next step), and registers spec k as choice k of `stream`.
  // Wakes the driver. Returns the ids it assigned, in order.
  absl::StatusOr<std::vector<RequestId>> Submit(std::vector<RequestSpec> specs,
                                                const std::shared_ptr<RequestStream>& stream);
  void Abort(std::span<const RequestId> ids);
  friend struct InFlightRequests;
  void WakeDriver();
  void Deliver(const StepResult& step);

  boost::asio::io_context& io_;
  const Profile profile_;
  const ReplicaOptions options_;
  const Clock& clock_;
  const std::string name_;
  std::unique_ptr<ReplicaMetrics> metrics_;

  // Where an engine request's updates go: choice `choice` of an HTTP request's stream.
  struct StreamRef {
    std::shared_ptr<RequestStream> stream;
    int choice = 0;
  };

  mutable std::mutex mu_;
  Engine engine_;                                         // guarded by mu_
  absl::flat_hash_map<RequestId, StreamRef> streams_;     // guarded by mu_
  absl::flat_hash_map<RequestId, Time> last_token_time_;  // guarded by mu_
  RequestId next_id_ = 1;                                 // guarded by mu_

  boost::asio::strand<boost::asio::io_context::executor_type> driver_strand_;
  boost::asio::steady_timer wake_timer_;  // idle wait, cancelled by WakeDriver
  boost::asio::steady_timer step_timer_;  // the modelled duration of a step
  std::atomic<bool> stopping_{false};
  std::atomic<bool> driver_done_{false};
  std::atomic<uint64_t> request_counter_{0};
  const uint64_t id_salt_;  // makes Responses API ids unique across replicas and processes
  std::unique_ptr<ResponseStore> response_store_;  // with options_.responses_store
  // Scratch for Deliver (driver strand only).
  absl::flat_hash_map<RequestId, StreamUpdate> updates_;

  std::unique_ptr<http::Server> server_;
};

}  // namespace zumik::sim

#include "sim/server/sim_server.h"

#include "core/status.h"

namespace zumik::sim {

SimServer::SimServer(SimServerOptions options) : options_(std::move(options)) {}

SimServer::~SimServer() { Stop(std::chrono::seconds(0)); }

absl::Status SimServer::Start() {
  if (options_.replicas < 1) {
    return absl::InvalidArgumentError("--replicas must be at least 1");
  }
  if (options_.port != 0 && options_.port + options_.replicas - 1 > 65535) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "ports {}..{} do not fit below 65536: lower --port or --replicas", options_.port,
                  options_.port + options_.replicas - 1);
  }
  for (int i = 0; i < options_.replicas; ++i) {
    ReplicaOptions replica_options;
    replica_options.index = i;
    replica_options.host = options_.host;
    replica_options.port = options_.port == 0 ? 0 : static_cast<uint16_t>(options_.port + i);
    replica_options.seed = options_.seed + static_cast<uint64_t>(i);
    replica_options.responses_store = options_.responses_store;
    replicas_.push_back(std::make_shared<Replica>(io_, options_.profile, replica_options));
    if (absl::Status status = replicas_.back()->Start(); !status.ok()) {
      replicas_.clear();
      return status;
    }
  }
  const int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { io_.run(); });
  }
  return absl::OkStatus();
}

void SimServer::Stop(std::chrono::nanoseconds grace) {
  if (stopped_) return;
  stopped_ = true;
  if (!threads_.empty()) {
    for (auto& replica : replicas_) replica->Stop(grace);
    // Let the drivers see the stop and exit, so no coroutine is left suspended.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (auto& replica : replicas_) {
      while (!replica->driver_done() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }
  io_.stop();
  for (auto& thread : threads_) thread.join();
  threads_.clear();
  replicas_.clear();
}

}  // namespace zumik::sim

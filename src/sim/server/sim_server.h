// `zumik sim`: N independent simulated vLLM replicas in one process, on ports P..P+N-1, sharing
// one io_context run by a few threads.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "sim/profile.h"
#include "sim/server/replica.h"

namespace zumik::sim {

struct SimServerOptions {
  int replicas = 1;
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // replica i listens on port + i; 0 = ephemeral ports
  Profile profile;
  uint64_t seed = 1;
  int threads = 2;
  bool responses_store = false;  // ReplicaOptions::responses_store of every replica
};

class SimServer {
 public:
  explicit SimServer(SimServerOptions options);
  ~SimServer();

  // Binds every replica and starts the io threads; on failure nothing keeps running.
  absl::Status Start();
  // Graceful stop: requests in flight get up to `grace` to finish.
  void Stop(std::chrono::nanoseconds grace = std::chrono::seconds(5));

  const std::vector<std::shared_ptr<Replica>>& replicas() const { return replicas_; }
  boost::asio::io_context& io() { return io_; }

 private:
  SimServerOptions options_;
  boost::asio::io_context io_;
  std::vector<std::shared_ptr<Replica>> replicas_;
  std::vector<std::thread> threads_;
  bool stopped_ = false;
};

}  // namespace zumik::sim

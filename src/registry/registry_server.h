// A running registry: opens the store, loads the clusters, serves the HTTP API on its own
// io_context threads and flushes heartbeats to the store every `flush_interval`.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/clock.h"
#include "core/http/server.h"
#include "core/metrics/registry.h"
#include "registry/service.h"
#include "registry/store.h"

namespace zumik::registry {

struct RegistryServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::string db = "sqlite:zumik-registry.db";
  int threads = 2;
  Duration flush_interval = std::chrono::seconds(1);
  // Request bodies over this get 413 (status snapshots are small).
  size_t max_body_bytes = size_t{64} * 1024;
  ServiceOptions service;
};

class RegistryServer {
 public:
  // `clock` must outlive the server (RealClock::Instance() outside tests).
  explicit RegistryServer(RegistryServerOptions options,
                          const Clock& clock = RealClock::Instance());
  ~RegistryServer();
  RegistryServer(const RegistryServer&) = delete;
  RegistryServer& operator=(const RegistryServer&) = delete;

  absl::Status Start();
  // Stops serving, then writes the pending heartbeats.
  void Stop();

  uint16_t port() const;
  RegistryService& service() { return *service_; }
  Store& store() { return *store_; }

 private:
  void FlushLoop();

  RegistryServerOptions options_;
  const Clock& clock_;
  std::unique_ptr<Store> store_;
  metrics::Registry metrics_;
  std::unique_ptr<RegistryService> service_;
  boost::asio::io_context io_;
  std::unique_ptr<http::Server> server_;
  std::vector<std::thread> threads_;
  std::thread flusher_;
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  bool stopping_ = false;
  bool started_ = false;
};

}  // namespace zumik::registry

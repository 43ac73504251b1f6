// Process wiring of the registry: store, service, HTTP server, io threads, heartbeat flusher.
#include "registry/registry_server.h"

#include <boost/asio/executor_work_guard.hpp>

#include "core/log.h"
#include "core/status.h"

namespace zumik::registry {

RegistryServer::RegistryServer(RegistryServerOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock) {}

RegistryServer::~RegistryServer() { Stop(); }

absl::Status RegistryServer::Start() {
  ASSIGN_OR_RETURN(store_, OpenStore(options_.db));
  service_ = std::make_unique<RegistryService>(*store_, clock_, options_.service, &metrics_);
  RETURN_IF_ERROR(service_->Load());
  http::Router router;
  service_->AddRoutes(router);
  http::ServerOptions server_options;
  server_options.host = options_.host;
  server_options.port = options_.port;
  server_options.name = "registry";
  server_options.max_body_bytes = options_.max_body_bytes;
  server_options.error_code_for_status = ErrorCodeForStatus;
  server_ = std::make_unique<http::Server>(io_, server_options, std::move(router));
  RETURN_IF_ERROR(server_->Start());
  started_ = true;
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] {
      auto guard = boost::asio::make_work_guard(io_);
      io_.run();
    });
  }
  flusher_ = std::thread([this] { FlushLoop(); });
  return absl::OkStatus();
}

void RegistryServer::FlushLoop() {
  std::unique_lock lock(flush_mu_);
  while (!stopping_) {
    flush_cv_.wait_for(lock, options_.flush_interval, [this] { return stopping_; });
    lock.unlock();
    if (absl::Status status = service_->Flush(); !status.ok()) {
      Logger("registry")->warn("writing heartbeats failed (will retry): {}", MessageOf(status));
    }
    lock.lock();
  }
}

void RegistryServer::Stop() {
  if (!started_) return;
  started_ = false;
  server_->Stop(std::chrono::seconds(2));
  service_->DrainBlockingWork();
  {
    std::lock_guard lock(flush_mu_);
    stopping_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  io_.stop();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  if (absl::Status status = service_->Flush(); !status.ok()) {
    Logger("registry")->warn("final heartbeat write failed: {}", MessageOf(status));
  }
}

uint16_t RegistryServer::port() const { return server_ ? server_->port() : 0; }

}  // namespace zumik::registry

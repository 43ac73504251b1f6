// The plaintext health-only gRPC server; see health_server.h.
#include "epp/extproc/health_server.h"

#include <fmt/format.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>

#include "core/log.h"
#include "core/status.h"

namespace zumik::epp::extproc {

absl::StatusOr<std::unique_ptr<HealthServer>> HealthServer::Start(const std::string& host,
                                                                  int port) {
  std::unique_ptr<HealthServer> server(new HealthServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort(fmt::format("{}:{}", host, port), grpc::InsecureServerCredentials(),
                           &server->port_);
  // Our async health service, not gRPC's callback-based one (see health_service.h).
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.RegisterService(server->health_.service());
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  server->queue_ = builder.AddCompletionQueue();
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return Errorf(absl::StatusCode::kUnavailable, "gRPC health: cannot listen on {}:{}", host,
                  port);
  }
  server->health_.Start(*server->queue_, server->tracker_);
  grpc::ServerCompletionQueue* cq = server->queue_.get();
  server->thread_ = std::thread([cq] { ServeCompletions(*cq); });
  Logger("epp.extproc")->info("gRPC health server on {}:{} (plaintext)", host, server->port_);
  return server;
}

HealthServer::~HealthServer() { Shutdown(); }

void HealthServer::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  health_.Shutdown();
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
  }
  tracker_.WaitIdle();
  if (queue_ == nullptr) return;
  queue_->Shutdown();
  if (thread_.joinable()) {
    thread_.join();  // it drains the queue before Next returns false
  } else {
    ServeCompletions(*queue_);  // never started: a queue must be empty to be destroyed
  }
}

}  // namespace zumik::epp::extproc

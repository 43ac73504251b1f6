// gRPC wiring of the ext_proc server; the protocol logic is in stream_processor.cc.
#include "epp/extproc/server.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/log.h"
#include "core/status.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "epp/extproc/self_signed.h"
#include "epp/extproc/stream_processor.h"

namespace zumik::epp::extproc {
namespace {

// One Process stream, on gRPC's callback API: each reaction runs on the thread that completed
// the read or write, so a message costs no thread handoff. At most one read or one write is
// outstanding at a time (read → handle → write the replies in order → read), so reactions
// never run concurrently and the StreamProcessor needs no lock.
class ProcessReactor final : public grpc::ServerBidiReactor<ext_proc_pb::ProcessingRequest,
                                                            ext_proc_pb::ProcessingResponse> {
 public:
  ProcessReactor(grpc::CallbackServerContext* context, Backend& backend)
      : context_(context), processor_(backend) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The peer half-closed or cancelled, or sent bytes that do not parse (reported as a
      // failed read): whatever was in flight is over.
      bool complete = processor_.complete();
      processor_.Abort();
      if (context_->IsCancelled()) {
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      } else if (!complete) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "ext_proc stream ended before the exchange completed (early "
                            "half-close or an unparsable ProcessingRequest)"));
      } else {
        Finish(grpc::Status::OK);
      }
      return;
    }
    replies_.clear();
    next_reply_ = 0;
    status_ = processor_.Handle(request_, replies_);
    if (!status_.ok()) processor_.Abort();
    WriteNextOrContinue();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      processor_.Abort();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "ext_proc stream closed by the peer"));
      return;
    }
    WriteNextOrContinue();
  }

  void OnDone() override { delete this; }  // the framework's ownership model for reactors

 private:
  void WriteNextOrContinue() {
    if (next_reply_ < replies_.size()) {
      StartWrite(&replies_[next_reply_++]);
    } else if (!status_.ok()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(MessageOf(status_))));
    } else if (processor_.finished()) {
      Finish(grpc::Status::OK);
    } else {
      StartRead(&request_);
    }
  }

  grpc::CallbackServerContext* context_;
  StreamProcessor processor_;
  ext_proc_pb::ProcessingRequest request_;
  std::vector<ext_proc_pb::ProcessingResponse> replies_;
  size_t next_reply_ = 0;
  absl::Status status_;
};

class ExternalProcessorService final : public ext_proc_pb::ExternalProcessor::CallbackService {
 public:
  explicit ExternalProcessorService(std::shared_ptr<Backend> backend)
      : backend_(std::move(backend)) {}

  grpc::ServerBidiReactor<ext_proc_pb::ProcessingRequest, ext_proc_pb::ProcessingResponse>* Process(
      grpc::CallbackServerContext* context) override {
    return new ProcessReactor(context, *backend_);
  }

 private:
  std::shared_ptr<Backend> backend_;
};

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Errorf(absl::StatusCode::kInvalidArgument, "ext_proc TLS: cannot read '{}'", path);
  }
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ExtProcTlsOptions& tls) {
  if (!tls.enabled) return grpc::InsecureServerCredentials();
  PemKeyPair pair;
  if (tls.cert_file.empty() && tls.key_file.empty()) {
    ASSIGN_OR_RETURN(pair, GenerateSelfSignedCertificate("zumik-epp"));
  } else if (tls.cert_file.empty() || tls.key_file.empty()) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "ext_proc TLS: give both a certificate and a key file (or neither, for a "
                  "self-signed certificate)");
  } else {
    ASSIGN_OR_RETURN(pair.certificate_pem, ReadFile(tls.cert_file));
    ASSIGN_OR_RETURN(pair.private_key_pem, ReadFile(tls.key_file));
  }
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({pair.private_key_pem, pair.certificate_pem});
  return grpc::SslServerCredentials(ssl);
}

class ExtProcServerImpl final : public ExtProcServer {
 public:
  ExtProcServerImpl(std::unique_ptr<ExternalProcessorService> service,
                    std::unique_ptr<grpc::Server> server, int port,
                    std::chrono::milliseconds drain_timeout)
      : service_(std::move(service)),
        server_(std::move(server)),
        port_(port),
        drain_timeout_(drain_timeout) {}
  ~ExtProcServerImpl() override { Shutdown(); }

  int port() const override { return port_; }

  void SetReady(bool ready) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    auto* health = server_->GetHealthCheckService();
    health->SetServingStatus("readiness", ready);
    health->SetServingStatus(kExtProcServiceName, ready);
  }

  void Shutdown() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    // Health first, so Envoy's health checks steer away while streams drain.
    server_->GetHealthCheckService()->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + drain_timeout_);
    server_->Wait();
  }

 private:
  std::unique_ptr<ExternalProcessorService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_;
  std::chrono::milliseconds drain_timeout_;
  std::mutex mu_;
  bool shut_down_ = false;
};

}  // namespace

absl::StatusOr<std::unique_ptr<ExtProcServer>> StartExtProcServer(
    const ExtProcOptions& options, std::shared_ptr<Backend> backend) {
  if (backend == nullptr) {
    return Errorf(absl::StatusCode::kInvalidArgument, "ext_proc server needs a backend");
  }
  ASSIGN_OR_RETURN(auto credentials, Credentials(options.tls));
  // Debian's Abseil is built with mutex deadlock detection on, which gRPC's every lock then
  // pays for (cycle-graph bookkeeping); a server process does not want it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // The stock health service implements Check and Watch; it is process-wide opt-in.
  grpc::EnableDefaultHealthCheckService(true);
  auto service = std::make_unique<ExternalProcessorService>(std::move(backend));
  grpc::ServerBuilder builder;
  std::string host = options.host;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  int bound_port = 0;
  builder.AddListeningPort(fmt::format("{}:{}", host, options.port), credentials, &bound_port);
  builder.RegisterService(service.get());
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  // gRPC sets SO_REUSEPORT by default: a second EPP on the same port would silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.max_concurrent_streams_per_connection);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound_port == 0) {
    return Errorf(absl::StatusCode::kUnavailable, "ext_proc: cannot listen on {}:{}", host,
                  options.port);
  }
  auto* health = server->GetHealthCheckService();
  health->SetServingStatus("", true);
  health->SetServingStatus("liveness", true);
  health->SetServingStatus("readiness", options.ready);
  health->SetServingStatus(kExtProcServiceName, options.ready);
  Logger("epp.extproc")
      ->info("ext_proc gRPC server on {}:{} ({})", host, bound_port,
             options.tls.enabled ? "TLS" : "plaintext");
  return std::unique_ptr<ExtProcServer>(std::make_unique<ExtProcServerImpl>(
      std::move(service), std::move(server), bound_port, options.drain_timeout));
}

}  // namespace zumik::epp::extproc

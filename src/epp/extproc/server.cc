// gRPC wiring of the ext_proc server; the protocol logic is in stream_processor.cc.
#include "epp/extproc/server.h"

#include <fmt/format.h>
#include <grpcpp/alarm.h>
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/log.h"
#include "core/status.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "epp/extproc/completion_tag.h"
#include "epp/extproc/health_server.h"
#include "epp/extproc/health_service.h"
#include "epp/extproc/self_signed.h"
#include "epp/extproc/stream_processor.h"
#include "google/protobuf/arena.h"

namespace zumik::epp::extproc {
namespace {

using AsyncService = ext_proc_pb::ExternalProcessor::AsyncService;

// Per-stream arena block: holds one message cycle of the usual size (headers of a chat
// request and their replies); body bytes live in std::string buffers outside it.
constexpr size_t kArenaBlockBytes = 4096;

// One Process stream on gRPC's async API, driven by the worker thread that owns its completion
// queue: that thread polls the connection, so a message is read, handled and answered on one
// thread with no handoff (the callback API ran each reaction on another thread, a futex wake
// per message). At most one operation (accept, read, write or finish) is outstanding at a
// time (read → handle → write the replies in order → read), so the object is its own tag and
// the StreamProcessor needs no lock. The call's done notification has a tag of its own (the
// object goes once both it and Finish have come back), on the same queue and thread.
class ProcessStream final : public CompletionTag {
 public:
  ProcessStream(AsyncService& service, grpc::ServerCompletionQueue& cq, Backend& backend,
                CallTracker& tracker)
      : service_(service),
        cq_(cq),
        backend_(backend),
        tracker_(tracker),
        stream_(&context_),
        processor_(backend) {}

  // Asks gRPC for the next stream arriving on this queue.
  void Accept() {
    state_ = State::kAccepting;
    // Registered before the call starts, as gRPC requires: the peer's cancel reaches a request
    // waiting for admission, which has no read or write outstanding to fail.
    context_.AsyncNotifyWhenDone(&done_tag_);
    service_.RequestProcess(&context_, &stream_, &cq_, &cq_, this);
  }

  // The outstanding operation completed.
  void Proceed(bool ok) override {
    switch (state_) {
      case State::kAccepting:
        if (!ok) {  // the server is shutting down
          // A call that never started gets no done notification (gRPC issue 10136, documented
          // in grpc/grpc#33208), so nothing else refers to this object.
          delete this;
          return;
        }
        // Keep one accept pending per queue. (gRPC fails accepts posted after Shutdown began,
        // and the queue is shut down only after the server finished, so this is safe.)
        (new ProcessStream(service_, cq_, backend_, tracker_))->Accept();
        tracked_.Begin(tracker_);
        StartRead();
        return;
      case State::kReading:
        OnReadDone(ok);
        return;
      case State::kWriting:
        OnWriteDone(ok);
        return;
      case State::kWaiting:
        OnAdmitRetry();
        return;
      case State::kFinishing:
        // The done notification comes after Finish too, in either order with this.
        state_ = State::kFinished;
        if (call_done_) delete this;
        return;
      case State::kFinished:
        return;
    }
  }

 private:
  enum class State { kAccepting, kReading, kWriting, kWaiting, kFinishing, kFinished };

  // The call's done notification: its own tag, since the stream is the tag of the one
  // operation outstanding. Delivered once for every call that started.
  class DoneTag final : public CompletionTag {
   public:
    explicit DoneTag(ProcessStream& stream) : stream_(stream) {}
    void Proceed(bool /*ok*/) override { stream_.OnCallDone(); }

   private:
    ProcessStream& stream_;
  };

  void OnCallDone() {
    call_done_ = true;
    if (state_ == State::kFinished) {
      delete this;
    } else if (state_ == State::kWaiting) {
      // Cancelled while waiting for admission (the call cannot be done otherwise before our
      // Finish): the alarm comes back at once, failed, and OnAdmitRetry ends the request.
      alarm_->Cancel();
    }
    // Reading or writing: that operation fails and ends the request as before.
  }

  // Each message cycle (read, handle, write the replies) builds its messages on arena_, and
  // the next cycle starts by resetting it: no per-object heap allocation and no destructor
  // walk (gRPC serialises a reply within Write, so nothing outlives the cycle).
  void NewCycle() {
    arena_.Reset();
    request_ = google::protobuf::Arena::CreateMessage<ext_proc_pb::ProcessingRequest>(&arena_);
    replies_ = google::protobuf::Arena::CreateMessage<Replies>(&arena_);
    next_reply_ = 0;
  }

  void StartRead() {
    state_ = State::kReading;
    NewCycle();
    stream_.Read(request_, this);
  }

  // The request waits in the backend's admission queue: retry on an alarm on this queue, so
  // the thread keeps serving the other streams meanwhile.
  void WaitForAdmission() {
    auto now = std::chrono::steady_clock::now();
    if (!waited_) {
      waited_ = true;
      queue_deadline_ = now + backend_.queue_ttl();
    }
    state_ = State::kWaiting;
    auto wait =
        std::min<std::chrono::steady_clock::duration>(kAdmitRetryInterval, queue_deadline_ - now);
    alarm_.emplace();
    alarm_->Set(&cq_, std::chrono::system_clock::now() + wait, this);
  }

  void OnAdmitRetry() {
    if (call_done_) {  // the peer cancelled: leave the queue without another admission try
      processor_.Abort();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "ext_proc stream cancelled by the peer"));
      return;
    }
    NewCycle();
    if (std::chrono::steady_clock::now() >= queue_deadline_ || tracker_.draining()) {
      processor_.QueueTimedOut(*replies_);
    } else {
      processor_.RetryAdmit(*replies_);
    }
    status_ = absl::OkStatus();
    WriteNextOrContinue();
  }

  void Finish(const grpc::Status& status) {
    state_ = State::kFinishing;
    stream_.Finish(status, this);
  }

  void OnReadDone(bool ok) {
    if (!ok) {
      // The peer half-closed or cancelled, or sent bytes that do not parse (reported as a
      // failed read): whatever was in flight is over. (A cancelled peer never sees the status.)
      bool complete = processor_.complete();
      processor_.Abort();
      if (!complete) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "ext_proc stream ended before the exchange completed (early "
                            "half-close or an unparsable ProcessingRequest)"));
      } else {
        Finish(grpc::Status::OK);
      }
      return;
    }
    status_ = processor_.Handle(*request_, *replies_);
    if (!status_.ok()) processor_.Fail();
    WriteNextOrContinue();
  }

  void OnWriteDone(bool ok) {
    if (!ok) {
      processor_.Abort();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "ext_proc stream closed by the peer"));
      return;
    }
    WriteNextOrContinue();
  }

  void WriteNextOrContinue() {
    if (next_reply_ < replies_->size()) {
      state_ = State::kWriting;
      stream_.Write((*replies_)[next_reply_++], this);
    } else if (!status_.ok()) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(MessageOf(status_))));
    } else if (processor_.finished()) {
      Finish(grpc::Status::OK);
    } else if (processor_.queued()) {
      WaitForAdmission();
    } else {
      StartRead();
    }
  }

  TrackedCall tracked_;
  AsyncService& service_;
  grpc::ServerCompletionQueue& cq_;
  Backend& backend_;
  CallTracker& tracker_;
  State state_ = State::kAccepting;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<ext_proc_pb::ProcessingResponse, ext_proc_pb::ProcessingRequest>
      stream_;
  StreamProcessor processor_;
  // The arena's first block, in this object: a small message cycle allocates nothing.
  alignas(8) char arena_block_[kArenaBlockBytes];
  google::protobuf::Arena arena_{arena_block_, sizeof(arena_block_)};
  ext_proc_pb::ProcessingRequest* request_ = nullptr;  // on arena_
  Replies* replies_ = nullptr;                         // on arena_
  int next_reply_ = 0;
  absl::Status status_;
  std::optional<grpc::Alarm> alarm_;  // the admission retry (a fresh alarm each time)
  DoneTag done_tag_{*this};
  bool call_done_ = false;  // the done notification arrived
  bool waited_ = false;
  std::chrono::steady_clock::time_point queue_deadline_;
};

// The Process service: one completion queue and one thread per worker.
class ExternalProcessorService {
 public:
  explicit ExternalProcessorService(std::shared_ptr<Backend> backend)
      : backend_(std::move(backend)) {}
  ~ExternalProcessorService() { StopWorkers(); }

  AsyncService* service() { return &service_; }
  // Requests waiting for admission get their queue timeout now instead of at queue_ttl.
  void BeginDrain() { tracker_.BeginDrain(); }
  HealthService& health() { return health_; }

  // Before BuildAndStart.
  void AddQueues(grpc::ServerBuilder& builder, int count) {
    for (int i = 0; i < count; ++i) queues_.push_back(builder.AddCompletionQueue());
  }

  // After BuildAndStart.
  void StartWorkers() {
    health_.Start(*queues_.front(), tracker_);
    for (auto& queue : queues_) {
      grpc::ServerCompletionQueue* cq = queue.get();
      (new ProcessStream(service_, *cq, *backend_, tracker_))->Accept();
      threads_.emplace_back([cq] { ServeCompletions(*cq); });
    }
  }

  // After the server's Shutdown returned (having cancelled what was open at the deadline):
  // waits for every call to end, then the workers drain the failed accepts and exit (a queue
  // must be empty to be destroyed).
  void StopWorkers() {
    tracker_.WaitIdle();
    for (auto& queue : queues_) queue->Shutdown();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
    for (auto& queue : queues_) ServeCompletions(*queue);
    queues_.clear();
  }

 private:
  std::shared_ptr<Backend> backend_;
  AsyncService service_;
  HealthService health_;
  CallTracker tracker_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
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
                    std::unique_ptr<HealthServer> health_server,
                    std::chrono::milliseconds drain_timeout)
      : service_(std::move(service)),
        server_(std::move(server)),
        port_(port),
        health_server_(std::move(health_server)),
        drain_timeout_(drain_timeout) {}
  ~ExtProcServerImpl() override { Shutdown(); }

  int port() const override { return port_; }
  int health_port() const override { return health_server_ ? health_server_->port() : -1; }

  void SetReady(bool ready) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    for (HealthService* health : Healths()) {
      health->SetServingStatus("readiness", ready);
      health->SetServingStatus(kExtProcServiceName, ready);
    }
  }

  void Shutdown() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    service_->BeginDrain();
    // Health first, so Envoy's health checks and the probes steer away while streams drain.
    for (HealthService* health : Healths()) health->Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + drain_timeout_);
    server_->Wait();
    service_->StopWorkers();
    if (health_server_) health_server_->Shutdown();
  }

 private:
  std::vector<HealthService*> Healths() {
    std::vector<HealthService*> out = {&service_->health()};
    if (health_server_) out.push_back(&health_server_->health());
    return out;
  }

  std::unique_ptr<ExternalProcessorService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_;
  std::unique_ptr<HealthServer> health_server_;
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
  auto service = std::make_unique<ExternalProcessorService>(std::move(backend));
  grpc::ServerBuilder builder;
  std::string host = options.host;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  int bound_port = 0;
  builder.AddListeningPort(fmt::format("{}:{}", host, options.port), credentials, &bound_port);
  builder.RegisterService(service->service());
  // Our own health service instead of gRPC's callback-based one (see health_service.h).
  builder.SetOption(std::make_unique<grpc::HealthCheckServiceServerBuilderOption>(nullptr));
  builder.RegisterService(service->health().service());
  int workers = options.worker_threads > 0
                    ? options.worker_threads
                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  service->AddQueues(builder, workers);
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
  service->StartWorkers();
  std::unique_ptr<HealthServer> health_server;
  if (options.health_port >= 0) {
    auto started = HealthServer::Start(host, options.health_port);
    if (!started.ok()) {
      server->Shutdown();
      service->StopWorkers();
      return started.status();
    }
    health_server = std::move(*started);
  }
  std::vector<HealthService*> healths = {&service->health()};
  if (health_server) healths.push_back(&health_server->health());
  for (HealthService* health : healths) {
    health->SetServingStatus("", true);
    health->SetServingStatus("liveness", true);
    health->SetServingStatus("readiness", options.ready);
    health->SetServingStatus(kExtProcServiceName, options.ready);
  }
  Logger("epp.extproc")
      ->info("ext_proc gRPC server on {}:{} ({})", host, bound_port,
             options.tls.enabled ? "TLS" : "plaintext");
  return std::unique_ptr<ExtProcServer>(
      std::make_unique<ExtProcServerImpl>(std::move(service), std::move(server), bound_port,
                                          std::move(health_server), options.drain_timeout));
}

}  // namespace zumik::epp::extproc

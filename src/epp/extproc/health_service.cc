// The async grpc.health.v1.Health service; see health_service.h.
#include "epp/extproc/health_service.h"

#include <utility>

#include "epp/extproc/completion_tag.h"

namespace zumik::epp::extproc {

namespace health_pb = ::grpc::health::v1;

// What every health call holds. `tracked` first: it ends the call after the rest is gone.
struct HealthCallBase {
  HealthCallBase(HealthService& health_service, health_pb::Health::AsyncService& async_service,
                 grpc::ServerCompletionQueue& queue)
      : health(health_service), service(async_service), cq(queue) {}

  TrackedCall tracked;
  HealthService& health;
  health_pb::Health::AsyncService& service;
  grpc::ServerCompletionQueue& cq;
  grpc::ServerContext context;
  health_pb::HealthCheckRequest request;
};

namespace {

// One Check call: accept, answer, gone.
class CheckCall final : public CompletionTag, private HealthCallBase {
 public:
  CheckCall(HealthService& health_service, health_pb::Health::AsyncService& async_service,
            grpc::ServerCompletionQueue& queue)
      : HealthCallBase(health_service, async_service, queue), responder_(&context) {
    service.RequestCheck(&context, &request, &responder_, &cq, &cq, this);
  }

  void Proceed(bool ok) override {
    if (!ok || answered_) {  // shutting down, or the answer went out
      delete this;
      return;
    }
    new CheckCall(health, service, cq);
    tracked.Begin(health.tracker());
    answered_ = true;
    std::optional<HealthService::ServingStatus> status = health.StatusOf(request.service());
    if (!status.has_value()) {
      responder_.FinishWithError(grpc::Status(grpc::StatusCode::NOT_FOUND, "service name unknown"),
                                 this);
      return;
    }
    health_pb::HealthCheckResponse response;
    response.set_status(*status);
    responder_.Finish(response, grpc::Status::OK, this);
  }

 private:
  grpc::ServerAsyncResponseWriter<health_pb::HealthCheckResponse> responder_;
  bool answered_ = false;
};

}  // namespace

// One Watch stream: the current status, then every change, until the client leaves or the
// service shuts down. Updates come from SetServingStatus callers' threads, completions from
// the worker, hence the lock; it has up to three operations outstanding (write, finish, done
// notification), each with its own tag, and deletes itself when none is left.
class HealthService::WatchCall : private HealthCallBase {
 public:
  WatchCall(HealthService& health_service, health_pb::Health::AsyncService& async_service,
            grpc::ServerCompletionQueue& queue)
      : HealthCallBase(health_service, async_service, queue), writer_(&context) {
    context.AsyncNotifyWhenDone(&done_tag_);
    service.RequestWatch(&context, &request, &writer_, &cq, &cq, &accept_tag_);
  }

  // The status changed (or the service shut down: `last`).
  void Update(ServingStatus status, bool last) {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = status;
    end_after_write_ = end_after_write_ || last;
    if (!writing_ && !finishing_) FlushLocked();
  }

  const std::string& service_name() const { return request.service(); }

 private:
  // A member-function tag.
  class Tag final : public CompletionTag {
   public:
    Tag(WatchCall* call, void (WatchCall::*handler)(bool)) : call_(call), handler_(handler) {}
    void Proceed(bool ok) override { (call_->*handler_)(ok); }

   private:
    WatchCall* call_;
    void (WatchCall::*handler_)(bool);
  };

  void OnAccepted(bool ok) {
    if (!ok) {  // shutting down: the call never started, so no done notification comes
      delete this;
      return;
    }
    new WatchCall(health, service, cq);
    tracked.Begin(health.tracker());
    health.AddWatcher(this);  // sends the current status through Update
  }

  void OnWritten(bool ok) {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (ok) FlushLocked();
    DeleteIfIdle(lock);
  }

  // No operation outstanding: send what changed, or end the stream after the last status.
  void FlushLocked() {
    if (done_) return;
    if (!sent_any_ || sent_ != current_) {
      writing_ = true;
      sent_any_ = true;
      sent_ = current_;
      response_.set_status(current_);
      writer_.Write(response_, &write_tag_);
    } else if (end_after_write_) {
      finishing_ = true;
      writer_.Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "health service shut down"),
                     &finish_tag_);
    }
  }

  void OnFinished(bool) {
    std::unique_lock<std::mutex> lock(mu_);
    finishing_ = false;
    DeleteIfIdle(lock);
  }

  void OnDone(bool) {
    health.RemoveWatcher(this);  // no Update after this
    std::unique_lock<std::mutex> lock(mu_);
    done_ = true;
    DeleteIfIdle(lock);
  }

  void DeleteIfIdle(std::unique_lock<std::mutex>& lock) {
    if (!done_ || writing_ || finishing_) return;
    lock.unlock();
    delete this;
  }

  health_pb::HealthCheckResponse response_;
  grpc::ServerAsyncWriter<health_pb::HealthCheckResponse> writer_;
  Tag accept_tag_{this, &WatchCall::OnAccepted};
  Tag write_tag_{this, &WatchCall::OnWritten};
  Tag finish_tag_{this, &WatchCall::OnFinished};
  Tag done_tag_{this, &WatchCall::OnDone};
  std::mutex mu_;
  ServingStatus current_ = health_pb::HealthCheckResponse::UNKNOWN;
  ServingStatus sent_ = health_pb::HealthCheckResponse::UNKNOWN;
  bool sent_any_ = false;
  bool writing_ = false;
  bool finishing_ = false;
  bool done_ = false;
  bool end_after_write_ = false;
};

void HealthService::Start(grpc::ServerCompletionQueue& cq, CallTracker& tracker) {
  tracker_ = &tracker;
  new CheckCall(*this, service_, cq);
  new WatchCall(*this, service_, cq);
}

std::optional<HealthService::ServingStatus> HealthService::StatusOf(const std::string& service) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = statuses_.find(service);
  if (it == statuses_.end()) return std::nullopt;
  return it->second;
}

void HealthService::SetServingStatus(const std::string& service, bool serving) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return;
  ServingStatus status = serving ? health_pb::HealthCheckResponse::SERVING
                                 : health_pb::HealthCheckResponse::NOT_SERVING;
  statuses_[service] = status;
  for (WatchCall* watcher : watchers_) {
    if (watcher->service_name() == service) watcher->Update(status, false);
  }
}

void HealthService::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& [service, status] : statuses_) status = health_pb::HealthCheckResponse::NOT_SERVING;
  for (WatchCall* watcher : watchers_) {
    watcher->Update(statuses_.count(watcher->service_name()) != 0
                        ? health_pb::HealthCheckResponse::NOT_SERVING
                        : health_pb::HealthCheckResponse::SERVICE_UNKNOWN,
                    true);
  }
}

void HealthService::AddWatcher(WatchCall* call) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.insert(call);
  auto it = statuses_.find(call->service_name());
  call->Update(it == statuses_.end() ? health_pb::HealthCheckResponse::SERVICE_UNKNOWN : it->second,
               shut_down_);
}

void HealthService::RemoveWatcher(WatchCall* call) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.erase(call);
}

}  // namespace zumik::epp::extproc

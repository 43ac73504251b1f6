// What the ext_proc server's worker threads take off their completion queues (every async
// operation's tag is a CompletionTag, told whether its operation succeeded), and the count of
// calls in progress that shutdown waits out before it closes the queues.
#pragma once

#include <grpcpp/completion_queue.h>

#include <atomic>
#include <condition_variable>
#include <mutex>

namespace zumik::epp::extproc {

class CompletionTag {
 public:
  virtual ~CompletionTag() = default;
  virtual void Proceed(bool ok) = 0;
};

// Hands each event of `cq` to its tag until the queue is shut down and empty: a worker
// thread's loop, or the drain of a queue no thread polls.
inline void ServeCompletions(grpc::CompletionQueue& cq) {
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) static_cast<CompletionTag*>(tag)->Proceed(ok);
}

// gRPC's Server::Shutdown returns once it has cancelled the calls still open at the drain
// deadline, before their cancelled operations come back; a queue must outlive them.
class CallTracker {
 public:
  void Begin() {
    std::lock_guard<std::mutex> lock(mu_);
    ++active_;
  }
  void End() {
    std::lock_guard<std::mutex> lock(mu_);
    if (--active_ == 0) idle_.notify_all();
  }
  void WaitIdle() {
    std::unique_lock<std::mutex> lock(mu_);
    idle_.wait(lock, [this] { return active_ == 0; });
  }
  // The server is shutting down (calls still open are draining).
  void BeginDrain() { draining_.store(true); }
  bool draining() const { return draining_.load(); }

 private:
  std::atomic<bool> draining_{false};
  std::mutex mu_;
  std::condition_variable idle_;
  int active_ = 0;
};

// A call object's first member: ends the call in the tracker after every other member (the
// gRPC context included) is destroyed.
class TrackedCall {
 public:
  TrackedCall() = default;
  TrackedCall(const TrackedCall&) = delete;
  TrackedCall& operator=(const TrackedCall&) = delete;
  ~TrackedCall() {
    if (tracker_ != nullptr) tracker_->End();
  }
  // The call started (its accept succeeded).
  void Begin(CallTracker& tracker) {
    tracker_ = &tracker;
    tracker.Begin();
  }

 private:
  CallTracker* tracker_ = nullptr;
};

}  // namespace zumik::epp::extproc

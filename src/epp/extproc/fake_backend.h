// Test double of the pipeline Backend: scripted admissions/rejections, and a record of every
// call so tests can assert what the ext_proc server told the pipeline. Thread-safe.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "epp/extproc/backend.h"

namespace zumik::epp::extproc {

class FakeBackend final : public Backend {
 public:
  struct AdmitCall {
    std::string path;
    HeaderList headers;
    std::string body;
    std::vector<std::string> subset;
  };
  struct Context {
    int id = 0;
    int response_status = -1;
    std::string content_type;
    std::string served_by;  // OnServedBy's endpoint
    std::string response_body;
    bool response_ended = false;
    int done_calls = 0;
    int peer_gone_calls = 0;
  };

  // Every Admit answers with `endpoints` (and these headers), unless a rejection is set.
  void Admit(std::vector<std::string> endpoints, HeaderList upstream_headers = {},
             HeaderList response_headers = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    endpoints_ = std::move(endpoints);
    upstream_headers_ = std::move(upstream_headers);
    response_headers_ = std::move(response_headers);
    rejection_.reset();
  }
  void Reject(BackendRejection rejection) {
    std::lock_guard<std::mutex> lock(mu_);
    rejection_ = std::move(rejection);
  }
  void set_max_body_bytes(size_t n) { max_body_bytes_ = n; }
  void set_profile_header(std::string value) { profile_ = std::move(value); }

  // The admission queue: requests for a path in `saturated_paths` get a queueable 429 (the
  // pool is saturated for them) until it is removed; `capacity` queue places.
  void SetQueue(int capacity, std::chrono::milliseconds ttl) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_capacity_ = capacity;
    queue_ttl_ = ttl;
  }
  void SetSaturated(const std::string& path, bool saturated) {
    std::lock_guard<std::mutex> lock(mu_);
    if (saturated) {
      saturated_paths_.push_back(path);
    } else {
      std::erase(saturated_paths_, path);
    }
  }
  int queue_entries() const {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_entries_;
  }
  int queued() const {  // places taken and not left
    std::lock_guard<std::mutex> lock(mu_);
    return queued_;
  }

  AdmitResult Admit(std::string_view path, const HeaderList& headers, std::string_view body,
                    std::span<const std::string> subset) override {
    std::lock_guard<std::mutex> lock(mu_);
    admits_.push_back(AdmitCall{std::string(path), headers, std::string(body),
                                std::vector<std::string>(subset.begin(), subset.end())});
    if (std::find(saturated_paths_.begin(), saturated_paths_.end(), path) !=
        saturated_paths_.end()) {
      return BackendRejection{429, R"({"error":{"message":"saturated"}})", "rejected-saturated",
                              queue_capacity_ > 0, "fake-model",
                              // Names this admit call (1-based) for the retry that hands it back.
                              std::make_shared<size_t>(admits_.size())};
    }
    if (rejection_.has_value()) return *rejection_;
    auto ctx = std::make_shared<Context>();
    ctx->id = static_cast<int>(contexts_.size());
    contexts_.push_back(ctx);
    return BackendAdmission{endpoints_, ctx, upstream_headers_, response_headers_, std::nullopt};
  }
  AdmitResult Readmit(const std::shared_ptr<void>& pending, std::string_view path,
                      const HeaderList& headers, std::string_view body,
                      std::span<const std::string> subset) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      readmits_.push_back(pending ? *std::static_pointer_cast<size_t>(pending) : 0);
    }
    return Admit(path, headers, body, subset);
  }
  // For each Readmit, the admit call whose queueable rejection it handed back (0: none).
  std::vector<size_t> readmits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return readmits_;
  }
  void OnServedBy(void* ctx, std::string_view endpoint) override {
    std::lock_guard<std::mutex> lock(mu_);
    static_cast<Context*>(ctx)->served_by = std::string(endpoint);
  }
  void OnResponseHeaders(void* ctx, int status, std::string_view content_type) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* c = static_cast<Context*>(ctx);
    c->response_status = status;
    c->content_type = std::string(content_type);
  }
  void OnResponseBody(void* ctx, std::string_view chunk, bool end_of_stream) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto* c = static_cast<Context*>(ctx);
    c->response_body.append(chunk);
    if (end_of_stream) c->response_ended = true;
  }
  // A response rewrite the way the pipeline's model-name restorer behaves: every 'a' becomes
  // "AA" (the length changes) and each chunk's last byte is held back until the next or the end.
  void set_rewrite_responses(bool on) { rewrite_ = on; }
  bool RewriteResponseBody(void* /*ctx*/, std::string_view chunk, bool end,
                           std::string& out) override {
    if (!rewrite_) return false;
    std::string text = held_ + std::string(chunk);
    held_.clear();
    if (!end && !text.empty()) {
      held_ = text.substr(text.size() - 1);
      text.pop_back();
    }
    for (char c : text) out += c == 'a' ? std::string("AA") : std::string(1, c);
    return true;
  }
  bool ResponseLengthMayChange(void* /*ctx*/) override { return rewrite_; }
  void OnPeerGone(void* ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    static_cast<Context*>(ctx)->peer_gone_calls++;
  }
  void OnDone(void* ctx) override {
    std::lock_guard<std::mutex> lock(mu_);
    static_cast<Context*>(ctx)->done_calls++;
    done_cv_.notify_all();
  }
  const std::string& profile_header() const override { return profile_; }
  size_t max_body_bytes() const override { return max_body_bytes_; }
  bool TryEnterQueue(std::string_view /*model*/) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (queued_ >= queue_capacity_) return false;
    ++queued_;
    ++queue_entries_;
    return true;
  }
  void LeaveQueue() override {
    std::lock_guard<std::mutex> lock(mu_);
    --queued_;
  }
  BackendRejection QueueTimeout(std::string_view model) override {
    return BackendRejection{
        429,
        fmt::format(R"({{"error":{{"message":"expired","model":"{}"}}}})", model),
        "rejected-ttl-expired",
        false,
        std::string(model),
        nullptr};
  }
  std::chrono::milliseconds queue_ttl() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return queue_ttl_;
  }

  std::vector<AdmitCall> admits() const {
    std::lock_guard<std::mutex> lock(mu_);
    return admits_;
  }
  // A copy of request i's context as the backend saw it.
  Context context(size_t i) const {
    std::lock_guard<std::mutex> lock(mu_);
    return *contexts_.at(i);
  }
  size_t contexts() const {
    std::lock_guard<std::mutex> lock(mu_);
    return contexts_.size();
  }
  // Blocks until request i was completed (OnDone) — the server calls it on its own thread
  // when a stream ends, after the client has already seen the end. false after 10 s.
  bool WaitDone(size_t i) {
    std::unique_lock<std::mutex> lock(mu_);
    return done_cv_.wait_for(lock, std::chrono::seconds(10),
                             [&] { return i < contexts_.size() && contexts_[i]->done_calls > 0; });
  }

 private:
  bool rewrite_ = false;
  std::string held_;  // one request at a time when rewriting
  mutable std::mutex mu_;
  std::condition_variable done_cv_;
  std::vector<std::string> endpoints_ = {"10.0.0.1:8000"};
  HeaderList upstream_headers_;
  HeaderList response_headers_;
  std::optional<BackendRejection> rejection_;
  size_t max_body_bytes_ = 1 << 20;
  std::string profile_ = "byoc_epp";
  std::vector<AdmitCall> admits_;
  std::vector<size_t> readmits_;
  std::vector<std::shared_ptr<Context>> contexts_;
  int queue_capacity_ = 0;
  std::chrono::milliseconds queue_ttl_{0};
  std::vector<std::string> saturated_paths_;
  int queued_ = 0;
  int queue_entries_ = 0;
};

}  // namespace zumik::epp::extproc

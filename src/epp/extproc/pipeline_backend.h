// Adapts epp::Pipeline to the ext_proc server's Backend interface (1:1 calls).
#pragma once

#include <memory>
#include <string>

#include "epp/extproc/backend.h"

namespace zumik::epp {
class Pipeline;
}

namespace zumik::epp::extproc {

class PipelineBackend final : public Backend {
 public:
  explicit PipelineBackend(std::shared_ptr<Pipeline> pipeline);

  AdmitResult Admit(std::string_view path, const HeaderList& headers, std::string_view body,
                    std::span<const std::string> subset) override;
  AdmitResult Readmit(const std::shared_ptr<void>& pending, std::string_view path,
                      const HeaderList& headers, std::string_view body,
                      std::span<const std::string> subset) override;
  void OnServedBy(void* ctx, std::string_view endpoint) override;
  void OnResponseHeaders(void* ctx, int status, std::string_view content_type) override;
  void OnResponseBody(void* ctx, std::string_view chunk, bool end_of_stream) override;
  bool RewriteResponseBody(void* ctx, std::string_view chunk, bool end, std::string& out) override;
  bool ResponseLengthMayChange(void* ctx) override;
  void OnPeerGone(void* ctx) override;
  void OnDone(void* ctx) override;
  const std::string& profile_header() const override;
  size_t max_body_bytes() const override;
  bool TryEnterQueue(std::string_view model) override;
  void LeaveQueue() override;
  BackendRejection QueueTimeout(std::string_view model) override;
  std::chrono::milliseconds queue_ttl() const override;

 private:
  std::shared_ptr<Pipeline> pipeline_;
};

}  // namespace zumik::epp::extproc

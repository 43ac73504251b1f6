// PipelineBackend and the Pipeline overload of StartExtProcServer.
#include "epp/extproc/pipeline_backend.h"

#include <utility>
#include <variant>

#include "epp/extproc/server.h"
#include "epp/pipeline.h"

namespace zumik::epp::extproc {

PipelineBackend::PipelineBackend(std::shared_ptr<Pipeline> pipeline)
    : pipeline_(std::move(pipeline)) {}

namespace {

BackendRejection ToBackend(Rejection rejection) {
  return BackendRejection{rejection.http_status,
                          std::move(rejection.json_body),
                          std::move(rejection.dropped_reason),
                          rejection.queueable,
                          std::move(rejection.metrics_model),
                          std::move(rejection.pending)};
}

AdmitResult ToBackend(std::variant<Admission, Rejection> result) {
  if (auto* rejection = std::get_if<Rejection>(&result)) return ToBackend(std::move(*rejection));
  auto& admission = std::get<epp::Admission>(result);
  BackendAdmission out;
  out.endpoints = std::move(admission.endpoints);
  out.ctx = std::move(admission.ctx);
  out.upstream_headers = std::move(admission.upstream_headers);
  out.response_headers = std::move(admission.response_headers);
  out.body = std::move(admission.body);
  return out;
}

}  // namespace

AdmitResult PipelineBackend::Admit(std::string_view path, const HeaderList& headers,
                                   std::string_view body, std::span<const std::string> subset) {
  // Never blocks the serving thread: a saturated sheddable request waits in the server's
  // own queue (an alarm on its completion queue), not here.
  return ToBackend(pipeline_->Admit(path, headers, body, subset, /*may_wait=*/false));
}

AdmitResult PipelineBackend::Readmit(const std::shared_ptr<void>& pending, std::string_view path,
                                     const HeaderList& headers, std::string_view body,
                                     std::span<const std::string> subset) {
  if (pending == nullptr) return Admit(path, headers, body, subset);
  return ToBackend(pipeline_->Readmit(std::static_pointer_cast<PendingRequest>(pending), subset));
}

void PipelineBackend::OnServedBy(void* ctx, std::string_view endpoint) {
  if (ctx != nullptr) pipeline_->OnServedBy(*static_cast<RequestContext*>(ctx), endpoint);
}

void PipelineBackend::OnResponseHeaders(void* ctx, int status, std::string_view content_type) {
  if (ctx != nullptr) {
    pipeline_->OnResponseHeaders(*static_cast<RequestContext*>(ctx), status, content_type);
  }
}

void PipelineBackend::OnResponseBody(void* ctx, std::string_view chunk, bool end_of_stream) {
  if (ctx != nullptr) {
    pipeline_->OnResponseBody(*static_cast<RequestContext*>(ctx), chunk, end_of_stream);
  }
}

bool PipelineBackend::RewriteResponseBody(void* ctx, std::string_view chunk, bool end,
                                          std::string& out) {
  return ctx != nullptr &&
         Pipeline::RestoreModelName(*static_cast<RequestContext*>(ctx), chunk, end, out);
}

bool PipelineBackend::ResponseLengthMayChange(void* ctx) {
  if (ctx == nullptr) return false;
  const auto& restorer = static_cast<RequestContext*>(ctx)->model_restorer;
  return restorer && restorer->changes_length();
}

void PipelineBackend::OnPeerGone(void* ctx) {
  // Counted as a 499 (client closed request) rather than a 502 when no response had begun.
  if (ctx != nullptr) static_cast<RequestContext*>(ctx)->client_gone = true;
}

void PipelineBackend::OnDone(void* ctx) {
  if (ctx != nullptr) pipeline_->OnDone(*static_cast<RequestContext*>(ctx));
}

const std::string& PipelineBackend::profile_header() const { return pipeline_->profile_header(); }

size_t PipelineBackend::max_body_bytes() const { return pipeline_->options().max_body_bytes; }

bool PipelineBackend::TryEnterQueue(std::string_view model) {
  return pipeline_->TryEnterQueue(model);
}

void PipelineBackend::LeaveQueue() { pipeline_->LeaveQueue(); }

BackendRejection PipelineBackend::QueueTimeout(std::string_view model) {
  return ToBackend(pipeline_->QueueTimeout(model));
}

std::chrono::milliseconds PipelineBackend::queue_ttl() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(pipeline_->options().queue_ttl);
}

absl::StatusOr<std::unique_ptr<ExtProcServer>> StartExtProcServer(
    const ExtProcOptions& options, std::shared_ptr<Pipeline> pipeline) {
  if (pipeline == nullptr) {
    return absl::InvalidArgumentError("ext_proc server needs a pipeline");
  }
  return StartExtProcServer(options, std::make_shared<PipelineBackend>(std::move(pipeline)));
}

}  // namespace zumik::epp::extproc

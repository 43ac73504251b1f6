// libFuzzer target for the ext_proc message handler: the input is a sequence of serialized
// ProcessingRequest messages (each prefixed by a 2-byte little-endian length) fed to one
// StreamProcessor, as one gRPC stream would deliver them. The first byte picks how the fake
// pipeline answers. Checks the handler's invariants on every reply.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "epp/extproc/backend.h"
#include "epp/extproc/stream_processor.h"

namespace {

using namespace zumik::epp::extproc;

class FuzzBackend final : public Backend {
 public:
  explicit FuzzBackend(uint8_t mode) : mode_(mode) {}
  AdmitResult Admit(std::string_view, const HeaderList&, std::string_view body,
                    std::span<const std::string> subset) override {
    switch (mode_ % 4) {
      case 0:
        return BackendRejection{429, R"({"error":{}})", "rejected-saturated", false, "", nullptr};
      case 1:
        return BackendAdmission{{}, std::make_shared<int>(0), {}, {}, std::nullopt};
      default: {
        std::vector<std::string> endpoints(subset.begin(), subset.end());
        if (endpoints.empty()) endpoints = {"10.0.0.1:8000", "10.0.0.2:8000"};
        return BackendAdmission{endpoints,
                                std::make_shared<int>(1),
                                {{"x-request-id", "r"}},
                                {{"x-session-token", "s"}},
                                // Odd lengths: the body Envoy forwards is replaced (a rewrite).
                                body.size() % 2 == 1
                                    ? std::optional<std::string>(R"({"model":"rewritten"})")
                                    : std::nullopt};
      }
    }
  }
  void OnResponseHeaders(void* ctx, int, std::string_view) override { Check(ctx); }
  void OnResponseBody(void* ctx, std::string_view, bool) override { Check(ctx); }
  void OnDone(void* ctx) override {
    Check(ctx);
    if (++done_ > 1) std::abort();  // OnDone at most once per request
  }
  const std::string& profile_header() const override { return profile_; }
  size_t max_body_bytes() const override { return 1 << 16; }

 private:
  static void Check(void* ctx) {
    if (ctx == nullptr) std::abort();
  }
  uint8_t mode_;
  int done_ = 0;
  std::string profile_ = "byoc_epp";
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  FuzzBackend backend(data[0]);
  {
    StreamProcessor processor(backend);
    std::vector<ext_proc_pb::ProcessingResponse> out;
    size_t offset = 1;
    while (offset + 2 <= size) {
      size_t n = data[offset] | (static_cast<size_t>(data[offset + 1]) << 8);
      offset += 2;
      if (n > size - offset) n = size - offset;
      ext_proc_pb::ProcessingRequest request;
      bool parsed = request.ParseFromArray(data + offset, static_cast<int>(n));
      offset += n;
      if (!parsed) continue;
      out.clear();
      absl::Status status = processor.Handle(request, out);
      for (const auto& reply : out) {
        if (reply.has_request_body() || reply.has_response_body()) {
          const auto& body =
              reply.has_request_body() ? reply.request_body() : reply.response_body();
          if (body.response().body_mutation().streamed_response().body().size() >
              kMaxBodyChunkBytes) {
            std::abort();
          }
        }
      }
      if (!status.ok() || processor.finished()) break;
    }
  }
  return 0;
}

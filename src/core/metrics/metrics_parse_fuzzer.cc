// libFuzzer target: the /metrics parser must never crash, hang or read out of bounds on
// whatever an endpoint returns, and its streaming and owning forms must agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/metrics/parser.h"
#include "core/metrics/query.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  zumik::metrics::TextParser parser;
  size_t streamed = 0;
  uint64_t checksum = 0;
  const absl::Status status = parser.Parse(text, [&](const zumik::metrics::SampleView& sample) {
    ++streamed;
    // Read every byte of every view so ASan checks they point at live memory.
    for (const zumik::metrics::LabelView& label : sample.labels) {
      for (char c : label.name) checksum += static_cast<unsigned char>(c);
      for (char c : label.value) checksum += static_cast<unsigned char>(c);
    }
  });
  const absl::StatusOr<std::vector<zumik::metrics::Sample>> samples =
      zumik::metrics::ParseText(text);
  if (status.ok() != samples.ok()) std::abort();
  if (samples.ok()) {
    if (samples->size() != streamed) std::abort();
    uint64_t owned_checksum = 0;
    for (const zumik::metrics::Sample& sample : *samples) {
      for (const auto& [name, value] : sample.labels) {
        for (char c : name) owned_checksum += static_cast<unsigned char>(c);
        for (char c : value) owned_checksum += static_cast<unsigned char>(c);
      }
    }
    if (owned_checksum != checksum) std::abort();
    if (!samples->empty()) {
      (void)zumik::metrics::HistogramQuantile(0.9, *samples, samples->front().name);
    }
  }
  return 0;
}

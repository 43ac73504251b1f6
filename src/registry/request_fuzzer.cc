// libFuzzer target: the registry's request decoding (register and heartbeat bodies) must
// never crash, and whatever it accepts must survive a JSON round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)zumik::registry::DecodeRegisterRequest(body);
  auto heartbeat = zumik::registry::DecodeHeartbeatRequest(body);
  if (heartbeat.ok() && heartbeat->status) {
    auto again = zumik::registry::StatusFromJson(zumik::registry::StatusToJson(*heartbeat->status));
    if (!again.ok() || !(*again == *heartbeat->status)) std::abort();
  }
  return 0;
}

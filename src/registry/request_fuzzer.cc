// libFuzzer target: the registry's request decoding (register and heartbeat bodies, the
// Authorization header of the web page) must never crash, and whatever it accepts must survive
// a JSON round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "registry/credentials.h"
#include "registry/model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)zumik::registry::DecodeRegisterRequest(body);
  auto heartbeat = zumik::registry::DecodeHeartbeatRequest(body);
  if (heartbeat.ok() && heartbeat->status) {
    auto again = zumik::registry::StatusFromJson(zumik::registry::StatusToJson(*heartbeat->status));
    if (!again.ok() || !(*again == *heartbeat->status)) std::abort();
  }
  // A key taken from a header is never longer than the header (Basic only shrinks it).
  for (const std::string& header : {std::string(body), "Basic " + std::string(body)}) {
    if (zumik::registry::ApiKeyFromAuthorization(header).size() > header.size()) std::abort();
  }
  return 0;
}

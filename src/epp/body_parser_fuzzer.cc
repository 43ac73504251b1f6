// libFuzzer target: the EPP body parser (and the usage parser) on arbitrary bytes for every
// API kind; the first byte picks the kind. Must never crash, leak or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "epp/body_parser.h"
#include "epp/usage_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto kind = static_cast<zumik::epp::ApiKind>(data[0] % 4);
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto result = zumik::epp::ParseBody(kind, body);
  if (result.ok && result.body.model.empty()) __builtin_trap();
  zumik::epp::UsageParser usage;
  usage.set_streaming(data[0] & 0x80);
  usage.Feed(body.substr(0, body.size() / 2));
  usage.Feed(body.substr(body.size() / 2));
  usage.Finish();
  return 0;
}

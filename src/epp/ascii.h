// ASCII case-insensitive comparison for HTTP header names (RFC 9110: field names are
// case-insensitive), shared by the pipeline and the gateway.
#pragma once

#include <string_view>

namespace zumik::epp {

inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace zumik::epp

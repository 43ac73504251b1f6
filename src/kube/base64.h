// Standard base64 (RFC 4648 with padding), for Secret data and kubeconfig *-data fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace zumik::kube {

std::string Base64Encode(std::string_view data);
// nullopt on characters outside the alphabet or a bad length; whitespace is skipped.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace zumik::kube

// Standard base64 (RFC 4648 with padding): Kubernetes Secret data and kubeconfig *-data
// fields, and the session-affinity header of the scheduler.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace zumik {

std::string Base64Encode(std::string_view data);
// nullopt on characters outside the alphabet or a bad length; whitespace is skipped.
std::optional<std::string> Base64Decode(std::string_view text);

}  // namespace zumik

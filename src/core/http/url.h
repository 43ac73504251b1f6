// Absolute http:// and https:// URLs as the client needs them: where to connect, what to
// put in the request line and the Host header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace zumik::http {

struct Url {
  // "http" or "https".
  std::string scheme;
  // Host name or IP address, without IPv6 brackets, percent-decoded.
  std::string host;
  uint16_t port = 0;
  // Request target: encoded path (at least "/") plus "?query" when present.
  std::string target;

  bool tls() const { return scheme == "https"; }
  // "host" or "host:port" when the port is not the scheme's default ("[::1]:8080" for IPv6).
  std::string HostHeader() const;
  // "host:port" (IPv6 in brackets), for messages and connection pooling.
  std::string Authority() const;
  // The whole URL back, "http://host:port/target".
  std::string ToString() const;
};

// "host:port", an IPv6 host in brackets ("[::1]:8000"), as a URL's authority is written.
std::string HostPort(const std::string& host, uint16_t port);

// Parses an absolute URL. kInvalidArgument (naming the URL) for anything else: relative
// references, other schemes, user info, an empty host or an out-of-range port.
absl::StatusOr<Url> ParseUrl(std::string_view text);

// `reference` may be absolute, or a path ("/v1/models?x=1") resolved against `base`: the
// base's scheme, host and port, with the base's path (if any) as a prefix.
absl::StatusOr<Url> ResolveUrl(std::string_view reference, std::string_view base);

}  // namespace zumik::http

// URL parsing on Boost.URL.
#include "core/http/url.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "core/status.h"

namespace zumik::http {
namespace {

bool IsDefaultPort(const Url& url) {
  return (url.scheme == "http" && url.port == 80) || (url.scheme == "https" && url.port == 443);
}

std::string BracketedHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

}  // namespace

// Built by hand, as the client does this for every request.
std::string HostPort(const std::string& host, uint16_t port) {
  std::string out = BracketedHost(host);
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

std::string Url::HostHeader() const {
  if (IsDefaultPort(*this)) return BracketedHost(host);
  return HostPort(host, port);
}

std::string Url::Authority() const { return HostPort(host, port); }

std::string Url::ToString() const { return fmt::format("{}://{}{}", scheme, HostHeader(), target); }

absl::StatusOr<Url> ParseUrl(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (parsed.has_error()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "invalid URL '{}': {}", text,
                  parsed.error().message());
  }
  const boost::urls::url_view& view = *parsed;
  Url url;
  url.scheme = std::string(view.scheme());
  for (char& c : url.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url.scheme != "http" && url.scheme != "https") {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "invalid URL '{}': scheme must be http or https", text);
  }
  if (view.has_userinfo()) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "invalid URL '{}': user info is not supported (send an Authorization header)",
                  text);
  }
  url.host = view.host_address();
  if (url.host.empty()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "invalid URL '{}': no host", text);
  }
  if (view.has_port() && !view.port().empty()) {
    const std::string_view port = view.port();
    uint32_t value = 0;
    for (char c : port) {
      value = value * 10 + static_cast<uint32_t>(c - '0');
      if (value > 65535) break;
    }
    if (value == 0 || value > 65535) {
      return Errorf(absl::StatusCode::kInvalidArgument, "invalid URL '{}': bad port '{}'", text,
                    port);
    }
    url.port = static_cast<uint16_t>(value);
  } else {
    url.port = url.tls() ? 443 : 80;
  }
  url.target = std::string(view.encoded_path());
  if (url.target.empty()) url.target = "/";
  if (url.target.front() != '/') {
    return Errorf(absl::StatusCode::kInvalidArgument, "invalid URL '{}': bad path", text);
  }
  if (view.has_query()) {
    url.target += '?';
    url.target += std::string_view(view.encoded_query());
  }
  return url;
}

absl::StatusOr<Url> ResolveUrl(std::string_view reference, std::string_view base) {
  if (reference.empty() || reference.front() != '/') return ParseUrl(reference);
  if (base.empty()) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "'{}' is a path but the client has no base URL", reference);
  }
  ASSIGN_OR_RETURN(Url url, ParseUrl(base));
  std::string prefix = url.target.substr(0, url.target.find('?'));
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  for (char c : reference) {
    // Keep a caller's path from splitting the request line.
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "invalid request path '{}': contains a space or control character", reference);
    }
  }
  url.target = prefix + std::string(reference);
  return url;
}

}  // namespace zumik::http

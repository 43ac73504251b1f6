// The Kubernetes REST client: configuration loading, resource paths, requests and watches.
#include "kube/client.h"

#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include "core/base64.h"
#include "core/config.h"
#include "core/http/errors.h"
#include "core/json_path.h"
#include "core/status.h"

namespace zumik::kube {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errorf(absl::StatusCode::kNotFound, "cannot read '{}'", path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// Percent-encodes a query value.
std::string QueryEscape(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

std::string ListQuery(const ListOptions& options) {
  std::string query;
  auto add = [&query](std::string_view key, std::string_view value) {
    query += query.empty() ? "?" : "&";
    query += key;
    query += '=';
    query += QueryEscape(value);
  };
  if (!options.label_selector.empty()) add("labelSelector", options.label_selector);
  if (!options.field_selector.empty()) add("fieldSelector", options.field_selector);
  return query;
}

// The message of a Kubernetes Status body (or of our {"error":{"message"}} shape).
std::string ErrorMessage(const std::string& body) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (!ec && value.is_object()) {
    const auto& object = value.get_object();
    if (auto it = object.find("message"); it != object.end() && it->value().is_string()) {
      return std::string(it->value().get_string());
    }
    if (auto it = object.find("error"); it != object.end() && it->value().is_object()) {
      const auto& error = it->value().get_object();
      if (auto m = error.find("message"); m != error.end() && m->value().is_string()) {
        return std::string(m->value().get_string());
      }
    }
  }
  std::string text = body.substr(0, 200);
  return text.empty() ? std::string("no message") : text;
}

absl::Status StatusFromHttp(int status, const std::string& body, std::string_view what) {
  const std::string message = ErrorMessage(body);
  if (status == 410) {
    return Errorf(absl::StatusCode::kOutOfRange, "{}: 410 Gone: {}", what, message);
  }
  if (status == 409 && message.find("modified") != std::string::npos) {
    return Errorf(absl::StatusCode::kAborted, "{}: 409 Conflict: {}", what, message);
  }
  absl::StatusCode code = http::StatusCodeFromHttp(status);
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kInternal;
  return absl::Status(code, fmt::format("{}: HTTP {}: {}", what, status, message));
}

absl::StatusOr<json::value> ParseJson(const std::string& body, std::string_view what) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec) {
    return Errorf(absl::StatusCode::kInternal, "{}: response is not JSON: {}", what, ec.message());
  }
  return value;
}

absl::StatusOr<json::object> AsObject(absl::StatusOr<json::value> value) {
  if (!value.ok()) return value.status();
  if (!value->is_object()) return absl::InternalError("API server answered a non-object");
  return std::move(value->get_object());
}

std::string ObjectKeyPath(const json::object& object) { return ObjectName(object); }

}  // namespace

// --- configuration ---------------------------------------------------------------------------

absl::StatusOr<Config> InClusterConfig(std::string dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || port == nullptr || *host == '\0') {
    return absl::FailedPreconditionError(
        "not running in a Pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set");
  }
  Config config;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  config.server = fmt::format("https://{}:{}", h, port);
  auto token = ReadFile(dir + "/token");
  if (!token.ok()) {
    return Errorf(absl::StatusCode::kFailedPrecondition,
                  "no service-account token in {} (is automountServiceAccountToken off?)", dir);
  }
  config.token = Secret(Trim(*token));
  config.tls.ca_file = dir + "/ca.crt";
  if (auto ns = ReadFile(dir + "/namespace"); ns.ok() && !Trim(*ns).empty()) {
    config.default_namespace = Trim(*ns);
  }
  return config;
}

absl::StatusOr<Config> LoadKubeconfig(const std::string& path, const std::string& context) {
  ASSIGN_OR_RETURN(YamlDoc doc, LoadYamlFile(path));
  try {
    const YAML::Node& root = doc.root;
    std::string context_name = context;
    if (context_name.empty() && root["current-context"]) {
      context_name = root["current-context"].as<std::string>();
    }
    auto find_named = [&root](const char* list, const std::string& name) -> YAML::Node {
      const YAML::Node items = root[list];
      if (!items || !items.IsSequence()) return YAML::Node();
      for (const auto& item : items) {
        if (item["name"] && item["name"].as<std::string>() == name) return item;
      }
      // A single entry needs no name match when no context names it.
      if (name.empty() && items.size() == 1) return items[0];
      return YAML::Node();
    };
    std::string cluster_name;
    std::string user_name;
    Config config;
    if (YAML::Node ctx = find_named("contexts", context_name); ctx && ctx["context"]) {
      const YAML::Node c = ctx["context"];
      if (c["cluster"]) cluster_name = c["cluster"].as<std::string>();
      if (c["user"]) user_name = c["user"].as<std::string>();
      if (c["namespace"]) config.default_namespace = c["namespace"].as<std::string>();
    } else if (!context_name.empty()) {
      return Errorf(absl::StatusCode::kInvalidArgument, "{}: no context named '{}'", path,
                    context_name);
    }
    const YAML::Node cluster_entry = find_named("clusters", cluster_name);
    if (!cluster_entry || !cluster_entry["cluster"] || !cluster_entry["cluster"]["server"]) {
      return Errorf(absl::StatusCode::kInvalidArgument, "{}: no cluster server for context '{}'",
                    path, context_name);
    }
    const YAML::Node cluster = cluster_entry["cluster"];
    config.server = cluster["server"].as<std::string>();
    while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
    if (cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>()) {
      config.tls.verify_peer = false;
    }
    if (cluster["certificate-authority-data"]) {
      auto pem = Base64Decode(cluster["certificate-authority-data"].as<std::string>());
      if (!pem) {
        return Errorf(absl::StatusCode::kInvalidArgument,
                      "{}: certificate-authority-data is not base64", path);
      }
      config.tls.ca_pem = *pem;
    } else if (cluster["certificate-authority"]) {
      config.tls.ca_file = cluster["certificate-authority"].as<std::string>();
    }
    if (YAML::Node user_entry = find_named("users", user_name); user_entry && user_entry["user"]) {
      const YAML::Node user = user_entry["user"];
      if (user["token"]) {
        config.token = Secret(user["token"].as<std::string>());
      } else if (user["tokenFile"]) {
        ASSIGN_OR_RETURN(std::string token, ReadFile(user["tokenFile"].as<std::string>()));
        config.token = Secret(Trim(token));
      }
      if (user["client-certificate-data"]) {
        auto pem = Base64Decode(user["client-certificate-data"].as<std::string>());
        if (!pem) {
          return Errorf(absl::StatusCode::kInvalidArgument, "{}: bad client-certificate-data",
                        path);
        }
        config.tls.client_cert_pem = *pem;
      } else if (user["client-certificate"]) {
        config.tls.client_cert_file = user["client-certificate"].as<std::string>();
      }
      if (user["client-key-data"]) {
        auto pem = Base64Decode(user["client-key-data"].as<std::string>());
        if (!pem) {
          return Errorf(absl::StatusCode::kInvalidArgument, "{}: bad client-key-data", path);
        }
        config.tls.client_key_pem = Secret(*pem);
      } else if (user["client-key"]) {
        config.tls.client_key_file = user["client-key"].as<std::string>();
      }
    }
    return config;
  } catch (const std::exception& e) {
    return Errorf(absl::StatusCode::kInvalidArgument, "{}: malformed kubeconfig: {}", path,
                  e.what());
  }
}

absl::StatusOr<Config> ResolveConfig(const std::string& kubeconfig) {
  if (!kubeconfig.empty()) return LoadKubeconfig(kubeconfig);
  if (const char* env = std::getenv("KUBECONFIG"); env != nullptr && *env != '\0') {
    std::string first = env;
    if (auto colon = first.find(':'); colon != std::string::npos) first.resize(colon);
    return LoadKubeconfig(first);
  }
  auto in_cluster = InClusterConfig();
  if (in_cluster.ok()) return in_cluster;
  if (const char* home = std::getenv("HOME"); home != nullptr) {
    const std::string path = std::string(home) + "/.kube/config";
    if (std::ifstream(path).good()) return LoadKubeconfig(path);
  }
  return absl::FailedPreconditionError(
      "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a Pod");
}

// --- resources and objects -------------------------------------------------------------------

std::string Resource::ApiVersion() const { return group.empty() ? version : group + "/" + version; }

std::string Resource::GroupVersionPath() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string Resource::Path(std::string_view ns, std::string_view name) const {
  std::string path = GroupVersionPath();
  if (namespaced && !ns.empty()) path += fmt::format("/namespaces/{}", ns);
  path += "/" + plural;
  if (!name.empty()) path += fmt::format("/{}", name);
  return path;
}

std::string_view EventTypeName(EventType type) {
  switch (type) {
    case EventType::kAdded:
      return "ADDED";
    case EventType::kModified:
      return "MODIFIED";
    case EventType::kDeleted:
      return "DELETED";
    case EventType::kBookmark:
      return "BOOKMARK";
  }
  return "?";
}

bool IsGone(const absl::Status& status) { return status.code() == absl::StatusCode::kOutOfRange; }

std::string ObjectName(const json::object& object) { return StringAt(object, "metadata.name"); }
std::string ObjectNamespace(const json::object& object) {
  return StringAt(object, "metadata.namespace");
}
std::string ObjectResourceVersion(const json::object& object) {
  return StringAt(object, "metadata.resourceVersion");
}
std::map<std::string, std::string> ObjectLabels(const json::object& object) {
  std::map<std::string, std::string> labels;
  const json::value* v = FindPath(object, "metadata.labels");
  if (v != nullptr && v->is_object()) {
    for (const auto& [key, value] : v->get_object()) {
      if (value.is_string()) labels[std::string(key)] = std::string(value.get_string());
    }
  }
  return labels;
}

// --- watch stream ----------------------------------------------------------------------------

struct WatchStream::Impl {
  explicit Impl(http::ClientStream s) : stream(std::move(s)) {}
  http::ClientStream stream;
  std::string buffer;
  bool ended = false;
};

WatchStream::WatchStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
WatchStream::WatchStream(WatchStream&&) noexcept = default;
WatchStream& WatchStream::operator=(WatchStream&&) noexcept = default;
WatchStream::~WatchStream() = default;

void WatchStream::Cancel() {
  if (impl_) impl_->stream.Cancel();
}

namespace {
absl::StatusOr<std::optional<WatchEvent>> ParseEventLine(std::string_view line) {
  boost::system::error_code ec;
  json::value value = json::parse(json::string_view(line.data(), line.size()), ec);
  if (ec || !value.is_object()) {
    return Errorf(absl::StatusCode::kInternal, "watch: malformed event: {}", ec.message());
  }
  json::object& event = value.get_object();
  const json::value* type = event.if_contains("type");
  json::value* object = event.if_contains("object");
  if (type == nullptr || !type->is_string() || object == nullptr || !object->is_object()) {
    return absl::InternalError("watch: event without type or object");
  }
  const std::string_view t(type->get_string().data(), type->get_string().size());
  WatchEvent out;
  if (t == "ERROR") {
    const json::object& status = object->get_object();
    int64_t code = 0;
    if (const json::value* c = status.if_contains("code"); c != nullptr && c->is_int64()) {
      code = c->get_int64();
    }
    std::string message = StringAt(status, "message");
    const std::string reason = StringAt(status, "reason");
    if (code == 410 || reason == "Expired" || reason == "Gone") {
      return Errorf(absl::StatusCode::kOutOfRange, "watch: 410 Gone: {}", message);
    }
    absl::StatusCode sc = http::StatusCodeFromHttp(static_cast<int>(code));
    if (sc == absl::StatusCode::kOk) sc = absl::StatusCode::kInternal;
    return absl::Status(sc, fmt::format("watch: error event {}: {}", code, message));
  }
  if (t == "ADDED") {
    out.type = EventType::kAdded;
  } else if (t == "MODIFIED") {
    out.type = EventType::kModified;
  } else if (t == "DELETED") {
    out.type = EventType::kDeleted;
  } else if (t == "BOOKMARK") {
    out.type = EventType::kBookmark;
  } else {
    return Errorf(absl::StatusCode::kInternal, "watch: unknown event type '{}'", t);
  }
  out.object = std::move(object->get_object());
  return std::optional<WatchEvent>(std::move(out));
}
}  // namespace

asio::awaitable<absl::StatusOr<std::optional<WatchEvent>>> WatchStream::Next() {
  using Result = absl::StatusOr<std::optional<WatchEvent>>;
  while (true) {
    size_t newline = impl_->buffer.find('\n');
    if (newline != std::string::npos) {
      std::string line = impl_->buffer.substr(0, newline);
      impl_->buffer.erase(0, newline + 1);
      if (line.find_first_not_of(" \r\t") == std::string::npos) continue;
      Result result = ParseEventLine(line);
      co_return result;
    }
    if (impl_->ended) {
      if (impl_->buffer.find_first_not_of(" \r\n\t") != std::string::npos) {
        std::string line = std::move(impl_->buffer);
        impl_->buffer.clear();
        Result result = ParseEventLine(line);
        co_return result;
      }
      co_return Result(std::optional<WatchEvent>());
    }
    absl::StatusOr<std::string_view> chunk = co_await impl_->stream.Read();
    if (!chunk.ok()) {
      // A connection dropped mid-watch ends the watch like a timeout; the caller re-watches.
      if (chunk.status().code() == absl::StatusCode::kCancelled) co_return Result(chunk.status());
      impl_->ended = true;
      if (impl_->buffer.empty()) co_return Result(chunk.status());
      continue;
    }
    if (chunk->empty()) {
      impl_->ended = true;
      continue;
    }
    impl_->buffer.append(chunk->data(), chunk->size());
  }
}

// --- client ----------------------------------------------------------------------------------

namespace {
http::ClientOptions MakeHttpOptions(const Config& config) {
  http::ClientOptions options;
  options.tls = config.tls;
  options.connect_timeout = std::chrono::seconds(10);
  options.request_timeout = std::chrono::seconds(30);
  options.max_idle_per_host = 8;
  return options;
}
}  // namespace

Client::Client(asio::any_io_executor executor, Config config)
    : config_(std::move(config)), http_(std::move(executor), MakeHttpOptions(config_)) {}

Client::~Client() = default;

http::ClientRequest Client::MakeRequest(http::Method method, const std::string& path,
                                        std::string body, std::string content_type) const {
  http::ClientRequest request =
      http::ClientRequest::Make(method, config_.server + path, std::move(body));
  request.WithHeader("Accept", "application/json");
  if (!content_type.empty()) request.WithHeader("Content-Type", std::move(content_type));
  if (!config_.token.empty()) {
    request.WithHeader("Authorization", "Bearer " + config_.token.Reveal());
  }
  return request;
}

asio::awaitable<absl::StatusOr<json::value>> Client::Send(http::ClientRequest request) {
  const std::string what = fmt::format("{} {}", http::MethodName(request.method),
                                       request.url.substr(config_.server.size()));
  absl::StatusOr<http::ClientResponse> response = co_await http_.Fetch(std::move(request));
  if (!response.ok()) {
    absl::Status failed(response.status().code(),
                        fmt::format("{}: {}", what, MessageOf(response.status())));
    co_return failed;
  }
  if (!response->ok()) {
    absl::Status failed = StatusFromHttp(response->status, response->body, what);
    co_return failed;
  }
  if (response->body.empty()) co_return json::value(json::object());
  absl::StatusOr<json::value> parsed = ParseJson(response->body, what);
  co_return parsed;
}

asio::awaitable<absl::StatusOr<json::value>> Client::GetPath(std::string path) {
  http::ClientRequest request = MakeRequest(http::Method::get, path, "", "");
  co_return co_await Send(std::move(request));
}

asio::awaitable<absl::StatusOr<json::object>> Client::Get(Resource resource, std::string ns,
                                                          std::string name) {
  http::ClientRequest request = MakeRequest(http::Method::get, resource.Path(ns, name), "", "");
  absl::StatusOr<json::value> value = co_await Send(std::move(request));
  co_return AsObject(std::move(value));
}

asio::awaitable<absl::StatusOr<ObjectList>> Client::List(Resource resource, std::string ns,
                                                         ListOptions options) {
  http::ClientRequest request =
      MakeRequest(http::Method::get, resource.Path(ns) + ListQuery(options), "", "");
  absl::StatusOr<json::value> value = co_await Send(std::move(request));
  if (!value.ok()) co_return value.status();
  if (!value->is_object()) co_return absl::InternalError("list: not an object");
  json::object& body = value->get_object();
  ObjectList list;
  list.resource_version = StringAt(body, "metadata.resourceVersion");
  if (json::value* items = body.if_contains("items"); items != nullptr && items->is_array()) {
    for (json::value& item : items->get_array()) {
      if (item.is_object()) list.items.push_back(std::move(item.get_object()));
    }
  }
  co_return list;
}

asio::awaitable<absl::StatusOr<WatchStream>> Client::Watch(Resource resource, std::string ns,
                                                           WatchOptions options) {
  std::string query = ListQuery(options.selector);
  query += query.empty() ? "?" : "&";
  query += "watch=1";
  if (!options.resource_version.empty()) {
    query += "&resourceVersion=" + QueryEscape(options.resource_version);
  }
  if (options.allow_bookmarks) query += "&allowWatchBookmarks=true";
  query += fmt::format("&timeoutSeconds={}", options.timeout_seconds);
  http::ClientRequest request = MakeRequest(http::Method::get, resource.Path(ns) + query, "", "");
  request.WithTimeout(std::chrono::seconds(options.timeout_seconds + 30));
  const std::string what = fmt::format("WATCH {}", resource.Path(ns));
  absl::StatusOr<http::ClientStream> stream = co_await http_.Stream(std::move(request));
  if (!stream.ok()) {
    absl::Status failed(stream.status().code(),
                        fmt::format("{}: {}", what, MessageOf(stream.status())));
    co_return failed;
  }
  if (stream->status() < 200 || stream->status() >= 300) {
    const int status = stream->status();
    absl::StatusOr<std::string> body = co_await stream->ReadAll(64 << 10);
    absl::Status failed = StatusFromHttp(status, body.ok() ? *body : std::string(), what);
    co_return failed;
  }
  auto impl = std::make_unique<WatchStream::Impl>(std::move(*stream));
  co_return WatchStream(std::move(impl));
}

asio::awaitable<absl::StatusOr<json::object>> Client::Create(Resource resource, std::string ns,
                                                             json::object object) {
  object["apiVersion"] = resource.ApiVersion();
  http::ClientRequest request = MakeRequest(http::Method::post, resource.Path(ns),
                                            json::serialize(object), "application/json");
  absl::StatusOr<json::value> value = co_await Send(std::move(request));
  co_return AsObject(std::move(value));
}

asio::awaitable<absl::StatusOr<json::object>> Client::Update(Resource resource, std::string ns,
                                                             json::object object) {
  object["apiVersion"] = resource.ApiVersion();
  const std::string name = ObjectKeyPath(object);
  if (name.empty()) co_return absl::InvalidArgumentError("update: object has no metadata.name");
  http::ClientRequest request = MakeRequest(http::Method::put, resource.Path(ns, name),
                                            json::serialize(object), "application/json");
  absl::StatusOr<json::value> value = co_await Send(std::move(request));
  co_return AsObject(std::move(value));
}

asio::awaitable<absl::StatusOr<json::object>> Client::MergePatch(Resource resource, std::string ns,
                                                                 std::string name,
                                                                 json::value patch) {
  http::ClientRequest request = MakeRequest(http::Method::patch, resource.Path(ns, name),
                                            json::serialize(patch), "application/merge-patch+json");
  absl::StatusOr<json::value> value = co_await Send(std::move(request));
  co_return AsObject(std::move(value));
}

asio::awaitable<absl::StatusOr<json::object>> Client::Apply(Resource resource, std::string ns,
                                                            json::object object) {
  absl::StatusOr<json::object> created = co_await Create(resource, ns, object);
  if (created.ok() || created.status().code() != absl::StatusCode::kAlreadyExists) {
    co_return created;
  }
  const std::string name = ObjectKeyPath(object);
  absl::StatusOr<json::object> current = co_await Get(resource, ns, name);
  if (!current.ok()) co_return current.status();
  json::value* metadata = object.if_contains("metadata");
  if (metadata != nullptr && metadata->is_object()) {
    metadata->get_object()["resourceVersion"] = ObjectResourceVersion(*current);
  }
  co_return co_await Update(resource, ns, std::move(object));
}

asio::awaitable<absl::Status> Client::Delete(Resource resource, std::string ns, std::string name) {
  http::ClientRequest request = MakeRequest(http::Method::delete_, resource.Path(ns, name), "", "");
  absl::StatusOr<json::value> value = co_await Send(std::move(request));
  co_return value.status();
}

}  // namespace zumik::kube

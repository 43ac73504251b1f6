// Request decoding and validation for the registry API.
#include "registry/model.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/status.h"

namespace zumik::registry {
namespace {

namespace json = boost::json;

absl::Status FieldError(std::string_view field, std::string_view problem) {
  return Errorf(absl::StatusCode::kInvalidArgument, "field '{}': {}", field, problem);
}

bool IsTagChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == ':' || c == '/' || c == '+';
}

absl::StatusOr<json::object> ParseObject(std::string_view body, bool empty_is_object) {
  if (empty_is_object && body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return json::object();
  }
  boost::system::error_code ec;
  json::value value = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) {
    return Errorf(absl::StatusCode::kInvalidArgument, "body is not valid JSON: {}", ec.message());
  }
  if (!value.is_object()) return absl::InvalidArgumentError("body must be a JSON object");
  return std::move(value.as_object());
}

// Reads an optional string field; absent or null gives "".
absl::StatusOr<std::string> ReadString(const json::object& object, std::string_view key,
                                       std::string_view field, bool required, size_t max_length) {
  const json::value* value = object.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || value->is_null()) {
    if (required) return FieldError(field, "is required");
    return std::string();
  }
  if (!value->is_string()) return FieldError(field, "must be a string");
  const json::string& text = value->get_string();
  if (required && text.empty()) return FieldError(field, "must not be empty");
  if (text.size() > max_length) {
    return FieldError(field, fmt::format("must be at most {} characters", max_length));
  }
  return std::string(text.data(), text.size());
}

absl::StatusOr<int64_t> ReadCount(const json::object& object, std::string_view key,
                                  std::string_view field) {
  const json::value* value = object.if_contains(json::string_view(key.data(), key.size()));
  if (value == nullptr || value->is_null()) return 0;
  int64_t number = 0;
  if (value->is_int64()) {
    number = value->get_int64();
  } else if (value->is_uint64() && value->get_uint64() <= static_cast<uint64_t>(kMaxCount)) {
    number = static_cast<int64_t>(value->get_uint64());
  } else if (value->is_uint64()) {
    number = kMaxCount + 1;
  } else {
    return FieldError(field, "must be an integer");
  }
  if (number < 0 || number > kMaxCount) {
    return FieldError(field, fmt::format("must be between 0 and {}", kMaxCount));
  }
  return number;
}

absl::Status CheckTag(std::string_view field, std::string_view tag) {
  for (char c : tag) {
    if (!IsTagChar(c)) return FieldError(field, "may contain only letters, digits and -_.:/+");
  }
  return absl::OkStatus();
}

absl::StatusOr<StatusSnapshot> DecodeStatus(const json::value& value) {
  if (!value.is_object()) return FieldError("status", "must be an object");
  const json::object& object = value.get_object();
  StatusSnapshot status;
  if (const json::value* gpus = object.if_contains("gpus"); gpus != nullptr && !gpus->is_null()) {
    if (!gpus->is_array()) return FieldError("status.gpus", "must be an array");
    if (gpus->get_array().size() > kMaxGpuEntries) {
      return FieldError("status.gpus", fmt::format("must have at most {} entries", kMaxGpuEntries));
    }
    for (size_t i = 0; i < gpus->get_array().size(); ++i) {
      const json::value& entry = gpus->get_array()[i];
      const std::string field = fmt::format("status.gpus[{}]", i);
      if (!entry.is_object()) return FieldError(field, "must be an object");
      GpuCount gpu;
      ASSIGN_OR_RETURN(gpu.product, ReadString(entry.get_object(), "product", field + ".product",
                                               /*required=*/true, 128));
      RETURN_IF_ERROR(CheckTag(field + ".product", gpu.product));
      ASSIGN_OR_RETURN(gpu.count, ReadCount(entry.get_object(), "count", field + ".count"));
      status.gpus.push_back(std::move(gpu));
    }
  }
  ASSIGN_OR_RETURN(status.nodes, ReadCount(object, "nodes", "status.nodes"));
  if (const json::value* replicas = object.if_contains("replicas");
      replicas != nullptr && !replicas->is_null()) {
    if (!replicas->is_object()) return FieldError("status.replicas", "must be an object");
    ASSIGN_OR_RETURN(status.replicas_ready,
                     ReadCount(replicas->get_object(), "ready", "status.replicas.ready"));
    ASSIGN_OR_RETURN(status.replicas_desired,
                     ReadCount(replicas->get_object(), "desired", "status.replicas.desired"));
  }
  ASSIGN_OR_RETURN(status.model, ReadString(object, "model", "status.model", false, 256));
  if (!IsPlainText(status.model)) {
    return FieldError("status.model", "must be printable ASCII without quotes or <>");
  }
  ASSIGN_OR_RETURN(status.tensor_parallel_size,
                   ReadCount(object, "tensor_parallel_size", "status.tensor_parallel_size"));
  if (const json::value* routes = object.if_contains("routes");
      routes != nullptr && !routes->is_null()) {
    if (!routes->is_array()) return FieldError("status.routes", "must be an array");
    if (routes->get_array().size() > kMaxRoutes) {
      return FieldError("status.routes", fmt::format("must have at most {} entries", kMaxRoutes));
    }
    for (size_t i = 0; i < routes->get_array().size(); ++i) {
      const json::value& entry = routes->get_array()[i];
      const std::string field = fmt::format("status.routes[{}]", i);
      if (!entry.is_object()) return FieldError(field, "must be an object");
      RouteClaim route;
      ASSIGN_OR_RETURN(route.path,
                       ReadString(entry.get_object(), "path", field + ".path", true, 256));
      if (route.path.front() != '/' || !IsPlainText(route.path) ||
          route.path.find(' ') != std::string::npos) {
        return FieldError(field + ".path", "must be a URL path starting with '/'");
      }
      ASSIGN_OR_RETURN(route.owner, ReadString(entry.get_object(), "owner", field + ".owner", true,
                                               kMaxTagLength));
      RETURN_IF_ERROR(CheckTag(field + ".owner", route.owner));
      status.routes.push_back(std::move(route));
    }
  }
  return status;
}

}  // namespace

std::string_view ProfileName(Profile profile) {
  return profile == Profile::kByocDynamo ? "byoc_dynamo" : "byoc_epp";
}

std::optional<Profile> ParseProfile(std::string_view name) {
  if (name == "byoc_epp") return Profile::kByocEpp;
  if (name == "byoc_dynamo") return Profile::kByocDynamo;
  return std::nullopt;
}

bool IsStackTag(std::string_view key) {
  return std::any_of(kStackTags.begin(), kStackTags.end(),
                     [&](const auto& tag) { return tag.first == key; });
}

bool IsPlainText(std::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '"' || c == '\\') return false;
  }
  return true;
}

bool IsValidClusterName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameLength) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return name.front() != '-' && name.back() != '-';
}

bool IsValidClusterId(std::string_view id) {
  if (id.size() <= 4 || id.size() > 64 || id.substr(0, 4) != "byc_") return false;
  for (char c : id.substr(4)) {
    if (!((c >= 'a' && c <= 'f') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

bool IsValidOrgName(std::string_view org) {
  if (org.empty() || org.size() > 63) return false;
  for (char c : org) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.')) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<RegisterRequest> DecodeRegisterRequest(std::string_view body) {
  ASSIGN_OR_RETURN(json::object object, ParseObject(body, /*empty_is_object=*/false));
  RegisterRequest request;
  ASSIGN_OR_RETURN(request.name, ReadString(object, "name", "name", true, kMaxNameLength));
  if (!IsValidClusterName(request.name)) {
    return FieldError("name",
                      "must be a DNS label: lower-case letters, digits and '-', at most 63");
  }
  ASSIGN_OR_RETURN(std::string profile, ReadString(object, "profile", "profile", true, 32));
  std::optional<Profile> parsed = ParseProfile(profile);
  if (!parsed) return FieldError("profile", "must be \"byoc_epp\" or \"byoc_dynamo\"");
  request.profile = *parsed;
  const json::value* stack = object.if_contains("stack");
  if (stack == nullptr || stack->is_null()) return FieldError("stack", "is required");
  if (!stack->is_object()) return FieldError("stack", "must be an object");
  for (const auto& [key, member] : kStackTags) {
    const std::string field = fmt::format("stack.{}", key);
    std::string& tag = request.stack.*member;
    ASSIGN_OR_RETURN(tag, ReadString(stack->get_object(), key, field, false, kMaxTagLength));
    RETURN_IF_ERROR(CheckTag(field, tag));
  }
  // The stack's tags are a closed set (a misspelt one would be dropped unseen), unlike the
  // body's other unknown fields.
  for (const auto& entry : stack->get_object()) {
    const std::string_view key(entry.key().data(), entry.key().size());
    if (!IsStackTag(key)) {
      return FieldError(fmt::format("stack.{}", key.substr(0, 64)),
                        "is not a stack tag: use router, runtime, serving, autoscaler or "
                        "kv_layer");
    }
  }
  ASSIGN_OR_RETURN(request.fingerprint,
                   ReadString(object, "fingerprint", "fingerprint", true, kMaxFingerprintLength));
  for (char c : request.fingerprint) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-')) {
      return FieldError("fingerprint", "must be letters, digits and '-' (the kube-system UID)");
    }
  }
  ASSIGN_OR_RETURN(
      request.kubernetes_version,
      ReadString(object, "kubernetes_version", "kubernetes_version", false, kMaxTagLength));
  RETURN_IF_ERROR(CheckTag("kubernetes_version", request.kubernetes_version));
  ASSIGN_OR_RETURN(request.chart_version,
                   ReadString(object, "chart_version", "chart_version", false, kMaxTagLength));
  RETURN_IF_ERROR(CheckTag("chart_version", request.chart_version));
  return request;
}

absl::StatusOr<HeartbeatRequest> DecodeHeartbeatRequest(std::string_view body) {
  ASSIGN_OR_RETURN(json::object object, ParseObject(body, /*empty_is_object=*/true));
  HeartbeatRequest request;
  if (const json::value* status = object.if_contains("status");
      status != nullptr && !status->is_null()) {
    ASSIGN_OR_RETURN(request.status, DecodeStatus(*status));
  }
  return request;
}

boost::json::object EncodeStatus(const StatusSnapshot& status) {
  json::array gpus;
  for (const GpuCount& gpu : status.gpus) {
    gpus.push_back(json::object{{"product", gpu.product}, {"count", gpu.count}});
  }
  json::array routes;
  for (const RouteClaim& route : status.routes) {
    routes.push_back(json::object{{"path", route.path}, {"owner", route.owner}});
  }
  return json::object{
      {"gpus", std::move(gpus)},
      {"nodes", status.nodes},
      {"replicas",
       json::object{{"ready", status.replicas_ready}, {"desired", status.replicas_desired}}},
      {"model", status.model},
      {"tensor_parallel_size", status.tensor_parallel_size},
      {"routes", std::move(routes)},
  };
}

std::string StatusToJson(const StatusSnapshot& status) {
  return json::serialize(EncodeStatus(status));
}

absl::StatusOr<StatusSnapshot> StatusFromJson(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec) return Errorf(absl::StatusCode::kDataLoss, "stored status is not JSON: {}", ec.message());
  return DecodeStatus(value);
}

boost::json::object EncodeStack(const Stack& stack) {
  json::object out;
  for (const auto& [key, member] : kStackTags) {
    out[json::string_view(key.data(), key.size())] = stack.*member;
  }
  return out;
}

}  // namespace zumik::registry

// Plugin parameter reading with plugin-named errors (see params.h).
#include "sched/params.h"

#include <utility>

#include "core/status.h"
#include "fmt/format.h"

namespace zumik::sched {

PluginParams::PluginParams(const YAML::Node& parameters, std::string source, std::string where,
                           std::string plugin_name, std::string plugin_type)
    : parameters_(parameters),
      reader_(parameters, source),
      source_(std::move(source)),
      where_(std::move(where)),
      plugin_name_(std::move(plugin_name)),
      plugin_type_(std::move(plugin_type)) {}

std::string PluginParams::Prefix(std::string_view key) const {
  std::string at = where_;
  if (parameters_ && parameters_.IsMap()) {
    for (const auto& kv : parameters_) {
      if (kv.first.Scalar() == key) {
        const std::string w = Where(kv.second, source_);
        if (w != source_) at = w;
      }
    }
  }
  return fmt::format("{}: plugin '{}' (type {}): parameter '{}'", at, plugin_name_, plugin_type_,
                     key);
}

absl::Status PluginParams::Error(std::string_view key, std::string_view message) const {
  return absl::InvalidArgumentError(fmt::format("{}: {}", Prefix(key), message));
}

absl::Status PluginParams::Rewrap(std::string_view key, const absl::Status& status) const {
  if (status.ok()) return status;
  // FieldReader says "file:line: key 'k': message"; keep the message, name the plugin.
  std::string_view message = MessageOf(status);
  const auto at = message.find(fmt::format("key '{}': ", key));
  if (at != std::string_view::npos) message.remove_prefix(at + key.size() + 8);
  return Error(key, message);
}

absl::Status PluginParams::CheckIsMap() const {
  if (!parameters_ || parameters_.IsNull() || parameters_.IsMap()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      fmt::format("{}: plugin '{}' (type {}): parameters must be a mapping of key: value",
                  Where(parameters_, source_), plugin_name_, plugin_type_));
}

bool PluginParams::Has(std::string_view key) const { return reader_.Has(key); }

absl::Status PluginParams::Read(std::string_view key, double* out) {
  read_.emplace(key);
  return Rewrap(key, reader_.Read(key, out));
}
absl::Status PluginParams::Read(std::string_view key, int64_t* out) {
  read_.emplace(key);
  return Rewrap(key, reader_.Read(key, out));
}
absl::Status PluginParams::Read(std::string_view key, int* out) {
  read_.emplace(key);
  return Rewrap(key, reader_.Read(key, out));
}
absl::Status PluginParams::Read(std::string_view key, bool* out) {
  read_.emplace(key);
  return Rewrap(key, reader_.Read(key, out));
}
absl::Status PluginParams::Read(std::string_view key, std::string* out) {
  read_.emplace(key);
  return Rewrap(key, reader_.Read(key, out));
}
absl::Status PluginParams::Read(std::string_view key, Duration* out) {
  read_.emplace(key);
  return Rewrap(key, reader_.Read(key, out));
}

absl::Status PluginParams::ReadInRange(std::string_view key, double* out, double lo, double hi) {
  RETURN_IF_ERROR(Read(key, out));
  if (!(*out >= lo && *out <= hi)) {
    return Error(key, fmt::format("must be between {} and {}, got {}", lo, hi, *out));
  }
  return absl::OkStatus();
}

absl::Status PluginParams::ReadAtLeast(std::string_view key, int64_t* out, int64_t lo) {
  RETURN_IF_ERROR(Read(key, out));
  if (*out < lo) return Error(key, fmt::format("must be at least {}, got {}", lo, *out));
  return absl::OkStatus();
}

absl::Status PluginParams::ReadAtLeast(std::string_view key, int* out, int lo) {
  RETURN_IF_ERROR(Read(key, out));
  if (*out < lo) return Error(key, fmt::format("must be at least {}, got {}", lo, *out));
  return absl::OkStatus();
}

void PluginParams::Ignore(std::string_view key) { read_.emplace(key); }

YAML::Node PluginParams::Child(std::string_view key) {
  read_.emplace(key);
  return reader_.Child(key);
}

absl::Status PluginParams::Finish() const {
  if (!parameters_ || !parameters_.IsMap()) return absl::OkStatus();
  for (const auto& kv : parameters_) {
    const std::string& key = kv.first.Scalar();
    if (!read_.contains(key)) {
      return Error(key, fmt::format("unknown parameter for {}; check its spelling against the "
                                    "plugin's documentation",
                                    plugin_type_));
    }
  }
  return absl::OkStatus();
}

}  // namespace zumik::sched

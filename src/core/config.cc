#include "core/config.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "core/status.h"
#include "fmt/format.h"

namespace zumik {
namespace {
// Concatenates pieces of any string-like or numeric type (std::string_view included).
template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  ((out += fmt::format("{}", args)), ...);
  return out;
}
}  // namespace

absl::StatusOr<YamlDoc> ParseYaml(std::string_view text, std::string source) {
  try {
    return YamlDoc{YAML::Load(std::string(text)), std::move(source)};
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(Cat(source, ":", e.mark.line + 1, ": invalid YAML: ", e.msg));
  }
}

absl::StatusOr<YamlDoc> LoadYamlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        Cat("cannot read config file '", path, "': check the path and its permissions"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseYaml(buffer.str(), path);
}

absl::Status ApplyOverride(YAML::Node& root, std::string_view assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(
        Cat("override '", assignment, "' is not of the form key.path=value (e.g. c_lin=22e-6)"));
  }
  const std::string_view key = assignment.substr(0, eq);
  const std::string_view value = assignment.substr(eq + 1);
  YAML::Node parsed;
  try {
    parsed = YAML::Load(std::string(value));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        Cat("override '", assignment, "': value is not valid YAML: ", e.msg));
  }
  try {
    if (!root || !root.IsMap()) root = YAML::Node(YAML::NodeType::Map);
    std::vector<std::string> parts = absl::StrSplit(std::string(key), '.');
    // yaml-cpp nodes are handles: walk with copies that refer to the same tree.
    YAML::Node node = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node next = node[parts[i]];
      if (!next.IsDefined() || next.IsNull()) {
        node[parts[i]] = YAML::Node(YAML::NodeType::Map);
        next = node[parts[i]];
      } else if (!next.IsMap()) {
        return absl::InvalidArgumentError(
            Cat("override '", assignment, "': '", parts[i], "' is a value, not a section"));
      }
      node.reset(next);
    }
    node[parts.back()] = parsed;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(Cat("override '", assignment, "': ", e.msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<Duration> ParseDuration(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double seconds;
  };
  static constexpr Unit kUnits[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3},
                                    {"s", 1.0},   {"m", 60.0},  {"h", 3600.0}};
  double scale = 1.0;
  std::string_view number = text;
  for (const Unit& unit : kUnits) {
    if (text.size() > unit.suffix.size() && text.ends_with(unit.suffix)) {
      const char before = text[text.size() - unit.suffix.size() - 1];
      if ((before >= '0' && before <= '9') || before == '.') {
        number = text.substr(0, text.size() - unit.suffix.size());
        scale = unit.seconds;
        break;
      }
    }
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || ptr != number.data() + number.size() || value < 0) {
    return absl::InvalidArgumentError(
        Cat("'", text, "' is not a duration: write e.g. 250ms, 1.5s, 2m or a number of seconds"));
  }
  return FromSeconds(value * scale);
}

std::string Where(const YAML::Node& node, const std::string& source) {
  if (node && node.Mark().line >= 0) return Cat(source, ":", node.Mark().line + 1);
  return source;
}

FieldReader::FieldReader(const YAML::Node& map, std::string source, std::string path)
    : map_(map), source_(std::move(source)), path_(std::move(path)) {}

absl::Status FieldReader::CheckIsMap() const {
  if (!map_ || map_.IsNull() || map_.IsMap()) return absl::OkStatus();
  return absl::InvalidArgumentError(Cat(Where(map_, source_), ": '",
                                        path_.empty() ? "<root>" : path_,
                                        "' must be a mapping of key: value"));
}

std::string FieldReader::PathOf(std::string_view key) const {
  return path_.empty() ? std::string(key) : Cat(path_, ".", key);
}

bool FieldReader::Has(std::string_view key) const {
  if (!map_ || !map_.IsMap()) return false;
  for (const auto& kv : map_) {
    if (kv.first.Scalar() == key) return true;
  }
  return false;
}

YAML::Node FieldReader::Lookup(std::string_view key) {
  read_.insert(std::string(key));
  if (!map_ || !map_.IsMap()) return YAML::Node();
  for (const auto& kv : map_) {
    if (kv.first.Scalar() == key) return kv.second;
  }
  return YAML::Node();
}

YAML::Node FieldReader::Child(std::string_view key) { return Lookup(key); }

absl::Status FieldReader::Error(std::string_view key, std::string_view message) const {
  YAML::Node at = map_;
  if (map_ && map_.IsMap()) {
    for (const auto& kv : map_) {
      if (kv.first.Scalar() == key) {
        at.reset(kv.second);  // reset: operator= would overwrite the map
      }
    }
  }
  return absl::InvalidArgumentError(
      Cat(Where(at, source_), ": key '", PathOf(key), "': ", message));
}

namespace {
template <typename T>
absl::Status ReadScalar(FieldReader& reader, const YAML::Node& node, std::string_view key,
                        std::string_view expected, T* out) {
  if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
  if (!node.IsScalar()) return reader.Error(key, Cat("expected ", expected));
  try {
    *out = node.as<T>();
  } catch (const YAML::Exception&) {
    return reader.Error(key, Cat("expected ", expected, ", got '", node.Scalar(), "'"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status FieldReader::Read(std::string_view key, double* out) {
  return ReadScalar(*this, Lookup(key), key, "a number", out);
}
absl::Status FieldReader::Read(std::string_view key, int64_t* out) {
  YAML::Node node = Lookup(key);
  if (node.IsDefined() && node.IsScalar()) {
    // Accept 1e6-style integers written as floats when they are whole.
    // The range check comes first: converting a double int64_t cannot hold is undefined.
    // 2^63 is exact as a double; every whole double in [-2^63, 2^63) fits.
    constexpr double kTwo63 = 9223372036854775808.0;
    double d = 0;
    if (ReadScalar(*this, node, key, "an integer", &d).ok() && std::isfinite(d) &&
        d == std::trunc(d) && d >= -kTwo63 && d < kTwo63) {
      *out = static_cast<int64_t>(d);
      return absl::OkStatus();
    }
  }
  return ReadScalar(*this, node, key, "an integer", out);
}
absl::Status FieldReader::Read(std::string_view key, int* out) {
  int64_t wide = *out;
  absl::Status status = Read(key, &wide);
  if (!status.ok()) return status;
  if (wide < INT32_MIN || wide > INT32_MAX) return Error(key, "integer out of range");
  *out = static_cast<int>(wide);
  return absl::OkStatus();
}
absl::Status FieldReader::Read(std::string_view key, bool* out) {
  return ReadScalar(*this, Lookup(key), key, "true or false", out);
}
absl::Status FieldReader::Read(std::string_view key, std::string* out) {
  return ReadScalar(*this, Lookup(key), key, "a string", out);
}
absl::Status FieldReader::Read(std::string_view key, Duration* out) {
  YAML::Node node = Lookup(key);
  if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
  if (!node.IsScalar()) return Error(key, "expected a duration such as 250ms or 30s");
  auto parsed = ParseDuration(node.Scalar());
  if (!parsed.ok()) return Error(key, MessageOf(parsed.status()));
  *out = *parsed;
  return absl::OkStatus();
}
absl::Status FieldReader::Read(std::string_view key, std::vector<std::string>* out) {
  YAML::Node node = Lookup(key);
  if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
  if (!node.IsSequence()) return Error(key, "expected a list of strings");
  std::vector<std::string> values;
  for (const auto& item : node) {
    if (!item.IsScalar()) return Error(key, "expected a list of strings");
    values.push_back(item.Scalar());
  }
  *out = std::move(values);
  return absl::OkStatus();
}

absl::Status FieldReader::Finish() const {
  if (!map_ || !map_.IsMap()) return absl::OkStatus();
  for (const auto& kv : map_) {
    const std::string& key = kv.first.Scalar();
    if (!read_.contains(key)) {
      std::string known;
      for (const std::string& name : read_) known += (known.empty() ? "" : ", ") + name;
      return absl::InvalidArgumentError(Cat(Where(kv.first, source_), ": unknown key '",
                                            PathOf(key), "': the keys here are ", known));
    }
  }
  return absl::OkStatus();
}

}  // namespace zumik

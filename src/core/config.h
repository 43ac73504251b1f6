// Configuration: YAML files, `key.path=value` overrides (the generic `--set` flag), and a
// reader that turns YAML into typed values with errors naming the file, line, key and fix.
// yaml-cpp throws; nothing here lets an exception escape.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "yaml-cpp/yaml.h"

namespace zumik {

struct YamlDoc {
  YAML::Node root;
  std::string source;  // file path, or a name such as "<flags>" or "<embedded:b2b>"
};

absl::StatusOr<YamlDoc> LoadYamlFile(const std::string& path);
absl::StatusOr<YamlDoc> ParseYaml(std::string_view text, std::string source);

// Applies "a.b.c=value" to `root`, creating maps on the way. The value is parsed as YAML
// (so numbers stay numbers, "[1,2]" is a list).
absl::Status ApplyOverride(YAML::Node& root, std::string_view assignment);

// Parses "250ms", "1.5s", "2m", "100us", "10ns" or a bare number of seconds.
absl::StatusOr<Duration> ParseDuration(std::string_view text);

// Reads the fields of one YAML map. Each Read leaves *out untouched when the key is absent,
// so callers pre-fill defaults. Finish() fails on keys that were never read (typos).
class FieldReader {
 public:
  FieldReader(const YAML::Node& map, std::string source, std::string path = "");

  // Whether the node is a map (or null, treated as empty). Check before reading.
  absl::Status CheckIsMap() const;
  bool Has(std::string_view key) const;

  absl::Status Read(std::string_view key, double* out);
  absl::Status Read(std::string_view key, int64_t* out);
  absl::Status Read(std::string_view key, int* out);
  absl::Status Read(std::string_view key, bool* out);
  absl::Status Read(std::string_view key, std::string* out);
  absl::Status Read(std::string_view key, Duration* out);
  absl::Status Read(std::string_view key, std::vector<std::string>* out);
  // The raw child node (marks the key as read); a null node when absent.
  YAML::Node Child(std::string_view key);

  // An error about `key` in the reader's style: "file:line: key 'path.key': message".
  absl::Status Error(std::string_view key, std::string_view message) const;
  absl::Status Finish() const;

  const std::string& source() const { return source_; }
  std::string PathOf(std::string_view key) const;

 private:
  YAML::Node Lookup(std::string_view key);

  YAML::Node map_;
  std::string source_;
  std::string path_;
  std::set<std::string, std::less<>> read_;
};

// "file:line" for a node (line is 1-based), or just the source when the node has no mark.
std::string Where(const YAML::Node& node, const std::string& source);

}  // namespace zumik

// Typed reads of one plugin's `parameters` map (core/config.h FieldReader underneath), with
// errors in the form "file:line: plugin 'name' (type T): parameter 'key': message", and
// detection of parameters nobody read (typos) in Finish().
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/config.h"
#include "yaml-cpp/yaml.h"

namespace zumik::sched {

class PluginParams {
 public:
  // `where` locates the plugin entry (used when the parameters themselves have no position).
  PluginParams(const YAML::Node& parameters, std::string source, std::string where,
               std::string plugin_name, std::string plugin_type);

  const std::string& plugin_name() const { return plugin_name_; }
  const std::string& plugin_type() const { return plugin_type_; }

  absl::Status CheckIsMap() const;
  bool Has(std::string_view key) const;

  absl::Status Read(std::string_view key, double* out);
  absl::Status Read(std::string_view key, int64_t* out);
  absl::Status Read(std::string_view key, int* out);
  absl::Status Read(std::string_view key, bool* out);
  absl::Status Read(std::string_view key, std::string* out);
  absl::Status Read(std::string_view key, Duration* out);
  // Range-checked reads (bounds inclusive).
  absl::Status ReadInRange(std::string_view key, double* out, double lo, double hi);
  absl::Status ReadAtLeast(std::string_view key, int64_t* out, int64_t lo);
  absl::Status ReadAtLeast(std::string_view key, int* out, int lo);
  // Accepts and ignores a parameter that upstream deprecated or that has no effect here.
  void Ignore(std::string_view key);
  // The raw node (marks the key as read); a null node when absent.
  YAML::Node Child(std::string_view key);

  absl::Status Error(std::string_view key, std::string_view message) const;
  // Fails on a parameter that was never read.
  absl::Status Finish() const;

 private:
  absl::Status Rewrap(std::string_view key, const absl::Status& status) const;
  std::string Prefix(std::string_view key) const;

  YAML::Node parameters_;
  FieldReader reader_;
  std::string source_;
  std::string where_;
  std::string plugin_name_;
  std::string plugin_type_;
  std::set<std::string, std::less<>> read_;
};

}  // namespace zumik::sched

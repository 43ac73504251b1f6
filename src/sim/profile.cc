// Built-in replica profiles and their YAML overrides.
//
// Sources (docs/reference/perf-anchors.md §3, docs/specs/sim-calibration.md):
// - step-time constants, KV tokens, batch limits and t_api: sim-calibration.md's table;
// - max_model_len: each model's config.json max_position_embeddings (Llama-3.1: 131072,
//   Qwen3-32B: 40960), which vLLM uses when --max-model-len is not given;
// - weights: Llama-3.1-8B "Loading model weights took 14.99 GiB" (perf-anchors [S42]);
//   Qwen3-32B 32.8e9 params x 2 B = 61.1 GiB (derived); Llama-3.1-70B TP4 32.9 GiB per GPU
//   x 4 = 131.6 GiB (perf-anchors §3.1, derived);
// - KV bytes per token = 2 (K,V) x layers x kv_heads x head_dim x 2 B: Llama-3.1-8B
//   2x32x8x128x2 = 128 KiB; Qwen3-32B 2x64x8x128x2 = 256 KiB; Llama-3.1-70B 2x80x8x128x2 =
//   320 KiB (model configs; perf-anchors §3.1);
// - GPU memory: nvidia-smi totals, H100 80GB HBM3 81559 MiB, A100-SXM4-80GB 81920 MiB;
// - gpu_product: the GPU Feature Discovery label form of the product name.
#include "sim/profile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <functional>

#include "core/config.h"
#include "core/status.h"
#include "fmt/format.h"

namespace zumik::sim {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

// c_load (derived constant): LMCache moves each GPU's share of a token's KV over that GPU's
// own PCIe link, at ~25 GB/s effective host-to-device. Llama-3.1-8B: 128 KiB / 25 GB/s =
// 5.2 us/token; Qwen3-32B TP2: 128 KiB per GPU, also 5.2 us; Llama-3.1-70B TP4: 80 KiB per
// GPU, 3.3 us.
constexpr double kHostToDeviceBytesPerSecond = 25e9;
double DeriveLoadCost(int64_t kv_bytes_per_token, int gpus) {
  return static_cast<double>(kv_bytes_per_token) / gpus / kHostToDeviceBytesPerSecond;
}

// LMCache's default max_local_cpu_size: 5 GB per worker (one worker per GPU).
constexpr double kLmcacheDefaultCpuBytesPerGpu = 5e9;

Profile Llama8bH100() {
  Profile p;
  p.name = "h100-llama-3.1-8b";
  p.served_model_name = "meta-llama/Llama-3.1-8B-Instruct";
  p.gpu_product = "NVIDIA-H100-80GB-HBM3";
  p.gpus_per_replica = 1;
  p.gpu_memory_mib = 81559;
  p.t0 = 1.0e-3;
  p.t_w = 5.9e-3;
  p.c_lin = 22e-6;
  p.c_kv = 48.5e-9;
  p.c_att = 1.31e-9;
  p.t_api = 10e-3;
  p.kv_tokens = 440000;
  p.max_num_batched_tokens = 8192;
  p.max_num_seqs = 1024;
  p.max_model_len = 131072;
  p.weights_gib = 14.99;
  p.kv_bytes_per_token = 131072;
  p.c_load = DeriveLoadCost(p.kv_bytes_per_token, p.gpus_per_replica);
  return p;
}

Profile Qwen32bH100Tp2() {
  Profile p;
  p.name = "h100x2-qwen3-32b-tp2";
  p.served_model_name = "Qwen/Qwen3-32B";
  p.gpu_product = "NVIDIA-H100-80GB-HBM3";
  p.gpus_per_replica = 2;
  p.gpu_memory_mib = 81559;
  p.t0 = 2.0e-3;
  p.t_w = 12.0e-3;
  p.c_lin = 50e-6;
  p.c_kv = 48.5e-9;
  p.c_att = 2.6e-9;
  p.t_api = 10e-3;
  p.kv_tokens = 307328;
  p.max_num_batched_tokens = 8192;
  p.max_num_seqs = 1024;
  p.max_model_len = 40960;
  p.weights_gib = 61.1;
  p.kv_bytes_per_token = 262144;
  p.c_load = DeriveLoadCost(p.kv_bytes_per_token, p.gpus_per_replica);
  return p;
}

Profile Llama8bA100() {
  Profile p = Llama8bH100();
  p.name = "a100-llama-3.1-8b";
  p.gpu_product = "NVIDIA-A100-SXM4-80GB";
  p.gpu_memory_mib = 81920;
  p.t0 = 1.0e-3;
  p.t_w = 10.0e-3;
  p.c_lin = 67e-6;
  p.c_kv = 80e-9;
  p.c_att = 2.6e-9;
  p.max_num_batched_tokens = 2048;
  p.max_num_seqs = 256;
  return p;
}

Profile Llama70bH100Tp4() {
  Profile p;
  p.name = "h100x4-llama-3.1-70b-tp4";
  p.served_model_name = "meta-llama/Llama-3.1-70B-Instruct";
  p.gpu_product = "NVIDIA-H100-80GB-HBM3";
  p.gpus_per_replica = 4;
  p.gpu_memory_mib = 81559;
  p.t0 = 4.0e-3;
  p.t_w = 14.5e-3;
  p.c_lin = 70e-6;
  p.c_kv = 30e-9;
  p.c_att = 1.64e-9;
  p.t_api = 10e-3;
  p.kv_tokens = 450000;
  p.max_num_batched_tokens = 8192;
  p.max_num_seqs = 1024;
  p.max_model_len = 131072;
  p.weights_gib = 131.6;
  p.kv_bytes_per_token = 327680;
  p.c_load = DeriveLoadCost(p.kv_bytes_per_token, p.gpus_per_replica);
  return p;
}

std::vector<Profile> BuiltinProfiles() {
  return {Llama8bH100(), Qwen32bH100Tp2(), Llama8bA100(), Llama70bH100Tp4()};
}

// "22us", "48.5ns", "1ms", "0.01" (seconds) -> seconds.
bool ParseSeconds(std::string_view text, double* out) {
  struct Unit {
    std::string_view suffix;
    double scale;
  };
  static constexpr Unit kUnits[] = {{"ns", 1e-9}, {"us", 1e-6}, {"ms", 1e-3}, {"s", 1.0}};
  double scale = 1.0;
  for (const Unit& unit : kUnits) {
    if (text.size() > unit.suffix.size() && text.ends_with(unit.suffix)) {
      text.remove_suffix(unit.suffix.size());
      scale = unit.scale;
      break;
    }
  }
  double value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || !std::isfinite(value) || value < 0) {
    return false;
  }
  *out = value * scale;
  return true;
}

absl::Status ReadSeconds(FieldReader& reader, std::string_view key, double* out) {
  const YAML::Node node = reader.Child(key);
  if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
  if (!node.IsScalar() || !ParseSeconds(node.Scalar(), out)) {
    return reader.Error(key, "expected a non-negative duration: seconds or e.g. 22us, 48.5ns");
  }
  return absl::OkStatus();
}

std::string JoinedNames() {
  std::string names;
  for (const Profile& p : BuiltinProfiles()) names += (names.empty() ? "" : ", ") + p.name;
  return names;
}

absl::StatusOr<Profile> Builtin(std::string_view name) {
  for (Profile& p : BuiltinProfiles()) {
    if (p.name == name) return std::move(p);
  }
  return Errorf(absl::StatusCode::kNotFound, "unknown replica profile '{}': use one of {}", name,
                JoinedNames());
}

}  // namespace

int64_t Profile::weights_bytes() const { return std::llround(weights_gib * kGiB); }

int64_t Profile::lmcache_capacity_tokens() const {
  if (lmcache.capacity_tokens > 0) return lmcache.capacity_tokens;
  if (kv_bytes_per_token <= 0) return 0;
  return static_cast<int64_t>(kLmcacheDefaultCpuBytesPerGpu * gpus_per_replica /
                              static_cast<double>(kv_bytes_per_token));
}

std::vector<std::string> ProfileNames() {
  std::vector<std::string> names;
  for (const Profile& p : BuiltinProfiles()) names.push_back(p.name);
  return names;
}

absl::Status ApplyProfileFields(const YAML::Node& fields, const std::string& source, Profile* p) {
  FieldReader r(fields, source);
  RETURN_IF_ERROR(r.CheckIsMap());
  const bool explicit_load_cost = r.Has("c_load");
  const bool kv_shape_changed = r.Has("kv_bytes_per_token") || r.Has("gpus_per_replica");
  RETURN_IF_ERROR(r.Read("served_model_name", &p->served_model_name));
  RETURN_IF_ERROR(r.Read("gpu_product", &p->gpu_product));
  RETURN_IF_ERROR(r.Read("gpus_per_replica", &p->gpus_per_replica));
  RETURN_IF_ERROR(r.Read("gpu_memory_mib", &p->gpu_memory_mib));
  RETURN_IF_ERROR(ReadSeconds(r, "t0", &p->t0));
  RETURN_IF_ERROR(ReadSeconds(r, "t_w", &p->t_w));
  RETURN_IF_ERROR(ReadSeconds(r, "c_lin", &p->c_lin));
  RETURN_IF_ERROR(ReadSeconds(r, "c_kv", &p->c_kv));
  RETURN_IF_ERROR(ReadSeconds(r, "c_att", &p->c_att));
  RETURN_IF_ERROR(ReadSeconds(r, "t_api", &p->t_api));
  RETURN_IF_ERROR(ReadSeconds(r, "c_load", &p->c_load));
  RETURN_IF_ERROR(r.Read("kv_tokens", &p->kv_tokens));
  RETURN_IF_ERROR(r.Read("block_size", &p->block_size));
  RETURN_IF_ERROR(r.Read("max_num_batched_tokens", &p->max_num_batched_tokens));
  RETURN_IF_ERROR(r.Read("max_num_seqs", &p->max_num_seqs));
  RETURN_IF_ERROR(r.Read("max_model_len", &p->max_model_len));
  RETURN_IF_ERROR(r.Read("weights_gib", &p->weights_gib));
  RETURN_IF_ERROR(r.Read("kv_bytes_per_token", &p->kv_bytes_per_token));
  RETURN_IF_ERROR(r.Read("natural_output_mean", &p->natural_output_mean));
  const YAML::Node lmcache = r.Child("lmcache");
  if (lmcache.IsDefined() && !lmcache.IsNull()) {
    FieldReader lr(lmcache, source, "lmcache");
    RETURN_IF_ERROR(lr.CheckIsMap());
    RETURN_IF_ERROR(lr.Read("enabled", &p->lmcache.enabled));
    RETURN_IF_ERROR(lr.Read("capacity_tokens", &p->lmcache.capacity_tokens));
    RETURN_IF_ERROR(lr.Read("chunk_size", &p->lmcache.chunk_size));
    RETURN_IF_ERROR(lr.Finish());
  }
  RETURN_IF_ERROR(r.Finish());
  if (!explicit_load_cost && kv_shape_changed && p->gpus_per_replica > 0) {
    p->c_load = DeriveLoadCost(p->kv_bytes_per_token, p->gpus_per_replica);
  }
  absl::Status valid = ValidateProfile(*p);
  if (!valid.ok()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "{}: {}", source, MessageOf(valid));
  }
  return absl::OkStatus();
}

absl::Status ValidateProfile(const Profile& p) {
  auto bad = [&](std::string_view what) {
    return Errorf(absl::StatusCode::kInvalidArgument, "profile '{}': {}", p.name, what);
  };
  if (p.block_size < 1) return bad("block_size must be at least 1");
  if (p.kv_tokens < p.block_size) return bad("kv_tokens must hold at least one block");
  if (p.kv_tokens / p.block_size > INT32_MAX) return bad("kv_tokens is too large");
  if (p.max_num_batched_tokens < 1) return bad("max_num_batched_tokens must be at least 1");
  if (p.max_num_seqs < 1) return bad("max_num_seqs must be at least 1");
  if (p.max_model_len < 2) return bad("max_model_len must be at least 2");
  if (p.gpus_per_replica < 1) return bad("gpus_per_replica must be at least 1");
  if (p.natural_output_mean < 1) return bad("natural_output_mean must be at least 1");
  if (p.weights_gib < 0 || p.kv_bytes_per_token < 0 || p.gpu_memory_mib < 0) {
    return bad("memory sizes must not be negative");
  }
  if (p.lmcache.chunk_size < 1 || p.lmcache.chunk_size % p.block_size != 0) {
    return bad(fmt::format(
        "lmcache.chunk_size ({}) must be a positive multiple of block_size ({}): change one of "
        "them (LMCache stores whole KV blocks)",
        p.lmcache.chunk_size, p.block_size));
  }
  if (p.lmcache.capacity_tokens < 0) return bad("lmcache.capacity_tokens must not be negative");
  return absl::OkStatus();
}

absl::StatusOr<Profile> LoadProfile(std::string_view name, const YAML::Node& overrides,
                                    const std::string& source) {
  ASSIGN_OR_RETURN(Profile profile, Builtin(name));
  RETURN_IF_ERROR(ApplyProfileFields(overrides, source, &profile));
  return profile;
}

namespace {
// Splits a profile file's root into its base name, new name and the remaining fields.
absl::StatusOr<Profile> ProfileFromDoc(const YamlDoc& doc) {
  FieldReader r(doc.root, doc.source);
  RETURN_IF_ERROR(r.CheckIsMap());
  std::string base(kDefaultProfile);
  RETURN_IF_ERROR(r.Read("base", &base));
  std::string name;
  RETURN_IF_ERROR(r.Read("name", &name));
  YAML::Node fields(YAML::NodeType::Map);
  if (doc.root.IsMap()) {
    for (const auto& kv : doc.root) {
      const std::string& key = kv.first.Scalar();
      if (key != "base" && key != "name") fields[kv.first] = kv.second;
    }
  }
  auto base_profile = Builtin(base);
  if (!base_profile.ok()) return r.Error("base", MessageOf(base_profile.status()));
  Profile profile = *std::move(base_profile);
  if (!name.empty()) profile.name = name;
  RETURN_IF_ERROR(ApplyProfileFields(fields, doc.source, &profile));
  return profile;
}
}  // namespace

absl::StatusOr<Profile> LoadProfileFile(const std::string& path) {
  ASSIGN_OR_RETURN(YamlDoc doc, LoadYamlFile(path));
  try {
    return ProfileFromDoc(doc);
  } catch (const YAML::Exception& e) {
    return Errorf(absl::StatusCode::kInvalidArgument, "{}: {}", path, e.what());
  }
}

absl::StatusOr<Profile> ResolveProfile(std::string_view name_or_file,
                                       std::span<const std::string> assignments) {
  YamlDoc doc;
  const std::vector<std::string> names = ProfileNames();
  const bool builtin = std::find(names.begin(), names.end(), name_or_file) != names.end();
  if (builtin) {
    doc.root = YAML::Node(YAML::NodeType::Map);
    doc.root["base"] = std::string(name_or_file);
    doc.source = "<overrides>";
  } else {
    auto file = LoadYamlFile(std::string(name_or_file));
    if (absl::IsNotFound(file.status())) {
      return Errorf(absl::StatusCode::kNotFound,
                    "'{}' is neither a built-in replica profile ({}) nor a readable profile file",
                    name_or_file, JoinedNames());
    }
    if (!file.ok()) return file.status();
    doc = *std::move(file);
  }
  for (const std::string& assignment : assignments) {
    RETURN_IF_ERROR(ApplyOverride(doc.root, assignment));
  }
  try {
    return ProfileFromDoc(doc);
  } catch (const YAML::Exception& e) {
    return Errorf(absl::StatusCode::kInvalidArgument, "{}: {}", doc.source, e.what());
  }
}

}  // namespace zumik::sim

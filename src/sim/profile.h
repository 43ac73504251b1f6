// Replica profiles: the calibrated constants of one vLLM replica (model x GPU x TP), as fixed
// by docs/specs/sim-calibration.md, plus what the metrics endpoints report about the hardware.
// Every field can be overridden from YAML (a profile file or an inline map) or `key=value`.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace zumik::sim {

// Optional CPU KV tier (LMCache). Off by default.
struct LmcacheConfig {
  bool enabled = false;
  // Tier capacity in tokens. 0 = LMCache's default CPU buffer, max_local_cpu_size 5 GB per
  // GPU worker, divided by the per-GPU KV bytes per token.
  int64_t capacity_tokens = 0;
  int chunk_size = 256;  // LMCache's default chunk; hits are whole chunks
};

struct Profile {
  std::string name;
  std::string served_model_name;  // the OpenAI `model` and vLLM's model_name label
  std::string gpu_product;        // DCGM's modelName label
  int gpus_per_replica = 1;
  int64_t gpu_memory_mib = 81559;  // per GPU (DCGM FB_FREE + FB_USED)

  // Step-time model, in seconds (sim-calibration.md "Step time").
  double t0 = 0;
  double t_w = 0;
  double c_lin = 0;
  double c_kv = 0;
  double c_att = 0;
  double t_api = 0;   // per-request API/tokenization overhead, added to TTFT
  double c_load = 0;  // per token loaded from the LMCache tier (derived, see profile.cc)

  // Engine limits.
  int64_t kv_tokens = 0;
  int block_size = 16;
  int max_num_batched_tokens = 8192;
  int max_num_seqs = 1024;
  int max_model_len = 131072;

  // Memory accounting for DCGM (whole replica, all GPUs).
  double weights_gib = 0;
  int64_t kv_bytes_per_token = 0;

  // Mean of the natural (EOS) output length when a request does not set ignore_eos.
  double natural_output_mean = 256;

  LmcacheConfig lmcache;

  int num_gpu_blocks() const { return static_cast<int>(kv_tokens / block_size); }
  int64_t weights_bytes() const;
  // The LMCache capacity in effect (resolving 0 to LMCache's default buffer).
  int64_t lmcache_capacity_tokens() const;
};

// The built-in profile names; the first is the default.
std::vector<std::string> ProfileNames();
inline constexpr std::string_view kDefaultProfile = "h100-llama-3.1-8b";

// A built-in profile with `overrides` (a YAML map of Profile fields, may be null) applied.
// Durations accept a number of seconds or a unit suffix ("22us", "48.5ns"). Unknown keys and
// bad values are errors naming `source`:line and the key.
absl::StatusOr<Profile> LoadProfile(std::string_view name, const YAML::Node& overrides = {},
                                    const std::string& source = "<overrides>");

// A profile file: `base: <built-in name>` (default h100-llama-3.1-8b), optional `name:`, and
// any Profile fields.
absl::StatusOr<Profile> LoadProfileFile(const std::string& path);

// `name_or_file` is a built-in name or a profile file path; then each "key=value" applies
// (e.g. "c_lin=25us", "lmcache.enabled=true").
absl::StatusOr<Profile> ResolveProfile(std::string_view name_or_file,
                                       std::span<const std::string> assignments = {});

// Applies a YAML map of fields onto *profile, then checks the result.
absl::Status ApplyProfileFields(const YAML::Node& fields, const std::string& source,
                                Profile* profile);
absl::Status ValidateProfile(const Profile& profile);

}  // namespace zumik::sim

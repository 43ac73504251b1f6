// Pickers (each returns up to maxNumOfEndpoints endpoints, default 1, primary first; the rest
// are the fallback list the proxy walks on retry):
//   max-score-picker        highest total score; ties broken uniformly at random
//   random-picker           uniform
//   weighted-random-picker  A-Res sampling, key U^(1/score); all scores 0 ⇒ uniform
//   round-robin-picker      (ours) the next endpoint id after the last pick, cyclically
// And the single-profile-handler: runs the one profile, whose result is the destination.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"

namespace zumik::sched {

class MaxScorePicker final : public Picker {
 public:
  static constexpr std::string_view kType = "max-score-picker";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  MaxScorePicker(std::string name, int max_endpoints)
      : Picker(std::string(kType), std::move(name), max_endpoints) {}
  void Pick(const CycleState& cycle, std::span<const Candidate> candidates,
            std::span<const double> scores, std::vector<uint32_t>& chosen) override;

 private:
  std::vector<uint32_t> order_;  // scratch
};

class RandomPicker final : public Picker {
 public:
  static constexpr std::string_view kType = "random-picker";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  RandomPicker(std::string name, int max_endpoints)
      : Picker(std::string(kType), std::move(name), max_endpoints) {}
  void Pick(const CycleState& cycle, std::span<const Candidate> candidates,
            std::span<const double> scores, std::vector<uint32_t>& chosen) override;
};

class WeightedRandomPicker final : public Picker {
 public:
  static constexpr std::string_view kType = "weighted-random-picker";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  WeightedRandomPicker(std::string name, int max_endpoints)
      : Picker(std::string(kType), std::move(name), max_endpoints) {}
  void Pick(const CycleState& cycle, std::span<const Candidate> candidates,
            std::span<const double> scores, std::vector<uint32_t>& chosen) override;

 private:
  std::vector<std::pair<double, uint32_t>> keys_;  // scratch
};

class RoundRobinPicker final : public Picker {
 public:
  static constexpr std::string_view kType = "round-robin-picker";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  RoundRobinPicker(std::string name, int max_endpoints)
      : Picker(std::string(kType), std::move(name), max_endpoints) {}
  void Pick(const CycleState& cycle, std::span<const Candidate> candidates,
            std::span<const double> scores, std::vector<uint32_t>& chosen) override;
  // The cursor moves only when a pick is committed (dry runs leave it).
  void PreRequest(const CycleState& cycle, const Candidate& primary, Headers& headers) override;

 private:
  std::optional<EndpointId> last_;
  std::vector<std::pair<uint32_t, uint32_t>> order_;  // scratch
};

class SingleProfileHandler final : public ProfileHandler {
 public:
  static constexpr std::string_view kType = "single-profile-handler";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  explicit SingleProfileHandler(std::string name)
      : ProfileHandler(std::string(kType), std::move(name)) {}
  void PickProfiles(const CycleState& cycle, std::span<const Profile> profiles,
                    std::span<const ProfileRun> runs, std::vector<int>& next) override;
  int PrimaryRun(std::span<const Profile> profiles, std::span<const ProfileRun> runs) override;
};

}  // namespace zumik::sched

// Running a workload: in virtual time on the simulator's fleet with any scheduling policy
// (each policy on its own fresh fleet, the same request stream), or over HTTP against an
// OpenAI-compatible endpoint (http_runner.h). Both produce the same Report.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "bench/report.h"
#include "bench/workload.h"
#include "core/clock.h"
#include "sim/profile.h"

namespace zumik::bench {

// The reference policy that reads the workload's true prefix groups (cheating; virtual only).
inline constexpr std::string_view kOraclePolicy = "oracle";

// "PROFILE:COUNT[,PROFILE:COUNT...]" (a profile is a built-in name or a profile file; COUNT
// defaults to 1) → one Profile per replica, in order.
absl::StatusOr<std::vector<sim::Profile>> ParseFleet(std::string_view spec);

// Progress of one policy: `done` of `total` stages (fractional within a stage).
using ProgressFn = std::function<void(const std::string& policy, double done, int total)>;

struct VirtualOptions {
  std::vector<sim::Profile> fleet;
  std::string fleet_text;  // as given, for the report
  Duration scrape_interval = std::chrono::milliseconds(50);
  int jobs = 1;  // policies run in parallel (each on its own fleet; results do not depend on it)
  ProgressFn progress;
};

// One policy (a built-in name, `oracle`, or an EndpointPickerConfig file) on a fresh fleet.
// Deterministic: the workload's seed fixes the requests, the arrivals, the engines and the
// scheduler's random choices.
absl::StatusOr<PolicyReport> RunVirtualPolicy(const Workload& workload, const std::string& policy,
                                              const VirtualOptions& options);

// Every policy, side by side, in the order given.
absl::StatusOr<Report> RunVirtual(const Workload& workload,
                                  const std::vector<std::string>& policies,
                                  const VirtualOptions& options);

// Inter-arrival gaps of a stage's open-loop schedule, in seconds from the stage start.
std::vector<double> ArrivalOffsets(const LoadSpec& load, const Stage& stage, uint64_t seed);

}  // namespace zumik::bench

// Pickers and the single profile handler (see pickers.h).
#include "sched/plugins/pickers.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/status.h"

namespace zumik::sched {
namespace {

absl::StatusOr<int> ReadMaxEndpoints(PluginParams& params) {
  int max = 1;
  RETURN_IF_ERROR(params.ReadAtLeast("maxNumOfEndpoints", &max, 1));
  return max;
}

// Fisher-Yates over the first k positions of `order` (a uniform k-subset, in random order).
void PartialShuffle(std::vector<uint32_t>& order, size_t k, Rng& rng) {
  const size_t n = order.size();
  for (size_t i = 0; i < k && i + 1 < n; ++i) {
    const auto j =
        static_cast<size_t>(rng.UniformInt(static_cast<int64_t>(i), static_cast<int64_t>(n - 1)));
    std::swap(order[i], order[j]);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Plugin>> MaxScorePicker::Create(const std::string& name,
                                                               PluginParams& params) {
  ASSIGN_OR_RETURN(const int max, ReadMaxEndpoints(params));
  return std::make_unique<MaxScorePicker>(name, max);
}

void MaxScorePicker::Pick(const CycleState& cycle, std::span<const Candidate> candidates,
                          std::span<const double> scores, std::vector<uint32_t>& chosen) {
  const size_t n = candidates.size();
  const size_t k = std::min(n, static_cast<size_t>(max_endpoints()));
  if (k == 1) {
    // One pass; reservoir sampling over the ties gives each tied endpoint probability 1/ties.
    uint32_t best = 0;
    int64_t ties = 1;
    for (uint32_t i = 1; i < n; ++i) {
      if (scores[i] > scores[best]) {
        best = i;
        ties = 1;
      } else if (scores[i] == scores[best] && cycle.rng->UniformInt(0, ties++) == 0) {
        best = i;
      }
    }
    chosen.push_back(best);
    return;
  }
  // Shuffle then stable sort by score, as upstream: random order within equal scores.
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0u);
  PartialShuffle(order_, n, *cycle.rng);
  std::stable_sort(order_.begin(), order_.end(),
                   [&](uint32_t a, uint32_t b) { return scores[a] > scores[b]; });
  chosen.insert(chosen.end(), order_.begin(), order_.begin() + static_cast<ptrdiff_t>(k));
}

absl::StatusOr<std::unique_ptr<Plugin>> RandomPicker::Create(const std::string& name,
                                                             PluginParams& params) {
  ASSIGN_OR_RETURN(const int max, ReadMaxEndpoints(params));
  return std::make_unique<RandomPicker>(name, max);
}

void RandomPicker::Pick(const CycleState& cycle, std::span<const Candidate> candidates,
                        std::span<const double> /*scores*/, std::vector<uint32_t>& chosen) {
  const size_t n = candidates.size();
  const size_t k = std::min(n, static_cast<size_t>(max_endpoints()));
  if (k == 1) {
    chosen.push_back(static_cast<uint32_t>(cycle.rng->UniformInt(0, static_cast<int64_t>(n) - 1)));
    return;
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  PartialShuffle(order, k, *cycle.rng);
  chosen.insert(chosen.end(), order.begin(), order.begin() + static_cast<ptrdiff_t>(k));
}

absl::StatusOr<std::unique_ptr<Plugin>> WeightedRandomPicker::Create(const std::string& name,
                                                                     PluginParams& params) {
  ASSIGN_OR_RETURN(const int max, ReadMaxEndpoints(params));
  return std::make_unique<WeightedRandomPicker>(name, max);
}

void WeightedRandomPicker::Pick(const CycleState& cycle, std::span<const Candidate> candidates,
                                std::span<const double> scores, std::vector<uint32_t>& chosen) {
  const size_t n = candidates.size();
  const size_t k = std::min(n, static_cast<size_t>(max_endpoints()));
  if (std::none_of(scores.begin(), scores.end(), [](double s) { return s > 0; })) {
    std::vector<uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    PartialShuffle(order, k, *cycle.rng);
    chosen.insert(chosen.end(), order.begin(), order.begin() + static_cast<ptrdiff_t>(k));
    return;
  }
  keys_.clear();
  for (uint32_t i = 0; i < n; ++i) {
    double key = 0;  // zero scores are only taken after every positive one
    if (scores[i] > 0) {
      double u = cycle.rng->Uniform();
      if (u <= 0) u = 1e-10;
      key = std::pow(u, 1.0 / scores[i]);
    }
    keys_.emplace_back(key, i);
  }
  std::partial_sort(keys_.begin(), keys_.begin() + static_cast<ptrdiff_t>(k), keys_.end(),
                    [](const auto& a, const auto& b) {
                      return a.first != b.first ? a.first > b.first : a.second < b.second;
                    });
  for (size_t i = 0; i < k; ++i) chosen.push_back(keys_[i].second);
}

absl::StatusOr<std::unique_ptr<Plugin>> RoundRobinPicker::Create(const std::string& name,
                                                                 PluginParams& params) {
  ASSIGN_OR_RETURN(const int max, ReadMaxEndpoints(params));
  return std::make_unique<RoundRobinPicker>(name, max);
}

void RoundRobinPicker::Pick(const CycleState& /*cycle*/, std::span<const Candidate> candidates,
                            std::span<const double> /*scores*/, std::vector<uint32_t>& chosen) {
  const size_t n = candidates.size();
  const size_t k = std::min(n, static_cast<size_t>(max_endpoints()));
  // Distance of each id after the last pick, cyclically over the id space: the smallest is next.
  const uint32_t start = last_ ? *last_ + 1 : 0;
  order_.clear();
  for (uint32_t i = 0; i < n; ++i) order_.emplace_back(candidates[i].id() - start, i);
  std::partial_sort(order_.begin(), order_.begin() + static_cast<ptrdiff_t>(k), order_.end());
  for (size_t i = 0; i < k; ++i) chosen.push_back(order_[i].second);
}

void RoundRobinPicker::PreRequest(const CycleState& /*cycle*/, const Candidate& primary,
                                  Headers& /*headers*/) {
  last_ = primary.id();
}

absl::StatusOr<std::unique_ptr<Plugin>> SingleProfileHandler::Create(const std::string& name,
                                                                     PluginParams& /*params*/) {
  return std::make_unique<SingleProfileHandler>(name);
}

void SingleProfileHandler::PickProfiles(const CycleState& /*cycle*/,
                                        std::span<const Profile> profiles,
                                        std::span<const ProfileRun> runs, std::vector<int>& next) {
  if (runs.empty() && !profiles.empty()) next.push_back(0);
}

int SingleProfileHandler::PrimaryRun(std::span<const Profile> /*profiles*/,
                                     std::span<const ProfileRun> runs) {
  return runs.empty() ? -1 : 0;
}

}  // namespace zumik::sched

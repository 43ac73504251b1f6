// The pool's InferenceObjectives and InferenceModelRewrites, as the endpoint picker applies
// them (facts: docs/epp.md, "Objectives and model rewrites"):
//   - an InferenceObjective, selected by name with the x-llm-d-inference-objective header,
//     gives a request its priority (spec.priority; unset = 0; negative = sheddable);
//   - an InferenceModelRewrite's rules match the request's model: a rule with an Exact match
//     on it wins over a rule without matches (which matches every model), and among rules of
//     the same kind the oldest object's (creationTimestamp, then name) wins. The rule's
//     targets are chosen by weight; when no target has a weight they are equally likely, and
//     a target without a weight is never chosen next to weighted ones.
// Objects whose spec.poolRef names another pool are ignored. Immutable once built: the
// pipeline swaps whole sets when the cluster's objects change.
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace zumik::epp {

struct RewriteTarget {
  std::string model;
  int64_t weight = 0;  // 0 = unset
};

struct RewriteRule {
  std::string source;  // the InferenceModelRewrite's name (or "flag")
  std::vector<RewriteTarget> targets;
};

class ModelRules {
 public:
  // From the objects as the Kubernetes API returns them. `pool_name` empty accepts every
  // poolRef. A malformed object or rule is skipped and described in `problems` (if given).
  static ModelRules FromObjects(std::span<const boost::json::object> objectives,
                                std::span<const boost::json::object> rewrites,
                                std::string_view pool_name,
                                std::vector<std::string>* problems = nullptr);

  void AddObjective(std::string name, int priority);
  // A rule given on the command line: "MODEL=TARGET[:WEIGHT][,TARGET[:WEIGHT]...]", MODEL "*"
  // for every model. Rules added later rank after earlier ones.
  absl::Status AddRewriteFlag(std::string_view flag);

  // The priority of the named objective, if it exists.
  std::optional<int> Priority(std::string_view objective) const;
  // The rule for requests naming `model`, or null.
  const RewriteRule* RuleFor(std::string_view model) const;
  // The target a uniformly random `draw` selects by weight (rule.targets must not be empty).
  static const std::string& PickTarget(const RewriteRule& rule, uint64_t draw);

  bool empty() const { return priorities_.empty() && exact_.empty() && generic_.empty(); }
  size_t objective_count() const { return priorities_.size(); }
  size_t rule_count() const { return rule_count_; }

 private:
  // A rule with its precedence: older objects first, then by name, then in spec order.
  struct Ranked {
    std::string created;  // RFC 3339 (compares as text); "" sorts first
    std::string object;
    size_t index = 0;
    RewriteRule rule;
  };
  void AddRule(Ranked ranked, const std::vector<std::string>& exact_models);
  void Sort();

  std::map<std::string, int, std::less<>> priorities_;
  std::map<std::string, std::vector<Ranked>, std::less<>> exact_;
  std::vector<Ranked> generic_;
  size_t rule_count_ = 0;
  size_t flag_count_ = 0;
};

}  // namespace zumik::epp

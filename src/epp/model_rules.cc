// InferenceObjective priorities and InferenceModelRewrite rules (see model_rules.h).
#include "epp/model_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <tuple>

#include "core/json_path.h"
#include "core/status.h"

namespace zumik::epp {
namespace json = boost::json;

namespace {

std::optional<int64_t> IntegerOf(const json::value& value) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64() && value.get_uint64() <= uint64_t{std::numeric_limits<int64_t>::max()}) {
    return static_cast<int64_t>(value.get_uint64());
  }
  return std::nullopt;
}

// Whether the object's spec.poolRef names `pool` (every object does when `pool` is empty).
bool ForPool(const json::object& object, std::string_view pool) {
  return pool.empty() || StringAt(object, "spec.poolRef.name") == pool;
}

std::string Describe(const json::object& object, std::string_view kind) {
  return fmt::format("{} {}/{}", kind, StringAt(object, "metadata.namespace"),
                     StringAt(object, "metadata.name"));
}

constexpr int64_t kMaxWeight = 1'000'000;

// The targets of one rule; nullopt (with a problem) when any is malformed or none is given.
std::optional<std::vector<RewriteTarget>> ParseTargets(const json::value* targets,
                                                       std::string& problem) {
  if (targets == nullptr || !targets->is_array() || targets->get_array().empty()) {
    problem = "has no targets";
    return std::nullopt;
  }
  std::vector<RewriteTarget> out;
  for (const json::value& item : targets->get_array()) {
    const json::value* model =
        item.is_object() ? item.get_object().if_contains("modelRewrite") : nullptr;
    if (model == nullptr || !model->is_string() || model->get_string().empty()) {
      problem = "has a target without a modelRewrite";
      return std::nullopt;
    }
    RewriteTarget target;
    target.model = std::string(model->get_string());
    if (const json::value* weight = item.get_object().if_contains("weight");
        weight != nullptr && !weight->is_null()) {
      std::optional<int64_t> w = IntegerOf(*weight);
      if (!w || *w < 0 || *w > kMaxWeight) {
        problem = fmt::format("target {} has a weight outside 0..{}", target.model, kMaxWeight);
        return std::nullopt;
      }
      target.weight = *w;
    }
    out.push_back(std::move(target));
  }
  return out;
}

}  // namespace

ModelRules ModelRules::FromObjects(std::span<const json::object> objectives,
                                   std::span<const json::object> rewrites,
                                   std::string_view pool_name, std::vector<std::string>* problems) {
  auto report = [problems](std::string text) {
    if (problems != nullptr) problems->push_back(std::move(text));
  };
  ModelRules rules;
  for (const json::object& object : objectives) {
    if (!ForPool(object, pool_name)) continue;
    std::string name = StringAt(object, "metadata.name");
    if (name.empty()) continue;
    int priority = 0;
    if (const json::value* value = FindPath(object, "spec.priority");
        value != nullptr && !value->is_null()) {
      std::optional<int64_t> p = IntegerOf(*value);
      if (!p || *p < std::numeric_limits<int32_t>::min() ||
          *p > std::numeric_limits<int32_t>::max()) {
        report(fmt::format("{}: spec.priority is not a 32-bit integer; ignored",
                           Describe(object, "InferenceObjective")));
        continue;
      }
      priority = static_cast<int>(*p);
    }
    rules.priorities_[std::move(name)] = priority;
  }
  for (const json::object& object : rewrites) {
    if (!ForPool(object, pool_name)) continue;
    const json::value* list = FindPath(object, "spec.rules");
    if (list == nullptr || !list->is_array()) continue;
    const std::string name = StringAt(object, "metadata.name");
    const std::string created = StringAt(object, "metadata.creationTimestamp");
    for (size_t i = 0; i < list->get_array().size(); ++i) {
      const json::value& item = list->get_array()[i];
      if (!item.is_object()) continue;
      std::string problem;
      auto targets = ParseTargets(item.get_object().if_contains("targets"), problem);
      if (!targets) {
        report(fmt::format("{}: rule {} {}; ignored", Describe(object, "InferenceModelRewrite"), i,
                           problem));
        continue;
      }
      // An empty (or absent) matches list matches every model. A non-empty one matches the
      // models of its Exact entries only, as upstream reads it.
      std::vector<std::string> exact;
      if (const json::value* matches = item.get_object().if_contains("matches");
          matches != nullptr && matches->is_array() && !matches->get_array().empty()) {
        for (const json::value& match : matches->get_array()) {
          if (!match.is_object()) continue;
          const std::string type = StringAt(match.get_object(), "model.type");
          std::string value = StringAt(match.get_object(), "model.value");
          if ((type.empty() || type == "Exact") && !value.empty()) {
            exact.push_back(std::move(value));
          }
        }
        if (exact.empty()) continue;  // matches nothing
      }
      Ranked ranked{created, name, i, RewriteRule{name, std::move(*targets)}};
      rules.AddRule(std::move(ranked), exact);
    }
  }
  rules.Sort();
  return rules;
}

void ModelRules::AddObjective(std::string name, int priority) {
  priorities_[std::move(name)] = priority;
}

absl::Status ModelRules::AddRewriteFlag(std::string_view flag) {
  const size_t eq = flag.find('=');
  auto bad = [&](std::string_view why) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "--model-rewrite '{}': {} (expected MODEL=TARGET[:WEIGHT][,TARGET[:WEIGHT]...], "
                  "MODEL '*' for every model)",
                  flag, why);
  };
  if (eq == std::string_view::npos || eq == 0) return bad("no MODEL= before the targets");
  const std::string_view model = flag.substr(0, eq);
  std::string_view rest = flag.substr(eq + 1);
  std::vector<RewriteTarget> targets;
  while (true) {
    const size_t comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    RewriteTarget target;
    // A weight is the digits after the last colon; model names may contain colons.
    const size_t colon = item.rfind(':');
    if (colon != std::string_view::npos) {
      const std::string_view digits = item.substr(colon + 1);
      int64_t weight = 0;
      auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), weight);
      if (ec == std::errc() && ptr == digits.data() + digits.size() && !digits.empty()) {
        if (weight < 0 || weight > kMaxWeight) {
          return bad(fmt::format("weight {} is outside 0..{}", weight, kMaxWeight));
        }
        target.weight = weight;
        item = item.substr(0, colon);
      }
    }
    if (item.empty()) return bad("a target model is empty");
    target.model = std::string(item);
    targets.push_back(std::move(target));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  // Flags rank after one another in the order given (the "creation time" is their index).
  Ranked ranked{fmt::format("{:08}", flag_count_++), "flag", 0,
                RewriteRule{"flag", std::move(targets)}};
  std::vector<std::string> exact;
  if (model != "*") exact.emplace_back(model);
  AddRule(std::move(ranked), exact);
  Sort();
  return absl::OkStatus();
}

void ModelRules::AddRule(Ranked ranked, const std::vector<std::string>& exact_models) {
  ++rule_count_;
  if (exact_models.empty()) {
    generic_.push_back(std::move(ranked));
    return;
  }
  for (const std::string& model : exact_models) exact_[model].push_back(ranked);
}

void ModelRules::Sort() {
  auto older = [](const Ranked& a, const Ranked& b) {
    return std::tie(a.created, a.object, a.index) < std::tie(b.created, b.object, b.index);
  };
  std::stable_sort(generic_.begin(), generic_.end(), older);
  for (auto& [model, list] : exact_) std::stable_sort(list.begin(), list.end(), older);
}

std::optional<int> ModelRules::Priority(std::string_view objective) const {
  auto it = priorities_.find(objective);
  if (it == priorities_.end()) return std::nullopt;
  return it->second;
}

const RewriteRule* ModelRules::RuleFor(std::string_view model) const {
  if (auto it = exact_.find(model); it != exact_.end() && !it->second.empty()) {
    return &it->second.front().rule;
  }
  return generic_.empty() ? nullptr : &generic_.front().rule;
}

const std::string& ModelRules::PickTarget(const RewriteRule& rule, uint64_t draw) {
  int64_t total = 0;
  for (const RewriteTarget& target : rule.targets) total += target.weight;
  if (total == 0) return rule.targets[draw % rule.targets.size()].model;
  int64_t point = static_cast<int64_t>(draw % static_cast<uint64_t>(total));
  for (const RewriteTarget& target : rule.targets) {
    if (point < target.weight) return target.model;
    point -= target.weight;
  }
  return rule.targets.back().model;
}

}  // namespace zumik::epp

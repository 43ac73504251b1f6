// The metric registry: registration with validation, and the text exposition of all families.
#include "core/metrics/registry.h"

#include "core/metrics/exposition.h"
#include "core/metrics/names.h"
#include "core/status.h"
#include "fmt/format.h"

namespace zumik::metrics {
namespace {

constexpr std::string_view kOverflowMetric = "zumik_metrics_overflow_total";

std::vector<std::string> SampleNames(std::string_view name, MetricType type) {
  std::vector<std::string> names{std::string(name)};
  if (type == MetricType::kHistogram) {
    for (std::string_view suffix : {"_bucket", "_count", "_sum"}) {
      names.push_back(std::string(name) + std::string(suffix));
    }
  }
  return names;
}

}  // namespace

Registry::Registry(RegistryOptions options) : options_(options) {}

template <typename F, typename Make>
absl::StatusOr<F*> Registry::GetOrAdd(std::string_view name, MetricType type,
                                      const std::vector<std::string>& label_names, Make make) {
  RETURN_IF_ERROR(ValidateMetricName(name));
  RETURN_IF_ERROR(ValidateLabelNames(name, type, label_names));
  std::lock_guard lock(mu_);
  const std::vector<std::string> sample_names = SampleNames(name, type);
  for (const std::string& sample_name : sample_names) {
    const auto it = sample_names_.find(sample_name);
    if (it == sample_names_.end()) continue;
    MetricFamily* existing = it->second;
    auto* same_kind = dynamic_cast<F*>(existing);
    if (existing->name() == name && same_kind != nullptr && existing->type() == type &&
        existing->label_names() == label_names) {
      return same_kind;  // the caller compares anything kind-specific (buckets)
    }
    return Errorf(absl::StatusCode::kAlreadyExists,
                  "metric '{}' clashes with the already registered {} '{}' (label names [{}])",
                  name, MetricTypeName(existing->type()), existing->name(),
                  fmt::join(existing->label_names(), ", "));
  }
  std::unique_ptr<F> family = make();
  F* raw = family.get();
  families_.push_back(std::move(family));
  for (const std::string& sample_name : sample_names) sample_names_[sample_name] = raw;
  return raw;
}

absl::StatusOr<CounterFamily*> Registry::AddCounter(std::string_view name, std::string_view help,
                                                    std::vector<std::string> label_names) {
  return GetOrAdd<CounterFamily>(name, MetricType::kCounter, label_names, [&] {
    return std::make_unique<CounterFamily>(std::string(name), std::string(help),
                                           MetricType::kCounter, label_names, Counter::Config{},
                                           options_.max_series_per_family);
  });
}

absl::StatusOr<GaugeFamily*> Registry::AddGauge(std::string_view name, std::string_view help,
                                                std::vector<std::string> label_names) {
  return GetOrAdd<GaugeFamily>(name, MetricType::kGauge, label_names, [&] {
    return std::make_unique<GaugeFamily>(std::string(name), std::string(help), MetricType::kGauge,
                                         label_names, Gauge::Config{},
                                         options_.max_series_per_family);
  });
}

absl::StatusOr<HistogramFamily*> Registry::AddHistogram(std::string_view name,
                                                        std::string_view help,
                                                        std::vector<std::string> label_names,
                                                        std::vector<double> bucket_bounds) {
  auto config = Histogram::MakeConfig(std::move(bucket_bounds));
  if (!config.ok()) {
    return Errorf(config.status().code(), "metric '{}': {}", name, MessageOf(config.status()));
  }
  ASSIGN_OR_RETURN(HistogramFamily * family,
                   GetOrAdd<HistogramFamily>(name, MetricType::kHistogram, label_names, [&] {
                     return std::make_unique<HistogramFamily>(
                         std::string(name), std::string(help), MetricType::kHistogram, label_names,
                         *config, options_.max_series_per_family);
                   }));
  if (*family->config().bounds != *config->bounds) {
    return Errorf(absl::StatusCode::kAlreadyExists,
                  "histogram '{}' is already registered with other bucket bounds", name);
  }
  return family;
}

absl::StatusOr<CallbackFamily*> Registry::AddCallbackGauge(std::string_view name,
                                                           std::string_view help,
                                                           std::vector<std::string> label_names) {
  return GetOrAdd<CallbackFamily>(name, MetricType::kGauge, label_names, [&] {
    return std::make_unique<CallbackFamily>(std::string(name), std::string(help),
                                            MetricType::kGauge, label_names);
  });
}

absl::StatusOr<CallbackFamily*> Registry::AddCallbackCounter(std::string_view name,
                                                             std::string_view help,
                                                             std::vector<std::string> label_names) {
  return GetOrAdd<CallbackFamily>(name, MetricType::kCounter, label_names, [&] {
    return std::make_unique<CallbackFamily>(std::string(name), std::string(help),
                                            MetricType::kCounter, label_names);
  });
}

absl::StatusOr<std::shared_ptr<Gauge>> Registry::SetInfo(
    std::string_view name, std::string_view help,
    const std::vector<std::pair<std::string, std::string>>& labels) {
  std::vector<std::string> names;
  std::vector<std::string> values;
  for (const auto& [label, value] : labels) {
    names.push_back(label);
    values.push_back(value);
  }
  ASSIGN_OR_RETURN(GaugeFamily * family, AddGauge(name, help, std::move(names)));
  std::shared_ptr<Gauge> gauge = family->With(std::span<const std::string>(values));
  gauge->Set(1);
  return gauge;
}

void Registry::WriteText(std::string& out) const {
  std::lock_guard lock(mu_);
  bool overflowed = false;
  for (const auto& family : families_) {
    if (!family->help().empty()) {
      out.append("# HELP ");
      out.append(family->name());
      out.push_back(' ');
      AppendEscapedHelp(out, family->help());
      out.push_back('\n');
    }
    out.append("# TYPE ");
    out.append(family->name());
    out.push_back(' ');
    out.append(MetricTypeName(family->type()));
    out.push_back('\n');
    family->AppendSamples(out);
    overflowed |= family->OverflowCount() > 0;
  }
  if (!overflowed) return;
  out.append("# HELP ");
  out.append(kOverflowMetric);
  out.append(
      " Label sets redirected to the overflow series (series limit or wrong label count).\n");
  out.append("# TYPE ");
  out.append(kOverflowMetric);
  out.append(" counter\n");
  for (const auto& family : families_) {
    const uint64_t count = family->OverflowCount();
    if (count == 0) continue;
    std::string label_text = "metric=\"";
    AppendEscapedLabelValue(label_text, family->name());
    label_text.push_back('"');
    internal::AppendSampleLine(out, kOverflowMetric, "", label_text, "",
                               static_cast<double>(count));
  }
}

std::string Registry::Expose() const {
  std::string out;
  out.reserve(last_size_.load(std::memory_order_relaxed) + 4096);
  WriteText(out);
  last_size_.store(out.size(), std::memory_order_relaxed);
  return out;
}

size_t Registry::FamilyCount() const {
  std::lock_guard lock(mu_);
  return families_.size();
}

}  // namespace zumik::metrics

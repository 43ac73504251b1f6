// Metric children and families.
#include "core/metrics/metric.h"

#include <algorithm>
#include <utility>

#include "core/metrics/exposition.h"
#include "core/status.h"

namespace zumik::metrics {

absl::StatusOr<Histogram::Config> Histogram::MakeConfig(std::vector<double> bounds) {
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "histogram bucket bound {} is {}: bounds must be finite (+Inf is implicit)", i,
                    FormatDouble(bounds[i]));
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "histogram bucket bounds must be strictly increasing: {} follows {}",
                    FormatDouble(bounds[i]), FormatDouble(bounds[i - 1]));
    }
  }
  Config config;
  config.le_labels.reserve(bounds.size() + 1);
  for (double bound : bounds) config.le_labels.push_back(FormatBucketBound(bound));
  config.le_labels.emplace_back("+Inf");
  config.bounds = std::make_shared<const std::vector<double>>(std::move(bounds));
  return config;
}

Histogram::Histogram(const Config& config)
    : bounds_(config.bounds),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_->size() + 1)) {}

uint64_t Histogram::Count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_->size(); ++i) total += BucketCount(i);
  return total;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(std::max(count, 0)));
  for (int i = 0; i < count; ++i) bounds.push_back(start + width * i);
  return bounds;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> bounds;
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

MetricFamily::MetricFamily(std::string name, std::string help, MetricType type,
                           std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

namespace {

void AppendChild(std::string& out, const std::string& name, const std::string& label_text,
                 const Counter& counter, const Counter::Config& /*config*/) {
  internal::AppendSampleLine(out, name, "", label_text, "", counter.Value());
}

void AppendChild(std::string& out, const std::string& name, const std::string& label_text,
                 const Gauge& gauge, const Gauge::Config& /*config*/) {
  internal::AppendSampleLine(out, name, "", label_text, "", gauge.Value());
}

void AppendChild(std::string& out, const std::string& name, const std::string& label_text,
                 const Histogram& histogram, const Histogram::Config& config) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < config.le_labels.size(); ++i) {
    cumulative += histogram.BucketCount(i);
    internal::AppendSampleLine(out, name, "_bucket", label_text, config.le_labels[i],
                               static_cast<double>(cumulative));
  }
  // Same order as prometheus_client: _count before _sum.
  internal::AppendSampleLine(out, name, "_count", label_text, "", static_cast<double>(cumulative));
  internal::AppendSampleLine(out, name, "_sum", label_text, "", histogram.Sum());
}

}  // namespace

template <typename Child>
Family<Child>::Family(std::string name, std::string help, MetricType type,
                      std::vector<std::string> label_names, typename Child::Config config,
                      size_t max_series)
    : MetricFamily(std::move(name), std::move(help), type, std::move(label_names)),
      config_(std::move(config)),
      max_series_(max_series) {}

template <typename Child>
std::shared_ptr<Child> Family<Child>::With(std::span<const std::string_view> label_values) {
  return WithImpl(label_values);
}

template <typename Child>
std::shared_ptr<Child> Family<Child>::With(std::span<const std::string> label_values) {
  return WithImpl(label_values);
}

template <typename Child>
template <typename Values>
std::shared_ptr<Child> Family<Child>::WithImpl(const Values& label_values) {
  {
    std::shared_lock lock(mu_);
    const auto it = series_.find(label_values);
    if (it != series_.end()) return it->second.child;
  }
  std::unique_lock lock(mu_);
  if (label_values.size() != label_names().size() ||
      (series_.size() >= max_series_.load(std::memory_order_relaxed) &&
       series_.find(label_values) == series_.end())) {
    CountOverflow();
    return Overflow();
  }
  std::vector<std::string> key(label_values.begin(), label_values.end());
  auto [it, inserted] = series_.try_emplace(std::move(key));
  if (inserted) {
    it->second.child = std::make_shared<Child>(config_);
    it->second.label_text = internal::RenderLabelText(label_names(), it->first);
  }
  return it->second.child;
}

template <typename Child>
std::shared_ptr<Child> Family<Child>::Overflow() {
  if (overflow_ == nullptr) {
    overflow_ = std::make_shared<Child>(config_);
    const std::vector<std::string> values(label_names().size(), std::string(kOverflowLabelValue));
    overflow_label_text_ = internal::RenderLabelText(label_names(), values);
  }
  return overflow_;
}

template <typename Child>
bool Family<Child>::Remove(std::span<const std::string_view> label_values) {
  return RemoveImpl(label_values);
}

template <typename Child>
bool Family<Child>::Remove(std::span<const std::string> label_values) {
  return RemoveImpl(label_values);
}

template <typename Child>
template <typename Values>
bool Family<Child>::RemoveImpl(const Values& label_values) {
  std::unique_lock lock(mu_);
  const auto it = series_.find(label_values);
  if (it == series_.end()) return false;
  series_.erase(it);
  return true;
}

template <typename Child>
void Family<Child>::Clear() {
  std::unique_lock lock(mu_);
  series_.clear();
  overflow_.reset();
}

template <typename Child>
size_t Family<Child>::SeriesCount() const {
  std::shared_lock lock(mu_);
  return series_.size() + (overflow_ != nullptr ? 1 : 0);
}

template <typename Child>
void Family<Child>::AppendSamples(std::string& out) const {
  std::shared_lock lock(mu_);
  for (const auto& [values, series] : series_) {
    AppendChild(out, name(), series.label_text, *series.child, config_);
  }
  if (overflow_ != nullptr) AppendChild(out, name(), overflow_label_text_, *overflow_, config_);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

CallbackHandle::CallbackHandle(CallbackHandle&& other) noexcept
    : family_(std::exchange(other.family_, nullptr)), id_(other.id_) {}

CallbackHandle& CallbackHandle::operator=(CallbackHandle&& other) noexcept {
  if (this != &other) {
    Reset();
    family_ = std::exchange(other.family_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

void CallbackHandle::Reset() {
  if (family_ != nullptr) std::exchange(family_, nullptr)->Remove(id_);
}

CallbackFamily::CallbackFamily(std::string name, std::string help, MetricType type,
                               std::vector<std::string> label_names)
    : MetricFamily(std::move(name), std::move(help), type, std::move(label_names)) {}

absl::StatusOr<CallbackHandle> CallbackFamily::Add(std::span<const std::string_view> label_values,
                                                   ValueFn fn) {
  if (label_values.size() != label_names().size()) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "metric '{}' has {} label names but the callback was given {} label values",
                  name(), label_names().size(), label_values.size());
  }
  const std::vector<std::string> values(label_values.begin(), label_values.end());
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  sources_.push_back(
      Source{id, internal::RenderLabelText(label_names(), values), std::move(fn), nullptr});
  return CallbackHandle(this, id);
}

CallbackHandle CallbackFamily::AddCollector(CollectFn fn) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  sources_.push_back(Source{id, "", nullptr, std::move(fn)});
  return CallbackHandle(this, id);
}

void CallbackFamily::Remove(uint64_t id) {
  std::lock_guard lock(mu_);
  std::erase_if(sources_, [id](const Source& source) { return source.id == id; });
}

size_t CallbackFamily::SeriesCount() const {
  std::lock_guard lock(mu_);
  return sources_.size();
}

void CallbackFamily::AppendSamples(std::string& out) const {
  std::lock_guard lock(mu_);
  for (const Source& source : sources_) {
    if (source.value) {
      internal::AppendSampleLine(out, name(), "", source.label_text, "", source.value());
    } else {
      Emitter emitter(*this, out);
      source.collect(emitter);
    }
  }
}

void CallbackFamily::Emitter::Emit(std::span<const std::string_view> label_values, double value) {
  const std::vector<std::string>& names = family_.label_names();
  if (label_values.size() != names.size()) {
    family_.CountOverflow();
    return;
  }
  out_.append(family_.name());
  if (!names.empty()) {
    out_.push_back('{');
    for (size_t i = 0; i < names.size(); ++i) {
      if (i > 0) out_.push_back(',');
      out_.append(names[i]);
      out_.append("=\"");
      AppendEscapedLabelValue(out_, label_values[i]);
      out_.push_back('"');
    }
    out_.push_back('}');
  }
  out_.push_back(' ');
  AppendDouble(out_, value);
  out_.push_back('\n');
}

}  // namespace zumik::metrics

// Metric children (Counter, Gauge, Histogram) and the families that own them, one child per
// combination of label values. Updates on a child are lock-free atomics; creating or removing
// a child takes the family's lock.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/metrics/metric_type.h"

namespace zumik::metrics {

// Default bound on the number of series (label-value combinations) in one family.
inline constexpr size_t kDefaultMaxSeries = 10'000;
// Every label of the shared overflow series has this value (see Family::With).
inline constexpr std::string_view kOverflowLabelValue = "__overflow__";

// A monotonically increasing value. Integer increments use one atomic add; fractional ones a
// separate atomic double, so the common Inc() path never loops on compare-exchange.
class Counter {
 public:
  struct Config {};
  explicit Counter(const Config& /*config*/ = {}) {}

  void Inc() { whole_.fetch_add(1, std::memory_order_relaxed); }
  void Inc(uint64_t n) { whole_.fetch_add(n, std::memory_order_relaxed); }
  // Negative, zero and NaN amounts are ignored: a counter never goes down.
  void Add(double amount) {
    if (!(amount > 0)) return;
    if (amount < 9e18 && amount == std::floor(amount)) {
      whole_.fetch_add(static_cast<uint64_t>(amount), std::memory_order_relaxed);
    } else {
      fraction_.fetch_add(amount, std::memory_order_relaxed);
    }
  }
  double Value() const {
    return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
           fraction_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<uint64_t> whole_{0};
  std::atomic<double> fraction_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  struct Config {};
  explicit Gauge(const Config& /*config*/ = {}) {}

  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double amount) { value_.fetch_add(amount, std::memory_order_relaxed); }
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Buckets of observations. Observe() is a binary search plus two atomic adds; the total count
// is the sum of the buckets, so an exposition is always self-consistent (+Inf == _count).
class Histogram {
 public:
  struct Config {
    // Finite upper bounds, strictly increasing; +Inf is implicit.
    std::shared_ptr<const std::vector<double>> bounds;
    // The bounds formatted for the `le` label, plus "+Inf" last.
    std::vector<std::string> le_labels;
  };
  // Validates bounds (no NaN, strictly increasing; a trailing +Inf is dropped).
  static absl::StatusOr<Config> MakeConfig(std::vector<double> bounds);

  explicit Histogram(const Config& config);

  void Observe(double value) {
    const std::vector<double>& bounds = *bounds_;
    // First bucket whose bound is >= value (`le` is inclusive). NaN lands in +Inf.
    const auto it = std::partition_point(bounds.begin(), bounds.end(),
                                         [value](double bound) { return !(value <= bound); });
    counts_[static_cast<size_t>(it - bounds.begin())].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  std::span<const double> bounds() const { return *bounds_; }
  // Observations in bucket i alone (not cumulative); i == bounds().size() is the +Inf bucket.
  uint64_t BucketCount(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t Count() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<const std::vector<double>> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

// Handy bucket layouts: start, start+width, ... (count bounds) and start, start*factor, ...
std::vector<double> LinearBuckets(double start, double width, int count);
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// What the registry needs from every family: identity, and writing its samples.
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, MetricType type,
               std::vector<std::string> label_names);
  virtual ~MetricFamily() = default;
  MetricFamily(const MetricFamily&) = delete;
  MetricFamily& operator=(const MetricFamily&) = delete;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  MetricType type() const { return type_; }
  const std::vector<std::string>& label_names() const { return label_names_; }

  // Appends the family's sample lines (no HELP/TYPE) in text format 0.0.4.
  virtual void AppendSamples(std::string& out) const = 0;
  // Number of series currently held (callback families: number of registered sources).
  virtual size_t SeriesCount() const = 0;
  // Label sets that were redirected or dropped: With() beyond the series limit or with the
  // wrong number of label values; callback samples with the wrong number of label values.
  uint64_t OverflowCount() const { return overflow_count_.load(std::memory_order_relaxed); }

 protected:
  void CountOverflow() const { overflow_count_.fetch_add(1, std::memory_order_relaxed); }

 private:
  const std::string name_;
  const std::string help_;
  const MetricType type_;
  const std::vector<std::string> label_names_;
  mutable std::atomic<uint64_t> overflow_count_{0};
};

// Orders label-value tuples and lets a map be searched with views, so lookups do not allocate.
struct LabelValuesLess {
  using is_transparent = void;
  template <typename A, typename B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

// A labelled family of Counter, Gauge or Histogram children. Create through Registry.
//
// With(values) returns the child for those label values (in label-name order), creating it on
// first use. Keep the pointer: updates through it are lock-free. A child stays valid for as
// long as you hold it, even after Remove() (it is then simply no longer exposed).
//
// Cardinality bound: once the family holds max_series children, With() for a new label set
// returns one shared overflow child, exposed with every label set to kOverflowLabelValue, and
// bumps OverflowCount() (exposed by the registry as zumik_metrics_overflow_total{metric=...}).
// A call with the wrong number of label values is a programming error and is treated the same
// way, so the hot path never aborts.
template <typename Child>
class Family final : public MetricFamily {
 public:
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         typename Child::Config config, size_t max_series);

  std::shared_ptr<Child> With(std::initializer_list<std::string_view> label_values) {
    return With(std::span<const std::string_view>(label_values.begin(), label_values.size()));
  }
  std::shared_ptr<Child> With(std::span<const std::string_view> label_values);
  std::shared_ptr<Child> With(std::span<const std::string> label_values);

  // Stops exposing the series; returns whether it existed. Holders keep a valid child.
  bool Remove(std::initializer_list<std::string_view> label_values) {
    return Remove(std::span<const std::string_view>(label_values.begin(), label_values.size()));
  }
  bool Remove(std::span<const std::string_view> label_values);
  bool Remove(std::span<const std::string> label_values);
  // Removes every series, the overflow series included.
  void Clear();

  void set_max_series(size_t max_series) {
    max_series_.store(max_series, std::memory_order_relaxed);
  }
  const typename Child::Config& config() const { return config_; }

  size_t SeriesCount() const override;
  void AppendSamples(std::string& out) const override;

 private:
  struct Series {
    std::shared_ptr<Child> child;
    std::string label_text;  // pre-rendered `a="x",b="y"`: label values never change
  };

  template <typename Values>
  std::shared_ptr<Child> WithImpl(const Values& label_values);
  template <typename Values>
  bool RemoveImpl(const Values& label_values);
  std::shared_ptr<Child> Overflow();  // requires mu_ held exclusively

  const typename Child::Config config_;
  std::atomic<size_t> max_series_;
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, Series, LabelValuesLess> series_;
  std::shared_ptr<Child> overflow_;
  std::string overflow_label_text_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

class CallbackFamily;

// Keeps a callback registered; destroying (or Reset()) unregisters it, waiting for a scrape
// that is running it to finish. The family (and so the Registry) must outlive the handle.
class CallbackHandle {
 public:
  CallbackHandle() = default;
  CallbackHandle(CallbackHandle&& other) noexcept;
  CallbackHandle& operator=(CallbackHandle&& other) noexcept;
  ~CallbackHandle() { Reset(); }

  void Reset();
  bool active() const { return family_ != nullptr; }

 private:
  friend class CallbackFamily;
  CallbackHandle(CallbackFamily* family, uint64_t id) : family_(family), id_(id) {}

  CallbackFamily* family_ = nullptr;
  uint64_t id_ = 0;
};

// A gauge or counter family whose values are read at scrape time, e.g. KV-cache usage taken
// from an engine under its own lock. Callbacks run during Registry::Expose() with the
// registry's and this family's locks held: they must be quick, must not call into the Registry
// and must not add or remove callbacks on this family (that would deadlock). Never destroy a
// handle while holding a lock that one of the family's callbacks takes.
// Series are exposed in the order the callbacks were added.
class CallbackFamily final : public MetricFamily {
 public:
  // Passed to a collector: emits any number of series of this family.
  class Emitter {
   public:
    void Emit(std::initializer_list<std::string_view> label_values, double value) {
      Emit(std::span<const std::string_view>(label_values.begin(), label_values.size()), value);
    }
    // A sample with the wrong number of label values is dropped and counted as overflow.
    void Emit(std::span<const std::string_view> label_values, double value);

   private:
    friend class CallbackFamily;
    Emitter(const CallbackFamily& family, std::string& out) : family_(family), out_(out) {}

    const CallbackFamily& family_;
    std::string& out_;
  };

  using ValueFn = std::function<double()>;
  using CollectFn = std::function<void(Emitter&)>;

  CallbackFamily(std::string name, std::string help, MetricType type,
                 std::vector<std::string> label_names);

  // One series with fixed label values whose value is fn(). kInvalidArgument when the number
  // of label values does not match the family's label names.
  absl::StatusOr<CallbackHandle> Add(std::initializer_list<std::string_view> label_values,
                                     ValueFn fn) {
    return Add(std::span<const std::string_view>(label_values.begin(), label_values.size()),
               std::move(fn));
  }
  absl::StatusOr<CallbackHandle> Add(std::span<const std::string_view> label_values, ValueFn fn);
  // A collector that emits a varying set of series at each scrape.
  CallbackHandle AddCollector(CollectFn fn);

  size_t SeriesCount() const override;
  void AppendSamples(std::string& out) const override;

 private:
  friend class CallbackHandle;
  void Remove(uint64_t id);

  struct Source {
    uint64_t id;
    std::string label_text;  // for `value`
    ValueFn value;
    CollectFn collect;
  };

  mutable std::mutex mu_;
  std::vector<Source> sources_;
  uint64_t next_id_ = 1;
};

}  // namespace zumik::metrics

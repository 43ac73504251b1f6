// Parser of the Prometheus text exposition format 0.0.4, used to scrape model servers' /metrics.
// Two forms: ParseText() returns owned samples (convenient, for tests and tools); TextParser
// streams views to a visitor and, reused across scrapes, parses without allocating.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "core/metrics/metric_type.h"

namespace zumik::metrics {

struct LabelView {
  std::string_view name;
  std::string_view value;  // unescaped
};

// A sample as seen by a visitor. The views are valid only during the OnSample call.
struct SampleView {
  std::string_view name;
  std::span<const LabelView> labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;

  std::optional<std::string_view> Label(std::string_view label_name) const;
};

class TextVisitor {
 public:
  virtual ~TextVisitor() = default;
  virtual void OnHelp(std::string_view /*metric*/, std::string_view /*help*/) {}
  virtual void OnType(std::string_view /*metric*/, MetricType /*type*/) {}
  virtual void OnSample(const SampleView& sample) = 0;
};

// Accepts what Prometheus accepts: `# HELP` (with `\\` and `\n` escapes) and `# TYPE` lines,
// other comments, blank lines, `name{label="value",...} value [timestamp_ms]` with spaces or
// tabs between tokens, a trailing comma in the label set, names with ':', label values with
// `\\`, `\"` and `\n` escapes (other escapes are kept verbatim, as Prometheus does), values
// such as NaN, +Inf, -Inf, 1.5e-3, LF or CRLF line endings, and no final newline. It checks
// syntax only: repeated label names, samples without a TYPE or a TYPE given twice (the last
// one wins) are passed through.
//
// On the first malformed line it returns kInvalidArgument naming the line and the problem, e.g.
// "line 12: expected '=' after label name 'model_name'". Samples of earlier lines have already
// been delivered by then, so a scraper should treat the whole scrape as failed. Parsing is a
// single forward pass over the input: garbage cannot make it crash, loop or recurse.
class TextParser {
 public:
  absl::Status Parse(std::string_view text, TextVisitor& visitor);

  // Parse with only a sample callback: parser.Parse(body, [&](const SampleView& s) {...}).
  template <std::invocable<const SampleView&> F>
  absl::Status Parse(std::string_view text, F&& on_sample) {
    struct Adapter final : TextVisitor {
      explicit Adapter(F& fn) : fn_(fn) {}
      void OnSample(const SampleView& sample) override { fn_(sample); }
      F& fn_;
    };
    Adapter adapter(on_sample);
    return Parse(text, adapter);
  }

 private:
  absl::Status ParseLine(std::string_view line, TextVisitor& visitor);
  absl::Status ParseComment(std::string_view line, size_t pos, TextVisitor& visitor);
  absl::Status ParseSample(std::string_view line, size_t pos, TextVisitor& visitor);

  // Reused between lines and calls, so steady-state parsing does not allocate.
  std::vector<LabelView> labels_;
  std::string scratch_;  // unescaped label values and help text of the current line
};

using Labels = absl::InlinedVector<std::pair<std::string, std::string>, 4>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;

  std::optional<std::string_view> Label(std::string_view label_name) const;
};

// What `# TYPE` and `# HELP` lines said about one family.
struct FamilyMetadata {
  std::string name;
  MetricType type = MetricType::kUntyped;
  std::string help;
};

struct ParsedText {
  std::vector<Sample> samples;
  std::vector<FamilyMetadata> families;  // in order of first mention

  const FamilyMetadata* FindFamily(std::string_view name) const;
};

absl::StatusOr<std::vector<Sample>> ParseText(std::string_view text);
absl::StatusOr<ParsedText> ParseTextWithMetadata(std::string_view text);

}  // namespace zumik::metrics

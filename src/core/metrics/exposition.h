// Prometheus text exposition format 0.0.4: number formatting and escaping, plus the low-level
// sample writers the metric families use. Registry::Expose() is the normal entry point.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace zumik::metrics {

// The Content-Type of a /metrics response in text format 0.0.4.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

// Sample values are written the way Python's prometheus_client (and so vLLM) writes them:
// the shortest string that parses back to the same double, Python repr layout: "3.0", "0.25",
// "1e-05", "1.5e+16", and "+Inf", "-Inf", "NaN". Integers below 1e16 never get an exponent.
void AppendDouble(std::string& out, double value);
std::string FormatDouble(double value);

// Histogram `le` label values as prometheus_client writes them (floatToGoString): like
// AppendDouble but values of a million and up switch to an exponent ("2.5e+06"). Matching
// vLLM's exact strings matters because PromQL selects buckets by string, e.g. {le="1.0"}.
void AppendBucketBound(std::string& out, double bound);
std::string FormatBucketBound(double bound);

// Label values escape '\\', '"' and newline; HELP text escapes '\\' and newline.
void AppendEscapedLabelValue(std::string& out, std::string_view value);
void AppendEscapedHelp(std::string& out, std::string_view help);

namespace internal {

// `a="x",b="y"` (no braces) for the given names and values; empty when there are no labels.
std::string RenderLabelText(std::span<const std::string> names,
                            std::span<const std::string> values);

// One sample line: name+suffix, then {label_text} (or {label_text,le="bound"} when
// `le` is non-empty), a space, the value and a newline.
void AppendSampleLine(std::string& out, std::string_view name, std::string_view suffix,
                      std::string_view label_text, std::string_view le, double value);

}  // namespace internal
}  // namespace zumik::metrics

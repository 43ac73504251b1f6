// Text exposition format 0.0.4: number formatting and escaping.
#include "core/metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>

namespace zumik::metrics {
namespace {

// Python's repr switches to an exponent when the decimal exponent is < -4 or >= 16.
constexpr int kMinFixedExponent = -4;
constexpr int kMaxFixedExponent = 16;

// Appends a finite, non-integral-or-huge value in Python repr layout.
void AppendShortest(std::string& out, double value) {
  char buf[32];
  // Shortest round-trip digits in scientific form: "-d.ddde±XX".
  const auto result = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  const std::string_view sci(buf, static_cast<size_t>(result.ptr - buf));
  const size_t e_pos = sci.find('e');
  int exponent = 0;
  std::from_chars(sci.data() + e_pos + 1 + (sci[e_pos + 1] == '+' ? 1 : 0), sci.data() + sci.size(),
                  exponent);
  if (exponent < kMinFixedExponent || exponent >= kMaxFixedExponent) {
    out.append(sci);  // to_chars already writes Python's "1.5e-05" / "1e+16" form
    return;
  }
  std::string_view mantissa = sci.substr(0, e_pos);
  if (mantissa.front() == '-') {
    out.push_back('-');
    mantissa.remove_prefix(1);
  }
  // Digits without the decimal point.
  char digits[24];
  size_t num_digits = 0;
  for (char c : mantissa) {
    if (c != '.') digits[num_digits++] = c;
  }
  if (exponent < 0) {
    out.append("0.");
    out.append(static_cast<size_t>(-exponent - 1), '0');
    out.append(digits, num_digits);
    return;
  }
  const size_t int_digits = static_cast<size_t>(exponent) + 1;
  if (num_digits <= int_digits) {
    out.append(digits, num_digits);
    out.append(int_digits - num_digits, '0');
    out.append(".0");
  } else {
    out.append(digits, int_digits);
    out.push_back('.');
    out.append(digits + int_digits, num_digits - int_digits);
  }
}

}  // namespace

void AppendDouble(std::string& out, double value) {
  if (std::isnan(value)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  // Fast path for the common case: counters and most gauges hold integers.
  if (std::fabs(value) < 1e16 && value == std::trunc(value)) {
    if (value == 0 && std::signbit(value)) {
      out.append("-0.0");
      return;
    }
    char buf[24];
    const auto result = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(value));
    out.append(buf, result.ptr);
    out.append(".0");
    return;
  }
  AppendShortest(out, value);
}

std::string FormatDouble(double value) {
  std::string out;
  AppendDouble(out, value);
  return out;
}

void AppendBucketBound(std::string& out, double bound) {
  const size_t start = out.size();
  AppendDouble(out, bound);
  if (!(bound > 0) || std::isinf(bound)) return;
  // prometheus_client's floatToGoString: "Go switches to exponents sooner than Python".
  const std::string_view repr = std::string_view(out).substr(start);
  const size_t dot = repr.find('.');
  if (dot == std::string_view::npos || dot <= 6) return;
  std::string mantissa;
  mantissa.push_back(repr[0]);
  mantissa.push_back('.');
  mantissa.append(repr.substr(1, dot - 1));
  mantissa.append(repr.substr(dot + 1));
  while (!mantissa.empty() && (mantissa.back() == '0' || mantissa.back() == '.')) {
    mantissa.pop_back();
  }
  out.resize(start);
  out.append(mantissa);
  out.append("e+0");
  out.append(std::to_string(dot - 1));
}

std::string FormatBucketBound(double bound) {
  std::string out;
  AppendBucketBound(out, bound);
  return out;
}

void AppendEscapedLabelValue(std::string& out, std::string_view value) {
  size_t plain_start = 0;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.substr(plain_start, i - plain_start));
    out.append(c == '\\' ? "\\\\" : c == '"' ? "\\\"" : "\\n");
    plain_start = i + 1;
  }
  out.append(value.substr(plain_start));
}

void AppendEscapedHelp(std::string& out, std::string_view help) {
  size_t plain_start = 0;
  for (size_t i = 0; i < help.size(); ++i) {
    const char c = help[i];
    if (c != '\\' && c != '\n') continue;
    out.append(help.substr(plain_start, i - plain_start));
    out.append(c == '\\' ? "\\\\" : "\\n");
    plain_start = i + 1;
  }
  out.append(help.substr(plain_start));
}

namespace internal {

std::string RenderLabelText(std::span<const std::string> names,
                            std::span<const std::string> values) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i > 0) text.push_back(',');
    text.append(names[i]);
    text.append("=\"");
    AppendEscapedLabelValue(text, values[i]);
    text.push_back('"');
  }
  return text;
}

void AppendSampleLine(std::string& out, std::string_view name, std::string_view suffix,
                      std::string_view label_text, std::string_view le, double value) {
  out.append(name);
  out.append(suffix);
  if (!label_text.empty() || !le.empty()) {
    out.push_back('{');
    out.append(label_text);
    if (!le.empty()) {
      if (!label_text.empty()) out.push_back(',');
      out.append("le=\"");
      out.append(le);
      out.push_back('"');
    }
    out.push_back('}');
  }
  out.push_back(' ');
  AppendDouble(out, value);
  out.push_back('\n');
}

}  // namespace internal
}  // namespace zumik::metrics

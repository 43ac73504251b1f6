// Prometheus text format 0.0.4 parser: a hand-written single pass over each line.
#include "core/metrics/parser.h"

#include <charconv>
#include <unordered_map>

#include "core/metrics/names.h"
#include "core/status.h"

namespace zumik::metrics {
namespace {

constexpr bool IsBlank(char c) { return c == ' ' || c == '\t'; }

size_t SkipBlanks(std::string_view line, size_t pos) {
  while (pos < line.size() && IsBlank(line[pos])) ++pos;
  return pos;
}

size_t TokenEnd(std::string_view line, size_t pos) {
  while (pos < line.size() && !IsBlank(line[pos])) ++pos;
  return pos;
}

// A short, printable rendering of untrusted input for error messages.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxShown = 40;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out.append(fmt::format("\\x{:02x}", c));
    }
  }
  if (text.size() > kMaxShown) out.append("...");
  out.push_back('\'');
  return out;
}

// What the parser found at `pos`, for "expected X, found Y" messages.
std::string Found(std::string_view line, size_t pos) {
  if (pos >= line.size()) return "end of line";
  return Quote(line.substr(pos, 1));
}

absl::Status LineError(const std::string& message) {
  return absl::Status(absl::StatusCode::kInvalidArgument, message);
}

// Go's ParseFloat accepts a leading '+'; std::from_chars does not.
bool ParseDouble(std::string_view token, double* out) {
  if (!token.empty() && token.front() == '+') {
    token.remove_prefix(1);
    if (!token.empty() && token.front() == '-') return false;
  }
  if (token.empty()) return false;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return ec == std::errc() && end == token.data() + token.size();
}

bool ParseInt64(std::string_view token, int64_t* out) {
  if (!token.empty() && token.front() == '+') {
    token.remove_prefix(1);
    if (!token.empty() && token.front() == '-') return false;
  }
  if (token.empty()) return false;
  const auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), *out);
  return ec == std::errc() && end == token.data() + token.size();
}

bool ParseType(std::string_view token, MetricType* type) {
  static constexpr std::pair<std::string_view, MetricType> kTypes[] = {
      {"counter", MetricType::kCounter},     {"gauge", MetricType::kGauge},
      {"histogram", MetricType::kHistogram}, {"summary", MetricType::kSummary},
      {"untyped", MetricType::kUntyped},     {"unknown", MetricType::kUntyped},
  };
  for (const auto& [name, value] : kTypes) {
    if (token == name) {
      *type = value;
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<std::string_view> SampleView::Label(std::string_view label_name) const {
  for (const LabelView& label : labels) {
    if (label.name == label_name) return label.value;
  }
  return std::nullopt;
}

std::optional<std::string_view> Sample::Label(std::string_view label_name) const {
  for (const auto& [label, label_value] : labels) {
    if (label == label_name) return std::string_view(label_value);
  }
  return std::nullopt;
}

absl::Status TextParser::Parse(std::string_view text, TextVisitor& visitor) {
  size_t line_number = 0;
  size_t start = 0;
  while (start < text.size()) {
    ++line_number;
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    start = end + 1;
    if (absl::Status status = ParseLine(line, visitor); !status.ok()) {
      return Errorf(absl::StatusCode::kInvalidArgument, "line {}: {}", line_number,
                    MessageOf(status));
    }
  }
  return absl::OkStatus();
}

absl::Status TextParser::ParseLine(std::string_view line, TextVisitor& visitor) {
  const size_t pos = SkipBlanks(line, 0);
  if (pos == line.size()) return absl::OkStatus();
  // Unescaping never lengthens text, so views into scratch_ stay valid for the whole line.
  scratch_.clear();
  scratch_.reserve(line.size());
  if (line[pos] == '#') return ParseComment(line, pos + 1, visitor);
  return ParseSample(line, pos, visitor);
}

absl::Status TextParser::ParseComment(std::string_view line, size_t pos, TextVisitor& visitor) {
  pos = SkipBlanks(line, pos);
  const size_t keyword_end = TokenEnd(line, pos);
  const std::string_view keyword = line.substr(pos, keyword_end - pos);
  if (keyword != "HELP" && keyword != "TYPE") return absl::OkStatus();  // a plain comment

  pos = SkipBlanks(line, keyword_end);
  const size_t name_start = pos;
  while (pos < line.size() && IsMetricNameChar(line[pos])) ++pos;
  const std::string_view name = line.substr(name_start, pos - name_start);
  if (name.empty() || !IsMetricNameStart(name.front()) ||
      (pos < line.size() && !IsBlank(line[pos]))) {
    return LineError(
        fmt::format("expected a metric name after '# {}', found {}", keyword,
                    Quote(line.substr(name_start, TokenEnd(line, name_start) - name_start))));
  }
  pos = SkipBlanks(line, pos);

  if (keyword == "TYPE") {
    const size_t type_end = TokenEnd(line, pos);
    const std::string_view type_token = line.substr(pos, type_end - pos);
    MetricType type;
    if (type_token.empty()) {
      return LineError(fmt::format("expected a metric type after '# TYPE {}'", name));
    }
    if (!ParseType(type_token, &type)) {
      return LineError(fmt::format(
          "unknown metric type {} (expected counter, gauge, histogram, summary or untyped)",
          Quote(type_token)));
    }
    if (SkipBlanks(line, type_end) != line.size()) {
      return LineError(fmt::format("unexpected text after the metric type: {}",
                                   Quote(line.substr(SkipBlanks(line, type_end)))));
    }
    visitor.OnType(name, type);
    return absl::OkStatus();
  }

  // HELP: the rest of the line, with \\ and \n unescaped (other escapes kept verbatim).
  const size_t help_start = scratch_.size();
  for (; pos < line.size(); ++pos) {
    if (line[pos] == '\\' && pos + 1 < line.size() &&
        (line[pos + 1] == '\\' || line[pos + 1] == 'n')) {
      scratch_.push_back(line[pos + 1] == 'n' ? '\n' : '\\');
      ++pos;
    } else {
      scratch_.push_back(line[pos]);
    }
  }
  visitor.OnHelp(name, std::string_view(scratch_).substr(help_start));
  return absl::OkStatus();
}

absl::Status TextParser::ParseSample(std::string_view line, size_t pos, TextVisitor& visitor) {
  const size_t name_start = pos;
  if (!IsMetricNameStart(line[pos])) {
    return LineError(fmt::format("expected a metric name, found {}", Found(line, pos)));
  }
  while (pos < line.size() && IsMetricNameChar(line[pos])) ++pos;
  const std::string_view name = line.substr(name_start, pos - name_start);

  labels_.clear();
  const size_t after_name = pos;
  pos = SkipBlanks(line, pos);
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    while (true) {
      pos = SkipBlanks(line, pos);
      if (pos == line.size()) {
        return LineError(fmt::format("unterminated label set of '{}': expected '}}'", name));
      }
      if (line[pos] == '}') {
        ++pos;
        break;
      }
      const size_t label_start = pos;
      if (!IsLabelNameStart(line[pos])) {
        return LineError(fmt::format("expected a label name, found {}", Found(line, pos)));
      }
      while (pos < line.size() && IsLabelNameChar(line[pos])) ++pos;
      const std::string_view label = line.substr(label_start, pos - label_start);
      pos = SkipBlanks(line, pos);
      if (pos == line.size() || line[pos] != '=') {
        return LineError(
            fmt::format("expected '=' after label name '{}', found {}", label, Found(line, pos)));
      }
      pos = SkipBlanks(line, pos + 1);
      if (pos == line.size() || line[pos] != '"') {
        return LineError(fmt::format("expected '\"' to open the value of label '{}', found {}",
                                     label, Found(line, pos)));
      }
      ++pos;
      // The value: a view into the line unless it has escapes, then unescaped into scratch_.
      const size_t value_start = pos;
      while (pos < line.size() && line[pos] != '"' && line[pos] != '\\') ++pos;
      std::string_view value = line.substr(value_start, pos - value_start);
      if (pos < line.size() && line[pos] == '\\') {
        const size_t unescaped_start = scratch_.size();
        scratch_.append(value);
        while (pos < line.size() && line[pos] != '"') {
          if (line[pos] == '\\' && pos + 1 < line.size()) {
            const char escaped = line[pos + 1];
            if (escaped == 'n') {
              scratch_.push_back('\n');
            } else if (escaped == '\\' || escaped == '"') {
              scratch_.push_back(escaped);
            } else {
              scratch_.push_back('\\');
              scratch_.push_back(escaped);
            }
            pos += 2;
          } else {
            scratch_.push_back(line[pos++]);
          }
        }
        value = std::string_view(scratch_).substr(unescaped_start);
      }
      if (pos >= line.size()) {
        return LineError(
            fmt::format("unterminated value of label '{}': missing closing '\"'", label));
      }
      ++pos;  // closing quote
      labels_.push_back(LabelView{label, value});
      pos = SkipBlanks(line, pos);
      if (pos < line.size() && line[pos] == ',') {
        ++pos;
      } else if (pos == line.size() || line[pos] != '}') {
        return LineError(fmt::format("expected ',' or '}}' after the value of label '{}', found {}",
                                     label, Found(line, pos)));
      }
    }
    pos = SkipBlanks(line, pos);
  } else if (pos == after_name && pos < line.size()) {
    return LineError(
        fmt::format("unexpected character {} in metric name '{}'", Found(line, pos), name));
  }

  if (pos == line.size()) {
    return LineError(fmt::format("expected a value for '{}', found end of line", name));
  }
  const size_t value_end = TokenEnd(line, pos);
  SampleView sample;
  sample.name = name;
  sample.labels = labels_;
  if (const std::string_view token = line.substr(pos, value_end - pos);
      !ParseDouble(token, &sample.value)) {
    return LineError(fmt::format("invalid value {} for '{}'", Quote(token), name));
  }
  pos = SkipBlanks(line, value_end);
  if (pos < line.size()) {
    const size_t timestamp_end = TokenEnd(line, pos);
    const std::string_view token = line.substr(pos, timestamp_end - pos);
    int64_t timestamp = 0;
    if (!ParseInt64(token, &timestamp)) {
      return LineError(fmt::format("invalid timestamp {} for '{}' (expected integer milliseconds)",
                                   Quote(token), name));
    }
    sample.timestamp_ms = timestamp;
    pos = SkipBlanks(line, timestamp_end);
    if (pos < line.size()) {
      return LineError(
          fmt::format("unexpected text after the timestamp: {}", Quote(line.substr(pos))));
    }
  }
  visitor.OnSample(sample);
  return absl::OkStatus();
}

namespace {

// Copies everything into owned values.
class CollectingVisitor final : public TextVisitor {
 public:
  explicit CollectingVisitor(ParsedText& parsed, bool want_metadata)
      : parsed_(parsed), want_metadata_(want_metadata) {}

  void OnHelp(std::string_view metric, std::string_view help) override {
    if (want_metadata_) Family(metric).help = std::string(help);
  }
  void OnType(std::string_view metric, MetricType type) override {
    if (want_metadata_) Family(metric).type = type;
  }
  void OnSample(const SampleView& view) override {
    Sample& sample = parsed_.samples.emplace_back();
    sample.name = std::string(view.name);
    for (const LabelView& label : view.labels) {
      sample.labels.emplace_back(std::string(label.name), std::string(label.value));
    }
    sample.value = view.value;
    sample.timestamp_ms = view.timestamp_ms;
  }

 private:
  FamilyMetadata& Family(std::string_view metric) {
    const auto [it, inserted] = index_.try_emplace(std::string(metric), parsed_.families.size());
    if (inserted) {
      parsed_.families.push_back(
          FamilyMetadata{std::string(metric), MetricType::kUntyped, std::string()});
    }
    return parsed_.families[it->second];
  }

  ParsedText& parsed_;
  const bool want_metadata_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace

const FamilyMetadata* ParsedText::FindFamily(std::string_view name) const {
  for (const FamilyMetadata& family : families) {
    if (family.name == name) return &family;
  }
  return nullptr;
}

absl::StatusOr<std::vector<Sample>> ParseText(std::string_view text) {
  ParsedText parsed;
  CollectingVisitor visitor(parsed, /*want_metadata=*/false);
  TextParser parser;
  RETURN_IF_ERROR(parser.Parse(text, visitor));
  return std::move(parsed.samples);
}

absl::StatusOr<ParsedText> ParseTextWithMetadata(std::string_view text) {
  ParsedText parsed;
  CollectingVisitor visitor(parsed, /*want_metadata=*/true);
  TextParser parser;
  RETURN_IF_ERROR(parser.Parse(text, visitor));
  return parsed;
}

}  // namespace zumik::metrics

// The text-format parser: a real vLLM payload, accepted syntax, and errors with line numbers.
#include "core/metrics/parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/metrics/query.h"
#include "core/metrics/vllm_payload_testdata.h"
#include "core/status.h"

namespace zumik::metrics {
namespace {

using testdata::kVllmModel;
using testdata::kVllmPayload;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(ParseText, ReadsARealisticVllmPayload) {
  const absl::StatusOr<std::vector<Sample>> samples = ParseText(kVllmPayload);
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(samples->size(), 136u);
  const auto value = [&](std::string_view name, std::string_view engine) {
    return FindValue(*samples, name, {{"model_name", kVllmModel}, {"engine", engine}});
  };
  EXPECT_EQ(value("vllm:num_requests_running", "0"), 3);
  EXPECT_EQ(value("vllm:num_requests_running", "1"), 5);
  EXPECT_EQ(value("vllm:num_requests_waiting", "0"), 7);
  EXPECT_EQ(value("vllm:kv_cache_usage_perc", "0"), 0.4187);
  EXPECT_EQ(value("vllm:prompt_tokens_total", "1"), 920077);
  EXPECT_EQ(value("vllm:prompt_tokens_created", "0"), 1.7432107371855402e+09);
  EXPECT_EQ(FindValue(*samples, "vllm:request_success_total", {{"finished_reason", "stop"}}), 87);
  EXPECT_EQ(FindValue(*samples, "process_resident_memory_bytes"), 4.78660608e+09);
  EXPECT_EQ(FindValue(*samples, "vllm:time_to_first_token_seconds_bucket",
                      {{"engine", "0"}, {"le", "+Inf"}}),
            100);
  EXPECT_FALSE(FindValue(*samples, "vllm:num_requests_running", {{"engine", "2"}}).has_value());

  const Sample* cache = FindSample(*samples, "vllm:cache_config_info");
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->Label("block_size"), "16");
  EXPECT_EQ(cache->Label("num_gpu_blocks"), "27500");
  EXPECT_EQ(cache->labels.size(), 15u);
  EXPECT_EQ(cache->value, 1);

  const Sample* lora = FindSample(*samples, "vllm:lora_requests_info");
  ASSERT_NE(lora, nullptr);
  EXPECT_EQ(lora->Label("running_lora_adapters"), "");
  EXPECT_EQ(lora->Label("max_lora"), "1");
}

TEST(ParseTextWithMetadata, ReportsTypeAndHelpPerFamily) {
  const absl::StatusOr<ParsedText> parsed = ParseTextWithMetadata(kVllmPayload);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const FamilyMetadata* running = parsed->FindFamily("vllm:num_requests_running");
  ASSERT_NE(running, nullptr);
  EXPECT_EQ(running->type, MetricType::kGauge);
  EXPECT_EQ(running->help, "Number of requests in model execution batches.");
  const FamilyMetadata* ttft = parsed->FindFamily("vllm:time_to_first_token_seconds");
  ASSERT_NE(ttft, nullptr);
  EXPECT_EQ(ttft->type, MetricType::kHistogram);
  EXPECT_EQ(parsed->FindFamily("vllm:prompt_tokens_total")->type, MetricType::kCounter);
  EXPECT_EQ(parsed->FindFamily("nope"), nullptr);
  EXPECT_EQ(parsed->samples.size(), 136u);
}

struct GoodCase {
  std::string_view description;
  std::string_view text;
  std::string_view name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value;
  std::optional<int64_t> timestamp_ms;
};

TEST(ParseText, AcceptsTheSyntaxPrometheusAccepts) {
  const GoodCase cases[] = {
      {"bare", "up 1", "up", {}, 1, {}},
      {"colon name", "vllm:num_requests_waiting 2.0\n", "vllm:num_requests_waiting", {}, 2, {}},
      {"labels", R"(m{a="1",b="x y"} 3)", "m", {{"a", "1"}, {"b", "x y"}}, 3, {}},
      {"empty label set", "m{} 3", "m", {}, 3, {}},
      {"trailing comma", R"(m{a="1",} 3)", "m", {{"a", "1"}}, 3, {}},
      {"no space after }", R"(m{a="1"}3)", "m", {{"a", "1"}}, 3, {}},
      {"blanks inside labels", "m{ a = \"1\" ,\tb=\"2\" } 3", "m", {{"a", "1"}, {"b", "2"}}, 3, {}},
      {"tabs and leading blanks", "\t  m\t\t4\t", "m", {}, 4, {}},
      {"escaped quote", R"(m{a="say \"hi\""} 1)", "m", {{"a", "say \"hi\""}}, 1, {}},
      {"escaped backslash", R"(m{a="C:\\dir"} 1)", "m", {{"a", "C:\\dir"}}, 1, {}},
      {"escaped newline", R"(m{a="x\ny"} 1)", "m", {{"a", "x\ny"}}, 1, {}},
      {"unknown escape kept", R"(m{a="\t"} 1)", "m", {{"a", "\\t"}}, 1, {}},
      {"empty value", R"(m{a=""} 1)", "m", {{"a", ""}}, 1, {}},
      {"utf-8 value", "m{a=\"caf\xc3\xa9\"} 1", "m", {{"a", "caf\xc3\xa9"}}, 1, {}},
      {"plus inf", "m +Inf", "m", {}, kInf, {}},
      {"minus inf", "m -Inf", "m", {}, -kInf, {}},
      {"lowercase inf", "m inf", "m", {}, kInf, {}},
      {"exponent", "m 1.5e-3", "m", {}, 1.5e-3, {}},
      {"capital exponent", "m 2E+06", "m", {}, 2e6, {}},
      {"plus sign", "m +7", "m", {}, 7, {}},
      {"negative", "m -0.25", "m", {}, -0.25, {}},
      {"timestamp", "m 1 1700000000000", "m", {}, 1, 1700000000000},
      {"negative timestamp", "m 1 -5", "m", {}, 1, -5},
      {"crlf", "m{a=\"1\"} 5 12\r\n", "m", {{"a", "1"}}, 5, 12},
      {"comments and blanks first", "# hello\n\n   \n#TYPE m gauge\nm 6", "m", {}, 6, {}},
  };
  for (const GoodCase& c : cases) {
    const absl::StatusOr<std::vector<Sample>> samples = ParseText(c.text);
    ASSERT_TRUE(samples.ok()) << c.description << ": " << samples.status();
    ASSERT_EQ(samples->size(), 1u) << c.description;
    const Sample& sample = samples->front();
    EXPECT_EQ(sample.name, c.name) << c.description;
    const std::vector<std::pair<std::string, std::string>> labels(sample.labels.begin(),
                                                                  sample.labels.end());
    EXPECT_EQ(labels, c.labels) << c.description;
    EXPECT_EQ(sample.value, c.value) << c.description;
    EXPECT_EQ(sample.timestamp_ms, c.timestamp_ms) << c.description;
  }
}

TEST(ParseText, ParsesNaN) {
  const absl::StatusOr<std::vector<Sample>> samples = ParseText("a NaN\nb nan\n");
  ASSERT_TRUE(samples.ok());
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_TRUE(std::isnan((*samples)[0].value));
  EXPECT_TRUE(std::isnan((*samples)[1].value));
}

TEST(ParseText, HandlesCrlfAndMissingFinalNewline) {
  const absl::StatusOr<ParsedText> parsed =
      ParseTextWithMetadata("# HELP a A\\\\B\\nC\r\n# TYPE a counter\r\na_total 1\r\n\r\nb 2");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->samples.size(), 2u);
  EXPECT_EQ(parsed->samples[1].name, "b");
  EXPECT_EQ(parsed->samples[1].value, 2);
  ASSERT_EQ(parsed->families.size(), 1u);
  EXPECT_EQ(parsed->families[0].help, "A\\B\nC");
  EXPECT_EQ(parsed->families[0].type, MetricType::kCounter);
}

TEST(ParseText, EmptyInputHasNoSamples) {
  for (std::string_view text : {"", "\n", "\r\n", "# just a comment", "   \t  "}) {
    const absl::StatusOr<std::vector<Sample>> samples = ParseText(text);
    ASSERT_TRUE(samples.ok()) << samples.status();
    EXPECT_TRUE(samples->empty());
  }
}

struct BadCase {
  std::string_view text;
  std::string_view error;
};

TEST(ParseText, ErrorsNameTheLineAndTheProblem) {
  const BadCase cases[] = {
      {"ok 1\nm{model_name \"x\"} 2",
       "line 2: expected '=' after label name 'model_name', found '\"'"},
      {"m{a=x} 1", "line 1: expected '\"' to open the value of label 'a', found 'x'"},
      {"m{a=\"x} 1", "line 1: unterminated value of label 'a'"},
      {"m{a=\"x\\\"} 1", "line 1: unterminated value of label 'a'"},
      {"m{a=\"x\" b=\"y\"} 1",
       "line 1: expected ',' or '}' after the value of label 'a', found 'b'"},
      {"m{a=\"x\"", "line 1: expected ',' or '}' after the value of label 'a', found end of line"},
      {"m{a=\"x\", 1", "line 1: expected a label name, found '1'"},
      {"m{", "line 1: unterminated label set of 'm'"},
      {"m{1a=\"x\"} 1", "line 1: expected a label name, found '1'"},
      {"m{a:b=\"x\"} 1", "line 1: expected '=' after label name 'a', found ':'"},
      {"m", "line 1: expected a value for 'm', found end of line"},
      {"m{a=\"1\"}", "line 1: expected a value for 'm'"},
      {"m abc", "line 1: invalid value 'abc' for 'm'"},
      {"m 1.2.3", "line 1: invalid value '1.2.3'"},
      {"m 1e999", "line 1: invalid value '1e999'"},
      {"m +-1", "line 1: invalid value '+-1'"},
      {"m 1 12.5", "line 1: invalid timestamp '12.5' for 'm'"},
      {"m 1 2 3", "line 1: unexpected text after the timestamp: '3'"},
      {"1m 1", "line 1: expected a metric name, found '1'"},
      {"{a=\"1\"} 1", "line 1: expected a metric name, found '{'"},
      {"m-x 1", "line 1: unexpected character '-' in metric name 'm'"},
      {"a 1\n\n# TYPE b bogus", "line 3: unknown metric type 'bogus'"},
      {"# TYPE b", "line 1: expected a metric type after '# TYPE b'"},
      {"# TYPE b counter extra", "line 1: unexpected text after the metric type: 'extra'"},
      {"# HELP", "line 1: expected a metric name after '# HELP', found ''"},
      {"# TYPE 9b counter", "line 1: expected a metric name after '# TYPE', found '9b'"},
      {"m \x01\xff", "line 1: invalid value '\\x01\\xff' for 'm'"},
  };
  for (const BadCase& c : cases) {
    const absl::StatusOr<std::vector<Sample>> samples = ParseText(c.text);
    ASSERT_FALSE(samples.ok()) << c.text;
    EXPECT_EQ(samples.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(MessageOf(samples.status())), HasSubstr(std::string(c.error)))
        << c.text;
  }
}

class RecordingVisitor final : public TextVisitor {
 public:
  void OnHelp(std::string_view metric, std::string_view help) override {
    events.push_back("help " + std::string(metric) + ": " + std::string(help));
  }
  void OnType(std::string_view metric, MetricType type) override {
    events.push_back("type " + std::string(metric) + ": " + std::string(MetricTypeName(type)));
  }
  void OnSample(const SampleView& sample) override {
    std::string event = "sample " + std::string(sample.name);
    for (const LabelView& label : sample.labels) {
      event += " " + std::string(label.name) + "=" + std::string(label.value);
    }
    events.push_back(event);
  }
  std::vector<std::string> events;
};

TEST(TextParser, StreamsEventsInOrderAndCanBeReused) {
  TextParser parser;
  RecordingVisitor first;
  ASSERT_TRUE(parser
                  .Parse("# HELP q Queue \\\\ depth.\n# TYPE q gauge\n"
                         "q{a=\"x\\\"y\",b=\"plain\"} 1\n",
                         first)
                  .ok());
  EXPECT_THAT(first.events,
              ElementsAre("help q: Queue \\ depth.", "type q: gauge", "sample q a=x\"y b=plain"));
  RecordingVisitor second;
  ASSERT_TRUE(parser.Parse("r{c=\"\\\\\"} 2\n", second).ok());
  EXPECT_THAT(second.events, ElementsAre("sample r c=\\"));
}

TEST(TextParser, AcceptsALambdaForSamples) {
  TextParser parser;
  double waiting = 0;
  const absl::Status status = parser.Parse(kVllmPayload, [&](const SampleView& sample) {
    if (sample.name == "vllm:num_requests_waiting" && sample.Label("engine") == "0") {
      waiting = sample.value;
    }
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(waiting, 7);
}

TEST(TextParser, DeliversSamplesBeforeTheFirstError) {
  TextParser parser;
  std::vector<std::string> names;
  const absl::Status status =
      parser.Parse("a 1\nb 2\nc{\nd 4\n", [&](const SampleView& s) { names.emplace_back(s.name); });
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(names, ElementsAre("a", "b"));
}

TEST(Sample, LabelLooksUpByName) {
  Sample sample{"m", {{"a", "1"}, {"b", "2"}}, 0, {}};
  EXPECT_EQ(sample.Label("b"), "2");
  EXPECT_EQ(sample.Label("c"), std::nullopt);
  EXPECT_THAT(sample.labels, ElementsAre(Pair("a", "1"), Pair("b", "2")));
}

}  // namespace
}  // namespace zumik::metrics

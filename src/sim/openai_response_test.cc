#include "sim/openai_response.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <vector>

#include "sim/text_gen.h"

namespace zumik::sim {
namespace {

namespace json = boost::json;

json::object ParseObject(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  EXPECT_FALSE(ec) << ec.message() << " in: " << text;
  if (ec || !value.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << text;
    return {};
  }
  return value.get_object();
}

// Splits an SSE stream into the payloads of its `data: ...\n\n` events.
std::vector<std::string> SseEvents(std::string_view stream) {
  std::vector<std::string> events;
  while (!stream.empty()) {
    EXPECT_TRUE(stream.starts_with("data: ")) << stream;
    const size_t end = stream.find("\n\n");
    if (end == std::string_view::npos) {
      ADD_FAILURE() << "unterminated event: " << stream;
      break;
    }
    events.emplace_back(stream.substr(6, end - 6));
    stream.remove_prefix(end + 2);
  }
  return events;
}

const ResponseMeta kMeta{.id = "cmpl-abc", .created = 1700000000, .model = "llama-3-8b"};
const Usage kUsage{.prompt_tokens = 100, .completion_tokens = 20, .cached_tokens = 64};

void ExpectUsage(const json::value& usage, const Usage& expected) {
  ASSERT_TRUE(usage.is_object());
  const json::object& u = usage.get_object();
  EXPECT_EQ(u.at("prompt_tokens").as_int64(), expected.prompt_tokens);
  EXPECT_EQ(u.at("completion_tokens").as_int64(), expected.completion_tokens);
  EXPECT_EQ(u.at("total_tokens").as_int64(), expected.prompt_tokens + expected.completion_tokens);
  EXPECT_EQ(u.at("prompt_tokens_details").at("cached_tokens").as_int64(), expected.cached_tokens);
}

void ExpectHeader(const json::object& o, std::string_view object, const ResponseMeta& meta) {
  EXPECT_EQ(o.at("id").as_string(), meta.id);
  EXPECT_EQ(o.at("object").as_string(), object);
  EXPECT_EQ(o.at("created").as_int64(), meta.created);
  EXPECT_EQ(o.at("model").as_string(), meta.model);
}

TEST(MakeResponseId, HasTheVllmPrefixesAndIsUniquePerNumber) {
  const std::string a = MakeResponseId(Endpoint::kCompletions, 1);
  const std::string b = MakeResponseId(Endpoint::kCompletions, 2);
  const std::string c = MakeResponseId(Endpoint::kChatCompletions, 1);
  EXPECT_TRUE(a.starts_with("cmpl-"));
  EXPECT_EQ(a.size(), 5u + 32u);
  EXPECT_TRUE(c.starts_with("chatcmpl-"));
  EXPECT_NE(a, b);
  EXPECT_EQ(a, MakeResponseId(Endpoint::kCompletions, 1));
}

TEST(FormatCompletionResponse, HasVllmFields) {
  const json::object o =
      ParseObject(FormatCompletionResponse(kMeta, " the end", FinishReason::kLength, kUsage));
  ExpectHeader(o, "text_completion", kMeta);
  const json::array& choices = o.at("choices").as_array();
  ASSERT_EQ(choices.size(), 1u);
  const json::object& choice = choices[0].as_object();
  EXPECT_EQ(choice.at("index").as_int64(), 0);
  EXPECT_EQ(choice.at("text").as_string(), " the end");
  EXPECT_TRUE(choice.at("logprobs").is_null());
  EXPECT_EQ(choice.at("finish_reason").as_string(), "length");
  EXPECT_TRUE(choice.at("stop_reason").is_null());
  ExpectUsage(o.at("usage"), kUsage);
}

TEST(FormatChatResponse, HasVllmFields) {
  const json::object o =
      ParseObject(FormatChatResponse(kMeta, "Hello.", FinishReason::kStop, kUsage));
  ExpectHeader(o, "chat.completion", kMeta);
  const json::array& choices = o.at("choices").as_array();
  ASSERT_EQ(choices.size(), 1u);
  const json::object& choice = choices[0].as_object();
  EXPECT_EQ(choice.at("index").as_int64(), 0);
  EXPECT_EQ(choice.at("message").at("role").as_string(), "assistant");
  EXPECT_EQ(choice.at("message").at("content").as_string(), "Hello.");
  EXPECT_TRUE(choice.at("logprobs").is_null());
  EXPECT_EQ(choice.at("finish_reason").as_string(), "stop");
  ExpectUsage(o.at("usage"), kUsage);
}

TEST(FormatResponses, ListEveryChoiceWithItsIndexAndFinishReason) {
  const std::vector<ChoiceOutput> choices = {{.text = "a", .finish = FinishReason::kStop},
                                             {.text = "", .finish = FinishReason::kLength},
                                             {.text = "c\"", .finish = FinishReason::kStop}};
  for (const Endpoint endpoint : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
    const std::string body = endpoint == Endpoint::kCompletions
                                 ? FormatCompletionResponse(kMeta, choices, kUsage)
                                 : FormatChatResponse(kMeta, choices, kUsage);
    const json::object o = ParseObject(body);
    const json::array& list = o.at("choices").as_array();
    ASSERT_EQ(list.size(), 3u) << body;
    for (size_t i = 0; i < list.size(); ++i) {
      const json::object& choice = list[i].as_object();
      EXPECT_EQ(choice.at("index").as_int64(), static_cast<int64_t>(i));
      EXPECT_EQ(choice.at("finish_reason").as_string(), FinishReasonName(choices[i].finish));
      const json::value& text = endpoint == Endpoint::kCompletions
                                    ? choice.at("text")
                                    : choice.at("message").at("content");
      EXPECT_EQ(text.as_string(), choices[i].text);
    }
    ExpectUsage(o.at("usage"), kUsage);
  }
}

TEST(StreamFormatter, ChunksNameTheirChoice) {
  for (const Endpoint endpoint : {Endpoint::kCompletions, Endpoint::kChatCompletions}) {
    const StreamFormatter formatter(endpoint, kMeta, /*include_usage=*/false);
    std::string out;
    formatter.AppendRole(&out, 3);
    formatter.AppendText("x", &out, 7);
    formatter.AppendFinish("", FinishReason::kStop, &out, 16383);
    std::vector<int64_t> indexes;
    for (const std::string& event : SseEvents(out)) {
      indexes.push_back(ParseObject(event).at("choices").at(0).at("index").as_int64());
    }
    if (endpoint == Endpoint::kCompletions) {
      EXPECT_EQ(indexes, (std::vector<int64_t>{7, 16383}));
    } else {
      EXPECT_EQ(indexes, (std::vector<int64_t>{3, 7, 16383}));
    }
  }
}

TEST(FormatResponses, EscapeGeneratedAndEchoedStrings) {
  const std::string nasty =
      std::string("q\"b\\n\nt\tc\x01\x1f e\xCC\x81 \xE2\x80\x94 \xF0\x9F\x98\x80") +
      std::string(1, '\0') + "end";
  const ResponseMeta meta{.id = "chatcmpl-\"x\"", .created = 1, .model = "org/model\\v\n1"};
  for (const std::string& body :
       {FormatCompletionResponse(meta, nasty, FinishReason::kStop, kUsage),
        FormatChatResponse(meta, nasty, FinishReason::kStop, kUsage)}) {
    const json::object o = ParseObject(body);
    EXPECT_EQ(o.at("id").as_string(), meta.id);
    EXPECT_EQ(o.at("model").as_string(), meta.model);
    const json::object& choice = o.at("choices").as_array()[0].as_object();
    const json::value& text =
        choice.contains("text") ? choice.at("text") : choice.at("message").at("content");
    EXPECT_EQ(std::string(text.as_string()), nasty);
  }
}

TEST(FormatResponses, GeneratedTextRoundTrips) {
  const std::string text = TextGenerator(99).Text(2000);
  const json::object o =
      ParseObject(FormatChatResponse(kMeta, text, FinishReason::kLength, kUsage));
  EXPECT_EQ(std::string(o.at("choices").as_array()[0].at("message").at("content").as_string()),
            text);
}

struct StreamCase {
  std::string name;
  Endpoint endpoint;
  bool include_usage;
};

class StreamFormatterTest : public testing::TestWithParam<StreamCase> {};

// Streams a whole response the way the server will and checks every event field by field.
TEST_P(StreamFormatterTest, ProducesTheVllmChunkSequence) {
  const StreamCase& c = GetParam();
  const bool chat = c.endpoint == Endpoint::kChatCompletions;
  const ResponseMeta meta{.id = MakeResponseId(c.endpoint, 7), .created = 1234, .model = "m"};
  const StreamFormatter formatter(c.endpoint, meta, c.include_usage);
  const TextGenerator gen(5);
  const Usage usage{.prompt_tokens = 10, .completion_tokens = 4, .cached_tokens = 0};

  std::string stream;
  formatter.AppendRole(&stream);
  for (uint64_t i = 0; i < 3; ++i) formatter.AppendText(gen.Token(i), &stream);
  formatter.AppendFinish(gen.Token(3), FinishReason::kLength, &stream);
  formatter.AppendUsage(usage, &stream);
  StreamFormatter::AppendDone(&stream);

  const std::vector<std::string> events = SseEvents(stream);
  const size_t expected_events = (chat ? 1 : 0) + 4 + (c.include_usage ? 1 : 0) + 1;
  ASSERT_EQ(events.size(), expected_events) << stream;
  EXPECT_EQ(events.back(), "[DONE]");

  size_t next = 0;
  std::string text;
  const std::string_view object = chat ? "chat.completion.chunk" : "text_completion";
  if (chat) {
    const json::object first = ParseObject(events[next++]);
    ExpectHeader(first, object, meta);
    const json::object& choice = first.at("choices").as_array()[0].as_object();
    EXPECT_EQ(choice.at("delta").at("role").as_string(), "assistant");
    EXPECT_EQ(choice.at("delta").at("content").as_string(), "");
    EXPECT_TRUE(choice.at("finish_reason").is_null());
    EXPECT_EQ(first.contains("usage"), c.include_usage);
  }
  for (int i = 0; i < 4; ++i) {
    const json::object chunk = ParseObject(events[next++]);
    ExpectHeader(chunk, object, meta);
    const json::array& choices = chunk.at("choices").as_array();
    ASSERT_EQ(choices.size(), 1u);
    const json::object& choice = choices[0].as_object();
    EXPECT_EQ(choice.at("index").as_int64(), 0);
    EXPECT_TRUE(choice.at("logprobs").is_null());
    const json::value& delta = chat ? choice.at("delta").at("content") : choice.at("text");
    text += std::string(delta.as_string());
    if (chat) {
      EXPECT_FALSE(choice.at("delta").as_object().contains("role"));
    }
    if (i < 3) {
      EXPECT_TRUE(choice.at("finish_reason").is_null());
    } else {
      EXPECT_EQ(choice.at("finish_reason").as_string(), "length");
      EXPECT_TRUE(choice.at("stop_reason").is_null());
    }
    if (c.include_usage) {
      EXPECT_TRUE(chunk.at("usage").is_null());
    } else {
      EXPECT_FALSE(chunk.contains("usage"));
    }
  }
  EXPECT_EQ(text, gen.Text(4));
  if (c.include_usage) {
    const json::object last = ParseObject(events[next++]);
    ExpectHeader(last, object, meta);
    EXPECT_TRUE(last.at("choices").as_array().empty());
    ExpectUsage(last.at("usage"), usage);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, StreamFormatterTest,
    testing::Values(StreamCase{"Completions", Endpoint::kCompletions, false},
                    StreamCase{"CompletionsWithUsage", Endpoint::kCompletions, true},
                    StreamCase{"Chat", Endpoint::kChatCompletions, false},
                    StreamCase{"ChatWithUsage", Endpoint::kChatCompletions, true}),
    [](const auto& case_info) { return case_info.param.name; });

TEST(StreamFormatter, EscapesDeltasAndAllowsAnEmptyFinishDelta) {
  const StreamFormatter formatter(Endpoint::kChatCompletions, kMeta, false);
  std::string stream;
  formatter.AppendText("say \"hi\"\n", &stream);
  formatter.AppendFinish("", FinishReason::kStop, &stream);
  const std::vector<std::string> events = SseEvents(stream);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(ParseObject(events[0]).at("choices").as_array()[0].at("delta").at("content"),
            "say \"hi\"\n");
  const json::object last = ParseObject(events[1]);
  EXPECT_EQ(last.at("choices").as_array()[0].at("delta").at("content"), "");
  EXPECT_EQ(last.at("choices").as_array()[0].at("finish_reason"), "stop");
}

TEST(StreamFormatter, EmitsExactBytesForAChatTokenChunk) {
  const StreamFormatter formatter(Endpoint::kChatCompletions,
                                  ResponseMeta{.id = "chatcmpl-1", .created = 5, .model = "m"},
                                  true);
  std::string out;
  formatter.AppendText("Hi", &out);
  EXPECT_EQ(out,
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":5,"
            "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
            "\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n");
}

TEST(ApiError, SerialisesInVllmShape) {
  const ApiError error = BadRequest("bad \"max_tokens\"", "max_tokens");
  const json::object o = ParseObject(error.ToJson());
  ASSERT_EQ(o.size(), 1u);
  const json::object& e = o.at("error").as_object();
  EXPECT_EQ(e.at("message").as_string(), "bad \"max_tokens\"");
  EXPECT_EQ(e.at("type").as_string(), "BadRequestError");
  EXPECT_EQ(e.at("param").as_string(), "max_tokens");
  EXPECT_EQ(e.at("code").as_int64(), 400);

  const json::object no_param = ParseObject(BadRequest("x").ToJson());
  EXPECT_TRUE(no_param.at("error").at("param").is_null());
}

TEST(ApiError, ModelNotFoundIsA404WithVllmWording) {
  const ApiError error = ModelNotFound("gpt-4");
  EXPECT_EQ(error.http_status, 404);
  EXPECT_EQ(error.type, "NotFoundError");
  EXPECT_EQ(error.param, "model");
  EXPECT_EQ(error.message, "The model `gpt-4` does not exist.");
  EXPECT_EQ(error.ToJson(),
            R"({"error":{"message":"The model `gpt-4` does not exist.","type":"NotFoundError",)"
            R"("param":"model","code":404}})");
}

TEST(AppendStreamError, IsOneDataEvent) {
  std::string out;
  AppendStreamError(ApiError{.http_status = 500,
                             .message = "engine died",
                             .type = "InternalServerError",
                             .param = std::nullopt},
                    &out);
  const std::vector<std::string> events = SseEvents(out);
  ASSERT_EQ(events.size(), 1u);
  const json::object o = ParseObject(events[0]);
  EXPECT_EQ(o.at("error").at("message"), "engine died");
  EXPECT_EQ(o.at("error").at("type"), "InternalServerError");
  EXPECT_EQ(o.at("error").at("code"), 500);
}

TEST(FormatModelList, ListsEveryModelWithVllmFields) {
  const std::vector<ModelCard> models = {
      {.id = "llama", .root = "meta-llama/Llama-3.1-8B", .created = 1700, .max_model_len = 8192},
      {.id = "qwen\"2", .root = "/models/qwen", .created = 1800, .max_model_len = 32768}};
  const json::object o = ParseObject(FormatModelList(models));
  EXPECT_EQ(o.at("object"), "list");
  const json::array& data = o.at("data").as_array();
  ASSERT_EQ(data.size(), 2u);
  for (size_t i = 0; i < models.size(); ++i) {
    const json::object& card = data[i].as_object();
    EXPECT_EQ(card.at("id").as_string(), models[i].id);
    EXPECT_EQ(card.at("object"), "model");
    EXPECT_EQ(card.at("created").as_int64(), models[i].created);
    EXPECT_EQ(card.at("owned_by"), "vllm");
    EXPECT_EQ(card.at("root").as_string(), models[i].root);
    EXPECT_TRUE(card.at("parent").is_null());
    EXPECT_EQ(card.at("max_model_len").as_int64(), models[i].max_model_len);
    const json::array& permission = card.at("permission").as_array();
    ASSERT_EQ(permission.size(), 1u);
    const json::object& p = permission[0].as_object();
    EXPECT_TRUE(std::string(p.at("id").as_string()).starts_with("modelperm-"));
    EXPECT_EQ(p.at("object"), "model_permission");
    EXPECT_EQ(p.at("allow_sampling"), true);
    EXPECT_EQ(p.at("allow_create_engine"), false);
    EXPECT_EQ(p.at("organization"), "*");
    EXPECT_TRUE(p.at("group").is_null());
    EXPECT_EQ(p.at("is_blocking"), false);
  }
  EXPECT_EQ(ParseObject(FormatModelList({})).at("data").as_array().size(), 0u);
}

}  // namespace
}  // namespace zumik::sim

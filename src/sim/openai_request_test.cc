#include "sim/openai_request.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace zumik::sim {
namespace {

using testing::HasSubstr;

constexpr RequestLimits kLimits{.max_model_len = 4096};

// Parses with the parser of `endpoint`, returning the error or nullopt.
std::optional<ApiError> ParseError(Endpoint endpoint, std::string_view body) {
  if (endpoint == Endpoint::kCompletions) {
    auto result = ParseCompletionRequest(body, kLimits);
    if (result.ok()) return std::nullopt;
    return result.error();
  }
  auto result = ParseChatRequest(body, kLimits);
  if (result.ok()) return std::nullopt;
  return result.error();
}

struct BadCase {
  std::string name;
  Endpoint endpoint;
  std::string body;
  std::optional<std::string> param;  // expected error param (nullopt = null)
  std::string message_part;          // a substring the message must contain
};

constexpr Endpoint kCmpl = Endpoint::kCompletions;
constexpr Endpoint kChat = Endpoint::kChatCompletions;

// A valid chat message list, to isolate the field under test.
constexpr std::string_view kMsgs = R"("messages":[{"role":"user","content":"hi"}])";

std::string Chat(std::string_view extra) {
  return std::string(R"({"model":"m",)") + std::string(kMsgs) + std::string(extra) + "}";
}
std::string Cmpl(std::string_view extra) {
  return std::string(R"({"model":"m","prompt":"hi")") + std::string(extra) + "}";
}

class RejectsBadRequest : public testing::TestWithParam<BadCase> {};

TEST_P(RejectsBadRequest, With400BadRequestErrorNamingTheField) {
  const BadCase& c = GetParam();
  const std::optional<ApiError> error = ParseError(c.endpoint, c.body);
  ASSERT_TRUE(error.has_value()) << c.body;
  EXPECT_EQ(error->http_status, 400);
  EXPECT_EQ(error->type, "BadRequestError");
  EXPECT_EQ(error->param, c.param);
  EXPECT_THAT(error->message, HasSubstr(c.message_part));
}

INSTANTIATE_TEST_SUITE_P(
    Table, RejectsBadRequest,
    testing::Values(
        // The body itself.
        BadCase{"EmptyBody", kCmpl, "", std::nullopt,
                "Invalid JSON body: incomplete JSON at line 1, column 1 (byte offset 0)"},
        BadCase{"MalformedJsonGivesPosition", kCmpl, "{\"model\": \"m\",\n  \"prompt\": ,}",
                std::nullopt,
                "Invalid JSON body: syntax error at line 2, column 13 (byte offset 27)"},
        BadCase{"TruncatedJson", kChat, R"({"model":"m","messages":[)", std::nullopt,
                "incomplete JSON"},
        BadCase{"TrailingGarbage", kCmpl, R"({"model":"m","prompt":"x"} x)", std::nullopt,
                "unexpected data after the JSON value at line 1, column 28 (byte offset 27)"},
        BadCase{"NotAnObjectArray", kCmpl, R"(["model"])", std::nullopt,
                "Request body must be a JSON object, got an array"},
        BadCase{"NotAnObjectString", kChat, R"("hello")", std::nullopt,
                "must be a JSON object, got a string"},
        BadCase{"NotAnObjectNull", kChat, "null", std::nullopt, "got null"},
        BadCase{"TooDeep", kCmpl, std::string(100, '[') + std::string(100, ']'), std::nullopt,
                "Invalid JSON body"},
        BadCase{"InvalidUtf8InPrompt", kCmpl, "{\"model\":\"m\",\"prompt\":\"a\xC3\"}",
                std::nullopt, "not valid UTF-8 (invalid byte 0xc3 at byte offset 24)"},
        BadCase{"OverlongUtf8", kCmpl, "{\"model\":\"m\",\"prompt\":\"\xC0\xAF\"}", std::nullopt,
                "not valid UTF-8"},
        BadCase{"SurrogateUtf8", kChat,
                "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xED\xA0\x80\"}]}",
                std::nullopt, "not valid UTF-8"},
        BadCase{"TruncatedUtf8AtEnd", kCmpl, "{\"model\":\"m\",\"prompt\":\"x\"}\xF0\x9F",
                std::nullopt, "not valid UTF-8"},
        BadCase{"InvalidUtf8InUnknownField", kCmpl, Cmpl(",\"junk\":\"\xFF\""), std::nullopt,
                "not valid UTF-8"},
        BadCase{"LoneSurrogateEscape", kCmpl, R"({"model":"m","prompt":"\ud800"})", std::nullopt,
                "Invalid JSON body"},
        BadCase{"NumberOverflowsToInfinity", kCmpl, Cmpl(R"(,"temperature":1e999)"), "temperature",
                "'temperature' must be a finite number"},
        // model.
        BadCase{"MissingModel", kCmpl, R"({"prompt":"hi"})", "model",
                "Missing required field 'model'"},
        BadCase{"NullModel", kChat, R"({"model":null,"messages":[]})", "model",
                "Missing required field 'model'"},
        BadCase{"ModelNotString", kCmpl, R"({"model":7,"prompt":"hi"})", "model",
                "'model' must be a string, got an integer"},
        // prompt.
        BadCase{"MissingPrompt", kCmpl, R"({"model":"m"})", "prompt",
                "Either prompt or prompt_embeds must be provided and non-empty."},
        BadCase{"EmptyPrompt", kCmpl, R"({"model":"m","prompt":""})", "prompt",
                "must be provided and non-empty"},
        BadCase{"EmptyPromptList", kCmpl, R"({"model":"m","prompt":[]})", "prompt",
                "must be provided and non-empty"},
        BadCase{"ListOfOneEmptyPrompt", kCmpl, R"({"model":"m","prompt":[""]})", "prompt",
                "must be provided and non-empty"},
        BadCase{"ListWithAnEmptyPrompt", kCmpl, R"({"model":"m","prompt":["a",""]})", "prompt",
                "must be provided and non-empty"},
        BadCase{"EmptyTokenIdList", kCmpl, R"({"model":"m","prompt":[[1],[]]})", "prompt",
                "The decoder prompt cannot be empty"},
        BadCase{"MixedPromptList", kCmpl, R"({"model":"m","prompt":["a",1]})", "prompt",
                "'prompt' must be a string, an array of strings, an array of token ids or an array "
                "of arrays of token ids; 'prompt[1]' is an integer"},
        BadCase{"TokenIdsThenString", kCmpl, R"({"model":"m","prompt":[1,"a"]})", "prompt",
                "'prompt[1]' is a string"},
        BadCase{"ListsThenTokenId", kCmpl, R"({"model":"m","prompt":[[1],2]})", "prompt",
                "'prompt[1]' is an integer"},
        BadCase{"StringInATokenIdList", kCmpl, R"({"model":"m","prompt":[[1,"a"]]})", "prompt",
                "'prompt[0][1]' is a string"},
        BadCase{"NestedTooDeep", kCmpl, R"({"model":"m","prompt":[[[1]]]})", "prompt",
                "'prompt[0][0]' is an array"},
        BadCase{"ListOfObjects", kCmpl, R"({"model":"m","prompt":[{"text":"a"}]})", "prompt",
                "'prompt[0]' is an object"},
        BadCase{"BooleanTokenId", kCmpl, R"({"model":"m","prompt":[1,true]})", "prompt",
                "'prompt[1]' is a boolean"},
        BadCase{"NegativeTokenId", kCmpl, R"({"model":"m","prompt":[5,-1]})", "prompt[1]",
                "'prompt[1]' must be a token id greater than or equal to 0, got -1"},
        BadCase{"FractionalTokenId", kCmpl, R"({"model":"m","prompt":[[1.5]]})", "prompt[0][0]",
                "'prompt[0][0]' must be an integer, got 1.5"},
        BadCase{"TokenIdAbove32Bits", kCmpl, R"({"model":"m","prompt":[4294967296]})", "prompt[0]",
                "Token id 4294967296 is out of vocabulary"},
        BadCase{"TokenIdAboveInt64", kCmpl, R"({"model":"m","prompt":[18446744073709551615]})",
                "prompt[0]", "out of range"},
        BadCase{"TooManyPrompts", kCmpl,
                R"({"model":"m","prompt":[)" +
                    [] {
                      std::string list;
                      for (int i = 0; i < 1025; ++i) list += i == 0 ? R"("p")" : R"(,"p")";
                      return list;
                    }() +
                    "]}",
                "prompt", "prompt list length 1025 exceeds the maximum allowed count of 1024."},
        BadCase{"TooManyTokenIdPrompts", kCmpl,
                R"({"model":"m","prompt":[)" +
                    [] {
                      std::string list;
                      for (int i = 0; i < 1025; ++i) list += i == 0 ? "[1]" : ",[1]";
                      return list;
                    }() +
                    "]}",
                "prompt", "prompt list length 1025 exceeds"},
        BadCase{"PromptObject", kCmpl, R"({"model":"m","prompt":{"text":"a"}})", "prompt",
                "'prompt' is an object"},
        BadCase{"PromptNumber", kCmpl, R"({"model":"m","prompt":7})", "prompt",
                "'prompt' is an integer"},
        // messages.
        BadCase{"MissingMessages", kChat, R"({"model":"m"})", "messages",
                "Missing required field 'messages'"},
        BadCase{"MessagesNotArray", kChat, R"({"model":"m","messages":"hi"})", "messages",
                "'messages' must be an array, got a string"},
        BadCase{"EmptyMessages", kChat, R"({"model":"m","messages":[]})", "messages",
                "'messages' must contain at least one message"},
        BadCase{"MessageNotObject", kChat, R"({"model":"m","messages":["hi"]})", "messages[0]",
                "'messages[0]' must be an object, got a string"},
        BadCase{"MissingRole", kChat, R"({"model":"m","messages":[{"content":"hi"}]})",
                "messages[0].role", "Missing required field 'messages[0].role'"},
        BadCase{
            "UnknownRole", kChat,
            R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"bot","content":"b"}]})",
            "messages[1].role",
            "'messages[1].role' must be one of 'system', 'user', 'assistant', 'tool', "
            "'developer', got 'bot'"},
        BadCase{"RoleNotString", kChat, R"({"model":"m","messages":[{"role":1,"content":"a"}]})",
                "messages[0].role", "must be a string, got an integer"},
        BadCase{"UserWithoutContent", kChat, R"({"model":"m","messages":[{"role":"user"}]})",
                "messages[0].content", "Missing required field 'messages[0].content'"},
        BadCase{"ContentNumber", kChat, R"({"model":"m","messages":[{"role":"user","content":5}]})",
                "messages[0].content",
                "'messages[0].content' must be a string or an array of content parts, got an "
                "integer"},
        BadCase{
            "ImagePart", kChat,
            R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
            "messages[0].content[0].type",
            "Content part type 'image_url' is not supported by the simulator"},
        BadCase{"PartWithoutText", kChat,
                R"({"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]})",
                "messages[0].content[0].text", "Missing required field"},
        BadCase{
            "PartTextNotString", kChat,
            R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":[]}]}]})",
            "messages[0].content[0].text", "must be a string, got an array"},
        BadCase{"PartNotObject", kChat,
                R"({"model":"m","messages":[{"role":"user","content":["hi"]}]})",
                "messages[0].content[0]", "must be an object, got a string"},
        // max_tokens and friends.
        BadCase{"MaxTokensString", kCmpl, Cmpl(R"(,"max_tokens":"abc")"), "max_tokens",
                "'max_tokens' must be an integer, got a string"},
        BadCase{"MaxTokensFraction", kCmpl, Cmpl(R"(,"max_tokens":1.5)"), "max_tokens",
                "'max_tokens' must be an integer, got 1.5"},
        BadCase{"MaxTokensZero", kCmpl, Cmpl(R"(,"max_tokens":0)"), "max_tokens",
                "max_tokens must be at least 1, got 0."},
        BadCase{"MaxTokensNegative", kChat, Chat(R"(,"max_tokens":-5)"), "max_tokens",
                "max_tokens must be at least 1, got -5."},
        BadCase{"MaxTokensAboveModelLen", kCmpl, Cmpl(R"(,"max_tokens":4097)"), "max_tokens",
                "'max_tokens' or 'max_completion_tokens' is too large: 4097. This model's "
                "maximum context length is 4096 tokens."},
        BadCase{"MaxTokensHuge", kCmpl, Cmpl(R"(,"max_tokens":18446744073709551615)"), "max_tokens",
                "is out of range"},
        BadCase{"MaxCompletionTokensZero", kChat, Chat(R"(,"max_completion_tokens":0)"),
                "max_completion_tokens", "max_tokens must be at least 1, got 0."},
        BadCase{"MaxCompletionTokensTooLarge", kChat,
                Chat(R"(,"max_tokens":10,"max_completion_tokens":100000)"), "max_completion_tokens",
                "is too large: 100000"},
        BadCase{"MaxCompletionTokensBool", kChat, Chat(R"(,"max_completion_tokens":true)"),
                "max_completion_tokens", "must be an integer, got a boolean"},
        BadCase{"MinTokensNegative", kCmpl, Cmpl(R"(,"min_tokens":-1)"), "min_tokens",
                "min_tokens must be greater than or equal to 0, got -1."},
        BadCase{"MinTokensAboveMaxTokens", kCmpl, Cmpl(R"(,"max_tokens":5,"min_tokens":6)"),
                "min_tokens", "min_tokens must be less than or equal to max_tokens=5, got 6."},
        BadCase{"IgnoreEosString", kCmpl, Cmpl(R"(,"ignore_eos":"yes")"), "ignore_eos",
                "'ignore_eos' must be a boolean, got a string"},
        BadCase{"SeedString", kCmpl, Cmpl(R"(,"seed":"1")"), "seed",
                "'seed' must be an integer, got a string"},
        BadCase{"SeedAboveInt64", kChat, Chat(R"(,"seed":9223372036854775808)"), "seed",
                "'seed' is out of range"},
        BadCase{"TemperatureNegative", kCmpl, Cmpl(R"(,"temperature":-0.5)"), "temperature",
                "temperature must be non-negative, got -0.5."},
        BadCase{"TemperatureString", kChat, Chat(R"(,"temperature":"hot")"), "temperature",
                "'temperature' must be a number, got a string"},
        BadCase{"TopPZero", kCmpl, Cmpl(R"(,"top_p":0)"), "top_p",
                "top_p must be in (0, 1], got 0."},
        BadCase{"TopPAboveOne", kChat, Chat(R"(,"top_p":1.5)"), "top_p",
                "top_p must be in (0, 1], got 1.5."},
        // stream.
        BadCase{"StreamInteger", kCmpl, Cmpl(R"(,"stream":1)"), "stream",
                "'stream' must be a boolean, got an integer"},
        BadCase{"StreamString", kChat, Chat(R"(,"stream":"true")"), "stream",
                "'stream' must be a boolean, got a string"},
        BadCase{"StreamOptionsWithoutStream", kChat,
                Chat(R"(,"stream_options":{"include_usage":true})"), "stream_options",
                "Stream options can only be defined when `stream=True`."},
        BadCase{"StreamOptionsNotObject", kCmpl, Cmpl(R"(,"stream":true,"stream_options":true)"),
                "stream_options", "'stream_options' must be an object, got a boolean"},
        BadCase{"IncludeUsageString", kChat,
                Chat(R"(,"stream":true,"stream_options":{"include_usage":"yes"})"),
                "stream_options.include_usage", "must be a boolean, got a string"},
        // n, stop, user.
        BadCase{"NAboveVllmMax", kChat, Chat(R"(,"n":16385)"), "n",
                "n must be at most 16384, got 16385."},
        BadCase{"NHuge", kCmpl, Cmpl(R"(,"n":9223372036854775807)"), "n",
                "n must be at most 16384"},
        BadCase{"NTimesPromptsAboveTheFanOutLimit", kCmpl,
                R"({"model":"m","prompt":["a","b"],"n":8193})", "n",
                "2 prompts x n=8193 is 16386 sequences, more than the 16384 one request may "
                "start"},
        BadCase{"BestOfBelowN", kCmpl, Cmpl(R"(,"n":3,"best_of":2)"), "best_of",
                "best_of must be greater than or equal to n, got n=3 and best_of=2."},
        BadCase{"BestOfAboveOne", kChat, Chat(R"(,"n":2,"best_of":4)"), "best_of",
                "vLLM V1 does not yet support best_of."},
        BadCase{"BestOfNotInteger", kCmpl, Cmpl(R"(,"best_of":"2")"), "best_of",
                "'best_of' must be an integer"},
        BadCase{"NZero", kChat, Chat(R"(,"n":0)"), "n", "n must be at least 1, got 0."},
        BadCase{"NString", kChat, Chat(R"(,"n":"1")"), "n", "'n' must be an integer"},
        BadCase{"StopNumber", kCmpl, Cmpl(R"(,"stop":5)"), "stop",
                "'stop' must be a string or an array of strings, got an integer"},
        BadCase{"StopListWithNumber", kChat, Chat(R"(,"stop":["a",5])"), "stop[1]",
                "'stop[1]' must be a string, got an integer"},
        BadCase{"UserNumber", kCmpl, Cmpl(R"(,"user":5)"), "user",
                "'user' must be a string, got an integer"}),
    [](const auto& case_info) { return case_info.param.name; });

TEST(ParseCompletionRequest, ReadsEveryField) {
  const auto request = ParseCompletionRequest(
      R"({"model":"llama","prompt":"Once upon","max_tokens":128,"min_tokens":4,
          "ignore_eos":true,"seed":-7,"temperature":0.7,"top_p":0.9,"stream":true,
          "stream_options":{"include_usage":true},"n":1,"stop":["\n","END"],"user":"u1",
          "logprobs":null,"echo":false,"unknown_extra":{"nested":[1,2,3]}})",
      kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  const GenerationParams& p = request->params;
  EXPECT_EQ(p.model, "llama");
  EXPECT_EQ(request->prompts.at(0).text, "Once upon");
  EXPECT_EQ(p.max_tokens, 128);
  EXPECT_EQ(p.min_tokens, 4);
  EXPECT_TRUE(p.ignore_eos);
  EXPECT_EQ(p.seed, -7);
  EXPECT_DOUBLE_EQ(p.temperature, 0.7);
  EXPECT_DOUBLE_EQ(p.top_p, 0.9);
  EXPECT_TRUE(p.stream);
  EXPECT_TRUE(p.include_usage);
  EXPECT_EQ(p.stop, (std::vector<std::string>{"\n", "END"}));
  EXPECT_EQ(p.user, "u1");
}

TEST(ParseCompletionRequest, AppliesVllmDefaults) {
  const auto request = ParseCompletionRequest(R"({"model":"m","prompt":"x"})", kLimits);
  ASSERT_TRUE(request.ok());
  const GenerationParams& p = request->params;
  EXPECT_EQ(p.max_tokens, kDefaultCompletionMaxTokens);
  EXPECT_EQ(p.min_tokens, 0);
  EXPECT_FALSE(p.ignore_eos);
  EXPECT_EQ(p.seed, std::nullopt);
  EXPECT_DOUBLE_EQ(p.temperature, 1.0);
  EXPECT_DOUBLE_EQ(p.top_p, 1.0);
  EXPECT_FALSE(p.stream);
  EXPECT_FALSE(p.include_usage);
  EXPECT_TRUE(p.stop.empty());
}

TEST(ParseCompletionRequest, TreatsNullAsAbsent) {
  const auto request = ParseCompletionRequest(
      R"({"model":"m","prompt":"x","max_tokens":null,"seed":null,"stream":null,"stop":null,
          "n":null,"temperature":null,"stream_options":null,"user":null})",
      kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->params.max_tokens, kDefaultCompletionMaxTokens);
  EXPECT_EQ(request->params.seed, std::nullopt);
  EXPECT_FALSE(request->params.stream);
}

TEST(ParseCompletionRequest, AcceptsAListOfOneStringAndIntegralFloats) {
  const auto request = ParseCompletionRequest(
      R"({"model":"m","prompt":["only one"],"max_tokens":64.0,"stop":"\n","temperature":0})",
      kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->prompts.at(0).text, "only one");
  EXPECT_EQ(request->params.max_tokens, 64);
  EXPECT_EQ(request->params.stop, std::vector<std::string>{"\n"});
  EXPECT_DOUBLE_EQ(request->params.temperature, 0.0);
}

CompletionPrompt Text(std::string text) {
  CompletionPrompt prompt;
  prompt.text = std::move(text);
  return prompt;
}
CompletionPrompt Ids(std::vector<TokenId> ids) {
  CompletionPrompt prompt;
  prompt.token_ids = std::move(ids);
  prompt.is_token_ids = true;
  return prompt;
}

TEST(ParseCompletionRequest, AcceptsEveryPromptShapeVllmAccepts) {
  struct Case {
    std::string prompt;
    std::vector<CompletionPrompt> expected;
  };
  const std::vector<Case> cases = {
      {R"("one")", {Text("one")}},
      {R"(["a","b","c"])", {Text("a"), Text("b"), Text("c")}},
      {R"([1,2,3])", {Ids({1, 2, 3})}},
      {R"([0,4294967295,7.0])", {Ids({0, 4294967295u, 7})}},
      {R"([[1,2],[3]])", {Ids({1, 2}), Ids({3})}},
      {R"([[5]])", {Ids({5})}},
  };
  for (const Case& c : cases) {
    const auto request =
        ParseCompletionRequest(R"({"model":"m","prompt":)" + c.prompt + "}", kLimits);
    ASSERT_TRUE(request.ok()) << c.prompt << ": " << request.error().message;
    EXPECT_EQ(request->prompts, c.expected) << c.prompt;
  }
}

TEST(ParseCompletionRequest, AcceptsTheLimitsThemselves) {
  std::string list;
  for (int i = 0; i < 1024; ++i) list += i == 0 ? R"("p")" : R"(,"p")";
  const auto prompts = ParseCompletionRequest(R"({"model":"m","prompt":[)" + list + "]}", kLimits);
  ASSERT_TRUE(prompts.ok()) << prompts.error().message;
  EXPECT_EQ(prompts->prompts.size(), 1024u);
  // A token-id list is one prompt: its length is not a prompt count.
  std::string ids;
  for (int i = 0; i < 2000; ++i) ids += (i == 0 ? "" : ",") + std::to_string(i);
  const auto long_ids = ParseCompletionRequest(R"({"model":"m","prompt":[)" + ids + "]}", kLimits);
  ASSERT_TRUE(long_ids.ok()) << long_ids.error().message;
  EXPECT_EQ(long_ids->prompts.at(0).token_ids.size(), 2000u);
  const auto n = ParseChatRequest(Chat(R"(,"n":16384)"), kLimits);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->params.n, 16384);
  const auto product =
      ParseCompletionRequest(R"({"model":"m","prompt":["a","b"],"n":8192})", kLimits);
  ASSERT_TRUE(product.ok()) << product.error().message;
}

TEST(ParseCompletionRequest, ReadsNAndTheBestOfValuesVllmV1Takes) {
  for (std::string_view extra : {R"(,"n":4)", R"(,"n":4,"best_of":null)", R"(,"best_of":1)"}) {
    const auto request = ParseCompletionRequest(Cmpl(extra), kLimits);
    ASSERT_TRUE(request.ok()) << extra << ": " << request.error().message;
    EXPECT_EQ(request->params.n, extra.find("\"n\":4") != std::string_view::npos ? 4 : 1);
  }
}

TEST(ParseCompletionRequest, ChecksTokenIdsAgainstAGivenVocabulary) {
  const RequestLimits limits{.max_model_len = 4096, .vocab_size = 128256};
  EXPECT_TRUE(ParseCompletionRequest(R"({"model":"m","prompt":[128255]})", limits).ok());
  const auto bad = ParseCompletionRequest(R"({"model":"m","prompt":[[1],[128256]]})", limits);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "Token id 128256 is out of vocabulary");
  EXPECT_EQ(bad.error().param, "prompt[1][0]");
}

TEST(ParseCompletionRequest, MaxTokensEqualToModelLenIsAccepted) {
  const auto request = ParseCompletionRequest(Cmpl(R"(,"max_tokens":4096)"), kLimits);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->params.max_tokens, 4096);
  EXPECT_TRUE(ParseCompletionRequest(Cmpl(R"(,"max_tokens":100000)"), RequestLimits{}).ok())
      << "max_model_len 0 disables the check";
}

TEST(ParseCompletionRequest, StreamOptionsDefaultIncludeUsageToTrueAsVllmDoes) {
  const auto given = ParseCompletionRequest(Cmpl(R"(,"stream":true,"stream_options":{})"), kLimits);
  ASSERT_TRUE(given.ok());
  EXPECT_TRUE(given->params.include_usage);
  const auto null_usage = ParseCompletionRequest(
      Cmpl(R"(,"stream":true,"stream_options":{"include_usage":null})"), kLimits);
  ASSERT_TRUE(null_usage.ok());
  EXPECT_FALSE(null_usage->params.include_usage);
  const auto off = ParseCompletionRequest(
      Cmpl(
          R"(,"stream":true,"stream_options":{"include_usage":false,"continuous_usage_stats":true})"),
      kLimits);
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->params.include_usage);
  // An empty stream_options without stream passes vLLM's check (it tests truthiness).
  EXPECT_TRUE(ParseCompletionRequest(Cmpl(R"(,"stream_options":{})"), kLimits).ok());
}

TEST(ParseCompletionRequest, KeepsEscapedAndUnicodePromptBytes) {
  const auto request = ParseCompletionRequest(
      R"({"model":"m","prompt":"tab\there \"q\" \\ \u00e9 \ud83d\ude00 \u0000 caf)"
      "\xC3\xA9\"}",
      kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  using namespace std::string_literals;
  EXPECT_EQ(request->prompts.at(0).text,
            "tab\there \"q\" \\ \xC3\xA9 \xF0\x9F\x98\x80 \0 caf\xC3\xA9"s);
}

TEST(ParseCompletionRequest, ParsesATwoMegabytePrompt) {
  std::string prompt;
  prompt.reserve(2 << 20);
  while (prompt.size() < (2u << 20)) prompt += "The quick brown fox \xE2\x80\x94 jumps. ";
  const std::string body = R"({"model":"m","max_tokens":8,"prompt":")" + prompt + "\"}";
  const auto request = ParseCompletionRequest(body, kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->prompts.at(0).text, prompt);
}

TEST(ParseCompletionRequest, ParsesABodyLargerThanThePerThreadScratch) {
  const std::string prompt(9 << 20, 'a');
  const auto request =
      ParseCompletionRequest(R"({"model":"m","prompt":")" + prompt + "\"}", kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->prompts.at(0).text.size(), prompt.size());
}

TEST(ParseCompletionRequest, EachCallIsIndependentOfThePreviousOnes) {
  // The parser state reused across calls on a thread must not leak from one body to the next.
  EXPECT_FALSE(ParseCompletionRequest(R"({"model":"m","prompt":"unterminated)", kLimits).ok());
  EXPECT_FALSE(ParseCompletionRequest("[1,2]", kLimits).ok());
  const auto big = ParseCompletionRequest(
      R"({"model":"big","prompt":")" + std::string(300000, 'x') + "\"}", kLimits);
  ASSERT_TRUE(big.ok());
  const auto small = ParseCompletionRequest(R"({"model":"small","prompt":"y"})", kLimits);
  ASSERT_TRUE(small.ok()) << small.error().message;
  EXPECT_EQ(small->params.model, "small");
  EXPECT_EQ(small->prompts.at(0).text, "y");
  EXPECT_EQ(big->prompts.at(0).text, std::string(300000, 'x'));
}

TEST(ParseChatRequest, ReadsMessagesAndRendersThePrompt) {
  const auto request = ParseChatRequest(
      R"({"model":"m","messages":[
            {"role":"system","content":"Be brief."},
            {"role":"developer","content":"No emoji."},
            {"role":"user","content":[{"type":"text","text":"Part one."},
                                      {"type":"text","text":"Part two."}]},
            {"role":"assistant","content":null,"tool_calls":[]},
            {"role":"tool","content":"42","tool_call_id":"t1"},
            {"role":"user","content":"Thanks","name":"bob"}],
          "max_completion_tokens":32,"max_tokens":99})",
      kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  const std::vector<ChatMessage> expected = {{ChatRole::kSystem, "Be brief."},
                                             {ChatRole::kDeveloper, "No emoji."},
                                             {ChatRole::kUser, "Part one.\nPart two."},
                                             {ChatRole::kAssistant, ""},
                                             {ChatRole::kTool, "42"},
                                             {ChatRole::kUser, "Thanks"}};
  EXPECT_EQ(request->messages, expected);
  EXPECT_EQ(request->params.max_tokens, 32) << "max_completion_tokens takes precedence";
  EXPECT_EQ(request->prompt, RenderChatPrompt(expected));
}

TEST(ParseChatRequest, FallsBackToMaxTokensThenToTheContextLimit) {
  const auto with_max_tokens = ParseChatRequest(Chat(R"(,"max_tokens":7)"), kLimits);
  ASSERT_TRUE(with_max_tokens.ok());
  EXPECT_EQ(with_max_tokens->params.max_tokens, 7);
  const auto with_null =
      ParseChatRequest(Chat(R"(,"max_completion_tokens":null,"max_tokens":9)"), kLimits);
  ASSERT_TRUE(with_null.ok());
  EXPECT_EQ(with_null->params.max_tokens, 9);
  const auto without = ParseChatRequest(Chat(""), kLimits);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->params.max_tokens, std::nullopt);
}

TEST(ParseChatRequest, AcceptsAnAssistantMessageWithoutContent) {
  const auto request = ParseChatRequest(
      R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant"}]})", kLimits);
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(request->messages[1], (ChatMessage{ChatRole::kAssistant, ""}));
}

TEST(RenderChatPrompt, UsesTheLlama3Template) {
  const std::vector<ChatMessage> messages = {{ChatRole::kSystem, "S"}, {ChatRole::kUser, "U"}};
  EXPECT_EQ(RenderChatPrompt(messages),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(RenderChatPrompt, EachTurnOnlyAppendsToThePreviousPrompt) {
  std::vector<ChatMessage> conversation = {{ChatRole::kSystem, "You are helpful."},
                                           {ChatRole::kUser, "Question one?"}};
  std::string previous = RenderChatPrompt(conversation);
  for (int turn = 0; turn < 4; ++turn) {
    conversation.push_back({ChatRole::kAssistant, "Answer " + std::to_string(turn)});
    conversation.push_back({ChatRole::kUser, "Follow-up " + std::to_string(turn)});
    const std::string next = RenderChatPrompt(conversation);
    EXPECT_TRUE(next.starts_with(previous)) << "turn " << turn;
    EXPECT_GT(next.size(), previous.size());
    previous = next;
  }
}

TEST(RenderChatPrompt, SharedSystemPromptGivesASharedPrefixAndIsDeterministic) {
  const std::vector<ChatMessage> a = {{ChatRole::kSystem, "Shared system prompt"},
                                      {ChatRole::kUser, "first user"}};
  const std::vector<ChatMessage> b = {{ChatRole::kSystem, "Shared system prompt"},
                                      {ChatRole::kUser, "second user"}};
  const std::string shared =
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
      "Shared system prompt<|eot_id|><|start_header_id|>user"
      "<|end_header_id|>\n\n";
  EXPECT_TRUE(RenderChatPrompt(a).starts_with(shared));
  EXPECT_TRUE(RenderChatPrompt(b).starts_with(shared));
  EXPECT_EQ(RenderChatPrompt(a), RenderChatPrompt(a));
}

TEST(TokenizeChatPrompt, SpecialTokensAreOneTokenAndTextPiecesAreTokenizedAlone) {
  const std::vector<ChatMessage> messages = {{ChatRole::kUser, "hello"}};
  const std::vector<TokenId> tokens = TokenizeChatPrompt(messages);
  // <|begin_of_text|> <|start_header_id|> "user" <|end_header_id|> "\n\n" "hell" "o" <|eot_id|>
  // <|start_header_id|> "assi" "stan" "t" <|end_header_id|> "\n\n"
  ASSERT_EQ(tokens.size(), 14u);
  EXPECT_EQ(tokens[0], 128000u);
  EXPECT_EQ(tokens[1], 128006u);
  EXPECT_EQ(tokens[2], Tokenize("user").at(0));
  EXPECT_EQ(tokens[3], 128007u);
  EXPECT_EQ(tokens[5], Tokenize("hello").at(0));
  EXPECT_EQ(tokens[7], 128009u);
}

TEST(TokenizeChatPrompt, APreviousAnswerTokenizesToItsOwnTokensAndTurnsOnlyAppend) {
  // The answer is whole 4-byte tokens, as the engine generates it; whatever the header's byte
  // length, the assistant message presents exactly those tokens.
  const std::string answer = "abcdefghijkl";
  std::vector<ChatMessage> conversation = {{ChatRole::kSystem, "You are helpful."},
                                           {ChatRole::kUser, "Question one?"}};
  const std::vector<TokenId> first = TokenizeChatPrompt(conversation);
  conversation.push_back({ChatRole::kAssistant, answer});
  conversation.push_back({ChatRole::kUser, "Follow-up"});
  const std::vector<TokenId> second = TokenizeChatPrompt(conversation);
  ASSERT_GT(second.size(), first.size() + 3);
  EXPECT_TRUE(std::equal(first.begin(), first.end(), second.begin()));
  const std::vector<TokenId> expected = Tokenize(answer);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), second.begin() + first.size()));
}

TEST(ResolveMaxTokens, ChecksPromptPlusCompletionAgainstTheContext) {
  const RequestLimits limits{.max_model_len = 100};
  EXPECT_EQ(ResolveMaxTokens(10, 90, limits).value(), 10);
  EXPECT_EQ(ResolveMaxTokens(std::nullopt, 30, limits).value(), 70)
      << "no max_tokens: the rest of the context";
  const auto too_long = ResolveMaxTokens(11, 90, limits);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.error(),
            BadRequest("This model's maximum context length is 100 tokens. However, you "
                       "requested 101 tokens (90 in the messages, 11 in the completion). Please "
                       "reduce the length of the messages or completion."));
  const auto full_prompt = ResolveMaxTokens(std::nullopt, 100, limits);
  ASSERT_FALSE(full_prompt.ok());
  EXPECT_THAT(full_prompt.error().message,
              HasSubstr("you requested 101 tokens (100 in the messages, 1 in the completion)"));
  EXPECT_EQ(ResolveMaxTokens(std::nullopt, 5, RequestLimits{}).value(),
            kDefaultCompletionMaxTokens);
}

}  // namespace
}  // namespace zumik::sim

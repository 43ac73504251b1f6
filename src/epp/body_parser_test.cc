// Body parser: what the EPP reads from OpenAI request bodies, and how it rejects bad ones.
#include "epp/body_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "sched/request.h"

namespace zumik::epp {
namespace {

TEST(ApiKindOfPath, MatchesByLongestSuffixAndIgnoresQuery) {
  EXPECT_EQ(ApiKindOfPath("/v1/chat/completions"), ApiKind::kChatCompletions);
  EXPECT_EQ(ApiKindOfPath("/v1/completions?x=1"), ApiKind::kCompletions);
  EXPECT_EQ(ApiKindOfPath("/openai/v1/completions/"), ApiKind::kCompletions);
  EXPECT_EQ(ApiKindOfPath("/v1/embeddings"), ApiKind::kEmbeddings);
  EXPECT_EQ(ApiKindOfPath("/v1/responses"), ApiKind::kResponses);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/resp_1"), ApiKind::kResponseRetrieve);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/resp_1/?stream=true"), ApiKind::kResponseRetrieve);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/resp_1/cancel"), ApiKind::kResponseCancel);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/resp_1/other"), ApiKind::kUnknown);
  EXPECT_EQ(ApiKindOfPath("/v1/responses//cancel"), ApiKind::kUnknown);
  // A stored response's id is one segment of unreserved characters, never a dot segment.
  EXPECT_EQ(ApiKindOfPath("/v1/responses/.."), ApiKind::kUnknown);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/./cancel"), ApiKind::kUnknown);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/%2e%2e"), ApiKind::kUnknown);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/a b"), ApiKind::kUnknown);
  EXPECT_EQ(ApiKindOfPath("/v1/responses/resp-A.1~x"), ApiKind::kResponseRetrieve);
  EXPECT_EQ(ResponseIdOfPath("/v1/responses/resp_1/cancel"), "resp_1");
  EXPECT_EQ(ResponseIdOfPath("/v1/responses/resp_2?x=1"), "resp_2");
  EXPECT_EQ(ResponseIdOfPath("/v1/completions"), "");
  EXPECT_EQ(ApiKindOfPath("/v1/models"), ApiKind::kModels);
  EXPECT_EQ(ApiKindOfPath("/admin"), ApiKind::kUnknown);
  EXPECT_EQ(ApiKindOfPath(""), ApiKind::kUnknown);
}

TEST(ModelServerPath, IsVllmsOwnRouteForEachKindAndClassifiesAsThatKind) {
  const std::vector<std::pair<ApiKind, std::string>> expected = {
      {ApiKind::kCompletions, "/v1/completions"},
      {ApiKind::kChatCompletions, "/v1/chat/completions"},
      {ApiKind::kEmbeddings, "/v1/embeddings"},
      {ApiKind::kResponses, "/v1/responses"},
      {ApiKind::kResponseRetrieve, "/v1/responses/resp_7"},
      {ApiKind::kResponseCancel, "/v1/responses/resp_7/cancel"},
      {ApiKind::kModels, "/v1/models"},
      {ApiKind::kHealth, "/health"},
      {ApiKind::kUnknown, ""},
  };
  for (const auto& [kind, path] : expected) {
    EXPECT_EQ(ModelServerPath(kind, "resp_7"), path);
    if (kind != ApiKind::kUnknown) {
      EXPECT_EQ(ApiKindOfPath(path), kind) << path;
    }
  }
  // Only requests that name no model and carry no prompt are bodiless.
  EXPECT_TRUE(IsBodiless(ApiKind::kModels));
  EXPECT_TRUE(IsBodiless(ApiKind::kHealth));
  EXPECT_TRUE(IsBodiless(ApiKind::kResponseRetrieve));
  EXPECT_TRUE(IsBodiless(ApiKind::kResponseCancel));
  EXPECT_FALSE(IsBodiless(ApiKind::kCompletions));
  EXPECT_FALSE(IsBodiless(ApiKind::kResponses));
  EXPECT_FALSE(IsBodiless(ApiKind::kUnknown));
}

TEST(ParseBody, ReadsCompletionsModelPromptAndStream) {
  auto r = ParseBody(ApiKind::kCompletions,
                     R"({"model":"m","prompt":"hello world","stream":true,
                        "stream_options":{"include_usage":true},"cache_salt":"s"})");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(r.body.model, "m");
  EXPECT_EQ(r.body.prompt, "hello world");
  EXPECT_TRUE(r.body.stream);
  EXPECT_TRUE(r.body.include_usage);
  EXPECT_EQ(r.body.cache_salt, "s");
}

TEST(ParseBody, ReadsTheSampleCountOfCompletionsAndChat) {
  const std::vector<std::pair<std::string, uint32_t>> cases = {
      {R"("n":2)", 2},    {R"("n":1)", 1},
      {R"("n":0)", 1},    {R"("n":-3)", 1},
      {R"("n":null)", 1}, {R"("n":"4")", 1},
      {R"("n":2.5)", 1},  {R"("n":5000)", 1024},
      {"\"x\":1", 1},     {R"("n":12345678901234567890)", 1024}};
  for (const auto& [member, n] : cases) {
    BodyParseResult completions =
        ParseBody(ApiKind::kCompletions, R"({"model":"m","prompt":"p",)" + member + "}");
    ASSERT_TRUE(completions.ok) << member;
    EXPECT_EQ(completions.body.n, n) << member;
    BodyParseResult chat =
        ParseBody(ApiKind::kChatCompletions, R"({"model":"m","messages":[],)" + member + "}");
    ASSERT_TRUE(chat.ok) << member;
    EXPECT_EQ(chat.body.n, n) << member;
  }
  // Embeddings and the Responses API have no samples.
  EXPECT_EQ(ParseBody(ApiKind::kResponses, R"({"model":"m","input":"q","n":4})").body.n, 1u);
}

TEST(ParseBody, CountsThePromptsOfACompletionsBatch) {
  const std::vector<std::pair<std::string, uint32_t>> cases = {
      {R"("p")", 1},       {R"(["a","b","c"])", 3}, {R"([[1,2],[3],[4,5,6]])", 3},
      {R"([1,2,3,4])", 1},  // token ids of one prompt
      {R"(["only"])", 1},  {R"(["x",[1,2]])", 2}};
  for (const auto& [prompt, prompts] : cases) {
    BodyParseResult r =
        ParseBody(ApiKind::kCompletions, R"({"model":"m","n":2,"prompt":)" + prompt + "}");
    ASSERT_TRUE(r.ok) << prompt << ": " << r.error.message;
    EXPECT_EQ(r.body.prompts, prompts) << prompt;
    EXPECT_EQ(r.body.Sequences(), 2 * prompts) << prompt;
  }
  std::string big = R"({"model":"m","prompt":[)";
  for (int i = 0; i < 1500; ++i) big += i == 0 ? "\"q\"" : ",\"q\"";
  big += "]}";
  EXPECT_EQ(ParseBody(ApiKind::kCompletions, big).body.prompts, ParsedBody::kMaxPrompts);
  // Chat has one conversation per request.
  EXPECT_EQ(ParseBody(ApiKind::kChatCompletions, R"({"model":"m","messages":[]})").body.prompts,
            1u);
  // Embeddings: each input of a batch is a request of its own in vLLM; n does not apply.
  for (const auto& [input, prompts] : cases) {
    BodyParseResult r =
        ParseBody(ApiKind::kEmbeddings, R"({"model":"m","n":2,"input":)" + input + "}");
    ASSERT_TRUE(r.ok) << input << ": " << r.error.message;
    EXPECT_EQ(r.body.prompts, prompts) << input;
    EXPECT_EQ(r.body.Sequences(), prompts) << input;
  }
}

// The first prompt of a batch of strings is hashed; the bytes of the others are counted so that
// their prefill is charged too. An id-array batch is hashed whole and counts nothing extra.
TEST(ParseBody, CountsTheBytesOfABatchsOtherPrompts) {
  const std::vector<std::pair<std::string, uint64_t>> cases = {
      {R"("single")", 0},
      {R"(["first","second","\u00e9t\u00e9"])", 6 + 5},  // decoded: "été" is 5 bytes
      {R"(["only"])", 0},
      {R"(["x",[1,2]])", 5},  // a stray id array counts as its JSON
      {R"([[1,2],[3]])", 0},
      {R"([1,2,3])", 0}};
  for (const auto& [prompt, bytes] : cases) {
    BodyParseResult r =
        ParseBody(ApiKind::kCompletions, R"({"model":"m","prompt":)" + prompt + "}");
    ASSERT_TRUE(r.ok) << prompt << ": " << r.error.message;
    EXPECT_EQ(r.body.batch_bytes, bytes) << prompt;
  }
  BodyParseResult batch = ParseBody(ApiKind::kCompletions, R"({"model":"m","prompt":["ab","cd"]})");
  ASSERT_TRUE(batch.ok);
  EXPECT_EQ(batch.body.prompt, "ab");
}

TEST(ParseBody, RendersChatMessagesInTheGieTemplate) {
  auto r = ParseBody(ApiKind::kChatCompletions,
                     R"({"model":"m","messages":[{"role":"system","content":"be brief"},
                        {"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"!"}]}]})");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(r.body.prompt,
            "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi!<|im_end|>\n");
  EXPECT_FALSE(r.body.stream);
}

TEST(ParseBody, RejectsMissingModelWithTheUpstreamMessage) {
  auto r = ParseBody(ApiKind::kCompletions, R"({"prompt":"x"})");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.http_status, 400);
  EXPECT_EQ(r.error.message, "model not found in request body");
  EXPECT_EQ(r.error.param, "model");
}

TEST(ParseBody, RejectsMalformedJsonNamingTheByteOffset) {
  auto r = ParseBody(ApiKind::kCompletions, R"({"model":"m", "prompt": })");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.message.find("invalid JSON body at byte"), std::string::npos);
}

TEST(ParseBody, RejectsInvalidUtf8) {
  std::string body = "{\"model\":\"m\",\"prompt\":\"\xff\xfe\"}";
  auto r = ParseBody(ApiKind::kCompletions, body);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.http_status, 400);
}

TEST(ParseBody, RejectsWrongShapes) {
  EXPECT_FALSE(ParseBody(ApiKind::kCompletions, "").ok);
  EXPECT_FALSE(ParseBody(ApiKind::kCompletions, "[1,2]").ok);
  EXPECT_FALSE(ParseBody(ApiKind::kCompletions, R"({"model":1,"prompt":"x"})").ok);
  EXPECT_FALSE(ParseBody(ApiKind::kCompletions, R"({"model":"m"})").ok);
  EXPECT_FALSE(ParseBody(ApiKind::kCompletions, R"({"model":"m","prompt":"x","stream":"yes"})").ok);
  EXPECT_FALSE(ParseBody(ApiKind::kChatCompletions, R"({"model":"m","messages":"hi"})").ok);
  EXPECT_FALSE(
      ParseBody(ApiKind::kChatCompletions, R"({"model":"m","messages":[{"content":"x"}]})").ok);
  auto r = ParseBody(ApiKind::kChatCompletions,
                     R"({"model":"m","messages":[{"role":"user","content":5}]})");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.param, "messages[0].content");
}

TEST(ParseBody, HandlesLargePrompts) {
  std::string prompt(400'000, 'a');
  std::string body = R"({"model":"m","prompt":")" + prompt + R"("})";
  auto r = ParseBody(ApiKind::kCompletions, body);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.body.prompt.size(), prompt.size());
}

// What vLLM accepts on /v1/completions passes the gateway: a batch of strings (hashed as its
// first prompt alone), token ids and a batch of token ids (hashed by their JSON form), with
// n > 1.
TEST(ParseBody, AcceptsEveryCompletionsPromptShapeVllmAccepts) {
  const std::pair<std::string_view, std::string_view> cases[] = {
      {R"(["a","b"])", "a"},
      {R"(["only"])", "only"},
      {R"(["café au lait", "x"])", "caf\xc3\xa9 au lait"},
      {"[1,2,3]", "[1,2,3]"},
      {"[[1,2],[3]]", "[[1,2],[3]]"},
      {"[]", "[]"}};
  for (const auto& [prompt, hashed] : cases) {
    const std::string body =
        std::string(R"({"model":"m","n":4,"prompt":)") + std::string(prompt) + R"(,"stream":true})";
    auto r = ParseBody(ApiKind::kCompletions, body);
    ASSERT_TRUE(r.ok) << body << ": " << r.error.message;
    EXPECT_EQ(r.body.prompt, hashed) << body;
    EXPECT_TRUE(r.body.stream);
  }
  // A one-prompt batch is hashed exactly as the same prompt sent alone.
  auto batch = ParseBody(ApiKind::kCompletions, R"({"model":"m","prompt":["same text"]})");
  auto alone = ParseBody(ApiKind::kCompletions, R"({"model":"m","prompt":"same text"})");
  ASSERT_TRUE(batch.ok && alone.ok);
  EXPECT_EQ(batch.body.prompt, alone.body.prompt);
}

TEST(ParseBody, ReadsEmbeddingsAndResponsesInput) {
  auto e = ParseBody(ApiKind::kEmbeddings, R"({"model":"m","input":"abc"})");
  ASSERT_TRUE(e.ok);
  EXPECT_EQ(e.body.prompt, "abc");
  auto r = ParseBody(ApiKind::kResponses, R"({"model":"m","instructions":"I:","input":"q"})");
  ASSERT_TRUE(r.ok);
  std::string expected;
  sched::AppendChatMessage(expected, "system", "I:");
  sched::AppendChatMessage(expected, "user", "q");
  EXPECT_EQ(r.body.prompt, expected);
}

// A Responses API conversation is hashed as the chat it is: the previous output, sent back as
// an assistant message item, renders as the assistant message the index learned from it.
TEST(ParseBody, RendersResponsesInputItemsAsChatMessages) {
  auto r = ParseBody(ApiKind::kResponses,
                     R"({"model":"m","input":[)"
                     R"({"role":"user","content":"hi"},)"
                     R"({"type":"reasoning","summary":[]},)"
                     R"({"type":"message","role":"assistant","content":[)"
                     R"({"type":"output_text","text":"he","annotations":[]},)"
                     R"({"type":"output_text","text":"llo"}]},)"
                     R"({"role":"user","content":[{"type":"input_text","text":"more"}]},)"
                     R"({"type":"function_call_output","call_id":"c","output":"7"}]})");
  ASSERT_TRUE(r.ok);
  std::string expected;
  sched::AppendChatMessage(expected, "user", "hi");
  expected += R"({"type":"reasoning","summary":[]})";
  sched::AppendChatMessage(expected, "assistant", "hello");
  sched::AppendChatMessage(expected, "user", "more");
  expected += R"({"type":"function_call_output","call_id":"c","output":"7"})";
  EXPECT_EQ(r.body.prompt, expected);
  ParsedBody scanned;
  EXPECT_FALSE(ScanBody(ApiKind::kResponses, R"({"model":"m","input":[]})", scanned));
}

TEST(ParseBody, ReadsTheResponseAResponsesRequestContinues) {
  auto r = ParseBody(ApiKind::kResponses,
                     R"({"model":"m","input":"q","previous_response_id":"resp_7"})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.body.previous_response_id, "resp_7");
  auto chat = ParseBody(ApiKind::kCompletions,
                        R"({"model":"m","prompt":"q","previous_response_id":"resp_7"})");
  ASSERT_TRUE(chat.ok);
  EXPECT_EQ(chat.body.previous_response_id, "");  // a Responses API field only
}

// The scan (no DOM) and the DOM reading agree wherever the scan answers.
void ExpectScanAgrees(ApiKind kind, std::string_view body) {
  ParsedBody scanned;
  if (!ScanBody(kind, body, scanned)) return;
  BodyParseResult dom = ParseBodyWithDom(kind, body);
  ASSERT_TRUE(dom.ok) << body;
  EXPECT_EQ(scanned.model, dom.body.model) << body;
  EXPECT_EQ(scanned.prompt, dom.body.prompt) << body;
  EXPECT_EQ(scanned.cache_salt, dom.body.cache_salt) << body;
  EXPECT_EQ(scanned.stream, dom.body.stream) << body;
  EXPECT_EQ(scanned.include_usage, dom.body.include_usage) << body;
  EXPECT_EQ(scanned.previous_response_id, dom.body.previous_response_id) << body;
  EXPECT_EQ(scanned.n, dom.body.n) << body;
  EXPECT_EQ(scanned.prompts, dom.body.prompts) << body;
  EXPECT_EQ(scanned.batch_bytes, dom.body.batch_bytes) << body;
}

struct BodyCase {
  ApiKind kind;
  std::string body;
  bool scanned;  // read without the DOM
};

const std::vector<BodyCase>& BodyCases() {
  static const std::vector<BodyCase> cases = {
      {ApiKind::kCompletions,
       R"({"model":"meta-llama/Llama-3.1-8B-Instruct","prompt":"Hello world","max_tokens":1})",
       true},
      {ApiKind::kCompletions,
       R"( { "model" : "m" , "prompt" : "a\"b\\c\/d\n\t\r\b\f" , "stream" : true ,)"
       R"( "stream_options" : { "include_usage" : false } , "cache_salt" : "s" } )",
       true},
      {ApiKind::kCompletions, R"({"prompt":"x","stream":null,"model":"m","stream_options":{}})",
       true},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","stream_options":{"include_usage":1}})",
       true},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","stream_options":[true]})", true},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","cache_salt":7,"x":{"model":"n"}})",
       true},
      {ApiKind::kCompletions, "{\"model\":\"m\",\"prompt\":\"h\xc3\xa9 \xe2\x80\x94\"}", true},
      {ApiKind::kChatCompletions,
       R"({"model":"m","messages":[{"role":"system","content":"be brief"},)"
       R"({"role":"user","content":[{"type":"text","text":"hi"},{"type":"image"},)"
       R"({"text":"!"}]},{"role":"assistant","content":null},{"name":"x","role":"user"}]})",
       true},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[]})", true},
      {ApiKind::kChatCompletions,
       R"({"model":"m","messages":[{"role":"u","content":[{"text":5}]}]})", true},
      {ApiKind::kEmbeddings, R"({"model":"m","input":"abc","prompt":[1]})", true},
      {ApiKind::kResponses, R"({"input":"q","model":"m","instructions":"I:"})", true},
      {ApiKind::kResponses, R"({"input":"q","model":"m","instructions":null})", true},
      {ApiKind::kResponses, R"({"instructions":"","input":"q","model":"m"})", true},
      {ApiKind::kResponses, R"({"model":"m","input":"q","previous_response_id":"resp_1"})", true},
      {ApiKind::kResponses, R"({"model":"m","input":"q","previous_response_id":null})", true},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"q","previous_response_id":"r"})", true},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","n":3})", true},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[],"n":0})", true},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[],"n":"2"})", true},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","n":123456789012345678})", true},
      {ApiKind::kResponses, R"({"model":"m","input":"q","n":4})", true},
      {ApiKind::kResponses, R"({"model":"m","input":[{"role":"user","content":"q"}]})", false},
      // Left to the DOM: arrays serialized, \u escapes, repeated keys, and every error.
      {ApiKind::kCompletions, R"({"model":"m","prompt":["a","b"]})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":[1,2,3]})", false},
      {ApiKind::kEmbeddings, R"({"model":"m","input":["a"]})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"\u00e9"})", false},
      {ApiKind::kCompletions, R"({"model":"m","model":"n","prompt":"x"})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","prompt":"y"})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","n":-1})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","n":2.0})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","n":1,"n":2})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","n":12345678901234567890})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","n":123456789012345678901})", false},
      {ApiKind::kCompletions, R"({"model":"","prompt":"x"})", false},
      {ApiKind::kCompletions, R"({"model":1,"prompt":"x"})", false},
      {ApiKind::kCompletions, R"({"model":"m"})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x","stream":"yes"})", false},
      {ApiKind::kCompletions, R"({"model":"m","prompt":"x"} {})", false},
      {ApiKind::kCompletions, "{\"model\":\"m\",\"prompt\":\"\xff\xfe\"}", false},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":"hi"})", false},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[{"content":"x"}]})", false},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[{"role":"u","content":5}]})", false},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[{"role":"u","content":["x"]}]})",
       false},
      {ApiKind::kChatCompletions, R"({"model":"m","messages":[1]})", false},
      {ApiKind::kModels, R"({"model":"m"})", false},
      {ApiKind::kCompletions, "", false},
  };
  return cases;
}

TEST(ScanBody, ReadsTheCommonShapesAsTheDomDoes) {
  for (const BodyCase& c : BodyCases()) {
    ParsedBody scanned;
    EXPECT_EQ(ScanBody(c.kind, c.body, scanned), c.scanned) << c.body;
    ExpectScanAgrees(c.kind, c.body);
    // ParseBody's answer is the DOM's either way.
    BodyParseResult dom = ParseBodyWithDom(c.kind, c.body);
    BodyParseResult both = ParseBody(c.kind, c.body);
    EXPECT_EQ(both.ok, dom.ok) << c.body;
    EXPECT_EQ(both.body.prompt, dom.body.prompt) << c.body;
    EXPECT_EQ(both.error.message, dom.error.message) << c.body;
    EXPECT_EQ(both.error.param, dom.error.param) << c.body;
  }
}

// Strings are read sixteen bytes at a time: an escape, a multi-byte character, a raw control
// byte or the closing quote is found at every position of a long prompt.
TEST(ScanBody, FindsEverySpecialByteOfALongString) {
  const std::string plain(100, 'p');
  for (size_t i = 0; i <= plain.size(); ++i) {
    // The prompt with `middle` at byte i, and the body carrying it.
    const auto prompt = [&](std::string_view middle) {
      std::string out = plain.substr(0, i);
      out.append(middle).append(plain, i);
      return out;
    };
    const auto body = [](std::string_view text) {
      std::string out = R"({"model":"m","prompt":")";
      out.append(text).append(R"("})");
      return out;
    };
    ParsedBody out;
    ASSERT_TRUE(ScanBody(ApiKind::kCompletions, body(prompt("\\\"")), out)) << i;
    EXPECT_EQ(out.prompt, prompt("\""));
    ASSERT_TRUE(ScanBody(ApiKind::kCompletions, body(prompt("\xc3\xa9")), out)) << i;
    EXPECT_EQ(out.prompt, prompt("\xc3\xa9"));
    ASSERT_TRUE(ScanBody(ApiKind::kCompletions, body(plain.substr(0, i)), out)) << i;
    EXPECT_EQ(out.prompt, plain.substr(0, i));
    EXPECT_FALSE(ScanBody(ApiKind::kCompletions, body(prompt("\x01")), out)) << i;
    EXPECT_FALSE(ScanBody(ApiKind::kCompletions, body(prompt("\xff")), out)) << i;
    // Every simple escape, alone and two in a row, decoded where it stands.
    const std::pair<std::string_view, std::string_view> escapes[] = {
        {"\\\"", "\""}, {"\\\\", "\\"}, {"\\/", "/"},  {"\\b", "\b"},
        {"\\f", "\f"},  {"\\n", "\n"},  {"\\r", "\r"}, {"\\t", "\t"}};
    for (const auto& [escaped, decoded] : escapes) {
      ASSERT_TRUE(ScanBody(ApiKind::kCompletions, body(prompt(escaped)), out)) << i << escaped;
      EXPECT_EQ(out.prompt, prompt(decoded)) << i << escaped;
      const std::string twice = std::string(escaped) + std::string(escaped);
      ASSERT_TRUE(ScanBody(ApiKind::kCompletions, body(prompt(twice)), out)) << i << escaped;
      EXPECT_EQ(out.prompt, prompt(std::string(decoded) + std::string(decoded))) << i;
    }
    // Escapes the scan leaves to the DOM, and a backslash that ends the text.
    EXPECT_FALSE(ScanBody(ApiKind::kCompletions, body(prompt("\\u0041")), out)) << i;
    EXPECT_FALSE(ScanBody(ApiKind::kCompletions, body(prompt("\\x")), out)) << i;
    EXPECT_FALSE(ScanBody(ApiKind::kCompletions, R"({"model":"m","prompt":")" + prompt("\\"), out))
        << i;
  }
}

// A decoded string reserves what is left of the body at its first escape; a short one does not
// keep that much.
TEST(ScanBody, AShortEscapedStringDoesNotKeepTheRestOfTheBodysSpace) {
  const std::string prompt(200000, 'p');
  const std::string body = R"({"model":"org\/m","prompt":")" + prompt + R"("})";
  ParsedBody out;
  ASSERT_TRUE(ScanBody(ApiKind::kCompletions, body, out));
  EXPECT_EQ(out.model, "org/m");
  EXPECT_LT(out.model.capacity(), 8192u);
  EXPECT_EQ(out.prompt, prompt);
}

// With borrow_prompt a prompt without escapes is left where it stands in the body; one with
// escapes is decoded as before; composed prompts (chat, responses) are never borrowed.
TEST(ParseBody, BorrowsOnlyAPromptThatNeedsNoDecoding) {
  auto in_body = [](std::string_view view, const std::string& body) {
    return view.data() >= body.data() && view.data() + view.size() <= body.data() + body.size();
  };
  const std::string plain = R"({"model":"m","prompt":"hello world"})";
  BodyParseResult r = ParseBody(ApiKind::kCompletions, plain, /*borrow_prompt=*/true);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.body.Prompt(), "hello world");
  EXPECT_TRUE(in_body(r.body.borrowed_prompt, plain));
  EXPECT_TRUE(r.body.prompt.empty());
  EXPECT_EQ(ParseBody(ApiKind::kCompletions, plain).body.borrowed_prompt.data(), nullptr);

  const std::string empty = R"({"model":"m","prompt":""})";
  r = ParseBody(ApiKind::kCompletions, empty, true);
  ASSERT_TRUE(r.ok);
  EXPECT_NE(r.body.borrowed_prompt.data(), nullptr);
  EXPECT_EQ(r.body.Prompt(), "");

  const std::string escaped = R"({"model":"m","prompt":"hello\nworld \"quoted\""})";
  r = ParseBody(ApiKind::kCompletions, escaped, true);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.body.borrowed_prompt.data(), nullptr);
  EXPECT_EQ(r.body.Prompt(), "hello\nworld \"quoted\"");

  const std::string embeddings = R"({"model":"m","input":"some text"})";
  r = ParseBody(ApiKind::kEmbeddings, embeddings, true);
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(in_body(r.body.borrowed_prompt, embeddings));
  EXPECT_EQ(r.body.Prompt(), "some text");

  for (const auto& [kind, body] :
       {std::pair{ApiKind::kChatCompletions,
                  std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})")},
        std::pair{ApiKind::kResponses, std::string(R"({"model":"m","input":"hi"})")},
        // A batch goes to the DOM, which copies.
        std::pair{ApiKind::kCompletions, std::string(R"({"model":"m","prompt":["ab","cd"]})")}}) {
    const BodyParseResult borrowing = ParseBody(kind, body, true);
    const BodyParseResult copying = ParseBody(kind, body);
    ASSERT_TRUE(borrowing.ok && copying.ok) << body;
    EXPECT_EQ(borrowing.body.borrowed_prompt.data(), nullptr) << body;
    EXPECT_EQ(borrowing.body.Prompt(), copying.body.Prompt()) << body;
    EXPECT_FALSE(borrowing.body.Prompt().empty()) << body;
  }
}

// Every truncation and single-byte change of the cases, read as every kind.
TEST(ScanBody, AgreesWithTheDomOnDamagedBodies) {
  const std::string replacements = "{}[]\":,0 \\nut\x80\xc3\xff";
  const ApiKind kinds[] = {ApiKind::kCompletions, ApiKind::kChatCompletions, ApiKind::kEmbeddings,
                           ApiKind::kResponses};
  for (const BodyCase& c : BodyCases()) {
    for (ApiKind kind : kinds) {
      for (size_t n = 0; n < c.body.size(); ++n) {
        ExpectScanAgrees(kind, std::string_view(c.body).substr(0, n));
      }
      for (size_t i = 0; i < c.body.size(); ++i) {
        for (char r : replacements) {
          std::string changed = c.body;
          changed[i] = r;
          ExpectScanAgrees(kind, changed);
        }
      }
    }
  }
}

}  // namespace
}  // namespace zumik::epp

// Body parser: what the EPP reads from OpenAI request bodies, and how it rejects bad ones.
#include "epp/body_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace zumik::epp {
namespace {

TEST(ApiKindOfPath, MatchesByLongestSuffixAndIgnoresQuery) {
  EXPECT_EQ(ApiKindOfPath("/v1/chat/completions"), ApiKind::kChatCompletions);
  EXPECT_EQ(ApiKindOfPath("/v1/completions?x=1"), ApiKind::kCompletions);
  EXPECT_EQ(ApiKindOfPath("/openai/v1/completions/"), ApiKind::kCompletions);
  EXPECT_EQ(ApiKindOfPath("/v1/embeddings"), ApiKind::kEmbeddings);
  EXPECT_EQ(ApiKindOfPath("/v1/responses"), ApiKind::kResponses);
  EXPECT_EQ(ApiKindOfPath("/v1/models"), ApiKind::kModels);
  EXPECT_EQ(ApiKindOfPath("/admin"), ApiKind::kUnknown);
  EXPECT_EQ(ApiKindOfPath(""), ApiKind::kUnknown);
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
  EXPECT_FALSE(ParseBody(ApiKind::kChatCompletions, R"({"model":"m","messages":[{"content":"x"}]})").ok);
  auto r = ParseBody(ApiKind::kChatCompletions, R"({"model":"m","messages":[{"role":"user","content":5}]})");
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

TEST(ParseBody, ReadsEmbeddingsAndResponsesInput) {
  auto e = ParseBody(ApiKind::kEmbeddings, R"({"model":"m","input":"abc"})");
  ASSERT_TRUE(e.ok);
  EXPECT_EQ(e.body.prompt, "abc");
  auto r = ParseBody(ApiKind::kResponses, R"({"model":"m","instructions":"I:","input":"q"})");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.body.prompt, "I:q");
}

}  // namespace
}  // namespace zumik::epp

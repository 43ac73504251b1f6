// Usage parser: token usage from SSE streams split at arbitrary points, and JSON bodies.
#include "epp/usage_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace zumik::epp {
namespace {

// Choice 0's collected text ("" when none).
std::string Text0(const UsageParser& p) { return p.texts().empty() ? "" : p.texts()[0]; }

// The key at every position of texts of every length up to 60 (the 16-byte loop, its last
// block and the bytewise tail), and near misses that are not it.
TEST(HasUsageKey, FindsTheKeyAtEveryPositionAndNothingElse) {
  const std::string filler = "{\"id\":\"u1\",\"uu\":\"\\\"usage\\\"\",\"usag\":1,\"Usage\":2}";
  for (size_t length = 0; length <= 60; ++length) {
    std::string text;
    while (text.size() < length) text += filler;
    text.resize(length);
    EXPECT_FALSE(HasUsageKey(text)) << text;
    for (size_t at = 0; at + 7 <= length; ++at) {
      std::string with = text;
      with.replace(at, 7, "\"usage\"");
      EXPECT_TRUE(HasUsageKey(with)) << with;
    }
  }
}

TEST(UsageParser, ReadsJsonUsageAtTheEnd) {
  UsageParser p;
  p.Feed(R"({"id":"x","usage":{"prompt_tokens":12,"completion_tokens":)");
  p.Feed(R"(5,"prompt_tokens_details":{"cached_tokens":8}}})");
  EXPECT_EQ(p.usage().prompt_tokens, -1);
  p.Finish();
  EXPECT_EQ(p.usage().prompt_tokens, 12);
  EXPECT_EQ(p.usage().completion_tokens, 5);
  EXPECT_EQ(p.usage().cached_tokens, 8);
}

TEST(UsageParser, ReadsSseUsageAcrossChunkBoundaries) {
  std::string stream =
      "data: {\"choices\":[{\"text\":\"a\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
      "data: [DONE]\n\n";
  for (size_t split = 1; split < stream.size(); split += 7) {
    UsageParser p;
    p.set_streaming(true);
    p.Feed(std::string_view(stream).substr(0, split));
    p.Feed(std::string_view(stream).substr(split));
    p.Finish();
    EXPECT_EQ(p.usage().prompt_tokens, 3) << split;
    EXPECT_EQ(p.usage().completion_tokens, 2) << split;
    EXPECT_EQ(p.events(), 2) << split;
    EXPECT_TRUE(p.saw_done()) << split;
  }
}

TEST(UsageParser, ReadsResponsesApiCompletedEvent) {
  UsageParser p;
  p.set_streaming(true);
  p.Feed(
      "event: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":"
      "{\"usage\":{\"input_tokens\":7,\"output_tokens\":4,"
      "\"input_tokens_details\":{\"cached_tokens\":2}}}}\r\n\r\n");
  EXPECT_EQ(p.usage().prompt_tokens, 7);
  EXPECT_EQ(p.usage().completion_tokens, 4);
  EXPECT_EQ(p.usage().cached_tokens, 2);
}

TEST(UsageParser, CollectsTheResponsesApiTextFromItsDeltaEvents) {
  UsageParser p;
  p.set_streaming(true);
  p.set_collect_text(true, UsageParser::TextSource::kResponses);
  p.Feed(
      "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\","
      "\"delta\":\"Hel\"}\n\nevent: response.output_text.delta\ndata: {\"type\":"
      "\"response.output_text.delta\",\"delta\":\"lo\"}\n\n");
  p.FinishWith(
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":"
      "{\"object\":\"response\",\"output\":[{\"type\":\"message\",\"content\":[{\"type\":"
      "\"output_text\",\"text\":\"Hello\"}]}],\"usage\":{\"input_tokens\":3,"
      "\"output_tokens\":2}}}\n\n");
  EXPECT_EQ(Text0(p), "Hello");  // the deltas; the completed event's copy is not added again
  EXPECT_EQ(p.usage().completion_tokens, 2);

  UsageParser whole;
  whole.set_collect_text(true, UsageParser::TextSource::kResponses);
  whole.FinishWith(
      R"({"object":"response","output":[{"type":"message","content":[)"
      R"({"type":"output_text","text":"Hi"}]}],"usage":{"input_tokens":3,"output_tokens":1}})");
  EXPECT_EQ(Text0(whole), "Hi");

  // Both the id and the text of a whole response (read from one parse of it), and its usage.
  UsageParser both;
  both.set_capture_response_id(true);
  both.set_collect_text(true, UsageParser::TextSource::kResponses);
  both.FinishWith(R"({"id":"resp_7","object":"response","output":[{"type":"message","content":[)"
                  R"({"type":"output_text","text":"Hi"},{"type":"output_text","text":" there"}]}],)"
                  R"("usage":{"input_tokens":3,"output_tokens":2}})");
  EXPECT_EQ(both.response_id(), "resp_7");
  EXPECT_EQ(Text0(both), "Hi there");
  EXPECT_EQ(both.usage().completion_tokens, 2);
  UsageParser broken;
  broken.set_capture_response_id(true);
  broken.set_collect_text(true, UsageParser::TextSource::kResponses);
  broken.FinishWith(R"({"id":"resp_7","object":"response","output":[)");
  EXPECT_EQ(broken.response_id(), "");
  EXPECT_EQ(Text0(broken), "");
}

TEST(UsageParser, CapturesTheResponsesApiResponseId) {
  UsageParser streamed;
  streamed.set_streaming(true);
  streamed.set_capture_response_id(true);
  streamed.Feed(
      "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,"
      "\"response\":{\"id\":\"resp_9\",\"object\":\"response\",\"status\":"
      "\"in_progress\"}}\n\nevent: response.completed\ndata: {\"type\":\"response.completed\","
      "\"response\":{\"id\":\"resp_other\",\"object\":\"response\"}}\n\n");
  streamed.Finish();
  EXPECT_EQ(streamed.response_id(), "resp_9");

  UsageParser whole;
  whole.set_capture_response_id(true);
  whole.FinishWith(R"({"id":"resp_3","object":"response","output":[]})");
  EXPECT_EQ(whole.response_id(), "resp_3");

  UsageParser chat;  // a chat completion's id is no stored response
  chat.set_capture_response_id(true);
  chat.FinishWith(R"({"id":"chatcmpl-1","object":"chat.completion","choices":[]})");
  EXPECT_EQ(chat.response_id(), "");

  UsageParser off;
  off.FinishWith(R"({"id":"resp_3","object":"response","output":[]})");
  EXPECT_EQ(off.response_id(), "");
}

TEST(UsageParser, IgnoresGarbageAndOversizedBodies) {
  UsageParser p;
  p.Feed("not json at all");
  p.Finish();
  EXPECT_EQ(p.usage().prompt_tokens, -1);

  UsageParser big;
  std::string chunk(1 << 20, 'x');
  for (int i = 0; i < 6; ++i) big.Feed(chunk);
  big.Finish();
  EXPECT_EQ(big.usage().prompt_tokens, -1);
}

TEST(UsageParser, FinishWithReadsTheLastChunkInPlaceOrAfterTheBufferedPart) {
  const std::string body = R"({"usage":{"prompt_tokens":12,"completion_tokens":5,)"
                           R"("prompt_tokens_details":{"cached_tokens":8}}})";
  for (size_t split : {size_t{0}, size_t{1}, body.size() / 2, body.size()}) {
    UsageParser p;
    p.Feed(std::string_view(body).substr(0, split));
    p.FinishWith(std::string_view(body).substr(split));
    EXPECT_EQ(p.usage().prompt_tokens, 12) << split;
    EXPECT_EQ(p.usage().completion_tokens, 5) << split;
    EXPECT_EQ(p.usage().cached_tokens, 8) << split;
    p.FinishWith(R"({"usage":{"prompt_tokens":1}})");  // finished: ignored
    EXPECT_EQ(p.usage().prompt_tokens, 12) << split;
  }
  UsageParser sse;
  sse.set_streaming(true);
  sse.Feed("data: {\"usage\":null}\n\n");
  sse.FinishWith("data: {\"usage\":{\"prompt_tokens\":3}}");  // no final newline
  EXPECT_EQ(sse.usage().prompt_tokens, 3);
  EXPECT_EQ(sse.events(), 2);
}

// SSE events carry "usage": null until the last; later events only overwrite what they give.
TEST(UsageParser, SseUsageNullAndPartialEventsKeepEarlierValues) {
  UsageParser p;
  p.set_streaming(true);
  p.Feed(
      "data: {\"choices\":[{\"text\":\"\\\"usage\\\":{}\"}],\"usage\":null}\n\n"
      "data: {\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
      "data: {\"usage\":{\"completion_tokens\":4,\"prompt_tokens\":null}}\n\n");
  p.Finish();
  EXPECT_EQ(p.usage().prompt_tokens, 3);
  EXPECT_EQ(p.usage().completion_tokens, 4);
  EXPECT_EQ(p.usage().cached_tokens, -1);
  EXPECT_EQ(p.events(), 3);
}

TEST(UsageParser, CollectsTheStreamedTextOnlyWhenAsked) {
  const std::string stream =
      "data: {\"choices\":[{\"index\":0,\"text\":\"Hel\"}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"text\":\"lo\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n"
      "data: [DONE]\n\n";
  UsageParser off;
  off.set_streaming(true);
  off.FinishWith(stream);
  EXPECT_EQ(Text0(off), "");
  EXPECT_EQ(off.usage().completion_tokens, 2);
  // Split at every point: the text and the usage still come out whole.
  for (size_t cut = 1; cut < stream.size(); cut += 7) {
    UsageParser on;
    on.set_streaming(true);
    on.set_collect_text(true);
    on.Feed(stream.substr(0, cut));
    on.FinishWith(stream.substr(cut));
    EXPECT_EQ(Text0(on), "Hello") << cut;
    EXPECT_EQ(on.usage().completion_tokens, 2) << cut;
  }
}

TEST(UsageParser, CollectsAWholeJsonBodysText) {
  UsageParser p;
  p.set_collect_text(true);
  p.FinishWith(R"({"choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}],)"
               R"("usage":{"completion_tokens":1}})");
  EXPECT_EQ(Text0(p), "Hi");
  EXPECT_EQ(p.usage().completion_tokens, 1);
}

TEST(UsageParser, CollectsEachSampleOfARequestWithSeveral) {
  // n = 2, streamed: the samples' events interleave; a third choice is not tracked.
  const std::string stream =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"Wor\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":2,\"delta\":{\"content\":\"x\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"ld\"}}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n"
      "data: [DONE]\n\n";
  UsageParser p;
  p.set_streaming(true);
  p.set_collect_text(true, UsageParser::TextSource::kChoice, 2);
  p.FinishWith(stream);
  EXPECT_EQ(p.texts(), (std::vector<std::string>{"Hello", "World"}));
  // Never more than kMaxChoices; the Responses API has one output.
  UsageParser many;
  many.set_collect_text(true, UsageParser::TextSource::kChoice, 1000);
  EXPECT_EQ(many.texts().size(), UsageParser::kMaxChoices);
  UsageParser responses;
  responses.set_collect_text(true, UsageParser::TextSource::kResponses, 4);
  EXPECT_EQ(responses.texts().size(), 1U);
}

TEST(UsageParser, DropsEveryTextWhenTogetherTheyPassTheCap) {
  UsageParser p;
  p.set_streaming(true);
  p.set_collect_text(true, UsageParser::TextSource::kChoice, 2);
  const std::string piece(1 << 16, 'a');
  for (size_t sent = 0; sent <= UsageParser::kMaxTextBytes; sent += 2 * piece.size()) {
    for (int index : {0, 1}) {
      p.Feed("data: {\"choices\":[{\"index\":" + std::to_string(index) + ",\"text\":\"" + piece +
             "\"}]}\n\n");
    }
  }
  p.Finish();
  EXPECT_TRUE(p.texts().empty());
}

TEST(UsageParser, DropsCollectedTextPastTheCap) {
  UsageParser p;
  p.set_streaming(true);
  p.set_collect_text(true);
  const std::string piece(1 << 16, 'a');
  const std::string event = "data: {\"choices\":[{\"index\":0,\"text\":\"" + piece + "\"}]}\n\n";
  for (size_t sent = 0; sent <= UsageParser::kMaxTextBytes; sent += piece.size()) p.Feed(event);
  p.Finish();
  EXPECT_EQ(Text0(p), "");  // a cut answer would index blocks the engine's cache does not match
}

}  // namespace
}  // namespace zumik::epp

// OpenAI response parsing: the answer text of streamed completions and chat (deltas split
// across network reads, empty deltas, the usage chunk) and of non-streamed bodies.
#include "bench/response.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace zumik::bench {
namespace {

std::string Event(std::string_view data) { return "data: " + std::string(data) + "\n\n"; }

// Feeds `bytes` in pieces of `step` bytes, draining chunks after each; returns them.
std::vector<ResponseChunk> FeedInPieces(StreamReader& reader, const std::string& bytes,
                                        size_t step) {
  std::vector<ResponseChunk> chunks;
  for (size_t at = 0; at < bytes.size(); at += step) {
    EXPECT_TRUE(reader.Feed(std::string_view(bytes).substr(at, step)).ok());
    while (std::optional<ResponseChunk> c = reader.Next()) chunks.push_back(std::move(*c));
  }
  return chunks;
}

TEST(ParseResponseChunk, ReadsTheTextOfEveryResponseShape) {
  EXPECT_EQ(ParseResponseChunk(R"({"choices":[{"index":0,"text":" the"}]})").text, " the");
  EXPECT_EQ(ParseResponseChunk(R"({"choices":[{"delta":{"content":"ab\"c"}}]})").text, "ab\"c");
  EXPECT_EQ(
      ParseResponseChunk(R"({"choices":[{"message":{"role":"assistant","content":"whole"}}]})")
          .text,
      "whole");
  // The chat role chunk and a finish chunk without content carry no text.
  EXPECT_EQ(ParseResponseChunk(R"({"choices":[{"delta":{"role":"assistant"}}]})").text, "");
  EXPECT_EQ(ParseResponseChunk(R"({"choices":[{"delta":{},"finish_reason":"length"}]})").text, "");
  EXPECT_EQ(ParseResponseChunk(R"({"choices":[{"delta":{"content":null}}]})").text, "");
}

TEST(ParseResponseChunk, ReadsUsageAndFlagsErrors) {
  const ResponseChunk usage =
      ParseResponseChunk(R"({"choices":[],"usage":{"prompt_tokens":120,"completion_tokens":7,)"
                         R"("prompt_tokens_details":{"cached_tokens":96}}})");
  EXPECT_FALSE(usage.error);
  EXPECT_EQ(usage.prompt_tokens, 120);
  EXPECT_EQ(usage.completion_tokens, 7);
  EXPECT_EQ(usage.cached_tokens, 96);
  const ResponseChunk bare = ParseResponseChunk(R"({"choices":[{"text":"x"}]})");
  EXPECT_EQ(bare.prompt_tokens, -1);
  EXPECT_EQ(bare.completion_tokens, -1);
  EXPECT_EQ(bare.cached_tokens, -1);
  EXPECT_TRUE(ParseResponseChunk(R"({"error":{"message":"overloaded"}})").error);
  EXPECT_TRUE(ParseResponseChunk("not json").error);
  EXPECT_TRUE(ParseResponseChunk("[1,2]").error);
}

TEST(StreamReader, ConcatenatesChatDeltasSplitAcrossReads) {
  const std::string stream =
      Event(R"({"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})") +
      Event(R"({"choices":[{"index":0,"delta":{"content":" Hel"}}]})") +
      Event(R"({"choices":[{"index":0,"delta":{"content":""}}]})") +  // an empty delta
      Event(R"({"choices":[{"index":0,"delta":{"content":"lo \u2014"}}]})") +
      Event(R"({"choices":[{"index":0,"delta":{},"finish_reason":"length"}]})") +
      Event(R"({"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}})") +
      Event("[DONE]");
  // Every split point, from one byte at a time (a delta cut mid-JSON, mid-UTF-8) to whole.
  for (size_t step : {size_t{1}, size_t{3}, size_t{17}, stream.size()}) {
    StreamReader reader(/*keep_answer=*/true);
    const std::vector<ResponseChunk> chunks = FeedInPieces(reader, stream, step);
    ASSERT_EQ(chunks.size(), 6u) << step;
    EXPECT_EQ(reader.answer(), " Hello \xE2\x80\x94") << step;
    EXPECT_TRUE(reader.done()) << step;
    EXPECT_EQ(chunks[5].completion_tokens, 2);
  }
}

TEST(StreamReader, ConcatenatesCompletionTextAndOnlyWhenAsked) {
  const std::string stream = Event(R"({"choices":[{"text":"one"}]})") +
                             Event(R"({"choices":[{"text":""}]})") +
                             Event(R"({"choices":[{"text":" two"}]})");
  StreamReader keep(/*keep_answer=*/true);
  EXPECT_EQ(FeedInPieces(keep, stream, 5).size(), 3u);
  EXPECT_EQ(keep.answer(), "one two");
  EXPECT_FALSE(keep.done()) << "no [DONE] yet: the stream is incomplete";
  StreamReader drop(/*keep_answer=*/false);
  const std::vector<ResponseChunk> chunks = FeedInPieces(drop, stream, 5);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].text, " two");  // the chunks still say what they carry (for timing)
  EXPECT_EQ(drop.answer(), "");
}

TEST(StreamReader, AnErrorChunkAddsNoText) {
  StreamReader reader(/*keep_answer=*/true);
  const std::vector<ResponseChunk> chunks =
      FeedInPieces(reader,
                   Event(R"({"choices":[{"text":"ok"}]})") +
                       Event(R"({"error":{"message":"x"},"choices":[{"text":"bad"}]})"),
                   1000);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_TRUE(chunks[1].error);
  EXPECT_EQ(reader.answer(), "ok");
}

}  // namespace
}  // namespace zumik::bench

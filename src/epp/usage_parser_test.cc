// Usage parser: token usage from SSE streams split at arbitrary points, and JSON bodies.
#include "epp/usage_parser.h"

#include <gtest/gtest.h>

#include <string>

namespace zumik::epp {
namespace {

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
  p.Feed("event: response.completed\r\ndata: {\"type\":\"response.completed\",\"response\":"
         "{\"usage\":{\"input_tokens\":7,\"output_tokens\":4,"
         "\"input_tokens_details\":{\"cached_tokens\":2}}}}\r\n\r\n");
  EXPECT_EQ(p.usage().prompt_tokens, 7);
  EXPECT_EQ(p.usage().completion_tokens, 4);
  EXPECT_EQ(p.usage().cached_tokens, 2);
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

}  // namespace
}  // namespace zumik::epp

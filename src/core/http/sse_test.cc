// SseParser against a table of streams, each fed whole, split at every byte boundary, and
// byte by byte; plus the event formatter.
#include "core/http/sse.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace zumik::http {
namespace {

struct Case {
  std::string name;
  std::string stream;
  std::vector<SseEvent> events;
};

std::vector<Case> Cases() {
  return {
      {"single event", "data: hello\n\n", {{"", "hello", ""}}},
      {"crlf line ends", "data: a\r\n\r\ndata: b\r\n\r\n", {{"", "a", ""}, {"", "b", ""}}},
      {"cr line ends", "data: a\r\rdata: b\r\r", {{"", "a", ""}, {"", "b", ""}}},
      {"mixed line ends", "data: a\r\n\ndata: b\n\r\n", {{"", "a", ""}, {"", "b", ""}}},
      {"multi-line data", "data: a\ndata: b\ndata:\n\n", {{"", "a\nb\n", ""}}},
      {"event and id",
       "event: add\nid: 7\ndata: x\n\ndata: y\n\n",
       {{"add", "x", "7"}, {"", "y", "7"}}},
      {"comments are skipped", ": ping\n\ndata: x\n: another\n\n", {{"", "x", ""}}},
      {"no space after colon", "data:x\n\n", {{"", "x", ""}}},
      {"only one leading space removed", "data:  x\n\n", {{"", " x", ""}}},
      {"field without colon", "data\n\n", {{"", "", ""}}},
      {"no data dispatches nothing", "event: foo\n\ndata: y\n\n", {{"", "y", ""}}},
      {"unknown fields ignored", "foo: bar\ndata: z\n\n", {{"", "z", ""}}},
      {"unterminated event dropped", "data: a\n\ndata: b\n", {{"", "a", ""}}},
      {"leading bom skipped",
       "\xEF\xBB\xBF"
       "data: a\n\n",
       {{"", "a", ""}}},
      {"bom-like bytes later kept", "data: \xEF\xBB\xBF\n\n", {{"", "\xEF\xBB\xBF", ""}}},
      {"id with nul ignored",
       std::string("id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n", 31),
       {{"", "a", "1"}, {"", "b", "1"}}},
      {"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", {{"", "a", "1"}, {"", "b", ""}}},
      {"openai stream",
       "data: {\"choices\":[]}\n\ndata: [DONE]\n\n",
       {{"", "{\"choices\":[]}", ""}, {"", "[DONE]", ""}}},
      {"colon in value", "data: a:b: c\n\n", {{"", "a:b: c", ""}}},
  };
}

std::vector<SseEvent> Drain(SseParser& parser) {
  std::vector<SseEvent> events;
  while (auto event = parser.Next()) events.push_back(std::move(*event));
  return events;
}

TEST(SseParser, ParsesStreamsFedWhole) {
  for (const Case& c : Cases()) {
    SseParser parser;
    ASSERT_TRUE(parser.Feed(c.stream).ok()) << c.name;
    EXPECT_EQ(Drain(parser), c.events) << c.name;
  }
}

TEST(SseParser, ParsesStreamsSplitAtEveryByteBoundary) {
  for (const Case& c : Cases()) {
    for (size_t split = 0; split <= c.stream.size(); ++split) {
      SseParser parser;
      ASSERT_TRUE(parser.Feed(std::string_view(c.stream).substr(0, split)).ok());
      std::vector<SseEvent> events = Drain(parser);
      ASSERT_TRUE(parser.Feed(std::string_view(c.stream).substr(split)).ok());
      for (SseEvent& event : Drain(parser)) events.push_back(std::move(event));
      EXPECT_EQ(events, c.events) << c.name << " split at " << split;
    }
  }
}

TEST(SseParser, ParsesStreamsFedByteByByte) {
  for (const Case& c : Cases()) {
    SseParser parser;
    std::vector<SseEvent> events;
    for (char byte : c.stream) {
      ASSERT_TRUE(parser.Feed(std::string_view(&byte, 1)).ok());
      for (SseEvent& event : Drain(parser)) events.push_back(std::move(event));
    }
    EXPECT_EQ(events, c.events) << c.name;
  }
}

TEST(SseParser, YieldsEachEventAsSoonAsItsBlankLineArrives) {
  SseParser parser;
  ASSERT_TRUE(parser.Feed("data: first\n").ok());
  EXPECT_FALSE(parser.HasEvent());
  ASSERT_TRUE(parser.Feed("\n").ok());
  EXPECT_TRUE(parser.HasEvent());
  EXPECT_EQ(parser.Next()->data, "first");
  EXPECT_FALSE(parser.HasEvent());
}

TEST(SseParser, CountsCommentsAndReadsRetry) {
  SseParser parser;
  ASSERT_TRUE(parser.Feed(": keep-alive\n\nretry: 2500\n\nretry: soon\n\n").ok());
  EXPECT_EQ(parser.comments(), 1u);
  EXPECT_EQ(parser.retry_ms(), 2500);
  EXPECT_FALSE(parser.HasEvent());
}

TEST(SseParser, FailsOnceAnEventOutgrowsTheLimit) {
  SseParser parser(/*max_event_bytes=*/16);
  ASSERT_TRUE(parser.Feed("data: 0123456789\n").ok());
  const absl::Status status = parser.Feed("data: 0123456789\n\n");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(parser.Feed("data: x\n\n").code(), absl::StatusCode::kResourceExhausted);
}

TEST(SseParser, FailsOnAnEndlessLine) {
  SseParser parser(/*max_event_bytes=*/8);
  EXPECT_EQ(parser.Feed("data: 0123456789").code(), absl::StatusCode::kResourceExhausted);
}

TEST(FormatSseEvent, WritesFieldsAndSplitsMultiLineData) {
  EXPECT_EQ(FormatSseEvent("hi"), "data: hi\n\n");
  EXPECT_EQ(FormatSseEvent("a\r\nb\nc", "delta", "9"),
            "event: delta\nid: 9\ndata: a\ndata: b\ndata: c\n\n");
  EXPECT_EQ(FormatSseEvent(""), "data: \n\n");
}

TEST(FormatSseEvent, RoundTripsThroughTheParser) {
  SseParser parser;
  ASSERT_TRUE(parser.Feed(FormatSseEvent("line1\nline2", "tick", "42")).ok());
  const std::optional<SseEvent> event = parser.Next();
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(*event, (SseEvent{"tick", "line1\nline2", "42"}));
}

}  // namespace
}  // namespace zumik::http

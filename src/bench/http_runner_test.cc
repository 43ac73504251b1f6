// The HTTP runner's request bodies: a conversation turn as a chat client sends it (system,
// then alternating user and assistant messages) or as one completions prompt.
#include "bench/http_runner.h"

#include <boost/json.hpp>

#include "gtest/gtest.h"

namespace zumik::bench {
namespace {

namespace json = boost::json;

Workload Api(std::string api) {
  Workload w;
  w.api = std::move(api);
  return w;
}

TEST(RequestBody, ChatTurnSendsTheHistoryAsAlternatingMessages) {
  const std::string text = "SYSTq1q1ANSWERq2";
  const std::vector<size_t> ends = {8, 14, 16};  // user "q1q1", assistant "ANSWER", user "q2"
  const json::value body =
      json::parse(RequestBody(Api("chat"), "m", text, /*system_len=*/4, 7, ends));
  const json::array& messages = body.at("messages").as_array();
  ASSERT_EQ(messages.size(), 4u);
  const std::vector<std::pair<std::string, std::string>> want = {
      {"system", "SYST"}, {"user", "q1q1"}, {"assistant", "ANSWER"}, {"user", "q2"}};
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(messages[i].at("role").as_string(), want[i].first) << i;
    EXPECT_EQ(messages[i].at("content").as_string(), want[i].second) << i;
  }
  EXPECT_EQ(body.at("max_tokens").as_int64(), 7);
  EXPECT_TRUE(body.at("stream").as_bool());
}

TEST(RequestBody, ChatWithoutMessageEndsIsOneUserMessage) {
  const json::value body = json::parse(RequestBody(Api("chat"), "m", "SYSTquestion", 4, 3));
  const json::array& messages = body.at("messages").as_array();
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[1].at("role").as_string(), "user");
  EXPECT_EQ(messages[1].at("content").as_string(), "question");
}

TEST(RequestBody, CompletionsSendTheWholeHistoryAsThePrompt) {
  const std::vector<size_t> ends = {8, 14, 16};
  const json::value body =
      json::parse(RequestBody(Api("completions"), "m", "SYSTq1q1ANSWERq2", 4, 7, ends));
  EXPECT_EQ(body.at("prompt").as_string(), "SYSTq1q1ANSWERq2");
  EXPECT_FALSE(body.as_object().contains("messages"));
}

}  // namespace
}  // namespace zumik::bench

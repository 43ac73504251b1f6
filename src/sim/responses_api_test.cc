#include "sim/responses_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/http/sse.h"

namespace zumik::sim {
namespace {

using testing::HasSubstr;
namespace json = boost::json;

const RequestLimits kLimits{.max_model_len = 8192};

ResponsesRequest Parse(std::string_view body) {
  auto parsed = ParseResponsesRequest(body, kLimits);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().ToJson());
  return parsed.ok() ? *parsed : ResponsesRequest{};
}

TEST(ParseResponsesRequest, StringInputIsOneUserMessageWithDefaults) {
  const ResponsesRequest r = Parse(R"({"model":"m","input":"Hi"})");
  EXPECT_EQ(r.params.model, "m");
  ASSERT_EQ(r.input.size(), 1u);
  EXPECT_EQ(r.input[0], (ChatMessage{ChatRole::kUser, "Hi"}));
  EXPECT_TRUE(r.store);
  EXPECT_FALSE(r.params.stream);
  EXPECT_FALSE(r.params.max_tokens);
  EXPECT_FALSE(r.instructions);
  EXPECT_FALSE(r.previous_response_id);
  EXPECT_FALSE(r.temperature);
}

TEST(ParseResponsesRequest, MessageItemsFieldsAndEchoes) {
  const ResponsesRequest r = Parse(R"({"model":"m","instructions":"Be brief.",
    "input":[{"role":"user","content":"a"},
             {"type":"message","role":"assistant","content":[{"type":"output_text","text":"b"}]},
             {"role":"developer","content":[{"type":"input_text","text":"c"},
                                            {"type":"input_text","text":"d"}]}],
    "max_output_tokens":64,"temperature":0.5,"top_p":0.9,"stream":true,"store":false,
    "previous_response_id":"resp_1","tools":[]})");
  ASSERT_EQ(r.input.size(), 3u);
  EXPECT_EQ(r.input[1], (ChatMessage{ChatRole::kAssistant, "b"}));
  EXPECT_EQ(r.input[2], (ChatMessage{ChatRole::kDeveloper, "c\nd"}));
  EXPECT_EQ(r.instructions, "Be brief.");
  EXPECT_EQ(r.params.max_tokens, 64);
  EXPECT_EQ(r.max_output_tokens, 64);
  EXPECT_EQ(r.temperature, 0.5);
  EXPECT_EQ(r.params.top_p, 0.9);
  EXPECT_TRUE(r.params.stream);
  EXPECT_FALSE(r.store);
  EXPECT_EQ(r.previous_response_id, "resp_1");
}

struct BadCase {
  std::string body;
  std::string message;  // a substring
  std::string param;
};

TEST(ParseResponsesRequest, RejectsWhatVllmOrTheSimulatorRefuses) {
  const std::vector<BadCase> cases = {
      {R"({"input":"x"})", "Missing required field 'model'", "model"},
      {R"({"model":"m"})", "Missing required field 'input'", "input"},
      {R"({"model":"m","input":3})", "'input' must be a string or an array", "input"},
      {R"({"model":"m","input":[{"type":"function_call_output","call_id":"c","output":"o"}]})",
       "Input item type 'function_call_output' is not supported by the simulator", "input[0].type"},
      {R"({"model":"m","input":[{"role":"user","content":[{"type":"input_image"}]}]})",
       "Content part type 'input_image' is not supported by the simulator",
       "input[0].content[0].type"},
      {R"({"model":"m","input":[{"role":"robot","content":"x"}]})", "'input[0].role' must be",
       "input[0].role"},
      {R"({"model":"m","input":[{"role":"user"}]})", "Missing required field", "input[0].content"},
      {R"({"model":"m","input":"x","max_output_tokens":0})", "max_tokens must be at least 1",
       "max_output_tokens"},
      {R"({"model":"m","input":"x","max_output_tokens":9000})", "is too large",
       "max_output_tokens"},
      {R"({"model":"m","input":"x","temperature":-1})", "temperature must be non-negative",
       "temperature"},
      {R"({"model":"m","input":"x","top_p":0})", "top_p must be in (0, 1]", "top_p"},
      {R"({"model":"m","input":"x","background":true})",
       "Background mode (`background: true`) is not supported by the simulator", "background"},
      {R"({"model":"m","input":"x","tools":[{"type":"function","name":"f"}]})",
       "Tool use is not supported", "tools"},
      {R"({"model":"m","input":"x","previous_response_id":7})", "must be a string",
       "previous_response_id"},
  };
  for (const BadCase& c : cases) {
    auto parsed = ParseResponsesRequest(c.body, kLimits);
    ASSERT_FALSE(parsed.ok()) << c.body;
    EXPECT_EQ(parsed.error().http_status, 400) << c.body;
    EXPECT_THAT(parsed.error().message, HasSubstr(c.message)) << c.body;
    EXPECT_EQ(parsed.error().param, c.param) << c.body;
  }
}

TEST(ResponsesMessages, InstructionsThenPreviousConversationThenInput) {
  ResponsesRequest request = Parse(R"({"model":"m","instructions":"sys2","input":"q2"})");
  const ResponseConversation previous{
      .messages = {{ChatRole::kSystem, "sys1"}, {ChatRole::kUser, "q1"}}, .output_text = "a1"};
  const std::vector<ChatMessage> expected = {{ChatRole::kSystem, "sys2"},
                                             {ChatRole::kUser, "q1"},
                                             {ChatRole::kAssistant, "a1"},
                                             {ChatRole::kUser, "q2"}};
  EXPECT_EQ(ResponsesMessages(request, &previous), expected);
  request.instructions.reset();
  EXPECT_EQ(ResponsesMessages(request, nullptr),
            (std::vector<ChatMessage>{{ChatRole::kUser, "q2"}}));
  // A follow-up that repeats the instructions extends the previous prompt (prefix caching).
  request.instructions = "sys1";
  const std::vector<ChatMessage> follow_up = ResponsesMessages(request, &previous);
  const std::string first = RenderChatPrompt(previous.messages);
  const std::string second = RenderChatPrompt(follow_up);
  EXPECT_EQ(second.substr(0, first.size()), first);
}

TEST(MakeResponsesApiId, PrefixedHexUniquePerSaltAndNumber) {
  const std::string a = MakeResponsesApiId("resp_", 1, 1);
  EXPECT_EQ(a.size(), 5u + 32u);
  EXPECT_EQ(a.substr(0, 5), "resp_");
  EXPECT_NE(a, MakeResponsesApiId("resp_", 1, 2));
  EXPECT_NE(a, MakeResponsesApiId("resp_", 2, 1));
  EXPECT_EQ(MakeResponsesApiId("msg_", 1, 1).substr(0, 4), "msg_");
}

ResponseObject SampleObject() {
  ResponseObject r;
  r.id = "resp_1";
  r.created_at = 1700000000;
  r.model = "m";
  r.message_id = "msg_1";
  r.instructions = "Be \"brief\"";
  r.max_output_tokens = 16;
  r.temperature = 0.5;
  r.store = true;
  return r;
}

TEST(FormatResponseObject, CompletedResponseInVllmShape) {
  ResponseObject r = SampleObject();
  r.status = ResponseStatus::kCompleted;
  r.text = "Hello";
  r.usage = Usage{.prompt_tokens = 10, .completion_tokens = 2, .cached_tokens = 8};
  EXPECT_EQ(
      FormatResponseObject(r),
      R"({"id":"resp_1","object":"response","created_at":1700000000,"status":"completed",)"
      R"("background":false,"error":null,"incomplete_details":null,)"
      R"("instructions":"Be \"brief\"","max_output_tokens":16,"model":"m",)"
      R"("output":[{"id":"msg_1","type":"message","role":"assistant","status":"completed",)"
      R"("content":[{"type":"output_text","text":"Hello","annotations":[]}]}],)"
      R"("parallel_tool_calls":true,"previous_response_id":null,"store":true,"temperature":0.5,)"
      R"("tool_choice":"auto","tools":[],"top_p":null,"truncation":"disabled",)"
      R"("usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":8},)"
      R"("output_tokens":2,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":12}})");
}

TEST(FormatResponseObject, StoppedByLengthIsIncompleteWithItsReason) {
  ResponseObject r = SampleObject();
  r.status = ResponseStatus::kIncomplete;
  r.text = "x";
  r.usage = Usage{};
  const json::value v = json::parse(FormatResponseObject(r));
  EXPECT_EQ(v.at("status"), "incomplete");
  EXPECT_EQ(v.at("incomplete_details").at("reason"), "max_output_tokens");
}

TEST(FormatResponseObject, InProgressHasNoOutputAndNoUsage) {
  const json::value v = json::parse(FormatResponseObject(SampleObject()));
  EXPECT_EQ(v.at("status"), "in_progress");
  EXPECT_TRUE(v.at("output").as_array().empty());
  EXPECT_TRUE(v.at("usage").is_null());
}

TEST(ResponsesStreamFormatter, EventSequenceWithIncreasingSequenceNumbers) {
  ResponsesStreamFormatter formatter("msg_1");
  std::string out;
  ResponseObject r = SampleObject();
  formatter.AppendStart(r, &out);
  formatter.AppendDelta("He", &out);
  formatter.AppendDelta("", &out);  // nothing
  formatter.AppendDelta("llo", &out);
  r.status = ResponseStatus::kCompleted;
  r.text = "Hello";
  r.usage = Usage{.prompt_tokens = 3, .completion_tokens = 2};
  formatter.AppendFinish(r, &out);

  http::SseParser parser;
  std::vector<http::SseEvent> events;
  ASSERT_TRUE(parser.Feed(out).ok());
  while (auto event = parser.Next()) events.push_back(*event);
  const std::vector<std::string> expected_types = {
      "response.created",           "response.in_progress",
      "response.output_item.added", "response.content_part.added",
      "response.output_text.delta", "response.output_text.delta",
      "response.output_text.done",  "response.content_part.done",
      "response.output_item.done",  "response.completed"};
  ASSERT_EQ(events.size(), expected_types.size()) << out;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].event, expected_types[i]);
    const json::value data = json::parse(events[i].data);
    EXPECT_EQ(data.at("type").as_string(), expected_types[i]);
    EXPECT_EQ(data.at("sequence_number"), static_cast<int64_t>(i));
  }
  EXPECT_EQ(json::parse(events[0].data).at("response").at("id"), "resp_1");
  EXPECT_EQ(json::parse(events[4].data).at("delta"), "He");
  EXPECT_EQ(json::parse(events[4].data).at("item_id"), "msg_1");
  EXPECT_EQ(json::parse(events[6].data).at("text"), "Hello");
  EXPECT_EQ(json::parse(events[8].data).at("item").at("content").at(0).at("text"), "Hello");
  const json::value completed = json::parse(events[9].data).at("response");
  EXPECT_EQ(completed.at("status"), "completed");
  EXPECT_EQ(completed.at("usage").at("output_tokens"), 2);
  EXPECT_EQ(out.find("[DONE]"), std::string::npos);
  // The exact bytes of one event.
  EXPECT_THAT(out, HasSubstr("event: response.output_text.delta\ndata: "
                             R"({"type":"response.output_text.delta","sequence_number":4,)"
                             R"("output_index":0,"item_id":"msg_1","content_index":0,)"
                             R"("delta":"He","logprobs":[]})"
                             "\n\n"));
}

TEST(FormatResponseObject, NoTextIsAMessageWithoutContent) {
  ResponseObject r = SampleObject();
  r.status = ResponseStatus::kCompleted;
  r.text = "";
  const json::value v = json::parse(FormatResponseObject(r));
  EXPECT_EQ(v.at("output").at(0).at("status"), "completed");
  EXPECT_TRUE(v.at("output").at(0).at("content").as_array().empty());
}

TEST(ResponsesStreamFormatter, NoTextMeansNoItemEvents) {
  ResponsesStreamFormatter formatter("msg_1");
  std::string out;
  ResponseObject r = SampleObject();
  formatter.AppendStart(r, &out);
  r.status = ResponseStatus::kCompleted;
  formatter.AppendFinish(r, &out);
  EXPECT_EQ(out.find("output_item"), std::string::npos);
  EXPECT_THAT(out, HasSubstr("event: response.completed\n"));
}

}  // namespace
}  // namespace zumik::sim

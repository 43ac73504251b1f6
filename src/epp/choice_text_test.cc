// Choice 0's text: the DOM-free scan agrees with the DOM reading on every document it answers
// for (and on every truncation and single-byte change of them), and answers for what model
// servers send.
#include "epp/choice_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "epp/damaged_documents.h"

namespace zumik::epp {
namespace {

struct Case {
  std::string doc;
  std::string text;  // what AppendChoiceText appends
  bool scanned;      // the scan answers (no DOM fallback)
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      // What the simulator and vLLM send: completions, chat chunks, whole chat responses.
      {R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":)"
       R"([{"index":0,"text":" one two","logprobs":null,"finish_reason":null}]})",
       " one two", true},
      {R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,)"
       R"("delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]})",
       "Hi", true},
      {R"({"choices":[{"index":0,"message":{"role":"assistant","content":"ab\ncd\t\"q\"\\/"},)"
       R"("finish_reason":"stop"}],"usage":{"prompt_tokens":3}})",
       "ab\ncd\t\"q\"\\/", true},
      {R"({"choices":[{"text":"no index"}]})", "no index", true},
      {"{\"choices\":[{\"index\":0,\"text\":\"caf\xc3\xa9 \xe2\x82\xac\"}]}",
       "caf\xc3\xa9 \xe2\x82\xac", true},
      // Choice 0 is the first object whose index is 0; `text` wins over delta and message.
      {R"({"choices":[7,{"index":1,"text":"x"},{"index":0,"text":"y"},{"index":0,"text":"z"}]})",
       "y", true},
      {R"({"choices":[{"index":0,"text":null,"delta":{"content":"d"}}]})", "", true},
      {R"({"choices":[{"index":0,"delta":"s","message":{"content":"m"}}]})", "m", true},
      {R"({"choices":[{"index":0,"delta":{"role":"assistant"},"message":{"content":"m"}}]})", "m",
       true},
      {R"({"choices":[{"index":0,"delta":{"content":null}}]})", "", true},
      {R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"t","function":{}}]}}]})", "", true},
      {R"({"choices":[{"index":"0","text":"x"}]})", "", true},
      {R"({"choices":[{"index":10,"text":"x"}]})", "", true},
      {R"({"choices":[],"usage":{"prompt_tokens":1}})", "", true},
      {R"({"choices":{"index":0,"text":"x"}})", "", true},
      {R"({"object":"x"})", "", true},
      {" \n{\"choices\":[{\"index\":0,\"text\":\"sp\"}]} \n", "sp", true},
      // Left to the DOM: \u escapes, repeated keys, numbers it might call 0, not an object.
      {R"({"choices":[{"index":0,"text":"\u00e9"}]})", "\xc3\xa9", false},
      {R"({"choices":[{"index":0,"text":"a","text":"b"}]})", "b", false},
      {R"({"choices":[],"choices":[{"text":"b"}]})", "b", false},
      {R"({"choices":[{"index":-0,"text":"n"}]})", "n", false},
      {R"({"choices":[{"index":0.0,"text":"n"}]})", "", false},
      {"[]", "", false},
      {"not json", "", false},
      {R"({"choices":[{"index":0,"text":"cut)", "", false},
  };
  return cases;
}

std::string Dom(std::string_view doc) {
  std::string out;
  ParseChoiceText(doc, &out);
  return out;
}

void ExpectAgrees(std::string_view doc) {
  std::string scan;
  if (ScanChoiceText(doc, &scan) == ScanResult::kFound) {
    EXPECT_EQ(scan, Dom(doc)) << doc;
  } else {
    EXPECT_EQ(scan, "") << "an unsure scan appends nothing: " << doc;
  }
}

TEST(ChoiceText, ReadsWhatModelServersSendWithoutTheDom) {
  for (const Case& c : Cases()) {
    std::string scan;
    const bool sure = ScanChoiceText(c.doc, &scan) == ScanResult::kFound;
    EXPECT_EQ(sure, c.scanned) << c.doc;
    std::string out = "prefix:";
    AppendChoiceText(c.doc, &out);
    EXPECT_EQ(out, "prefix:" + c.text) << c.doc;
    EXPECT_EQ(Dom(c.doc), c.text) << c.doc;
  }
}

TEST(ChoiceText, ScanAgreesWithTheDomOnEveryTruncationAndByteChange) {
  for (const Case& c : Cases()) ForEachDamaged(c.doc, ExpectAgrees);
}

TEST(ChoiceText, AppendsAcrossEventsAndKeepsWhatWasThere) {
  std::string out;
  AppendChoiceText(R"({"choices":[{"index":0,"text":"Hel"}]})", &out);
  AppendChoiceText(R"({"choices":[{"index":0,"text":"lo"}]})", &out);
  AppendChoiceText(R"({"choices":[],"usage":{"prompt_tokens":3}})", &out);
  AppendChoiceText("garbage", &out);
  EXPECT_EQ(out, "Hello");
}

// The Responses API's text: delta events and whole responses; nothing from other events.
TEST(ResponsesText, ReadsDeltaEventsAndWholeResponses) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"type":"response.output_text.delta","item_id":"msg_1","output_index":1,)"
       R"("content_index":0,"delta":"Hel","sequence_number":4})",
       "Hel"},
      {R"({"type":"response.output_text.done","text":"Hello"})", ""},
      {R"({"type":"response.completed","response":{"object":"response","output":[)"
       R"({"type":"message","content":[{"type":"output_text","text":"Hello"}]}]}})",
       ""},
      {R"({"id":"resp_1","object":"response","status":"completed","output":[)"
       R"({"type":"reasoning","summary":[{"type":"summary_text","text":"think"}]},)"
       R"({"type":"message","role":"assistant","content":[)"
       R"({"type":"output_text","text":"Hel","annotations":[]},{"type":"refusal","refusal":"x"},)"
       R"({"type":"output_text","text":"lo"}]}]})",
       "Hello"},
      {R"({"object":"chat.completion","output":[{"type":"message","content":[)"
       R"({"type":"output_text","text":"no"}]}]})",
       ""},
      {R"({"type":"response.output_text.delta","delta":5})", ""},
      {R"({"type":"response.output_text.delta","delta":"cut)", ""},
      {"[1,2]", ""},
  };
  for (const auto& [doc, text] : cases) {
    std::string out = "<";
    AppendResponsesText(doc, &out);
    EXPECT_EQ(out, "<" + text) << doc;
  }
}

}  // namespace
}  // namespace zumik::epp

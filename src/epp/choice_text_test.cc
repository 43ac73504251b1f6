// The choices' texts: the DOM-free scan agrees with the DOM reading on every document it
// answers for (and on every truncation and single-byte change of them), and answers for what
// model servers send.
#include "epp/choice_text.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "epp/damaged_documents.h"

namespace zumik::epp {
namespace {

// The cases track choices 0, 1 and 2.
constexpr size_t kTracked = 3;
using Texts = std::vector<std::string>;

struct Case {
  std::string doc;
  Texts texts;   // what AppendChoiceTexts appends, by index
  bool scanned;  // the scan answers (no DOM fallback)
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      // What the simulator and vLLM send: completions, chat chunks, whole chat responses.
      {R"({"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":)"
       R"([{"index":0,"text":" one two","logprobs":null,"finish_reason":null}]})",
       {" one two", "", ""},
       true},
      {R"({"id":"c","object":"chat.completion.chunk","choices":[{"index":0,)"
       R"("delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]})",
       {"Hi", "", ""},
       true},
      {R"({"choices":[{"index":0,"message":{"role":"assistant","content":"ab\ncd\t\"q\"\\/"},)"
       R"("finish_reason":"stop"}],"usage":{"prompt_tokens":3}})",
       {"ab\ncd\t\"q\"\\/", "", ""},
       true},
      {R"({"choices":[{"text":"no index"}]})", {"no index", "", ""}, true},
      {"{\"choices\":[{\"index\":0,\"text\":\"caf\xc3\xa9 \xe2\x82\xac\"}]}",
       {"caf\xc3\xa9 \xe2\x82\xac", "", ""},
       true},
      // n > 1: every sample in one whole response, or one per streamed event.
      {R"({"choices":[{"index":0,"message":{"content":"a"}},{"index":1,"message":{"content":"b"}},)"
       R"({"index":2,"message":{"content":"c"}},{"index":3,"message":{"content":"untracked"}}]})",
       {"a", "b", "c"},
       true},
      {R"({"choices":[{"index":2,"delta":{"content":"two"}}]})", {"", "", "two"}, true},
      // Choice i is the first object whose index is i; `text` wins over delta and message.
      {R"({"choices":[7,{"index":1,"text":"x"},{"index":0,"text":"y"},{"index":0,"text":"z"}]})",
       {"y", "x", ""},
       true},
      {R"({"choices":[{"index":0,"text":null,"delta":{"content":"d"}}]})", {"", "", ""}, true},
      {R"({"choices":[{"index":0,"delta":"s","message":{"content":"m"}}]})", {"m", "", ""}, true},
      {R"({"choices":[{"index":0,"delta":{"role":"assistant"},"message":{"content":"m"}}]})",
       {"m", "", ""},
       true},
      {R"({"choices":[{"index":0,"delta":{"content":null}}]})", {"", "", ""}, true},
      {R"({"choices":[{"index":0,"delta":{"tool_calls":[{"id":"t","function":{}}]}}]})",
       {"", "", ""},
       true},
      {R"({"choices":[{"index":"0","text":"x"}]})", {"", "", ""}, true},
      {R"({"choices":[{"index":10,"text":"x"}]})", {"", "", ""}, true},
      {R"({"choices":[{"index":12345678901234567890123,"text":"x"}]})", {"", "", ""}, true},
      {R"({"choices":[],"usage":{"prompt_tokens":1}})", {"", "", ""}, true},
      {R"({"choices":{"index":0,"text":"x"}})", {"", "", ""}, true},
      {R"({"object":"x"})", {"", "", ""}, true},
      {" \n{\"choices\":[{\"index\":0,\"text\":\"sp\"}]} \n", {"sp", "", ""}, true},
      // Left to the DOM: \u escapes, repeated keys, numbers it might call an integer, not an
      // object.
      {R"({"choices":[{"index":0,"text":"\u00e9"}]})", {"\xc3\xa9", "", ""}, false},
      {R"({"choices":[{"index":0,"text":"a","text":"b"}]})", {"b", "", ""}, false},
      {R"({"choices":[],"choices":[{"text":"b"}]})", {"b", "", ""}, false},
      {R"({"choices":[{"index":-0,"text":"n"}]})", {"n", "", ""}, false},
      {R"({"choices":[{"index":-1,"text":"n"}]})", {"", "", ""}, false},
      {R"({"choices":[{"index":0.0,"text":"n"}]})", {"", "", ""}, false},
      {R"({"choices":[{"index":1e0,"text":"n"}]})", {"", "", ""}, false},
      {"[]", {"", "", ""}, false},
      {"not json", {"", "", ""}, false},
      {R"({"choices":[{"index":0,"text":"cut)", {"", "", ""}, false},
  };
  return cases;
}

Texts Dom(std::string_view doc) {
  Texts out(kTracked);
  ParseChoiceTexts(doc, &out);
  return out;
}

void ExpectAgrees(std::string_view doc) {
  Texts scan(kTracked);
  if (ScanChoiceTexts(doc, &scan) == ScanResult::kFound) {
    EXPECT_EQ(scan, Dom(doc)) << doc;
  } else {
    EXPECT_EQ(scan, Texts(kTracked)) << "an unsure scan appends nothing: " << doc;
  }
}

TEST(ChoiceText, ReadsWhatModelServersSendWithoutTheDom) {
  for (const Case& c : Cases()) {
    Texts scan(kTracked);
    const bool sure = ScanChoiceTexts(c.doc, &scan) == ScanResult::kFound;
    EXPECT_EQ(sure, c.scanned) << c.doc;
    Texts out = {"a:", "b:", "c:"};
    AppendChoiceTexts(c.doc, &out);
    EXPECT_EQ(out, (Texts{"a:" + c.texts[0], "b:" + c.texts[1], "c:" + c.texts[2]})) << c.doc;
    EXPECT_EQ(Dom(c.doc), c.texts) << c.doc;
  }
}

TEST(ChoiceText, ScanAgreesWithTheDomOnEveryTruncationAndByteChange) {
  for (const Case& c : Cases()) ForEachDamaged(c.doc, ExpectAgrees);
}

TEST(ChoiceText, AppendsAcrossEventsAndKeepsWhatWasThere) {
  Texts out(2);
  AppendChoiceTexts(R"({"choices":[{"index":0,"text":"Hel"}]})", &out);
  AppendChoiceTexts(R"({"choices":[{"index":1,"text":"Wor"}]})", &out);
  AppendChoiceTexts(R"({"choices":[{"index":0,"text":"lo"}]})", &out);
  AppendChoiceTexts(R"({"choices":[{"index":1,"text":"ld"}]})", &out);
  AppendChoiceTexts(R"({"choices":[],"usage":{"prompt_tokens":3}})", &out);
  AppendChoiceTexts("garbage", &out);
  EXPECT_EQ(out, (Texts{"Hello", "World"}));
  Texts none;  // nothing tracked: nothing appended, whatever the document
  AppendChoiceTexts(R"({"choices":[{"index":0,"text":"x"}]})", &none);
  EXPECT_TRUE(none.empty());
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

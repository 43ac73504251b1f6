// The DOM-free usage scan agrees with the DOM reading on every document it answers for, and
// answers for the documents model servers send.
#include "epp/usage_scanner.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "epp/damaged_documents.h"

namespace zumik::epp {
namespace {

std::string Describe(const Usage& u) {
  return std::to_string(u.prompt_tokens) + "/" + std::to_string(u.completion_tokens) + "/" +
         std::to_string(u.cached_tokens);
}

// The scan's answer, or the DOM's when the scan is unsure (what UsageParser does).
Usage Read(std::string_view doc, bool* scanned = nullptr) {
  Usage found;
  bool sure = ScanUsage(doc, found) == ScanResult::kFound;
  if (!sure) ParseUsage(doc, found);
  if (scanned != nullptr) *scanned = sure;
  return found;
}

void ExpectAgrees(std::string_view doc) {
  Usage dom;
  ParseUsage(doc, dom);
  Usage scan;
  if (ScanUsage(doc, scan) == ScanResult::kFound) {
    EXPECT_EQ(Describe(scan), Describe(dom)) << doc;
  }
}

struct Case {
  std::string doc;
  std::string expected;  // prompt/completion/cached
  bool scanned;          // the scan answers (no DOM fallback)
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      // What the simulator and vLLM send.
      {R"({"id":"cmpl-1","object":"text_completion","created":1796581893,"model":"m",)"
       R"("choices":[{"index":0,"text":" one","logprobs":null,"finish_reason":"length",)"
       R"("stop_reason":null}],"usage":{"prompt_tokens":9,"completion_tokens":1,)"
       R"("total_tokens":10,"prompt_tokens_details":{"cached_tokens":0}}})",
       "9/1/0", true},
      {R"({"choices":[{"text":" our"}],"usage":null})", "-1/-1/-1", true},
      {R"({"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2}})", "2/2/-1", true},
      // Responses API: usage under "response"; the root's usage is then ignored.
      {R"({"type":"response.completed","response":{"usage":{"input_tokens":7,)"
       R"("output_tokens":4,"input_tokens_details":{"cached_tokens":2}}}})",
       "7/4/2", true},
      {R"({"usage":{"prompt_tokens":1},"response":{"id":"r"}})", "-1/-1/-1", true},
      {R"({"usage":{"prompt_tokens":1},"response":"text"})", "1/-1/-1", true},
      {R"({"response":{"response":{"usage":{"prompt_tokens":1}}}})", "-1/-1/-1", true},
      // "usage" inside strings, as a value, in nested objects and arrays.
      {R"({"text":"\"usage\":{\"prompt_tokens\":5}","usage":{"prompt_tokens":3}})", "3/-1/-1",
       true},
      {R"({"choices":[{"usage":{"prompt_tokens":5}}],"meta":{"usage":{"prompt_tokens":6}}})",
       "-1/-1/-1", true},
      {R"({"note":"usage","x":["usage",{"usage":1}]})", "-1/-1/-1", true},
      {R"({"a\"usage":{"prompt_tokens":5}})", "-1/-1/-1", true},
      {R"({"text":"a\\","usage":{"prompt_tokens":4}})", "4/-1/-1", true},
      // Whitespace everywhere JSON allows it.
      {" \t\r\n{ \"usage\" :\n{ \"prompt_tokens\" : 12 ,\"completion_tokens\":\t5 ,"
       " \"prompt_tokens_details\" : { \"cached_tokens\" : 8 } } } \n",
       "12/5/8", true},
      // Missing, null, mistyped and fallback fields.
      {R"({"usage":{}})", "-1/-1/-1", true},
      {R"({"usage":{"prompt_tokens":null,"input_tokens":6,"output_tokens":2}})", "6/2/-1", true},
      {R"({"usage":{"prompt_tokens":"7","completion_tokens":true}})", "-1/-1/-1", true},
      {R"({"usage":{"prompt_tokens":-3,"input_tokens":4}})", "4/-1/-1", true},
      {R"({"usage":{"prompt_tokens_details":null,"input_tokens_details":{"cached_tokens":3}}})",
       "-1/-1/3", true},
      {R"({"usage":{"prompt_tokens_details":{"cached_tokens":1},)"
       R"("input_tokens_details":{"cached_tokens":3}}})",
       "-1/-1/3", true},
      {R"({"usage":{"prompt_tokens_details":{"cached_tokens":1},"input_tokens_details":{}}})",
       "-1/-1/1", true},
      {R"({"usage":[1,2]})", "-1/-1/-1", true},
      {R"({"usage":{"prompt_tokens":0,"completion_tokens":123456789012345678}})",
       "0/123456789012345678/-1", true},
      {R"({"x":[[[]],{}],"y":-1.5e-3,"z":0.25,"w":[true,false,null],"usage":{"prompt_tokens":1}})",
       "1/-1/-1", true},
      // Left to the DOM: doubles, huge integers, -0, \u escapes, non-ASCII, repeated keys.
      {R"({"usage":{"prompt_tokens":5.0}})", "5/-1/-1", false},
      {R"({"usage":{"prompt_tokens":1e2}})", "100/-1/-1", false},
      {R"({"usage":{"prompt_tokens":9223372036854775807}})", "9223372036854775807/-1/-1", false},
      {R"({"usage":{"prompt_tokens":-0}})", "0/-1/-1", false},
      {R"({"usage":{"prompt_tokens":12345678901234567890123456789}})", "-1/-1/-1", false},
      {R"({"usage":{"prompt_tokens":1e300}})", "-1/-1/-1", false},
      {R"({"us\u0061ge":{"prompt_tokens":5}})", "5/-1/-1", false},
      // UTF-8 text is read in place; anything but strict UTF-8 goes to the DOM (which rejects it).
      {"{\"text\":\" \xe2\x80\x94 h\xc3\xa9 \xf0\x9f\x98\x80\",\"usage\":{\"prompt_tokens\":5}}",
       "5/-1/-1", true},
      {"{\"text\":\"\xc0\x80\",\"usage\":{\"prompt_tokens\":5}}", "-1/-1/-1", false},
      {"{\"text\":\"\xed\xa0\x80\",\"usage\":{\"prompt_tokens\":5}}", "-1/-1/-1", false},
      {"{\"text\":\"\xe2\x80\",\"usage\":{\"prompt_tokens\":5}}", "-1/-1/-1", false},
      {"{\"text\":\"\xf4\x90\x80\x80\",\"usage\":{\"prompt_tokens\":5}}", "-1/-1/-1", false},
      {"{\"text\":\"\xff\",\"usage\":{\"prompt_tokens\":5}}", "-1/-1/-1", false},
      {"{\"usage\":{\"prompt_tokens\":5}}\xc3\xa9", "-1/-1/-1", false},
      {R"({"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}})", "", false},
      {R"({"usage":{"prompt_tokens":1,"prompt_tokens":2}})", "", false},
      // Invalid documents give nothing either way.
      {"not json at all", "-1/-1/-1", false},
      {R"({"usage":{"prompt_tokens":5})", "-1/-1/-1", false},
      {R"({"usage":{"prompt_tokens":5}} x)", "-1/-1/-1", false},
      {R"({"usage":{"prompt_tokens":05}})", "-1/-1/-1", false},
      {R"({"usage":{"prompt_tokens":5,}})", "-1/-1/-1", false},
      {R"({"s":"a)"
       "\n"
       R"(b","usage":{"prompt_tokens":5}})",
       "-1/-1/-1", false},
      {R"({"s":"\x","usage":{"prompt_tokens":5}})", "-1/-1/-1", false},
      {R"([{"usage":{"prompt_tokens":5}}])", "-1/-1/-1", false},
      {"", "-1/-1/-1", false},
  };
  return cases;
}

TEST(UsageScanner, ReadsEveryCaseAsTheDomDoes) {
  for (const Case& c : Cases()) {
    bool scanned = false;
    Usage u = Read(c.doc, &scanned);
    if (!c.expected.empty()) {
      EXPECT_EQ(Describe(u), c.expected) << c.doc;
    }
    EXPECT_EQ(scanned, c.scanned) << c.doc;
    ExpectAgrees(c.doc);
  }
}

TEST(UsageScanner, LeavesDeepNestingToTheDom) {
  std::string deep = R"({"usage":{"prompt_tokens":1},"x":)";
  for (int i = 0; i < 40; ++i) deep += "[";
  for (int i = 0; i < 40; ++i) deep += "]";
  deep += "}";
  bool scanned = true;
  Read(deep, &scanned);
  EXPECT_FALSE(scanned);
  ExpectAgrees(deep);
}

// Every truncation and single-byte change of the cases: the scan never disagrees with the DOM.
TEST(UsageScanner, AgreesWithTheDomOnDamagedDocuments) {
  for (const Case& c : Cases()) ForEachDamaged(c.doc, ExpectAgrees);
}

// Long strings are skipped sixteen bytes at a time: a special byte at any offset is still seen.
TEST(UsageScanner, SeesSpecialBytesAtEveryOffsetOfALongString) {
  for (char special : std::string("\"\\\x01\x1f\x7f\x80\xc3\xe2\xff ")) {
    for (size_t at = 0; at < 100; ++at) {
      std::string text(100, 'a');
      text[at] = special;
      std::string doc = R"({"text":")" + text + R"(","usage":{"prompt_tokens":5}})";
      bool scanned = false;
      Usage u = Read(doc, &scanned);
      ExpectAgrees(doc);
      if (special == ' ' || special == '\x7f') {
        EXPECT_TRUE(scanned) << at;
        EXPECT_EQ(u.prompt_tokens, 5) << at;
      } else {
        EXPECT_EQ(u.prompt_tokens, -1) << int(special) << " at " << at;  // invalid JSON
      }
    }
  }
}

}  // namespace
}  // namespace zumik::epp

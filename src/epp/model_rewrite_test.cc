#include "epp/model_rewrite.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "core/rng.h"
#include "core/utf8.h"

namespace zumik::epp {
namespace {

TEST(RewriteModel, ReplacesOnlyTheTopLevelModelAndKeepsEveryOtherByte) {
  const std::string body =
      R"({ "messages": [{"role":"user","content":"model \"x\"","model":"inner"}],)"
      "\n  \"model\" :  \"meta-llama/Llama-3.1-8B-Instruct\", \"max_tokens\": 1.50e1 }";
  auto out = RewriteModel(body, "lora-a");
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, R"({ "messages": [{"role":"user","content":"model \"x\"","model":"inner"}],)"
                  "\n  \"model\" :  \"lora-a\", \"max_tokens\": 1.50e1 }");
}

TEST(RewriteModel, EscapesTheNewName) {
  auto out = RewriteModel(R"({"model":"m","prompt":"p"})", "a\"b\\c\nd\x01");
  ASSERT_TRUE(out.has_value());
  const boost::json::value parsed = boost::json::parse(*out);
  EXPECT_EQ(parsed.at("model").as_string(), "a\"b\\c\nd\x01");
  EXPECT_EQ(parsed.at("prompt").as_string(), "p");
}

TEST(RewriteModel, BodiesTheScanLeavesToTheDomAreReserialisedInOrder) {
  // A \u escape, and a repeated model key (the DOM keeps the last, as json.loads does).
  auto escaped = RewriteModel(R"({"prompt":"caf\u00e9","model":"m","n":1})", "t");
  ASSERT_TRUE(escaped.has_value());
  EXPECT_EQ(*escaped, "{\"prompt\":\"caf\xc3\xa9\",\"model\":\"t\",\"n\":1}");
  auto repeated = RewriteModel(R"({"model":"a","model":"b"})", "t");
  ASSERT_TRUE(repeated.has_value());
  EXPECT_EQ(boost::json::parse(*repeated).at("model").as_string(), "t");
}

TEST(RewriteModel, NoObjectOrNoStringModelIsNotRewritten) {
  EXPECT_FALSE(RewriteModel("", "t").has_value());
  EXPECT_FALSE(RewriteModel("[1]", "t").has_value());
  EXPECT_FALSE(RewriteModel(R"({"prompt":"p"})", "t").has_value());
  EXPECT_FALSE(RewriteModel(R"({"model":7})", "t").has_value());
  EXPECT_FALSE(RewriteModel(R"({"model":"m"} trailing)", "t").has_value());
  EXPECT_FALSE(RewriteModel("{\"model\":\"\xff\"}", "t").has_value());
}

// Every way to cut a response into two chunks gives the same bytes as one chunk.
std::string RestoreInTwo(std::string_view served, std::string_view client, std::string_view body,
                         size_t cut) {
  ModelNameRestorer restorer(served, client);
  std::string out;
  restorer.Feed(body.substr(0, cut), false, out);
  restorer.Feed(body.substr(cut), true, out);
  return out;
}

TEST(ModelNameRestorer, WritesTheClientNameBackInBothSpacingsAcrossEveryChunkBoundary) {
  const std::string body =
      R"({"id":"x","model":"org/served-v2","choices":[]}data: {"model": "org/served-v2"})"
      R"( {"model_name":"org/served-v2","model":"other"} "model":"org/served-v2)";
  const std::string want =
      R"({"id":"x","model":"alias","choices":[]}data: {"model": "alias"})"
      R"( {"model_name":"org/served-v2","model":"other"} "model":"org/served-v2)";
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    EXPECT_EQ(RestoreInTwo("org/served-v2", "alias", body, cut), want) << "cut at " << cut;
  }
  EXPECT_TRUE(ModelNameRestorer("org/served-v2", "alias").changes_length());
  EXPECT_FALSE(ModelNameRestorer("abc", "xyz").changes_length());
}

TEST(ModelNameRestorer, HoldsBackOnlyWhatMayBeginAMatch) {
  ModelNameRestorer restorer("served", "alias");
  std::string out;
  restorer.Feed("data: {\"text\":\"hi\"}\n\n", false, out);
  EXPECT_EQ(out, "data: {\"text\":\"hi\"}\n\n");  // an SSE event goes out whole
  out.clear();
  restorer.Feed("data: {\"mod", false, out);
  EXPECT_EQ(out, "data: {");
  restorer.Feed("el\":\"serv", false, out);
  EXPECT_EQ(out, "data: {");
  restorer.Feed("ed\",", false, out);
  EXPECT_EQ(out, "data: {\"model\":\"alias\",");
  out.clear();
  restorer.Feed("\"model\":\"ser", true, out);  // the end flushes an unfinished match
  EXPECT_EQ(out, "\"model\":\"ser");
}

TEST(ModelNameRestorer, NamesAreMatchedAndWrittenJsonEscaped) {
  std::string out;
  ModelNameRestorer restorer("q\"uote", "caf\xc3\xa9/\"x\"");
  restorer.Feed(R"({"model":"q\"uote"})", true, out);
  EXPECT_EQ(out, "{\"model\":\"caf\xc3\xa9/\\\"x\\\"\"}");
}

// Random texts dense in near-matches, cut at random: chunked output equals whole output.
TEST(ModelNameRestorer, AnyChunkingGivesTheWholeBodysBytes) {
  Rng rng(11);
  const std::string alphabet = "\"model: ab";
  for (int round = 0; round < 2000; ++round) {
    std::string body;
    const int64_t length = rng.UniformInt(0, 60);
    for (int64_t i = 0; i < length; ++i) {
      if (rng.Bernoulli(0.15)) {
        body += rng.Bernoulli(0.5) ? "\"model\":\"ab\"" : "\"model\": \"a";
      } else {
        body += alphabet[static_cast<size_t>(rng.UniformInt(0, 9))];
      }
    }
    std::string whole;
    ModelNameRestorer("ab", "client-name").Feed(body, true, whole);
    std::string chunked;
    ModelNameRestorer restorer("ab", "client-name");
    for (size_t at = 0; at < body.size();) {
      const auto step = static_cast<size_t>(rng.UniformInt(0, 7));
      restorer.Feed(std::string_view(body).substr(at, step), false, chunked);
      at += step;
    }
    restorer.Feed({}, true, chunked);
    ASSERT_EQ(chunked, whole) << body;
  }
}

// The guard the pipeline puts before a rewrite: the new name must be UTF-8 to go into JSON.
TEST(IsUtf8, AcceptsUtf8AndRejectsEveryMalformedSequence) {
  EXPECT_TRUE(IsUtf8(""));
  EXPECT_TRUE(IsUtf8("lora-a"));
  EXPECT_TRUE(IsUtf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  for (const char* bad :
       {"\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"}) {
    EXPECT_FALSE(IsUtf8(bad)) << bad;
  }
}

}  // namespace
}  // namespace zumik::epp

// The simulated replica over real HTTP on loopback: OpenAI responses (streaming and not),
// errors, vLLM metrics after known traffic, client disconnects, many concurrent streams.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>
#include <map>
#include <set>
#include <thread>

#include "core/http/client.h"
#include "core/http/sse.h"
#include "core/metrics/parser.h"
#include "core/metrics/query.h"
#include "fmt/format.h"
#include "sim/server/sim_server.h"
#include "sim/server/test_fleet.h"
#include "sim/tokenizer.h"

namespace zumik::sim {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using http::FetchBlocking;
using http::Method;

constexpr std::string_view kModel = "meta-llama/Llama-3.1-8B-Instruct";

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = test_fleet::StartTestFleet([](SimServerOptions& options) { options.threads = 2; });
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Stop(std::chrono::seconds(1));
  }

  std::string Url(int replica, std::string_view path) const {
    return test_fleet::ReplicaUrl(*server_, replica, path);
  }
  http::ClientResponse Post(int replica, std::string_view path, std::string body) {
    auto response = FetchBlocking(Method::post, Url(replica, path), std::move(body),
                                  {{"Content-Type", "application/json"}});
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : http::ClientResponse{};
  }
  std::vector<metrics::Sample> Scrape(int replica) {
    auto response = FetchBlocking(Method::get, Url(replica, "/metrics"));
    EXPECT_TRUE(response.ok());
    auto samples = metrics::ParseText(response->body);
    EXPECT_TRUE(samples.ok()) << samples.status();
    return samples.ok() ? *samples : std::vector<metrics::Sample>{};
  }

  // Streams `body` from `replica`, hangs up after the first bytes, and waits (up to 10 s) for
  // the replica to count `expected` aborted engine requests; returns the count it last saw.
  std::optional<double> AbortsAfterHangingUp(int replica, std::string body, double expected,
                                             std::string_view path = "/v1/completions");

  std::unique_ptr<SimServer> server_;
};

// A /v1/completions body whose `prompt` is any JSON value (a list of strings, token ids...).
std::string PromptBody(json::value prompt, int max_tokens, bool stream, std::string_view extra) {
  json::object body{{"model", kModel},
                    {"prompt", std::move(prompt)},
                    {"max_tokens", max_tokens},
                    {"ignore_eos", true},
                    {"stream", stream}};
  std::string text = json::serialize(body);
  if (!extra.empty()) text.insert(text.size() - 1, std::string(",") + std::string(extra));
  return text;
}

std::string CompletionBody(std::string_view prompt, int max_tokens, bool stream = false,
                           std::string_view extra = "") {
  return PromptBody(json::string(prompt), max_tokens, stream, extra);
}

TEST_F(ReplicaTest, CompletionReportsUsageAndNamesTheReplica) {
  const std::string prompt(400, 'a');  // 100 tokens
  auto response = Post(1, "/v1/completions", CompletionBody(prompt, 12));
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.Header("x-zumik-replica"), "replica-1");
  const json::value body = json::parse(response.body);
  EXPECT_EQ(body.at("object").as_string(), "text_completion");
  EXPECT_EQ(body.at("model").as_string(), kModel);
  const auto& choice = body.at("choices").as_array().at(0);
  EXPECT_EQ(choice.at("finish_reason").as_string(), "length");
  EXPECT_EQ(choice.at("text").as_string().size(), 12u * 4);
  const auto& usage = body.at("usage");
  EXPECT_EQ(usage.at("prompt_tokens").as_int64(), 100);
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), 12);
  EXPECT_EQ(usage.at("total_tokens").as_int64(), 112);
  EXPECT_EQ(usage.at("prompt_tokens_details").at("cached_tokens").as_int64(), 0);
}

TEST_F(ReplicaTest, RepeatedPromptHitsThePrefixCacheInWholeBlocks) {
  const std::string prompt(size_t{4} * 100, 'b');  // 100 tokens = 6 full blocks + 4
  ASSERT_EQ(Post(0, "/v1/completions", CompletionBody(prompt, 2)).status, 200);
  auto second = Post(0, "/v1/completions", CompletionBody(prompt, 2));
  ASSERT_EQ(second.status, 200);
  const json::value body = json::parse(second.body);
  EXPECT_EQ(body.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 96);
  // The other replica has its own cache.
  auto other = Post(1, "/v1/completions", CompletionBody(prompt, 2));
  EXPECT_EQ(json::parse(other.body).at("usage").at("prompt_tokens_details").at("cached_tokens"), 0);
}

TEST_F(ReplicaTest, AnswerSentBackInTheNextPromptHitsItsOwnBlocks) {
  // A chat client's next turn is prompt + answer + question: the engine generated the answer's
  // KV, so (as with vLLM) those blocks are cached, not only the first prompt's.
  const std::string prompt(size_t{4} * 64, 'c');  // 64 tokens = 4 full blocks
  auto first = Post(0, "/v1/completions", CompletionBody(prompt, 100));
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string answer(json::parse(first.body).at("choices").at(0).at("text").as_string());
  ASSERT_EQ(answer.size(), 400u);
  auto second =
      Post(0, "/v1/completions", CompletionBody(prompt + answer + std::string(40, 'q'), 2));
  ASSERT_EQ(second.status, 200) << second.body;
  // 164 tokens of prompt + answer: 10 full blocks of 16 (the last block holds question bytes).
  EXPECT_EQ(json::parse(second.body).at("usage").at("prompt_tokens_details").at("cached_tokens"),
            160);
}

TEST_F(ReplicaTest, ChatAnswerSentBackAsAnAssistantMessageHitsItsOwnBlocks) {
  // The chat template's headers leave the answer at any byte offset; the engine still sees the
  // answer's own tokens (special tokens are single tokens), so the next turn hits them.
  auto chat = [](const json::array& messages, int max_tokens) {
    return json::serialize(json::object{{"model", kModel},
                                        {"messages", messages},
                                        {"max_tokens", max_tokens},
                                        {"ignore_eos", true}});
  };
  const json::object user{{"role", "user"}, {"content", std::string(4 * 64 + 1, 'c')}};
  auto first = Post(0, "/v1/chat/completions", chat(json::array{user}, 100));
  ASSERT_EQ(first.status, 200) << first.body;
  const json::value first_json = json::parse(first.body);
  const int64_t first_prompt = first_json.at("usage").at("prompt_tokens").as_int64();
  const std::string answer(first_json.at("choices").at(0).at("message").at("content").as_string());
  const json::object assistant{{"role", "assistant"}, {"content", answer}};
  const json::object follow_up{{"role", "user"}, {"content", "And then?"}};
  auto second = Post(0, "/v1/chat/completions", chat(json::array{user, assistant, follow_up}, 2));
  ASSERT_EQ(second.status, 200) << second.body;
  const int64_t cached = json::parse(second.body)
                             .at("usage")
                             .at("prompt_tokens_details")
                             .at("cached_tokens")
                             .as_int64();
  // The first prompt, the 100-token answer and its <|eot_id|>, in whole 16-token blocks.
  EXPECT_EQ(cached, (first_prompt + 100 + 1) / 16 * 16);
}

TEST_F(ReplicaTest, SameSeedSameText) {
  const std::string body = CompletionBody("The same prompt twice", 8, false, R"("seed":42)");
  auto a = json::parse(Post(0, "/v1/completions", body).body);
  auto b = json::parse(Post(1, "/v1/completions", body).body);
  EXPECT_EQ(a.at("choices").at(0).at("text"), b.at("choices").at(0).at("text"));
}

// The data of each SSE event of a response body.
std::vector<std::string> SseData(std::string_view body) {
  http::SseParser parser;
  EXPECT_TRUE(parser.Feed(body).ok());
  std::vector<std::string> data;
  while (auto event = parser.Next()) data.push_back(event->data);
  return data;
}

// What a streamed response said, per choice index.
struct StreamedChoices {
  std::map<int64_t, std::string> text;
  std::map<int64_t, int> finish_chunks;
  std::map<int64_t, int> role_chunks;
  std::vector<json::value> usage_chunks;
  int done = 0;
  bool done_last = false;
};

StreamedChoices ReadStream(std::string_view body, Endpoint endpoint) {
  StreamedChoices out;
  const std::vector<std::string> data = SseData(body);
  for (size_t i = 0; i < data.size(); ++i) {
    if (data[i] == "[DONE]") {
      ++out.done;
      out.done_last = i + 1 == data.size();
      continue;
    }
    const json::value chunk = json::parse(data[i]);
    const json::array& choices = chunk.at("choices").as_array();
    if (choices.empty()) {
      out.usage_chunks.push_back(chunk.at("usage"));
      continue;
    }
    EXPECT_EQ(choices.size(), 1u);
    const json::object& choice = choices.at(0).as_object();
    const int64_t index = choice.at("index").as_int64();
    if (endpoint == Endpoint::kCompletions) {
      out.text[index] += json::value_to<std::string>(choice.at("text"));
    } else if (const json::value* role = choice.at("delta").as_object().if_contains("role")) {
      EXPECT_EQ(role->as_string(), "assistant");
      ++out.role_chunks[index];
    } else {
      out.text[index] += json::value_to<std::string>(choice.at("delta").at("content"));
    }
    if (!choice.at("finish_reason").is_null()) ++out.finish_chunks[index];
  }
  return out;
}

TEST_F(ReplicaTest, BatchedPromptsWithNGiveOneChoicePerPromptAndSample) {
  // 100 and 50 tokens, 2 samples each: choices 0, 1 (prompt 0) and 2, 3 (prompt 1).
  const json::array prompts{json::string(std::string(400, 'a')),
                            json::string(std::string(200, 'b'))};
  auto response = Post(0, "/v1/completions", PromptBody(prompts, 3, false, R"("n":2)"));
  ASSERT_EQ(response.status, 200) << response.body;
  const json::value body = json::parse(response.body);
  const json::array& choices = body.at("choices").as_array();
  ASSERT_EQ(choices.size(), 4u);
  std::set<std::string> texts;
  for (size_t i = 0; i < choices.size(); ++i) {
    EXPECT_EQ(choices[i].at("index").as_int64(), static_cast<int64_t>(i));
    EXPECT_EQ(choices[i].at("finish_reason").as_string(), "length");
    EXPECT_EQ(choices[i].at("text").as_string().size(), 3u * 4);
    texts.insert(json::value_to<std::string>(choices[i].at("text")));
  }
  EXPECT_EQ(texts.size(), 4u) << "every sample has its own text";
  const auto& usage = body.at("usage");
  EXPECT_EQ(usage.at("prompt_tokens").as_int64(), 150) << "each prompt once, as vLLM sums it";
  EXPECT_EQ(usage.at("completion_tokens").as_int64(), 4 * 3);
  // vLLM reports the last prompt's cached tokens: its second sample hit the first's 3 blocks.
  EXPECT_EQ(usage.at("prompt_tokens_details").at("cached_tokens").as_int64(), 48);

  // Each choice was its own engine request, counted as vLLM counts child requests.
  const auto samples = Scrape(0);
  EXPECT_EQ(
      metrics::FindValue(samples, "vllm:request_success_total", {{"finished_reason", "length"}}),
      4);
  EXPECT_EQ(metrics::SumValues(samples, "vllm:prompt_tokens_total"), 2 * 100 + 2 * 50);
  EXPECT_EQ(metrics::SumValues(samples, "vllm:generation_tokens_total"), 12);
  EXPECT_EQ(metrics::SumValues(samples, "vllm:time_to_first_token_seconds_count"), 4);
  // The second sample of each prompt hit the blocks its sibling scheduled in the same step.
  EXPECT_EQ(metrics::SumValues(samples, "vllm:prefix_cache_hits_total"), 96 + 48);
}

TEST_F(ReplicaTest, StreamedBatchInterleavesChoicesAndEndsOnce) {
  const json::array prompts{json::string("first prompt"), json::string("second prompt")};
  const std::string extra = R"("n":3,"seed":11,"stream_options":{"include_usage":true})";
  auto streamed = Post(0, "/v1/completions", PromptBody(prompts, 5, true, extra));
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  const StreamedChoices got = ReadStream(streamed.body, Endpoint::kCompletions);
  ASSERT_EQ(got.text.size(), 6u);
  for (int64_t index = 0; index < 6; ++index) {
    EXPECT_EQ(got.text.at(index).size(), 5u * 4) << index;
    EXPECT_EQ(got.finish_chunks.at(index), 1) << index;
  }
  EXPECT_EQ(got.done, 1);
  EXPECT_TRUE(got.done_last);
  ASSERT_EQ(got.usage_chunks.size(), 1u);
  EXPECT_EQ(got.usage_chunks[0].at("prompt_tokens").as_int64(), 3 + 4);
  EXPECT_EQ(got.usage_chunks[0].at("completion_tokens").as_int64(), 6 * 5);
  // The choices' chunks interleave (each step gives every choice a token) rather than come
  // one choice after another.
  const std::vector<std::string> data = SseData(streamed.body);
  EXPECT_NE(json::parse(data[0]).at("choices").at(0).at("index"),
            json::parse(data[1]).at("choices").at(0).at("index"));

  // Deterministic by seed: the same request unstreamed gives the same texts, and sample j of a
  // seeded request is what one request with seed + j gives (vLLM's child seeds).
  auto whole = Post(1, "/v1/completions", PromptBody(prompts, 5, false, R"("n":3,"seed":11)"));
  const json::value whole_body = json::parse(whole.body);
  const json::array& choices = whole_body.at("choices").as_array();
  for (int64_t index = 0; index < 6; ++index) {
    EXPECT_EQ(choices.at(index).at("text").as_string(), got.text.at(index)) << index;
  }
  auto single = Post(1, "/v1/completions",
                     PromptBody(json::string("second prompt"), 5, false, R"("seed":13)"));
  EXPECT_EQ(json::parse(single.body).at("choices").at(0).at("text").as_string(), got.text.at(5));
  EXPECT_NE(got.text.at(3), got.text.at(4));
}

TEST_F(ReplicaTest, ChatWithNStreamsEveryChoiceFromItsRoleToItsFinish) {
  const std::string body = json::serialize(json::object{
      {"model", kModel},
      {"messages", json::array{json::object{{"role", "user"}, {"content", "Hi there"}}}},
      {"max_completion_tokens", 4},
      {"ignore_eos", true},
      {"n", 3},
      {"stream", true},
      {"stream_options", json::object{{"include_usage", true}}}});
  auto response = Post(0, "/v1/chat/completions", body);
  ASSERT_EQ(response.status, 200) << response.body;
  const StreamedChoices got = ReadStream(response.body, Endpoint::kChatCompletions);
  ASSERT_EQ(got.text.size(), 3u);
  for (int64_t index = 0; index < 3; ++index) {
    EXPECT_EQ(got.role_chunks.at(index), 1);
    EXPECT_EQ(got.finish_chunks.at(index), 1);
    EXPECT_EQ(got.text.at(index).size(), 4u * 4);
  }
  EXPECT_EQ(got.done, 1);
  ASSERT_EQ(got.usage_chunks.size(), 1u);
  const int64_t prompt_tokens = got.usage_chunks[0].at("prompt_tokens").as_int64();
  EXPECT_GT(prompt_tokens, 0);
  EXPECT_LT(prompt_tokens, 20) << "the shared prompt counts once";
  EXPECT_EQ(got.usage_chunks[0].at("completion_tokens").as_int64(), 12);

  auto whole = Post(1, "/v1/chat/completions",
                    R"({"model":")" + std::string(kModel) +
                        R"(","messages":[{"role":"user","content":"x"}],"n":2,"max_tokens":2})");
  ASSERT_EQ(whole.status, 200) << whole.body;
  const json::value whole_body = json::parse(whole.body);
  const json::array& choices = whole_body.at("choices").as_array();
  ASSERT_EQ(choices.size(), 2u);
  EXPECT_EQ(choices[1].at("index").as_int64(), 1);
  EXPECT_EQ(choices[1].at("message").at("role").as_string(), "assistant");
}

TEST_F(ReplicaTest, TokenIdPromptsAreTheEnginesTokensAndHitTheCache) {
  json::array ids;
  for (int i = 0; i < 100; ++i) ids.emplace_back(1000 + i);  // 6 full blocks + 4
  auto first = Post(0, "/v1/completions", PromptBody(ids, 2, false, R"("seed":3)"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(json::parse(first.body).at("usage").at("prompt_tokens").as_int64(), 100);
  auto second = Post(0, "/v1/completions", PromptBody(ids, 2, false, R"("seed":3)"));
  const json::value body = json::parse(second.body);
  EXPECT_EQ(body.at("usage").at("prompt_tokens_details").at("cached_tokens").as_int64(), 96);
  EXPECT_EQ(body.at("choices").at(0).at("text"),
            json::parse(first.body).at("choices").at(0).at("text"))
      << "same ids, same seed, same text";

  // The ids of a text's tokens are that text's prompt: the blocks hash the same.
  const std::string text(size_t{4} * 64, 't');
  ASSERT_EQ(Post(1, "/v1/completions", CompletionBody(text, 2)).status, 200);
  json::array text_ids;
  for (const TokenId id : Tokenize(text)) text_ids.emplace_back(id);
  text_ids.emplace_back(7);
  auto same = Post(1, "/v1/completions", PromptBody(text_ids, 2, false, ""));
  EXPECT_EQ(json::parse(same.body).at("usage").at("prompt_tokens_details").at("cached_tokens"), 64);

  // A batch of token-id prompts.
  auto batch = Post(1, "/v1/completions",
                    PromptBody(json::array{json::array{1, 2}, json::array{3}}, 2, false, ""));
  ASSERT_EQ(batch.status, 200) << batch.body;
  EXPECT_EQ(json::parse(batch.body).at("usage").at("prompt_tokens").as_int64(), 3);
}

TEST_F(ReplicaTest, ChatStreamFollowsVllmChunkSequence) {
  const std::string body = json::serialize(json::object{
      {"model", kModel},
      {"messages", json::array{json::object{{"role", "user"}, {"content", "Hi there"}}}},
      {"max_completion_tokens", 5},
      {"ignore_eos", true},
      {"stream", true},
      {"stream_options", json::object{{"include_usage", true}}}});
  auto response = Post(0, "/v1/chat/completions", body);
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("content-type"), "text/event-stream");
  http::SseParser parser;
  ASSERT_TRUE(parser.Feed(response.body).ok());
  std::vector<std::string> data;
  while (auto event = parser.Next()) data.push_back(event->data);
  // role chunk, 4 content chunks, the last token with finish_reason, usage, [DONE]
  ASSERT_EQ(data.size(), 8u) << response.body;
  EXPECT_EQ(data.back(), "[DONE]");
  const json::value role = json::parse(data[0]);
  EXPECT_EQ(role.at("object").as_string(), "chat.completion.chunk");
  EXPECT_EQ(role.at("choices").at(0).at("delta").at("role").as_string(), "assistant");
  std::string content;
  for (size_t i = 1; i <= 5; ++i) {
    const json::value chunk = json::parse(data[i]);
    content += json::value_to<std::string>(chunk.at("choices").at(0).at("delta").at("content"));
    EXPECT_TRUE(chunk.at("usage").is_null());
  }
  EXPECT_EQ(content.size(), 20u);
  EXPECT_EQ(json::parse(data[5]).at("choices").at(0).at("finish_reason").as_string(), "length");
  const json::value usage = json::parse(data[6]);
  EXPECT_TRUE(usage.at("choices").as_array().empty());
  EXPECT_EQ(usage.at("usage").at("completion_tokens").as_int64(), 5);
}

// Announces a 9 MiB body (over the 8 MiB limit) and reads the answer without sending it: the
// server must refuse from the headers alone.
int StatusOfOversizedPost(uint16_t port) {
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"), port});
  const std::string head =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(9 << 20) + "\r\n\r\n";
  asio::write(socket, asio::buffer(head));
  std::string response(256, '\0');
  boost::system::error_code ec;
  const size_t n = socket.read_some(asio::buffer(response), ec);
  response.resize(n);
  if (!response.starts_with("HTTP/1.1 ")) return 0;
  return std::stoi(response.substr(9, 3));
}

struct ErrorCase {
  std::string name;
  std::string path;
  std::string body;
  int status;
  std::string message_part;
};

TEST_F(ReplicaTest, BadRequestsGetOpenAiErrorsAndTheServerKeepsServing) {
  const std::vector<ErrorCase> cases = {
      {"malformed json", "/v1/completions", "{\"model\": ", 400, ""},
      {"not an object", "/v1/completions", "[1,2]", 400, ""},
      {"missing model", "/v1/completions", R"({"prompt":"x"})", 400, "model"},
      {"missing prompt", "/v1/completions",
       std::string(R"({"model":")") + std::string(kModel) + "\"}", 400, "prompt"},
      {"missing messages", "/v1/chat/completions",
       std::string(R"({"model":")") + std::string(kModel) + "\"}", 400, "messages"},
      {"wrong type", "/v1/completions",
       std::string(R"({"model":")") + std::string(kModel) + R"(","prompt":"x","max_tokens":"ten"})",
       400, "max_tokens"},
      {"negative max_tokens", "/v1/completions",
       std::string(R"({"model":")") + std::string(kModel) + R"(","prompt":"x","max_tokens":-5})",
       400, "max_tokens"},
      {"absurd max_tokens", "/v1/completions",
       std::string(R"({"model":")") + std::string(kModel) +
           R"(","prompt":"x","max_tokens":99999999999})",
       400, ""},
      {"unknown model", "/v1/completions", R"({"model":"gpt-9","prompt":"x"})", 404, "gpt-9"},
      {"invalid utf-8", "/v1/completions",
       std::string(R"({"model":")") + std::string(kModel) + "\",\"prompt\":\"\xC3\x28\"}", 400, ""},
      {"prompt over max_model_len", "/v1/completions",
       CompletionBody(std::string(size_t{4} * 131072, 'x'), 16), 400, "maximum context length"},
      {"second prompt over max_model_len", "/v1/completions",
       PromptBody(
           json::array{json::string("x"), json::string(std::string(size_t{4} * 131072, 'x'))}, 16,
           false, ""),
       400, "maximum context length"},
      {"empty prompt list", "/v1/completions", PromptBody(json::array{}, 4, false, ""), 400,
       "non-empty"},
      {"mixed prompt list", "/v1/completions",
       PromptBody(json::array{json::string("a"), 1}, 4, false, ""), 400, "'prompt[1]' is"},
      {"negative token id", "/v1/completions", PromptBody(json::array{1, -2}, 4, false, ""), 400,
       "greater than or equal to 0"},
      {"token id out of vocabulary", "/v1/completions",
       PromptBody(json::array{int64_t{1} << 33}, 4, false, ""), 400, "out of vocabulary"},
      {"n zero", "/v1/completions", CompletionBody("x", 4, false, R"("n":0)"), 400,
       "n must be at least 1"},
      {"n absurd", "/v1/chat/completions",
       R"({"model":")" + std::string(kModel) +
           R"(","messages":[{"role":"user","content":"x"}],"n":1000000000})",
       400, "n must be at most 16384"},
      {"best_of", "/v1/completions", CompletionBody("x", 4, false, R"("n":2,"best_of":3)"), 400,
       "best_of"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto response = Post(0, c.path, c.body);
    EXPECT_EQ(response.status, c.status) << response.body;
    auto parsed = json::parse(response.body);
    ASSERT_TRUE(parsed.is_object());
    const std::string message = json::value_to<std::string>(parsed.at("error").at("message"));
    EXPECT_NE(message.find(c.message_part), std::string::npos) << message;
    if (c.status == 404) {
      EXPECT_EQ(parsed.at("error").at("type").as_string(), "NotFoundError");
    }
  }
  EXPECT_EQ(StatusOfOversizedPost(server_->replicas()[0]->port()), 413);
  EXPECT_EQ(Post(0, "/v1/completions", CompletionBody("still serving", 1)).status, 200);
}

TEST_F(ReplicaTest, ModelsHealthAndUnknownPaths) {
  auto models = FetchBlocking(Method::get, Url(0, "/v1/models"));
  ASSERT_TRUE(models.ok());
  const json::value list = json::parse(models->body);
  EXPECT_EQ(list.at("data").at(0).at("id").as_string(), kModel);
  EXPECT_EQ(list.at("data").at(0).at("max_model_len").as_int64(), 131072);
  EXPECT_EQ(FetchBlocking(Method::get, Url(0, "/health"))->status, 200);
  auto missing = FetchBlocking(Method::get, Url(0, "/v2/nothing"));
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(missing->Header("x-zumik-replica"), "replica-0");
}

TEST_F(ReplicaTest, MetricsCountKnownTraffic) {
  const std::string prompt(size_t{4} * 64, 'c');  // 64 tokens = 4 full blocks
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Post(0, "/v1/completions", CompletionBody(prompt, 10)).status, 200);
  }
  const auto samples = Scrape(0);
  const std::initializer_list<metrics::LabelMatcher> labels = {{"model_name", kModel},
                                                               {"engine", "0"}};
  EXPECT_EQ(metrics::FindValue(samples, "vllm:prompt_tokens_total", labels), 192);
  EXPECT_EQ(metrics::FindValue(samples, "vllm:generation_tokens_total", labels), 30);
  EXPECT_EQ(metrics::FindValue(samples, "vllm:prefix_cache_queries_total", labels), 192);
  // The 2nd and 3rd request hit 3 of 4 blocks (the last block is always recomputed).
  EXPECT_EQ(metrics::FindValue(samples, "vllm:prefix_cache_hits_total", labels), 96);
  EXPECT_EQ(
      metrics::FindValue(samples, "vllm:request_success_total", {{"finished_reason", "length"}}),
      3);
  EXPECT_EQ(metrics::FindValue(samples, "vllm:time_to_first_token_seconds_count", labels), 3);
  EXPECT_EQ(metrics::FindValue(samples, "vllm:e2e_request_latency_seconds_count", labels), 3);
  EXPECT_EQ(metrics::FindValue(samples, "vllm:inter_token_latency_seconds_count", labels), 27);
  EXPECT_EQ(metrics::FindValue(samples, "vllm:num_requests_running", labels), 0);
  EXPECT_EQ(metrics::FindValue(samples, "vllm:num_requests_waiting", labels), 0);
  const auto* info = metrics::FindSample(samples, "vllm:cache_config_info");
  ASSERT_NE(info, nullptr);
  bool has_blocks = false;
  for (const auto& [name, value] : info->labels) {
    if (name == "num_gpu_blocks") has_blocks = value == "27500";
  }
  EXPECT_TRUE(has_blocks);
  // TTFT: about one 64-token prefill step plus t_api (10 ms): well under 100 ms.
  auto p50 = metrics::HistogramQuantile(0.5, samples, "vllm:time_to_first_token_seconds");
  ASSERT_TRUE(p50.ok());
  EXPECT_GT(*p50, 0.005);
  EXPECT_LT(*p50, 0.1);
  ASSERT_TRUE(metrics::FindValue(samples, "DCGM_FI_DEV_FB_USED").has_value());
  EXPECT_GT(*metrics::FindValue(samples, "DCGM_FI_DEV_FB_USED"), 14.99 * 1024);
  EXPECT_TRUE(metrics::FindValue(samples, "DCGM_FI_DEV_GPU_UTIL").has_value());
}

TEST_F(ReplicaTest, StreamedWritesCountDeliveryLagAndPacingError) {
  // A non-streamed response is one write with no pacing: neither histogram counts it.
  ASSERT_EQ(Post(1, "/v1/completions", CompletionBody("whole", 5)).status, 200);
  auto samples = Scrape(1);
  EXPECT_EQ(metrics::SumValues(samples, "zumik_sim_token_delivery_lag_seconds_count"), 0);
  EXPECT_EQ(metrics::SumValues(samples, "zumik_sim_token_pacing_error_seconds_count"), 0);

  const auto response = Post(1, "/v1/completions", CompletionBody("streamed", 10, true));
  ASSERT_EQ(response.status, 200);
  ASSERT_NE(response.body.find("data: [DONE]"), std::string::npos);
  samples = Scrape(1);
  const double writes = metrics::SumValues(samples, "zumik_sim_token_delivery_lag_seconds_count");
  // One write per model step that gave this stream tokens (steps may coalesce under load).
  EXPECT_GE(writes, 1);
  EXPECT_LE(writes, 10);
  // The pacing error compares each write with the one before: one fewer per stream.
  EXPECT_EQ(metrics::SumValues(samples, "zumik_sim_token_pacing_error_seconds_count"), writes - 1);
}

http::Headers JsonHeaders() { return {{"Content-Type", "application/json"}}; }

// Opens a long stream, reads its first bytes, then hangs up.
// Returns whether the stream opened and delivered data. (GCC 12 cannot compile brace-initialised
// string literals inside a coroutine, gtest macros and ClientOptions' defaults included: build
// those outside.)
asio::awaitable<bool> StreamAndHangUp(http::Client& client, std::string url, std::string body) {
  http::ClientRequest request;
  request.method = Method::post;
  request.url = std::move(url);
  request.headers = JsonHeaders();
  request.body = std::move(body);
  auto stream = co_await client.Stream(std::move(request));
  if (!stream.ok()) co_return false;
  auto first = co_await stream->Read();  // some tokens arrived
  stream->Cancel();
  co_return first.ok() && !first->empty();
}

std::optional<double> ReplicaTest::AbortsAfterHangingUp(int replica, std::string body,
                                                        double expected, std::string_view path) {
  {
    asio::io_context io;
    http::Client client(io.get_executor());
    auto done = asio::co_spawn(io, StreamAndHangUp(client, Url(replica, path), std::move(body)),
                               asio::use_future);
    io.run();
    EXPECT_TRUE(done.get());
  }
  // The engine learns of the disconnect and frees the request.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::optional<double> aborted;
  while (std::chrono::steady_clock::now() < deadline) {
    aborted = metrics::FindValue(Scrape(replica), "vllm:request_success_total",
                                 {{"finished_reason", "abort"}});
    if (aborted == expected) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return aborted;
}

TEST_F(ReplicaTest, ClientDisconnectAbortsTheRequest) {
  EXPECT_EQ(AbortsAfterHangingUp(0, CompletionBody("long one", 100000, true), 1), 1);
  EXPECT_EQ(server_->replicas()[0]->Stats().num_running, 0);
}

TEST_F(ReplicaTest, ClientDisconnectAbortsAStreamedResponsesApiRequest) {
  const std::string body = fmt::format(
      R"({{"model":"{}","input":"long one","max_output_tokens":100000,"stream":true}})", kModel);
  EXPECT_EQ(AbortsAfterHangingUp(0, body, 1, "/v1/responses"), 1);
  EXPECT_EQ(server_->replicas()[0]->Stats().num_running, 0);
}

TEST_F(ReplicaTest, ClientDisconnectAbortsEveryEngineRequestOfTheRequest) {
  const json::array prompts{json::string("long one"), json::string("long two")};
  EXPECT_EQ(AbortsAfterHangingUp(1, PromptBody(prompts, 100000, true, R"("n":4)"), 8), 8)
      << "2 prompts x 4 samples";
  const EngineStats stats = server_->replicas()[1]->Stats();
  EXPECT_EQ(stats.num_running, 0);
  EXPECT_EQ(stats.num_waiting, 0);
  EXPECT_EQ(stats.num_admitting, 0);
  EXPECT_EQ(stats.num_free_blocks, stats.num_gpu_blocks) << "no sequence keeps a block";
}

// One streamed completion; counts it in *complete when every token and [DONE] arrived.
// (A free function: a coroutine lambda's captures would die with the lambda.)
asio::awaitable<void> StreamOne(std::shared_ptr<http::Client> client, std::string url,
                                std::string body, int expected_tokens, std::atomic<int>* complete) {
  http::ClientRequest request;
  request.method = Method::post;
  request.url = std::move(url);
  request.headers = JsonHeaders();
  request.body = std::move(body);
  auto stream = co_await client->Stream(std::move(request));
  if (!stream.ok() || stream->status() != 200) co_return;
  http::SseParser parser;
  int tokens = 0;
  bool done = false;
  for (;;) {
    auto data = co_await stream->Read();
    if (!data.ok() || data->empty()) break;
    if (!parser.Feed(*data).ok()) break;
    while (auto event = parser.Next()) {
      if (event->data == "[DONE]") {
        done = true;
      } else {
        ++tokens;
      }
    }
  }
  if (done && tokens == expected_tokens) complete->fetch_add(1);
}

TEST_F(ReplicaTest, ThousandConcurrentStreamsAllComplete) {
  constexpr int kStreams = 1000;
  constexpr int kTokens = 8;
  std::atomic<int> complete{0};
  asio::io_context io;
  http::ClientOptions options;
  options.max_idle_per_host = kStreams;
  auto client = std::make_shared<http::Client>(io.get_executor(), options);
  for (int i = 0; i < kStreams; ++i) {
    asio::co_spawn(
        io,
        StreamOne(client, Url(i % 2, "/v1/completions"),
                  CompletionBody("stream " + std::to_string(i), kTokens, true), kTokens, &complete),
        asio::detached);
  }
  std::thread helper([&io] { io.run(); });
  io.run();
  helper.join();
  EXPECT_EQ(complete.load(), kStreams);
}

// Streams parked between tokens when the server stops without grace are torn down with the
// io_context: Stop returns, and under ASan/LSan nothing they held is leaked.
TEST(SimServerShutdown, StopWithoutGraceWhileStreamsWaitForTokens) {
  auto profile = ResolveProfile("h100-llama-3.1-8b");
  ASSERT_TRUE(profile.ok()) << profile.status();
  SimServerOptions options;
  options.replicas = 1;
  options.port = 0;
  options.profile = *profile;
  options.threads = 2;
  auto server = std::make_unique<SimServer>(options);
  ASSERT_TRUE(server->Start().ok());

  const std::string body = CompletionBody("a long stream", 100000, true);
  const std::string request =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  asio::io_context io;
  std::vector<asio::ip::tcp::socket> sockets;
  for (int i = 0; i < 8; ++i) {
    sockets.emplace_back(io);
    sockets.back().connect({asio::ip::make_address("127.0.0.1"), server->replicas()[0]->port()});
    asio::write(sockets.back(), asio::buffer(request));
  }
  for (auto& socket : sockets) {  // every stream has sent a token
    std::string seen;
    char chunk[512];
    while (seen.find("data: ") == std::string::npos) {
      seen.append(chunk, socket.read_some(asio::buffer(chunk)));
    }
  }
  server->Stop(std::chrono::nanoseconds(0));
  server.reset();
}

}  // namespace
}  // namespace zumik::sim

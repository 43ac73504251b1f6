// The EPP's JSON scanning on realistic sizes (Google Benchmark): request bodies read by
// ParseBody (a b2b-sized 32 KB completions prompt, a 400 KB one, a 32 KB chat history) and a
// non-streamed response read by ScanUsage. Prompts are English-like text with a JSON-escaped
// newline about every 80 bytes, as real prompts carry.
#include <benchmark/benchmark.h>

#include <string>

#include "epp/body_parser.h"
#include "epp/usage_scanner.h"

namespace zumik::epp {
namespace {

// `bytes` of JSON string content: words, a "\n" escape every ~80 bytes unless `plain`.
std::string Text(size_t bytes, bool plain = false) {
  static const char* kWords[] = {"the ",   "request ", "routes ", "to ",  "a ",       "replica ",
                                 "whose ", "cache ",   "holds ",  "its ", "prefix, ", "and "};
  std::string out;
  size_t line = 0;
  for (size_t i = 0; out.size() < bytes; ++i) {
    const std::string_view word = kWords[(i * 7 + i / 13) % std::size(kWords)];
    out.append(word);
    line += word.size();
    if (line > 80 && !plain) {
      out.append("\\n");
      line = 0;
    }
  }
  return out;
}

std::string CompletionsBody(size_t bytes, bool plain = false) {
  return R"({"model":"Qwen/Qwen3-32B","stream":true,"max_tokens":1000,"prompt":")" +
         Text(bytes, plain) + R"("})";
}

std::string ChatBody(size_t bytes) {
  std::string body = R"({"model":"Qwen/Qwen3-32B","stream":true,"messages":[)";
  const std::string turn = Text(2048);
  for (size_t i = 0; i * turn.size() < bytes; ++i) {
    if (i > 0) body.push_back(',');
    body.append(i % 2 == 0 ? R"({"role":"user","content":")"
                           : R"({"role":"assistant","content":")");
    body.append(turn).append(R"("})");
  }
  return body.append("]}");
}

void ParseBodyOf(benchmark::State& state, ApiKind kind, const std::string& body,
                 bool borrow_prompt = false) {
  for (auto _ : state) {
    BodyParseResult parsed = ParseBody(kind, body, borrow_prompt);
    if (!parsed.ok) state.SkipWithError(parsed.error.message.c_str());
    benchmark::DoNotOptimize(parsed.body.Prompt().data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}

void BM_ParseCompletions32KB(benchmark::State& state) {
  ParseBodyOf(state, ApiKind::kCompletions, CompletionsBody(size_t{32} * 1024));
}
BENCHMARK(BM_ParseCompletions32KB);

// A prompt without escapes (no newlines), read as ParseBody's default copies it and as the
// EPP's pipeline reads it, borrowed from the body.
void BM_ParseCompletions32KBPlain(benchmark::State& state) {
  ParseBodyOf(state, ApiKind::kCompletions, CompletionsBody(size_t{32} * 1024, true));
}
BENCHMARK(BM_ParseCompletions32KBPlain);

void BM_ParseCompletions32KBPlainBorrowed(benchmark::State& state) {
  ParseBodyOf(state, ApiKind::kCompletions, CompletionsBody(size_t{32} * 1024, true), true);
}
BENCHMARK(BM_ParseCompletions32KBPlainBorrowed);

void BM_ParseCompletions400KB(benchmark::State& state) {
  ParseBodyOf(state, ApiKind::kCompletions, CompletionsBody(size_t{400} * 1024));
}
BENCHMARK(BM_ParseCompletions400KB)->Unit(benchmark::kMicrosecond);

void BM_ParseChat32KB(benchmark::State& state) {
  ParseBodyOf(state, ApiKind::kChatCompletions, ChatBody(size_t{32} * 1024));
}
BENCHMARK(BM_ParseChat32KB);

// A non-streamed completion of ~1,000 tokens: the text is scanned past to reach `usage`.
void BM_ScanUsage4KBResponse(benchmark::State& state) {
  const std::string body =
      R"({"id":"cmpl-910a2dec89025cc10000000000000001","object":"text_completion",)"
      R"("created":1796643952,"model":"Qwen/Qwen3-32B","choices":[{"index":0,"text":")" +
      Text(4096) +
      R"(","logprobs":null,"finish_reason":"length","stop_reason":null}],)"
      R"("usage":{"prompt_tokens":7200,"completion_tokens":1000,"total_tokens":8200,)"
      R"("prompt_tokens_details":{"cached_tokens":6000}}})";
  for (auto _ : state) {
    Usage usage;
    if (ScanUsage(body, usage) != ScanResult::kFound) state.SkipWithError("not scanned");
    benchmark::DoNotOptimize(usage);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_ScanUsage4KBResponse);

}  // namespace
}  // namespace zumik::epp

BENCHMARK_MAIN();

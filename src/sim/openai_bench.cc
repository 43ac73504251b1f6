// Benchmarks of the OpenAI protocol layer's hot paths: parsing completion bodies of typical
// and long-context sizes, and formatting one streaming chunk (done once per token per stream).
#include <benchmark/benchmark.h>

#include <string>

#include "core/json_string.h"
#include "sim/openai_request.h"
#include "sim/openai_response.h"
#include "sim/text_gen.h"

namespace zumik::sim {
namespace {

std::string CompletionBody(size_t prompt_bytes) {
  const std::string text = TextGenerator(1).Text(prompt_bytes / kTokenBytes);
  std::string body = R"({"model":"meta-llama/Llama-3.1-8B-Instruct","max_tokens":256,)"
                     R"("temperature":0.7,"stream":true,"stream_options":{"include_usage":true},)"
                     R"("prompt":)";
  AppendJsonString(text, &body);
  body.push_back('}');
  return body;
}

void BM_ParseCompletionRequest(benchmark::State& state) {
  const std::string body = CompletionBody(static_cast<size_t>(state.range(0)));
  const RequestLimits limits{.max_model_len = 1 << 20};
  for (auto _ : state) {
    auto request = ParseCompletionRequest(body, limits);
    if (!request.ok()) state.SkipWithError(request.error().message.c_str());
    benchmark::DoNotOptimize(request);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParseCompletionRequest)->Arg(4 << 10)->Arg(400 << 10);

void BM_FormatStreamChunk(benchmark::State& state) {
  const Endpoint endpoint =
      state.range(0) == 0 ? Endpoint::kCompletions : Endpoint::kChatCompletions;
  const ResponseMeta meta{.id = MakeResponseId(endpoint, 12345),
                          .created = 1700000000,
                          .model = "meta-llama/Llama-3.1-8B-Instruct"};
  const StreamFormatter formatter(endpoint, meta, /*include_usage=*/true);
  const TextGenerator gen(3);
  std::string out;
  uint64_t i = 0;
  for (auto _ : state) {
    out.clear();
    formatter.AppendText(gen.Token(i++), &out);
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_FormatStreamChunk)->Arg(0)->Arg(1);

}  // namespace
}  // namespace zumik::sim

BENCHMARK_MAIN();

// libFuzzer target: both OpenAI request parsers must return a value or an ApiError for any
// byte string, never crash, and any error must serialise to valid JSON; accepted requests are
// formatted back to exercise the response writers on fuzzer-chosen strings, and the fan-out of an
// accepted completions request (prompts x n) stays within its bounds.
#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "sim/openai_request.h"
#include "sim/openai_response.h"

namespace {

void CheckIsJson(const std::string& text) {
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  if (ec) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace zumik::sim;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const RequestLimits limits{.max_model_len = 4096};

  const auto completion = ParseCompletionRequest(body, limits);
  if (completion.ok()) {
    const GenerationParams& params = completion->params;
    const auto& prompts = completion->prompts;
    // The fan-out bounds hold for anything accepted.
    if (prompts.empty() || params.n < 1 || params.n > kMaxN ||
        static_cast<int64_t>(prompts.size()) * params.n > kMaxEngineRequests) {
      std::abort();
    }
    std::vector<ChoiceOutput> choices;
    for (const CompletionPrompt& prompt : prompts) {
      if (prompt.is_token_ids ? prompt.token_ids.empty() : prompt.text.empty()) std::abort();
      choices.push_back({.text = prompt.text, .finish = FinishReason::kStop});
    }
    const ResponseMeta meta{.id = "cmpl-1", .created = 1, .model = params.model};
    CheckIsJson(FormatCompletionResponse(meta, choices, {}));
    const StreamFormatter formatter(Endpoint::kCompletions, meta, params.include_usage);
    std::string out;
    formatter.AppendFinish(prompts.back().text, FinishReason::kLength, &out,
                           static_cast<int64_t>(prompts.size()) * params.n - 1);
    CheckIsJson(out.substr(6, out.size() - 8));
    if (params.max_tokens.value_or(1) < 1) std::abort();
  } else {
    CheckIsJson(completion.error().ToJson());
  }

  const auto chat = ParseChatRequest(body, limits);
  if (chat.ok()) {
    if (chat->messages.empty()) std::abort();
    const ResponseMeta meta{.id = "chatcmpl-1", .created = 1, .model = chat->params.model};
    const StreamFormatter formatter(Endpoint::kChatCompletions, meta, chat->params.include_usage);
    std::string out;
    formatter.AppendText(chat->messages.back().content, &out);
    CheckIsJson(out.substr(6, out.size() - 8));
    CheckIsJson(FormatChatResponse(meta, chat->prompt, FinishReason::kLength, {}));
  } else {
    CheckIsJson(chat.error().ToJson());
  }
  return 0;
}

#include "sim/openai_response.h"

#include <xxhash.h>

#include "core/json_string.h"
#include "fmt/format.h"

namespace zumik::sim {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void AppendUsageObject(const Usage& usage, std::string* out) {
  out->append(R"({"prompt_tokens":)");
  AppendInt(usage.prompt_tokens, out);
  out->append(R"(,"completion_tokens":)");
  AppendInt(usage.completion_tokens, out);
  out->append(R"(,"total_tokens":)");
  AppendInt(usage.prompt_tokens + usage.completion_tokens, out);
  out->append(R"(,"prompt_tokens_details":{"cached_tokens":)");
  AppendInt(usage.cached_tokens, out);
  out->append("}}");
}

// {"id":...,"object":...,"created":...,"model":..., (note the trailing comma)
void AppendHeader(const ResponseMeta& meta, std::string_view object, std::string* out) {
  out->append(R"({"id":)");
  AppendJsonString(meta.id, out);
  out->append(R"(,"object":")");
  out->append(object);
  out->append(R"(","created":)");
  AppendInt(meta.created, out);
  out->append(R"(,"model":)");
  AppendJsonString(meta.model, out);
  out->push_back(',');
}

void AppendFinishFields(FinishReason finish, std::string* out) {
  out->append(R"("finish_reason":")");
  out->append(FinishReasonName(finish));
  out->append(R"(","stop_reason":null)");
}

}  // namespace

std::string MakeResponseId(Endpoint endpoint, uint64_t request_number) {
  // Unique per number (it is the low half) yet looks random like vLLM's uuid4 hex.
  return fmt::format("{}-{:016x}{:016x}", endpoint == Endpoint::kCompletions ? "cmpl" : "chatcmpl",
                     Mix(request_number), request_number);
}

namespace {

// The body of a non-streaming response; `append_text` writes a choice's text member.
template <typename AppendText>
std::string FormatResponse(const ResponseMeta& meta, std::string_view object,
                           std::span<const ChoiceOutput> choices, const Usage& usage,
                           AppendText&& append_text) {
  size_t text_bytes = 0;
  for (const ChoiceOutput& choice : choices) text_bytes += choice.text.size();
  std::string out;
  out.reserve(256 + meta.id.size() + meta.model.size() + choices.size() * 112 + text_bytes +
              text_bytes / 8);
  AppendHeader(meta, object, &out);
  out.append(R"("choices":[)");
  for (size_t i = 0; i < choices.size(); ++i) {
    if (i > 0) out.push_back(',');
    out.append(R"({"index":)");
    AppendInt(static_cast<int64_t>(i), &out);
    append_text(choices[i].text, &out);
    out.append(R"(,"logprobs":null,)");
    AppendFinishFields(choices[i].finish, &out);
    out.push_back('}');
  }
  out.append(R"(],"usage":)");
  AppendUsageObject(usage, &out);
  out.push_back('}');
  return out;
}

}  // namespace

std::string FormatCompletionResponse(const ResponseMeta& meta,
                                     std::span<const ChoiceOutput> choices, const Usage& usage) {
  return FormatResponse(meta, "text_completion", choices, usage,
                        [](std::string_view text, std::string* out) {
                          out->append(R"(,"text":)");
                          AppendJsonString(text, out);
                        });
}

std::string FormatChatResponse(const ResponseMeta& meta, std::span<const ChoiceOutput> choices,
                               const Usage& usage) {
  return FormatResponse(meta, "chat.completion", choices, usage,
                        [](std::string_view text, std::string* out) {
                          out->append(R"(,"message":{"role":"assistant","content":)");
                          AppendJsonString(text, out);
                          out->push_back('}');
                        });
}

StreamFormatter::StreamFormatter(Endpoint endpoint, const ResponseMeta& meta, bool include_usage)
    : endpoint_(endpoint), include_usage_(include_usage) {
  prefix_.append("data: ");
  AppendHeader(meta,
               endpoint == Endpoint::kCompletions ? "text_completion" : "chat.completion.chunk",
               &prefix_);
}

void StreamFormatter::AppendRole(std::string* out, int64_t index) const {
  if (endpoint_ == Endpoint::kCompletions) return;
  out->append(prefix_);
  out->append(R"("choices":[{"index":)");
  AppendInt(index, out);
  out->append(
      R"(,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}])");
  if (include_usage_) out->append(R"(,"usage":null)");
  out->append("}\n\n");
}

void StreamFormatter::AppendText(std::string_view text, std::string* out, int64_t index) const {
  AppendChunk(text, nullptr, index, out);
}

void StreamFormatter::AppendFinish(std::string_view text, FinishReason finish, std::string* out,
                                   int64_t index) const {
  AppendChunk(text, &finish, index, out);
}

void StreamFormatter::AppendChunk(std::string_view text, const FinishReason* finish, int64_t index,
                                  std::string* out) const {
  out->append(prefix_);
  out->append(R"("choices":[{"index":)");
  AppendInt(index, out);
  if (endpoint_ == Endpoint::kCompletions) {
    out->append(R"(,"text":)");
    AppendJsonString(text, out);
    out->append(R"(,"logprobs":null,)");
    if (finish != nullptr) {
      AppendFinishFields(*finish, out);
    } else {
      out->append(R"("finish_reason":null,"stop_reason":null)");
    }
  } else {
    out->append(R"(,"delta":{"content":)");
    AppendJsonString(text, out);
    out->append(R"(},"logprobs":null,)");
    if (finish != nullptr) {
      AppendFinishFields(*finish, out);
    } else {
      out->append(R"("finish_reason":null)");
    }
  }
  out->append("}]");
  if (include_usage_) out->append(R"(,"usage":null)");
  out->append("}\n\n");
}

void StreamFormatter::AppendUsage(const Usage& usage, std::string* out) const {
  if (!include_usage_) return;
  out->append(prefix_);
  out->append(R"("choices":[],"usage":)");
  AppendUsageObject(usage, out);
  out->append("}\n\n");
}

void AppendStreamError(const ApiError& error, std::string* out) {
  out->append("data: ");
  out->append(error.ToJson());
  out->append("\n\n");
}

std::string FormatModelList(std::span<const ModelCard> models) {
  std::string out = R"({"object":"list","data":[)";
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelCard& card = models[i];
    if (i > 0) out.push_back(',');
    out.append(R"({"id":)");
    AppendJsonString(card.id, &out);
    out.append(R"(,"object":"model","created":)");
    AppendInt(card.created, &out);
    out.append(R"(,"owned_by":"vllm","root":)");
    AppendJsonString(card.root, &out);
    out.append(R"(,"parent":null,"max_model_len":)");
    AppendInt(card.max_model_len, &out);
    const uint64_t hash = XXH3_64bits(card.id.data(), card.id.size());
    out.append(R"(,"permission":[{"id":"modelperm-)");
    out.append(fmt::format("{:016x}{:016x}", hash, Mix(hash)));
    out.append(R"(","object":"model_permission","created":)");
    AppendInt(card.created, &out);
    out.append(R"(,"allow_create_engine":false,"allow_sampling":true,"allow_logprobs":true,)"
               R"("allow_search_indices":false,"allow_view":true,"allow_fine_tuning":false,)"
               R"("organization":"*","group":null,"is_blocking":false}]})");
  }
  out.append("]}");
  return out;
}

}  // namespace zumik::sim

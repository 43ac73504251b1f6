// The Responses API routes of a replica: POST /v1/responses (one engine request, answered whole
// or as vLLM's named SSE events) and, with ReplicaOptions::responses_store, the stored responses
// behind previous_response_id, GET /v1/responses/{id} and POST /v1/responses/{id}/cancel.
// Wording of the errors as vLLM's serving_responses.py.
#include <boost/asio/this_coro.hpp>

#include "fmt/format.h"
#include "sim/prompt.h"
#include "sim/responses_api.h"
#include "sim/server/replica.h"
#include "sim/server/request_stream.h"
#include "sim/text_gen.h"

namespace zumik::sim {
namespace {

// vLLM's create_error_response(err_type="invalid_request_error", ...).
ApiError InvalidRequest(int http_status, std::string message) {
  return ApiError{.http_status = http_status,
                  .message = std::move(message),
                  .type = "invalid_request_error",
                  .param = std::nullopt};
}

// vLLM's _make_not_found_error.
ApiError ResponseNotFound(std::string_view id) {
  return InvalidRequest(404, fmt::format("Response with id '{}' not found.", id));
}

}  // namespace

asio::awaitable<void> Replica::HandleResponses(const http::Request& request,
                                               http::ResponseWriter& writer) {
  const RequestLimits limits{.max_model_len = profile_.max_model_len};
  auto parsed = ParseResponsesRequest(request.body(), limits);
  if (!parsed.ok()) {
    ApiError error = parsed.error();
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }
  const ResponsesRequest& req = *parsed;
  if (req.params.model != profile_.served_model_name) {
    ApiError error = ModelNotFound(req.params.model);
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }
  // Without a store vLLM silently ignores `store` (and so knows no previous response).
  const bool store = req.store && response_store_ != nullptr;
  std::shared_ptr<const StoredResponse> previous;
  if (req.previous_response_id) {
    if (response_store_) previous = response_store_->Get(*req.previous_response_id);
    if (!previous) {
      ApiError error = ResponseNotFound(*req.previous_response_id);
      co_await RespondApiError(writer, std::move(error));
      co_return;
    }
  }
  std::vector<ChatMessage> messages =
      ResponsesMessages(req, previous ? &previous->conversation : nullptr);
  previous.reset();
  auto prompt = MakePrompt(TokenizeChatPrompt(messages), profile_.block_size);
  auto max_tokens = ResolveMaxTokens(req.params.max_tokens, prompt->size(), limits);
  if (!max_tokens.ok()) {
    ApiError error = max_tokens.error();
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }

  const uint64_t number = request_counter_.fetch_add(1);
  std::vector<RequestSpec> specs(1);
  RequestSpec& spec = specs[0];
  spec.prompt = prompt;
  spec.max_tokens = static_cast<int>(*max_tokens);
  spec.seed =
      GenerationSeed(std::nullopt, prompt->tokens, number + options_.seed * 0x9e3779b97f4a7c15ULL);
  spec.output_token = &TextTokenId;
  spec.arrival = clock_.Now();
  const TextGenerator text(spec.seed);

  std::unique_ptr<InFlightRequests> launched = co_await Launch(std::move(specs), writer);
  if (!launched) co_return;
  InFlightRequests& guard = *launched;
  RequestStream* stream = guard.stream.get();

  ResponseObject object;
  object.id = MakeResponsesApiId("resp_", id_salt_, number);
  object.created_at = static_cast<int64_t>(clock_.UnixSeconds());
  object.model = profile_.served_model_name;
  object.message_id = MakeResponsesApiId("msg_", id_salt_, number);
  object.instructions = req.instructions;
  object.max_output_tokens = req.max_output_tokens;
  object.previous_response_id = req.previous_response_id;
  object.temperature = req.temperature;
  object.top_p = req.top_p;
  object.store = store;
  StreamUpdate latest;
  std::string output_text;
  // The final object once the engine request has finished; stored when asked to.
  auto finish = [&] {
    guard.done = true;
    output_text = text.Text(latest.num_tokens);
    object.status = latest.finish_reason == FinishReason::kLength ? ResponseStatus::kIncomplete
                                                                  : ResponseStatus::kCompleted;
    object.text = output_text;
    object.usage = Usage{.prompt_tokens = prompt->size(),
                         .completion_tokens = latest.num_tokens,
                         .cached_tokens = std::max(0, latest.cached_tokens)};
    std::string body = FormatResponseObject(object);
    if (store) {
      response_store_->Put(
          object.id,
          std::make_shared<const StoredResponse>(StoredResponse{
              .conversation = {.messages = std::move(messages), .output_text = output_text},
              .body = body}));
    }
    return body;
  };
  std::vector<StreamUpdate> updates;

  if (!req.params.stream) {
    while (!latest.finished) {
      if (!co_await stream->Next(writer, &updates)) co_return;
      latest = updates.back();
    }
    const std::string body = finish();
    http::IgnoreClientGone(co_await writer.Respond(200, body));
    co_return;
  }

  const http::Headers no_headers;
  if (!(co_await writer.BeginSse(no_headers)).ok()) co_return;
  ResponsesStreamFormatter formatter(object.message_id);
  std::string buffer;
  formatter.AppendStart(object, &buffer);
  if (!(co_await writer.WriteChunk(buffer)).ok()) co_return;
  int sent = 0;
  std::string delta;
  std::optional<Duration> previous_lag;  // of the last write, for the pacing error
  while (!latest.finished) {
    if (!co_await stream->Next(writer, &updates)) co_return;
    latest = updates.back();
    buffer.clear();
    delta.clear();
    text.Append(sent, latest.num_tokens - sent, &delta);
    sent = latest.num_tokens;
    formatter.AppendDelta(delta, &buffer);
    if (latest.finished) {
      finish();
      formatter.AppendFinish(object, &buffer);
    }
    if (!(co_await writer.WriteChunk(buffer)).ok()) co_return;
    const Duration lag = clock_.Now() - latest.model_time;
    metrics_->ObserveDeliveryLag(lag);
    if (previous_lag) metrics_->ObservePacingError(lag - *previous_lag);
    previous_lag = lag;
  }
  http::IgnoreClientGone(co_await writer.Finish());
}

asio::awaitable<void> Replica::HandleStoredResponse(const http::Request& request,
                                                    http::ResponseWriter& writer) {
  std::string_view id = request.path_suffix();
  constexpr std::string_view kCancel = "/cancel";
  const bool cancel_path = id.ends_with(kCancel);
  const bool cancel = request.method() == http::Method::post;
  if (cancel != cancel_path) {
    // vLLM's routes: GET /v1/responses/{id}, POST /v1/responses/{id}/cancel, nothing else.
    const std::string_view allowed = cancel_path ? "POST" : "GET, HEAD";
    const http::Headers allow = {{"Allow", std::string(allowed)}};
    http::IgnoreClientGone(
        co_await writer.RespondError(405,
                                     fmt::format("method {} is not allowed for {} (allowed: {})",
                                                 request.method_name(), request.path(), allowed),
                                     {}, {}, allow));
    co_return;
  }
  if (cancel) id.remove_suffix(kCancel.size());
  auto stored = response_store_ ? response_store_->Get(id) : nullptr;
  if (!stored) {
    ApiError error = ResponseNotFound(id);
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }
  if (cancel) {
    // Every stored response here has finished (no background mode): vLLM's answer for one
    // whose status is neither queued nor in_progress.
    ApiError error = InvalidRequest(400, "Cannot cancel a synchronous response.");
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }
  const std::string body = stored->body;
  http::IgnoreClientGone(co_await writer.Respond(200, body));
}

}  // namespace zumik::sim

#include "sim/server/replica.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>

#include "core/log.h"
#include "core/status.h"
#include "fmt/format.h"
#include "sim/openai_response.h"
#include "sim/prompt.h"
#include "sim/server/request_stream.h"
#include "sim/text_gen.h"

namespace zumik::sim {

namespace asio = boost::asio;

Replica::Replica(asio::io_context& io, Profile profile, ReplicaOptions options, const Clock& clock)
    : io_(io),
      profile_(std::move(profile)),
      options_(std::move(options)),
      clock_(clock),
      name_(fmt::format("replica-{}", options_.index)),
      engine_(profile_, EngineOptions{.seed = options_.seed, .record_token_times = false}),
      driver_strand_(asio::make_strand(io)),
      wake_timer_(driver_strand_),
      step_timer_(driver_strand_),
      id_salt_((uint64_t{std::random_device{}()} << 32) ^ std::random_device{}() ^
               (static_cast<uint64_t>(options_.index) << 48)),
      response_store_(options_.responses_store
                          ? std::make_unique<ResponseStore>(options_.responses_store_capacity)
                          : nullptr) {}

Replica::~Replica() {
  stopping_ = true;
  if (server_) server_.reset();
}

absl::Status Replica::Start() {
  auto metrics =
      ReplicaMetrics::Create(profile_, options_.index, clock_, [this] { return Stats(); });
  if (!metrics.ok()) return metrics.status();
  metrics_ = std::move(*metrics);

  http::ServerOptions server_options;
  server_options.host = options_.host;
  server_options.port = options_.port;
  server_options.name = name_;
  server_options.max_body_bytes = options_.max_body_bytes;
  server_options.default_headers = {{"x-zumik-replica", name_}};
  server_ = std::make_unique<http::Server>(io_, std::move(server_options), MakeRouter());
  if (absl::Status status = server_->Start(); !status.ok()) {
    // The server's message names the replica, the address and the cause already; the fix
    // depends on which of the two was wrong.
    const std::string_view message = MessageOf(status);
    if (message.find("in use") != std::string_view::npos) {
      return absl::UnavailableError(fmt::format(
          "{}; pick free ports with --port (replicas use P..P+N-1; 0 = any free ports)", message));
    }
    return absl::UnavailableError(
        fmt::format("{}; check --host (an address or name of this machine)", message));
  }
  asio::co_spawn(driver_strand_, DriverLoop(), [this](const std::exception_ptr& error) {
    driver_done_ = true;
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        Logger("sim")->error("{}: engine driver stopped: {}", name_, e.what());
      }
    }
  });
  return absl::OkStatus();
}

void Replica::Stop(std::chrono::nanoseconds grace) {
  if (server_) server_->Stop(grace);
  stopping_ = true;
  WakeDriver();
}

EngineStats Replica::Stats() const {
  std::lock_guard lock(mu_);
  return engine_.Stats();
}

void Replica::WakeDriver() {
  asio::post(driver_strand_, [this] { wake_timer_.cancel(); });
}

absl::StatusOr<std::vector<RequestId>> Replica::Submit(
    std::vector<RequestSpec> specs, const std::shared_ptr<RequestStream>& stream) {
  std::vector<RequestId> ids;
  ids.reserve(specs.size());
  {
    std::lock_guard lock(mu_);
    for (RequestSpec& spec : specs) {
      spec.id = next_id_ + ids.size();
      RETURN_IF_ERROR(engine_.Check(spec));
      ids.push_back(spec.id);
    }
    next_id_ += ids.size();
    for (size_t k = 0; k < specs.size(); ++k) {
      RETURN_IF_ERROR(engine_.Add(std::move(specs[k])));  // checked above: cannot fail
      streams_.emplace(ids[k], StreamRef{stream, static_cast<int>(k)});
    }
  }
  WakeDriver();
  return ids;
}

void Replica::Abort(std::span<const RequestId> ids) {
  std::lock_guard lock(mu_);
  const Time now = clock_.Now();
  for (const RequestId id : ids) {
    if (streams_.erase(id) == 0) continue;  // already finished
    last_token_time_.erase(id);
    engine_.Abort(id, now);
  }
}

asio::awaitable<std::unique_ptr<InFlightRequests>> Replica::Launch(std::vector<RequestSpec> specs,
                                                                   http::ResponseWriter& writer) {
  auto stream = std::make_shared<RequestStream>(co_await asio::this_coro::executor, specs.size());
  auto submitted = Submit(std::move(specs), stream);
  if (!submitted.ok()) {
    ApiError error = BadRequest(std::string(MessageOf(submitted.status())));
    co_await RespondApiError(writer, std::move(error));
    co_return nullptr;
  }
  auto ids = std::make_shared<const std::vector<RequestId>>(std::move(*submitted));
  writer.OnClientGone([weak = weak_from_this(), ids] {
    if (auto r = weak.lock()) r->Abort(*ids);
  });
  // Built in place: a moved-from temporary's destructor would abort the requests.
  auto in_flight = std::make_unique<InFlightRequests>();
  in_flight->replica = weak_from_this();
  in_flight->ids = std::move(ids);
  in_flight->stream = std::move(stream);
  co_return in_flight;
}

asio::awaitable<void> Replica::DriverLoop() {
  struct Pending {
    std::vector<std::pair<std::shared_ptr<RequestStream>, StreamUpdate>> updates;
    std::vector<FirstTokenEvent> first_tokens;
    std::vector<Duration> itls;
    std::vector<RequestResult> finished;
    void Clear() {
      updates.clear();
      first_tokens.clear();
      itls.clear();
      finished.clear();
    }
  } pending;
  absl::flat_hash_map<RequestId, size_t> index;

  while (!stopping_) {
    std::optional<Time> next;
    {
      std::lock_guard lock(mu_);
      next = engine_.NextStepTime();
    }
    const Time now = clock_.Now();
    if (!next || *next > now) {
      // Idle until work arrives (WakeDriver cancels the wait) or the next request is ready.
      if (next) {
        wake_timer_.expires_after(*next - now);
      } else {
        wake_timer_.expires_at(asio::steady_timer::time_point::max());
      }
      boost::system::error_code ec;
      co_await wake_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }

    Time end{0};
    pending.Clear();
    index.clear();
    {
      std::lock_guard lock(mu_);
      const StepResult& step = engine_.Step(now);
      end = step.end;
      auto update_for = [&](RequestId id) -> StreamUpdate* {
        auto [it, inserted] = index.try_emplace(id, pending.updates.size());
        if (inserted) {
          auto stream = streams_.find(id);
          if (stream == streams_.end()) {
            index.erase(it);
            return nullptr;
          }
          pending.updates.push_back(
              {stream->second.stream,
               StreamUpdate{.choice = stream->second.choice, .model_time = end}});
        }
        return &pending.updates[it->second].second;
      };
      for (const FirstTokenEvent& event : step.first_tokens) {
        pending.first_tokens.push_back(event);
        if (StreamUpdate* u = update_for(event.id)) {
          u->cached_tokens = event.cached_tokens;
          u->prompt_tokens = event.prompt_tokens;
        }
      }
      for (const TokenEvent& event : step.tokens) {
        if (StreamUpdate* u = update_for(event.id)) u->num_tokens = event.index + 1;
        auto [it, first] = last_token_time_.try_emplace(event.id, end);
        if (!first) {
          pending.itls.push_back(end - it->second);
          it->second = end;
        }
      }
      for (const RequestResult& result : step.finished) {
        pending.finished.push_back(result);
        if (StreamUpdate* u = update_for(result.id)) {
          u->num_tokens = result.output_tokens;
          u->finished = true;
          u->finish_reason = result.finish_reason;
        }
        streams_.erase(result.id);
        last_token_time_.erase(result.id);
      }
      if (step.idle()) end = now + std::chrono::milliseconds(1);  // never spin
    }

    // The step runs on the (simulated) GPU: its events exist only once it is over.
    step_timer_.expires_after(end - clock_.Now());
    boost::system::error_code ec;
    co_await step_timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));

    for (const auto& event : pending.first_tokens) metrics_->ObserveFirstToken(event);
    for (Duration itl : pending.itls) metrics_->ObserveInterTokenLatency(itl);
    for (const auto& result : pending.finished) metrics_->ObserveFinished(result);
    for (auto& [stream, update] : pending.updates) stream->Post(update);
  }
}

http::Router Replica::MakeRouter() {
  http::Router router;
  router.Post("/v1/completions", [this](http::Request& req, http::ResponseWriter& w) {
    return HandleGenerate(req, w, Endpoint::kCompletions);
  });
  router.Post("/v1/chat/completions", [this](http::Request& req, http::ResponseWriter& w) {
    return HandleGenerate(req, w, Endpoint::kChatCompletions);
  });
  router.Post("/v1/responses", [this](http::Request& req, http::ResponseWriter& w) {
    return HandleResponses(req, w);
  });
  for (const http::Method method : {http::Method::get, http::Method::post}) {
    router.HandlePrefix(method, "/v1/responses/",
                        [this](http::Request& req, http::ResponseWriter& w) {
                          return HandleStoredResponse(req, w);
                        });
  }
  router.Get("/v1/models", [this](http::Request&, http::ResponseWriter& w) {
    const ModelCard card{.id = profile_.served_model_name,
                         .root = profile_.served_model_name,
                         .created = static_cast<int64_t>(clock_.UnixSeconds()),
                         .max_model_len = profile_.max_model_len};
    return RespondOwned(w, 200, FormatModelList(std::span(&card, 1)), http::kJsonContentType);
  });
  router.Get("/health", [](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    http::IgnoreClientGone(co_await w.Respond(200, std::string_view(),
                                              std::string_view("text/plain"), http::Headers()));
  });
  router.Get("/ping", [](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    http::IgnoreClientGone(co_await w.Respond(200, "", "text/plain"));
  });
  router.Get("/version", [](http::Request&, http::ResponseWriter& w) -> asio::awaitable<void> {
    http::IgnoreClientGone(co_await w.Respond(200, R"({"version":"zumik-sim"})"));
  });
  router.Get("/metrics", [this](http::Request&, http::ResponseWriter& w) {
    return RespondOwned(w, 200, metrics_->Expose(), "text/plain; version=0.0.4; charset=utf-8");
  });
  return router;
}

namespace {

// One prompt of an HTTP request, tokenized, with what its samples' text seeds derive from.
struct PromptInput {
  std::shared_ptr<const Prompt> prompt;
  std::string text;                // the prompt text (chat: the rendered template)
  std::vector<TokenId> token_ids;  // a token-id prompt's ids (text is empty then)
  int max_tokens = 0;

  uint64_t Seed(std::optional<int64_t> request_seed, uint64_t counter) const {
    return token_ids.empty() ? GenerationSeed(request_seed, text, counter)
                             : GenerationSeed(request_seed, token_ids, counter);
  }
};

// The handler's view of one choice (one engine request).
struct ChoiceState {
  size_t prompt = 0;  // index into the PromptInputs
  TextGenerator text{0};
  StreamUpdate latest;
  int sent = 0;  // tokens written (streaming)
};

}  // namespace

asio::awaitable<void> Replica::HandleGenerate(const http::Request& request,
                                              http::ResponseWriter& writer, Endpoint endpoint) {
  const RequestLimits limits{.max_model_len = profile_.max_model_len};
  GenerationParams params;
  std::vector<PromptInput> inputs;
  if (endpoint == Endpoint::kCompletions) {
    auto parsed = ParseCompletionRequest(request.body(), limits);
    if (!parsed.ok()) {
      co_await RespondApiError(writer, parsed.error());
      co_return;
    }
    params = std::move(parsed->params);
    inputs.reserve(parsed->prompts.size());
    for (CompletionPrompt& prompt : parsed->prompts) {
      PromptInput& input = inputs.emplace_back();
      if (prompt.is_token_ids) {
        input.token_ids = prompt.token_ids;
        input.prompt = MakePrompt(std::move(prompt.token_ids), profile_.block_size);
      } else {
        input.prompt = MakePromptFromText(prompt.text, profile_.block_size);
        input.text = std::move(prompt.text);
      }
    }
  } else {
    auto parsed = ParseChatRequest(request.body(), limits);
    if (!parsed.ok()) {
      co_await RespondApiError(writer, parsed.error());
      co_return;
    }
    params = std::move(parsed->params);
    PromptInput& input = inputs.emplace_back();
    input.prompt = MakePrompt(TokenizeChatPrompt(parsed->messages), profile_.block_size);
    input.text = std::move(parsed->prompt);
  }
  if (params.model != profile_.served_model_name) {
    ApiError error = ModelNotFound(params.model);
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }
  // As vLLM's serving layer, each prompt gets its own max_tokens (and the first that does not
  // fit fails the whole request).
  for (PromptInput& input : inputs) {
    auto max_tokens = ResolveMaxTokens(params.max_tokens, input.prompt->size(), limits);
    if (!max_tokens.ok()) {
      co_await RespondApiError(writer, max_tokens.error());
      co_return;
    }
    input.max_tokens = static_cast<int>(*max_tokens);
  }

  // Choice i * n + j is sample j of prompt i, each its own engine request (vLLM V1's
  // ParentRequest fans n out into child requests; a client seed s gives child j the seed s + j,
  // vllm/v1/engine/parallel_sampling.py). Without a seed, each child draws its own counter.
  const int64_t n = params.n;
  const size_t num_choices = inputs.size() * static_cast<size_t>(n);
  const uint64_t first_counter = request_counter_.fetch_add(num_choices);
  std::vector<ChoiceState> choices(num_choices);
  std::vector<RequestSpec> specs(num_choices);
  const Time arrival = clock_.Now();
  for (size_t c = 0; c < num_choices; ++c) {
    const PromptInput& input = inputs[c / n];
    const int64_t sample = static_cast<int64_t>(c % n);
    std::optional<int64_t> seed = params.seed;
    if (seed) *seed = static_cast<int64_t>(static_cast<uint64_t>(*seed) + sample);
    const uint64_t counter = first_counter + c + options_.seed * 0x9e3779b97f4a7c15ULL;
    RequestSpec& spec = specs[c];
    spec.prompt = input.prompt;
    spec.max_tokens = input.max_tokens;
    spec.min_tokens = static_cast<int>(std::min<int64_t>(params.min_tokens, input.max_tokens));
    spec.ignore_eos = params.ignore_eos;
    spec.seed = input.Seed(seed, counter);
    spec.output_token = &TextTokenId;  // the ids of the text this handler sends
    spec.arrival = arrival;
    choices[c].prompt = c / n;
    choices[c].text = TextGenerator(spec.seed);
    choices[c].latest.choice = static_cast<int>(c);
  }

  std::unique_ptr<InFlightRequests> launched = co_await Launch(std::move(specs), writer);
  if (!launched) co_return;
  InFlightRequests& guard = *launched;
  RequestStream* stream = guard.stream.get();
  const std::vector<RequestId>* ids = guard.ids.get();

  const ResponseMeta meta{.id = MakeResponseId(endpoint, ids->front()),
                          .created = static_cast<int64_t>(clock_.UnixSeconds()),
                          .model = profile_.served_model_name};
  // Usage as vLLM's serving layer sums it: each prompt's tokens once, every choice's output.
  // cached_tokens is one engine request's, as vLLM reports it: the first to produce output when
  // streaming, the last prompt's final output (its last sample to finish) otherwise
  // (serving_completion.py / serving_chat.py: num_cached_tokens of the first / last result).
  int64_t prompt_tokens = 0;
  for (const PromptInput& input : inputs) prompt_tokens += input.prompt->size();
  std::optional<size_t> cached_from;
  auto usage = [&] {
    Usage u{.prompt_tokens = prompt_tokens};
    for (const ChoiceState& choice : choices) u.completion_tokens += choice.latest.num_tokens;
    if (cached_from) u.cached_tokens = std::max(0, choices[*cached_from].latest.cached_tokens);
    return u;
  };
  size_t num_finished = 0;
  std::vector<StreamUpdate> updates;

  if (!params.stream) {
    while (num_finished < num_choices) {
      if (!co_await stream->Next(writer, &updates)) co_return;
      for (const StreamUpdate& update : updates) {
        ChoiceState& choice = choices[update.choice];
        choice.latest = update;
        if (!update.finished) continue;
        ++num_finished;
        if (choice.prompt + 1 == inputs.size()) cached_from = update.choice;
      }
    }
    guard.done = true;
    std::vector<std::string> texts(num_choices);
    std::vector<ChoiceOutput> outputs(num_choices);
    for (size_t c = 0; c < num_choices; ++c) {
      texts[c] = choices[c].text.Text(choices[c].latest.num_tokens);
      outputs[c] = {.text = texts[c], .finish = choices[c].latest.finish_reason};
    }
    const std::string body = endpoint == Endpoint::kCompletions
                                 ? FormatCompletionResponse(meta, outputs, usage())
                                 : FormatChatResponse(meta, outputs, usage());
    http::IgnoreClientGone(co_await writer.Respond(200, body));
    co_return;
  }

  const http::Headers no_headers;
  if (!(co_await writer.BeginSse(no_headers)).ok()) co_return;
  const StreamFormatter formatter(endpoint, meta, params.include_usage);
  std::string buffer;
  for (size_t c = 0; c < num_choices; ++c) formatter.AppendRole(&buffer, static_cast<int64_t>(c));
  if (!buffer.empty() && !(co_await writer.WriteChunk(buffer)).ok()) co_return;
  std::optional<Duration> previous_lag;  // of the last write, for the pacing error
  while (num_finished < num_choices) {
    if (!co_await stream->Next(writer, &updates)) co_return;
    buffer.clear();
    Time model_time{0};
    for (const StreamUpdate& update : updates) {
      ChoiceState& choice = choices[update.choice];
      choice.latest = update;
      model_time = std::max(model_time, update.model_time);
      if (!cached_from && update.cached_tokens >= 0) cached_from = update.choice;
      const int64_t index = update.choice;
      const int produced = update.num_tokens;
      const int plain_until = update.finished ? std::max(choice.sent, produced - 1) : produced;
      for (int i = choice.sent; i < plain_until; ++i) {
        formatter.AppendText(choice.text.Token(i), &buffer, index);
      }
      if (update.finished) {
        ++num_finished;
        const std::string_view last = produced > plain_until ? choice.text.Token(produced - 1) : "";
        formatter.AppendFinish(last, update.finish_reason, &buffer, index);
      }
      choice.sent = produced;
    }
    if (num_finished == num_choices) {
      guard.done = true;
      formatter.AppendUsage(usage(), &buffer);
      StreamFormatter::AppendDone(&buffer);
    }
    if (!(co_await writer.WriteChunk(buffer)).ok()) co_return;
    const Duration lag = clock_.Now() - model_time;
    metrics_->ObserveDeliveryLag(lag);
    if (previous_lag) metrics_->ObservePacingError(lag - *previous_lag);
    previous_lag = lag;
  }
  http::IgnoreClientGone(co_await writer.Finish());
}

}  // namespace zumik::sim

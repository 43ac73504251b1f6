#include "sim/server/replica.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.h"
#include "core/status.h"
#include "fmt/format.h"
#include "sim/openai_response.h"
#include "sim/prompt.h"
#include "sim/text_gen.h"

namespace zumik::sim {

namespace asio = boost::asio;

// The handler's side of one request: the latest cumulative update from the driver, and the
// wake-up of a handler waiting in Next. The driver (on its own strand) and the handler (on its
// connection's strand) share the update under a mutex; the wake-up is a one-slot concurrent
// channel, so each step costs one hand-off to the handler's strand (the receive's completion),
// where a cancelled steady_timer cost three. A waiting receive is cancelled per operation when
// the client goes (like the timer wait was), and the channel's service destroys one still
// waiting at io_context shutdown, so nothing is left holding the handler's coroutine.
class RequestStream {
 public:
  explicit RequestStream(const asio::any_io_executor& executor) : wake_(executor, 1) {}

  // Driver side, any thread: hands `update` to the handler (coalescing with one it has not
  // read yet).
  void Post(const StreamUpdate& update) {
    {
      std::lock_guard lock(mu_);
      const int cached = std::max(latest_.cached_tokens, update.cached_tokens);
      const int prompt = std::max(latest_.prompt_tokens, update.prompt_tokens);
      latest_ = update;
      latest_.cached_tokens = cached;
      latest_.prompt_tokens = prompt;
      unread_ = true;
    }
    // Fails only while a wake-up is already pending, which then covers this update too.
    wake_.try_send(boost::system::error_code());
  }

  // Handler side: the next update, or nullopt once the client has gone.
  asio::awaitable<std::optional<StreamUpdate>> Next(const http::ResponseWriter& writer) {
    for (;;) {
      std::optional<StreamUpdate> update = Take();
      if (update) co_return update;
      if (writer.client_gone()) co_return std::nullopt;
      // A wake-up left from an update already taken just comes round this loop again.
      boost::system::error_code ec;
      co_await wake_.async_receive(asio::redirect_error(asio::use_awaitable, ec));
      const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
      if (cancelled != asio::cancellation_type::none) co_return std::nullopt;
    }
  }

 private:
  std::optional<StreamUpdate> Take() {
    std::lock_guard lock(mu_);
    if (!unread_) return std::nullopt;
    unread_ = false;
    return latest_;
  }

  std::mutex mu_;
  StreamUpdate latest_;  // guarded by mu_
  bool unread_ = false;  // guarded by mu_
  asio::experimental::concurrent_channel<void(boost::system::error_code)> wake_;
};

namespace {
// GCC 12 mishandles temporaries inside co_await expressions (double destruction), so bodies are
// built into named values before they are awaited.
asio::awaitable<void> RespondOwned(http::ResponseWriter& writer, int status, std::string body,
                                   std::string_view content_type) {
  http::IgnoreClientGone(co_await writer.Respond(status, body, content_type));
}

asio::awaitable<void> RespondApiError(http::ResponseWriter& writer, ApiError error) {
  const std::string body = error.ToJson();
  http::IgnoreClientGone(co_await writer.Respond(error.http_status, body));
}
}  // namespace

Replica::Replica(asio::io_context& io, Profile profile, ReplicaOptions options, const Clock& clock)
    : io_(io),
      profile_(std::move(profile)),
      options_(std::move(options)),
      clock_(clock),
      name_(fmt::format("replica-{}", options_.index)),
      engine_(profile_, EngineOptions{.seed = options_.seed, .record_token_times = false}),
      driver_strand_(asio::make_strand(io)),
      wake_timer_(driver_strand_),
      step_timer_(driver_strand_) {}

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
    return absl::UnavailableError(fmt::format("{}: cannot listen on {}:{}: {}", name_,
                                              options_.host, options_.port, MessageOf(status)));
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

absl::StatusOr<RequestId> Replica::Submit(RequestSpec spec,
                                          const std::shared_ptr<RequestStream>& stream) {
  RequestId id = 0;
  {
    std::lock_guard lock(mu_);
    id = spec.id = next_id_++;
    RETURN_IF_ERROR(engine_.Add(std::move(spec)));
    streams_.emplace(id, stream);
  }
  WakeDriver();
  return id;
}

void Replica::Abort(RequestId id) {
  std::lock_guard lock(mu_);
  if (streams_.erase(id) == 0) return;  // already finished
  last_token_time_.erase(id);
  engine_.Abort(id, clock_.Now());
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
          pending.updates.push_back({stream->second, StreamUpdate{.model_time = end}});
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

asio::awaitable<void> Replica::HandleGenerate(const http::Request& request,
                                              http::ResponseWriter& writer, Endpoint endpoint) {
  const RequestLimits limits{.max_model_len = profile_.max_model_len};
  GenerationParams params;
  std::string prompt_text;
  std::shared_ptr<const Prompt> prompt;
  if (endpoint == Endpoint::kCompletions) {
    auto parsed = ParseCompletionRequest(request.body(), limits);
    if (!parsed.ok()) {
      co_await RespondApiError(writer, parsed.error());
      co_return;
    }
    params = std::move(parsed->params);
    prompt_text = std::move(parsed->prompt);
    prompt = MakePromptFromText(prompt_text, profile_.block_size);
  } else {
    auto parsed = ParseChatRequest(request.body(), limits);
    if (!parsed.ok()) {
      co_await RespondApiError(writer, parsed.error());
      co_return;
    }
    params = std::move(parsed->params);
    prompt_text = std::move(parsed->prompt);
    prompt = MakePrompt(TokenizeChatPrompt(parsed->messages), profile_.block_size);
  }
  if (params.model != profile_.served_model_name) {
    ApiError error = ModelNotFound(params.model);
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }

  auto max_tokens = ResolveMaxTokens(params.max_tokens, prompt->size(), limits);
  if (!max_tokens.ok()) {
    co_await RespondApiError(writer, max_tokens.error());
    co_return;
  }
  const uint64_t counter = request_counter_.fetch_add(1) + options_.seed * 0x9e3779b97f4a7c15ULL;
  const uint64_t seed = GenerationSeed(params.seed, prompt_text, counter);

  RequestSpec spec;
  spec.prompt = prompt;
  spec.max_tokens = static_cast<int>(*max_tokens);
  spec.min_tokens = static_cast<int>(std::min<int64_t>(params.min_tokens, *max_tokens));
  spec.ignore_eos = params.ignore_eos;
  spec.seed = seed;
  spec.output_token = &TextTokenId;  // the ids of the text this handler sends (text below)
  spec.arrival = clock_.Now();

  auto stream = std::make_shared<RequestStream>(co_await asio::this_coro::executor);
  auto submitted = Submit(std::move(spec), stream);
  if (!submitted.ok()) {
    ApiError error = BadRequest(std::string(MessageOf(submitted.status())));
    co_await RespondApiError(writer, std::move(error));
    co_return;
  }
  const RequestId id = *submitted;
  // However the handler ends (client gone, write error, server stop), the engine forgets it.
  struct AbortGuard {
    std::weak_ptr<Replica> replica;
    RequestId id;
    bool done = false;
    ~AbortGuard() {
      if (auto r = replica.lock(); r && !done) r->Abort(id);
    }
  } guard{weak_from_this(), id};
  writer.OnClientGone([weak = weak_from_this(), id] {
    if (auto r = weak.lock()) r->Abort(id);
  });

  const ResponseMeta meta{.id = MakeResponseId(endpoint, id),
                          .created = static_cast<int64_t>(clock_.UnixSeconds()),
                          .model = profile_.served_model_name};
  const TextGenerator text(seed);
  auto usage = [&](const StreamUpdate& u) {
    return Usage{.prompt_tokens = prompt->size(),
                 .completion_tokens = u.num_tokens,
                 .cached_tokens = std::max(0, u.cached_tokens)};
  };

  if (!params.stream) {
    for (;;) {
      auto update = co_await stream->Next(writer);
      if (!update) co_return;
      if (!update->finished) continue;
      guard.done = true;
      const std::string output = text.Text(update->num_tokens);
      const std::string body =
          endpoint == Endpoint::kCompletions
              ? FormatCompletionResponse(meta, output, update->finish_reason, usage(*update))
              : FormatChatResponse(meta, output, update->finish_reason, usage(*update));
      http::IgnoreClientGone(co_await writer.Respond(200, body));
      co_return;
    }
  }

  const http::Headers no_headers;
  if (!(co_await writer.BeginSse(no_headers)).ok()) co_return;
  const StreamFormatter formatter(endpoint, meta, params.include_usage);
  std::string buffer;
  formatter.AppendRole(&buffer);
  if (!buffer.empty() && !(co_await writer.WriteChunk(buffer)).ok()) co_return;
  int sent = 0;
  std::optional<Duration> previous_lag;  // of the last write, for the pacing error
  for (;;) {
    auto update = co_await stream->Next(writer);
    if (!update) co_return;
    buffer.clear();
    const int produced = update->num_tokens;
    const int plain_until = update->finished ? std::max(sent, produced - 1) : produced;
    for (int i = sent; i < plain_until; ++i) formatter.AppendText(text.Token(i), &buffer);
    if (update->finished) {
      guard.done = true;
      const std::string_view last = produced > plain_until ? text.Token(produced - 1) : "";
      formatter.AppendFinish(last, update->finish_reason, &buffer);
      formatter.AppendUsage(usage(*update), &buffer);
      StreamFormatter::AppendDone(&buffer);
    }
    sent = produced;
    if (!(co_await writer.WriteChunk(buffer)).ok()) co_return;
    const Duration lag = clock_.Now() - update->model_time;
    metrics_->ObserveDeliveryLag(lag);
    if (previous_lag) metrics_->ObservePacingError(lag - *previous_lag);
    previous_lag = lag;
    if (update->finished) break;
  }
  http::IgnoreClientGone(co_await writer.Finish());
}

}  // namespace zumik::sim

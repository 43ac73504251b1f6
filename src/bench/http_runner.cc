// The HTTP load client: open-loop arrivals on timers or closed-loop clients, each request one
// coroutine reading its SSE stream; samples fold into per-stage accumulators on the single
// io_context thread, so nothing is locked.
#include "bench/http_runner.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <chrono>

#include "bench/generator.h"
#include "bench/response.h"
#include "core/http/client.h"
#include "core/status.h"
#include "sim/tokenizer.h"

namespace zumik::bench {
namespace {

namespace asio = boost::asio;
using SteadyTime = std::chrono::steady_clock::time_point;

// A non-streamed response body's limit (a 32k-token answer is about 128 KB).
constexpr size_t kMaxBodyBytes = 64 << 20;

struct RunState {
  const Workload* workload = nullptr;
  const HttpOptions* options = nullptr;
  http::Client* client = nullptr;
  Generator* generator = nullptr;
  std::string model;
  std::string url;
  SteadyTime run_start;
  std::vector<StageAccumulator> acc;
  std::vector<int64_t> outstanding;
  std::vector<int64_t> issued;
  std::vector<bool> timed_out;
  SteadyTime stage_end;
  absl::Status status;
};

double SecondsSince(SteadyTime start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string ErrorKind(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      return "connect";
    case absl::StatusCode::kDeadlineExceeded:
      return "timeout";
    case absl::StatusCode::kCancelled:
      return "cancelled";
    case absl::StatusCode::kResourceExhausted:
      return "too_large";
    default:
      return "transport";
  }
}

http::ClientRequest MakeRequest(const std::string& url, std::string body,
                                std::chrono::nanoseconds timeout) {
  http::ClientRequest r = http::ClientRequest::Post(url, std::move(body));
  r.headers.emplace_back("Accept", "text/event-stream");
  r.timeout = timeout;
  return r;
}

void Record(RunState* st, size_t stage, Sample& s, const std::vector<double>& gaps) {
  s.finished_s = SecondsSince(st->run_start);
  StageAccumulator& acc = st->acc[stage];
  acc.Add(s);
  for (double g : gaps) acc.AddItl(g);
  --st->outstanding[stage];
  if (s.error == "timeout") st->timed_out[stage] = true;
}

// Hands a conversation turn's outcome back to the generator: the answer the next turn carries,
// or (failed) the end of the conversation.
// `reported_tokens`: the answer's usage.completion_tokens, -1 if the server sent none (then the
// tokenizer stand-in's estimate, 4 bytes a token, counts it against the context).
void Conclude(RunState* st, const GenRequest& request, const Sample& sample,
              const std::string& answer, int64_t reported_tokens) {
  if (request.slot < 0) return;
  if (!sample.ok) {
    st->generator->EndConversation(request);
    return;
  }
  const int tokens =
      reported_tokens >= 0 ? static_cast<int>(reported_tokens) : sim::TokenCount(answer);
  st->generator->Answer(request, answer, tokens);
}

void AddUsage(const ResponseChunk& c, Sample& sample, int64_t* completion_tokens) {
  if (c.completion_tokens >= 0) {
    sample.output_tokens = c.completion_tokens;
    *completion_tokens = c.completion_tokens;
  }
  if (c.prompt_tokens >= 0) sample.prompt_tokens = c.prompt_tokens;
  if (c.cached_tokens >= 0) sample.cached_tokens = c.cached_tokens;
}

asio::awaitable<void> OneRequest(RunState* st, GenRequest request, size_t stage,
                                 std::chrono::nanoseconds timeout) {
  Sample sample;
  sample.prompt_tokens = request.prompt->prompt_tokens;
  std::vector<double> gaps;
  const SteadyTime start = std::chrono::steady_clock::now();
  std::string body =
      RequestBody(*st->workload, st->model, request.prompt->text, request.prompt->system_len,
                  request.output_len, request.prompt->message_ends);
  http::ClientRequest req = MakeRequest(st->url, std::move(body), timeout);
  absl::StatusOr<http::ClientStream> stream = co_await st->client->Stream(std::move(req));
  int64_t completion_tokens = -1;  // as the server's usage reports it
  const auto finish = [&](const std::string& answer) {
    Conclude(st, request, sample, answer, completion_tokens);
    Record(st, stage, sample, gaps);
  };
  if (!stream.ok()) {
    sample.error = ErrorKind(stream.status());
    finish({});
    co_return;
  }
  if (stream->status() != 200) {
    sample.error = fmt::format("http_{}", stream->status());
    absl::StatusOr<std::string> rest = co_await stream->ReadAll();
    (void)rest;
    finish({});
    co_return;
  }
  const bool keep_answer = request.slot >= 0;
  if (!stream->Header("Content-Type").starts_with("text/event-stream")) {
    // A server that answers without streaming: one JSON body, its first byte the first token.
    absl::StatusOr<std::string> all = co_await stream->ReadAll(kMaxBodyBytes);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!all.ok()) {
      sample.error = ErrorKind(all.status());
      finish({});
      co_return;
    }
    ResponseChunk c = ParseResponseChunk(*all);
    AddUsage(c, sample, &completion_tokens);
    sample.ttft_ms = sample.e2e_ms = ms;
    sample.ok = !c.error;
    if (c.error) sample.error = "stream_error";
    if (sample.output_tokens == 0) sample.output_tokens = sim::TokenCount(c.text);
    finish(keep_answer ? c.text : std::string());
    co_return;
  }
  StreamReader reader(keep_answer);
  SteadyTime last{};
  bool first = true, failed = false;
  int64_t chunks = 0;
  for (;;) {
    absl::StatusOr<std::string_view> data = co_await stream->Read();
    if (!data.ok()) {
      sample.error = ErrorKind(data.status());
      failed = true;
      break;
    }
    if (data->empty()) break;
    const SteadyTime now = std::chrono::steady_clock::now();
    if (!reader.Feed(*data).ok()) {
      sample.error = "bad_stream";
      failed = true;
      break;
    }
    while (std::optional<ResponseChunk> c = reader.Next()) {
      if (c->error) {
        sample.error = "stream_error";
        failed = true;
        continue;
      }
      if (!c->text.empty()) {
        ++chunks;
        if (first) {
          sample.ttft_ms = std::chrono::duration<double, std::milli>(now - start).count();
          first = false;
        } else {
          gaps.push_back(std::chrono::duration<double, std::milli>(now - last).count());
        }
        last = now;
      }
      AddUsage(*c, sample, &completion_tokens);
    }
  }
  if (sample.output_tokens == 0) sample.output_tokens = chunks;
  sample.e2e_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  sample.ok = reader.done() && !failed;
  if (!sample.ok && sample.error.empty()) sample.error = "incomplete";
  finish(reader.answer());
}

std::chrono::nanoseconds TimeoutFor(const RunState* st, const Stage& stage) {
  if (stage.timeout <= Duration{0}) return st->options->request_timeout;
  const auto left = st->stage_end + stage.timeout - std::chrono::steady_clock::now();
  return std::max<std::chrono::nanoseconds>(left, std::chrono::milliseconds(1));
}

asio::awaitable<void> ClientLoop(RunState* st, int client, size_t stage_index, Stage stage) {
  while (std::chrono::steady_clock::now() < st->stage_end) {
    GenRequest r = st->generator->NextForClient(client);
    ++st->outstanding[stage_index];
    ++st->issued[stage_index];
    const std::chrono::nanoseconds timeout = TimeoutFor(st, stage);
    co_await OneRequest(st, std::move(r), stage_index, timeout);
  }
}

asio::awaitable<void> Drive(RunState* st, std::vector<StageStats>* out) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  const Workload& w = *st->workload;
  const bool closed = w.load.arrival == Arrival::kConcurrency;
  const bool trace = w.kind == WorkloadKind::kTrace;
  std::vector<Stage> stages = w.load.stages;
  if (trace) {
    Stage s;
    const double span = std::max(1e-3, w.trace.records.back().t);
    s.rate = static_cast<double>(w.trace.records.size()) / span;
    s.duration = FromSeconds(span);
    stages.clear();
    stages.push_back(s);
  }
  st->acc.resize(stages.size());
  st->outstanding.assign(stages.size(), 0);
  st->issued.assign(stages.size(), 0);
  st->timed_out.assign(stages.size(), false);
  const int total = static_cast<int>(stages.size());
  for (size_t si = 0; si < stages.size(); ++si) {
    const Stage stage = stages[si];
    const SteadyTime start = std::chrono::steady_clock::now();
    const double start_s = SecondsSince(st->run_start);
    st->stage_end = start + stage.duration;
    if (st->options->progress) st->options->progress(w.name, static_cast<double>(si), total);
    if (closed) {
      for (int c = 0; c < static_cast<int>(stage.rate); ++c) {
        asio::co_spawn(executor, ClientLoop(st, c, si, stage), asio::detached);
      }
    } else {
      std::vector<std::pair<double, GenRequest>> trace_requests;
      std::vector<double> offsets;
      if (trace) {
        for (size_t i = 0;; ++i) {
          auto next = st->generator->TraceRequest(i);
          if (!next) break;
          offsets.push_back(next->first);
        }
      } else {
        offsets = ArrivalOffsets(w.load, stage, w.seed * 7919 + si);
      }
      for (size_t i = 0; i < offsets.size(); ++i) {
        timer.expires_at(start + std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::duration<double>(offsets[i])));
        co_await timer.async_wait(asio::use_awaitable);
        GenRequest r;
        if (trace) {
          auto next = st->generator->TraceRequest(i);
          r = std::move(next->second);
        } else if (std::optional<GenRequest> ready = st->generator->NextReady()) {
          r = std::move(*ready);
        } else {
          // Every conversation waits for its previous answer: the arrival is not sent (a
          // later turn must not overtake an answer) but counted, so the offered load stays.
          ++st->outstanding[si];
          ++st->issued[si];
          Sample busy;
          busy.error = "no_idle_conversation";
          Record(st, si, busy, {});
          continue;
        }
        ++st->outstanding[si];
        ++st->issued[si];
        const std::chrono::nanoseconds timeout = TimeoutFor(st, stage);
        asio::co_spawn(executor, OneRequest(st, std::move(r), si, timeout), asio::detached);
      }
    }
    // Wait for the stage's requests (closed loop: and for its duration).
    while (st->outstanding[si] > 0 || std::chrono::steady_clock::now() < st->stage_end) {
      timer.expires_after(std::chrono::milliseconds(20));
      co_await timer.async_wait(asio::use_awaitable);
      if (st->options->progress && st->issued[si] > 0) {
        const double f = static_cast<double>(st->acc[si].requests()) /
                         static_cast<double>(std::max<int64_t>(st->issued[si], 1));
        st->options->progress(w.name, static_cast<double>(si) + std::min(f, 0.999), total);
      }
      if (!closed && st->outstanding[si] == 0) break;
    }
    StageStats stats =
        FinishStage(st->acc[si], stage.rate, stage.warmup, start_s, w.slo_ttft_p90_ms);
    stats.timed_out = st->timed_out[si];
    st->acc[si] = StageAccumulator();
    if (!stage.warmup) out->push_back(std::move(stats));
    if (stage.interval > Duration{0}) {
      timer.expires_after(stage.interval);
      co_await timer.async_wait(asio::use_awaitable);
    }
  }
  if (st->options->progress) st->options->progress(w.name, total, total);
}

absl::StatusOr<std::string> DiscoverModel(const std::string& target) {
  absl::StatusOr<http::ClientResponse> r = http::FetchBlocking(
      http::Method::get, target + "/v1/models", {}, {}, std::chrono::seconds(10));
  if (!r.ok()) return r.status();
  RETURN_IF_ERROR(http::StatusFromResponse(*r));
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r->body, ec);
  if (!ec && v.is_object()) {
    if (const auto* data = v.get_object().if_contains("data"); data && data->is_array()) {
      for (const auto& m : data->get_array()) {
        if (m.is_object()) {
          if (const auto* id = m.get_object().if_contains("id"); id && id->is_string()) {
            return std::string(id->get_string());
          }
        }
      }
    }
  }
  return Errorf(absl::StatusCode::kFailedPrecondition,
                "{}/v1/models lists no model: pass --model or set model: in the workload", target);
}

}  // namespace

std::string RequestBody(const Workload& workload, const std::string& model,
                        const std::string& prompt, int system_len, int max_tokens,
                        std::span<const size_t> message_ends) {
  boost::json::object body;
  body["model"] = model;
  if (workload.api == "chat") {
    boost::json::array messages;
    const size_t split = std::min(prompt.size(), static_cast<size_t>(std::max(system_len, 0)));
    if (split > 0) {
      boost::json::object sys;
      sys["role"] = "system";
      sys["content"] = std::string_view(prompt).substr(0, split);
      messages.push_back(std::move(sys));
    }
    // A chat client's history: its questions and the assistant's answers, alternating.
    size_t at = split;
    bool user = true;
    auto add = [&](size_t end) {
      end = std::clamp(end, at, prompt.size());
      boost::json::object m;
      m["role"] = user ? "user" : "assistant";
      m["content"] = std::string_view(prompt).substr(at, end - at);
      messages.push_back(std::move(m));
      at = end;
      user = !user;
    };
    for (size_t end : message_ends) add(end);
    if (message_ends.empty() || at < prompt.size()) add(prompt.size());
    body["messages"] = std::move(messages);
  } else {
    body["prompt"] = prompt;
  }
  body["max_tokens"] = max_tokens;
  body["min_tokens"] = max_tokens;
  body["ignore_eos"] = true;
  body["stream"] = true;
  boost::json::object stream_options;
  stream_options["include_usage"] = true;
  body["stream_options"] = std::move(stream_options);
  return boost::json::serialize(body);
}

absl::StatusOr<Report> RunHttp(const Workload& workload, const HttpOptions& options) {
  std::string target = options.target;
  while (!target.empty() && target.back() == '/') target.pop_back();
  // An OpenAI base URL (".../v1", as clients take it) names the same server.
  if (target.ends_with("/v1")) target.resize(target.size() - 3);
  if (!target.starts_with("http://") && !target.starts_with("https://")) {
    return Errorf(absl::StatusCode::kInvalidArgument, "--target '{}': expected http://HOST:PORT",
                  options.target);
  }
  std::string model = !options.model.empty() ? options.model : workload.model;
  if (model.empty()) {
    ASSIGN_OR_RETURN(model, DiscoverModel(target));
  }
  if (workload.kind == WorkloadKind::kMultiTurn && workload.load.arrival == Arrival::kConcurrency) {
    // Each client talks in its own conversation (a turn waits for the previous answer).
    const int64_t conversations = static_cast<int64_t>(workload.multi_turn.num_groups) *
                                  workload.multi_turn.conversations_per_group;
    for (size_t i = 0; i < workload.load.stages.size(); ++i) {
      if (workload.load.stages[i].rate > static_cast<double>(conversations)) {
        return Errorf(absl::StatusCode::kInvalidArgument,
                      "workload '{}': stage {} runs {} concurrent clients but multi_turn has {} "
                      "conversations (num_groups x conversations_per_group); over HTTP each "
                      "client needs its own: raise conversations_per_group or lower the rate",
                      workload.name, i + 1, workload.load.stages[i].rate, conversations);
      }
    }
  }
  asio::io_context io(1);
  http::ClientOptions client_options;
  client_options.max_idle_per_host = options.max_connections;
  client_options.request_timeout = options.request_timeout;
  http::Client client(io.get_executor(), client_options);
  GeneratorOptions generator_options;
  generator_options.real_answers = true;  // a turn carries the answer the server returned
  Generator generator(workload, generator_options);
  RunState st;
  st.workload = &workload;
  st.options = &options;
  st.client = &client;
  st.generator = &generator;
  st.model = model;
  st.url = target + (workload.api == "chat" ? "/v1/chat/completions" : "/v1/completions");
  st.run_start = std::chrono::steady_clock::now();
  std::vector<StageStats> stages;
  asio::co_spawn(io, Drive(&st, &stages), asio::detached);
  io.run();

  PolicyReport policy;
  policy.policy = "target";
  policy.stages = std::move(stages);
  double cached = 0, prompt = 0;
  for (const StageStats& s : policy.stages) {
    prompt += s.input_tokens_per_s * s.duration_s;
    cached += s.prefix_hit_rate * s.input_tokens_per_s * s.duration_s;
  }
  policy.prefix_hit_rate = prompt > 0 ? cached / prompt : 0;
  Summarize(policy, workload.slo_ttft_p90_ms);
  Report report;
  report.workload = workload.name;
  report.fleet = target;
  report.mode = "http";
  report.arrival = workload.kind == WorkloadKind::kTrace
                       ? "trace"
                       : std::string(ArrivalName(workload.load.arrival));
  report.seed = workload.seed;
  report.slo_ttft_p90_ms = workload.slo_ttft_p90_ms;
  report.policies.push_back(std::move(policy));
  return report;
}

}  // namespace zumik::bench

// Real-time streaming benchmark of `zumik sim`: N concurrent SSE streams (default 2,000) against
// an in-process 4-replica fleet, on the machine's cores. Reports how late tokens reach the
// client socket relative to the model's step ends (the simulator's pacing error) and the
// client-observed inter-token latency next to the model's.
//
//   build/bench/sim_stream_bench [--streams 2000] [--tokens 200] [--prompt-tokens 1000]
//                                [--client raw|http] [--arrival-spread-ms 0] [--arrival-seed 1]
//
// By default every stream is opened at once (lockstep): the replicas are identical and
// deterministic, so their step ends coincide for the whole run and all streams' events fall due
// together — the worst case for the server. With --arrival-spread-ms N, stream i opens at a
// seeded-random time, uniform in the first N ms, as requests to a real fleet would arrive.
// Besides the latencies it prints the server's CPU per SSE event (process CPU minus the load
// client's thread, over the events the server wrote).
//
// The load client shares the machine with the server, so its own CPU cost delays the server.
// `raw` (default) is a minimal client: one socket per stream in one epoll loop, the request
// written once, SSE events counted by scanning the bytes for "data: " — as close as one
// process can get to a load generator on another machine. `http` uses the project's http::Client +
// SseParser (a full HTTP/1.1 parser per chunk), which costs as much CPU as the whole fleet.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "core/clock.h"
#include "core/http/client.h"
#include "core/http/sse.h"
#include "core/metrics/parser.h"
#include "core/metrics/query.h"
#include "sim/server/sim_server.h"

namespace asio = boost::asio;
using namespace zumik;

namespace {

struct Totals {
  std::atomic<int> complete{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::vector<double> itl_ms;  // client-observed gaps between token events
};

http::Headers JsonHeaders() { return {{"Content-Type", "application/json"}}; }

asio::awaitable<void> OneStream(std::shared_ptr<http::Client> client, std::string url,
                                std::string body, int tokens, Totals* totals, Time open_at) {
  asio::steady_timer wait(co_await asio::this_coro::executor);
  wait.expires_after(open_at - RealClock::Instance().Now());
  co_await wait.async_wait(asio::use_awaitable);
  http::ClientRequest request;
  request.method = http::Method::post;
  request.url = std::move(url);
  request.headers = JsonHeaders();
  request.body = std::move(body);
  request.timeout = std::chrono::minutes(10);
  auto stream = co_await client->Stream(std::move(request));
  if (!stream.ok() || stream->status() != 200) {
    totals->failed.fetch_add(1);
    co_return;
  }
  http::SseParser parser;
  std::vector<double> gaps;
  gaps.reserve(tokens);
  Time last{-1};
  int seen = 0;
  bool done = false;
  for (;;) {
    auto data = co_await stream->Read();
    if (!data.ok() || data->empty()) break;
    const Time now = RealClock::Instance().Now();
    if (!parser.Feed(*data).ok()) break;
    while (auto event = parser.Next()) {
      if (event->data == "[DONE]") {
        done = true;
        continue;
      }
      if (last.count() >= 0) gaps.push_back(ToMillis(now - last));
      last = now;
      ++seen;
    }
  }
  if (done && seen == tokens) {
    totals->complete.fetch_add(1);
  } else {
    totals->failed.fetch_add(1);
  }
  std::lock_guard lock(totals->mu);
  totals->itl_ms.insert(totals->itl_ms.end(), gaps.begin(), gaps.end());
}

// The minimal client: a level-triggered epoll loop over plain sockets, one recv per wake-up,
// counting "data: " events per read; a marker split across two reads is kept for the next.
class RawStream {
 public:
  RawStream(int tokens, Totals* totals, int port, std::string request, Time open_at)
      : tokens_(tokens),
        totals_(totals),
        port_(port),
        request_(std::move(request)),
        open_at_(open_at) {
    gaps_.reserve(tokens);
  }
  ~RawStream() { Finish(); }

  Time open_at() const { return open_at_; }
  // Connects and sends the request (blocking); then the socket is non-blocking for the loop.
  bool Open() { return Open(port_, request_); }
  bool Open(int port, const std::string& request) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      return false;
    }
    for (size_t sent = 0; sent < request.size();) {
      const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return ::fcntl(fd_, F_SETFL, O_NONBLOCK) == 0;
  }
  int fd() const { return fd_; }

  // Reads what is there; false once the stream is over (done, closed or failed).
  bool OnReadable() {
    const ssize_t n = ::recv(fd_, buffer_.data() + carry_, buffer_.size() - carry_, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    Scan(static_cast<size_t>(n));
    return !done_ && !failed_;
  }

  void Finish() {
    if (fd_ < 0) return;
    ::close(fd_);
    fd_ = -1;
    if (done_ && !failed_ && seen_ == tokens_) {
      totals_->complete.fetch_add(1);
    } else {
      totals_->failed.fetch_add(1);
    }
    std::lock_guard lock(totals_->mu);
    totals_->itl_ms.insert(totals_->itl_ms.end(), gaps_.begin(), gaps_.end());
  }

 private:
  static constexpr std::string_view kData = "data: ";
  static constexpr std::string_view kDone = "data: [DONE]";

  // buffer_ holds carry_ bytes not yet decided on from the previous read, then n new bytes.
  void Scan(size_t n) {
    const Time now = RealClock::Instance().Now();
    const std::string_view text(buffer_.data(), carry_ + n);
    if (!status_checked_) {
      status_checked_ = true;
      if (!text.starts_with("HTTP/1.1 200")) {
        failed_ = true;
        return;
      }
    }
    // Bytes kept for the next read: a marker whose event kind cannot be told yet, or else the
    // tail that may hold the start of a marker split by this read's end.
    size_t keep_from = text.size() - std::min(text.size(), kData.size() - 1);
    for (size_t at = text.find(kData); at != std::string_view::npos;
         at = text.find(kData, at + kData.size())) {
      if (at + kDone.size() > text.size()) {
        keep_from = at;
        break;
      }
      if (text.substr(at, kDone.size()) == kDone) {
        done_ = true;
        return;
      }
      if (last_.count() >= 0) gaps_.push_back(ToMillis(now - last_));
      last_ = now;
      ++seen_;
      keep_from = std::max(keep_from, at + kData.size());
    }
    carry_ = text.size() - keep_from;
    std::memmove(buffer_.data(), buffer_.data() + keep_from, carry_);
  }

  int fd_ = -1;
  int tokens_;
  Totals* totals_;
  int port_;
  std::string request_;
  Time open_at_;
  std::array<char, 16384> buffer_{};
  size_t carry_ = 0;
  std::vector<double> gaps_;
  Time last_{-1};
  int seen_ = 0;
  bool done_ = false;
  bool failed_ = false;
  bool status_checked_ = false;
};

// Opens every stream at its time (`streams` is sorted by it) and runs them all to their end
// on this thread.
void RunRawStreams(std::vector<std::unique_ptr<RawStream>>& streams) {
  const int epoll = ::epoll_create1(0);
  size_t open = 0;
  size_t next = 0;  // the first stream not opened yet
  auto open_due = [&] {
    const Time now = RealClock::Instance().Now();
    for (; next < streams.size() && streams[next]->open_at() <= now; ++next) {
      RawStream& stream = *streams[next];
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.u64 = next;
      if (stream.Open() && ::epoll_ctl(epoll, EPOLL_CTL_ADD, stream.fd(), &event) == 0) {
        ++open;
      } else {
        stream.Finish();
      }
    }
  };
  std::array<epoll_event, 256> events;
  while (open > 0 || next < streams.size()) {
    open_due();
    int timeout_ms = 1000;
    if (next < streams.size()) {
      const Duration until = streams[next]->open_at() - RealClock::Instance().Now();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(
          std::chrono::ceil<std::chrono::milliseconds>(until).count(), 0, 1000));
    }
    const int n = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      RawStream& stream = *streams[events[i].data.u64];
      if (!stream.OnReadable()) {
        stream.Finish();  // closing the socket also removes it from the epoll set
        --open;
      }
    }
  }
  ::close(epoll);
}

std::string RawRequest(int port, const std::string& body) {
  return fmt::format(
      "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n"
      "Content-Length: {}\r\n\r\n{}",
      port, body.size(), body);
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

Duration CpuTime(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

// User and kernel CPU seconds of this process's threads other than this one (the server's),
// from /proc (clock-tick resolution, 10 ms: fine over a run of seconds).
struct UserSys {
  double user_s = 0;
  double sys_s = 0;
};
UserSys OtherThreadsCpu() {
  UserSys total;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const std::string self = std::to_string(::gettid());
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    if (entry.path().filename() == self) continue;
    std::ifstream file(entry.path() / "stat");
    std::string stat((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    // Fields after the command name, which ends with the last ')': utime and stime are the
    // 12th and 13th of them (fields 14 and 15 of the line).
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 0; i < 11 && rest >> field; ++i) {
    }
    double utime = 0;
    double stime = 0;
    rest >> utime >> stime;
    total.user_s += utime / static_cast<double>(ticks);
    total.sys_s += stime / static_cast<double>(ticks);
  }
  return total;
}

}  // namespace

constexpr const char* kUsage =
    "usage: sim_stream_bench [--streams N=2000] [--tokens N=200] [--prompt-tokens N=1000]\n"
    "                        [--replicas N=4] [--client raw|http] [--server-threads N=2]\n"
    "                        [--arrival-spread-ms N=0] [--arrival-seed N=1]\n"
    "An in-process zumik sim fleet streaming to an in-process client (docs/simulator.md).\n";

struct Flags {
  int streams = 2000;
  int tokens = 200;
  int prompt_tokens = 1000;
  int replicas = 4;
  std::string client = "raw";
  int server_threads = 2;
  int spread_ms = 0;
  int arrival_seed = 1;
};

// Every argument is a known flag followed by its value: a typo must not run the default
// benchmark (it takes seconds of both cores). The exit code when the run must not go on.
std::optional<int> ParseFlags(int argc, char** argv, Flags& flags) {
  const std::pair<std::string_view, int*> numbers[] = {{"--streams", &flags.streams},
                                                       {"--tokens", &flags.tokens},
                                                       {"--prompt-tokens", &flags.prompt_tokens},
                                                       {"--replicas", &flags.replicas},
                                                       {"--server-threads", &flags.server_threads},
                                                       {"--arrival-spread-ms", &flags.spread_ms},
                                                       {"--arrival-seed", &flags.arrival_seed}};
  for (int i = 1; i < argc; i += 2) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    const auto* number = std::find_if(std::begin(numbers), std::end(numbers),
                                      [&](const auto& entry) { return entry.first == arg; });
    if ((number == std::end(numbers) && arg != "--client") || i + 1 >= argc) {
      std::fprintf(stderr, "sim_stream_bench: unknown flag or missing value at '%s'\n%s", argv[i],
                   kUsage);
      return 2;
    }
    const std::string_view value = argv[i + 1];
    if (arg == "--client") {
      if (value != "raw" && value != "http") {
        std::fprintf(stderr, "sim_stream_bench: --client must be raw or http, not '%s'\n",
                     argv[i + 1]);
        return 2;
      }
      flags.client = value;
      continue;
    }
    const auto [end, ec] =
        std::from_chars(value.data(), value.data() + value.size(), *number->second);
    if (ec != std::errc() || end != value.data() + value.size() || *number->second < 0) {
      std::fprintf(stderr, "sim_stream_bench: %s needs a whole number >= 0, not '%s'\n", argv[i],
                   argv[i + 1]);
      return 2;
    }
  }
  return std::nullopt;
}

int main(int argc, char** argv) {
  Flags flags;
  if (const std::optional<int> code = ParseFlags(argc, argv, flags)) return *code;
  const int streams = flags.streams;
  const int tokens = flags.tokens;
  const int prompt_tokens = flags.prompt_tokens;
  const int replicas = flags.replicas;
  const bool raw_client = flags.client == "raw";
  const int spread_ms = flags.spread_ms;
  const int arrival_seed = flags.arrival_seed;

  auto profile = sim::ResolveProfile("h100-llama-3.1-8b");
  if (!profile.ok()) return 1;
  sim::SimServerOptions options;
  options.replicas = replicas;
  options.port = 0;
  options.profile = *profile;
  options.threads = flags.server_threads;
  sim::SimServer server(options);
  if (!server.Start().ok()) return 1;

  asio::io_context io;
  http::ClientOptions client_options;
  client_options.max_idle_per_host = static_cast<size_t>(streams);
  client_options.request_timeout = std::chrono::minutes(10);
  auto client = std::make_shared<http::Client>(io.get_executor(), client_options);
  Totals totals;
  std::vector<std::unique_ptr<RawStream>> raw_streams;
  const Duration client_cpu_start = CpuTime(CLOCK_THREAD_CPUTIME_ID);
  const Duration process_cpu_start = CpuTime(CLOCK_PROCESS_CPUTIME_ID);
  const UserSys server_start = OtherThreadsCpu();
  const Time start = RealClock::Instance().Now();
  // When each stream opens: all at once, or seeded-random in the first spread_ms.
  std::vector<Time> open_at(static_cast<size_t>(streams), start);
  if (spread_ms > 0) {
    std::mt19937_64 rng(static_cast<uint64_t>(arrival_seed));
    std::uniform_int_distribution<int64_t> offset_us(0, int64_t{spread_ms} * 1000 - 1);
    for (Time& at : open_at) at = start + std::chrono::microseconds(offset_us(rng));
  }
  for (int i = 0; i < streams; ++i) {
    const auto port = server.replicas()[i % replicas]->port();
    boost::json::object body{
        {"model", profile->served_model_name},
        {"prompt", std::string(4 * prompt_tokens - 8, 'p') + fmt::format("{:08d}", i)},
        {"max_tokens", tokens},
        {"ignore_eos", true},
        {"stream", true}};
    std::string json = boost::json::serialize(body);
    if (raw_client) {
      raw_streams.push_back(
          std::make_unique<RawStream>(tokens, &totals, port, RawRequest(port, json), open_at[i]));
      continue;
    }
    asio::co_spawn(io,
                   OneStream(client, fmt::format("http://127.0.0.1:{}/v1/completions", port),
                             std::move(json), tokens, &totals, open_at[i]),
                   asio::detached);
  }
  if (raw_client) {
    std::stable_sort(raw_streams.begin(), raw_streams.end(),
                     [](const auto& a, const auto& b) { return a->open_at() < b->open_at(); });
    RunRawStreams(raw_streams);
  } else {
    io.run();
  }
  const double wall_s = ToSeconds(RealClock::Instance().Now() - start);
  const Duration client_cpu = CpuTime(CLOCK_THREAD_CPUTIME_ID) - client_cpu_start;
  const Duration server_cpu = CpuTime(CLOCK_PROCESS_CPUTIME_ID) - process_cpu_start - client_cpu;
  const UserSys server_end = OtherThreadsCpu();

  // The server's own view: model ITL and delivery lag, summed over replicas.
  std::vector<metrics::Sample> all;
  for (const auto& replica : server.replicas()) {
    auto samples = metrics::ParseText(replica->MetricsText());
    if (samples.ok()) all.insert(all.end(), samples->begin(), samples->end());
  }
  auto q = [&](const char* name, double quantile) {
    auto v = metrics::HistogramQuantile(quantile, all, name);
    return v.ok() ? *v * 1000 : -1.0;
  };
  std::printf(
      "streams=%d complete=%d failed=%d tokens/stream=%d prompt=%d replicas=%d client=%s "
      "arrival-spread=%dms wall=%.1fs\n",
      streams, totals.complete.load(), totals.failed.load(), tokens, prompt_tokens, replicas,
      flags.client.c_str(), spread_ms, wall_s);
  const double events = metrics::SumValues(all, "zumik_sim_token_delivery_lag_seconds_count");
  const double per_write_us = events > 0 ? 1e6 / events : 0.0;
  std::printf(
      "CPU s: server=%.2f client=%.2f; server CPU per SSE write: %.1f us (user %.1f, kernel "
      "%.1f; %.0f writes)\n",
      ToSeconds(server_cpu), ToSeconds(client_cpu), ToSeconds(server_cpu) * per_write_us,
      (server_end.user_s - server_start.user_s) * per_write_us,
      (server_end.sys_s - server_start.sys_s) * per_write_us, events);
  std::printf("client ITL ms: p50=%.2f p90=%.2f p99=%.2f\n", Percentile(totals.itl_ms, 0.5),
              Percentile(totals.itl_ms, 0.9), Percentile(totals.itl_ms, 0.99));
  std::printf("model  ITL ms (vllm:inter_token_latency_seconds): p50=%.2f p90=%.2f p99=%.2f\n",
              q("vllm:inter_token_latency_seconds", 0.5),
              q("vllm:inter_token_latency_seconds", 0.9),
              q("vllm:inter_token_latency_seconds", 0.99));
  std::printf("token delivery lag ms (socket write - model step end): p50=%.2f p90=%.2f p99=%.2f\n",
              q("zumik_sim_token_delivery_lag_seconds", 0.5),
              q("zumik_sim_token_delivery_lag_seconds", 0.9),
              q("zumik_sim_token_delivery_lag_seconds", 0.99));
  std::printf(
      "token pacing error ms (|change of a stream's lag between writes|): p50=%.2f "
      "p90=%.2f p99=%.2f\n",
      q("zumik_sim_token_pacing_error_seconds", 0.5),
      q("zumik_sim_token_pacing_error_seconds", 0.9),
      q("zumik_sim_token_pacing_error_seconds", 0.99));
  server.Stop(std::chrono::seconds(1));
  return totals.failed.load() == 0 ? 0 : 1;
}

// Periodic /metrics scraping into datastore snapshots (see scraper.h).
#include "epp/scraper.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <cmath>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/http/client.h"
#include "core/log.h"
#include "core/metrics/parser.h"
#include "core/metrics/query.h"
#include "core/status.h"
#include "epp/epp_metrics.h"

namespace zumik::epp {
namespace asio = boost::asio;

namespace {

struct Names {
  std::string_view waiting;
  std::string_view running;
  std::string_view kv;
  std::string_view kv_legacy;
  std::string_view cache_info;
  std::string_view block_size_label;
  std::string_view num_blocks_label;
};

constexpr Names kVllmNames{"vllm:num_requests_waiting",
                           "vllm:num_requests_running",
                           "vllm:kv_cache_usage_perc",
                           "vllm:gpu_cache_usage_perc",
                           "vllm:cache_config_info",
                           "block_size",
                           "num_gpu_blocks"};
constexpr Names kSglangNames{"sglang:num_queue_reqs",
                             "sglang:num_running_reqs",
                             "sglang:token_usage",
                             "",
                             "sglang:cache_config_info",
                             "page_size",
                             "num_pages"};

int64_t LabelInt(const metrics::Sample& sample, std::string_view label) {
  auto value = sample.Label(label);
  if (!value) return 0;
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(value->data(), value->data() + value->size(), out);
  if (ec != std::errc() || out < 0) return 0;
  return out;
}

std::vector<std::string> SplitList(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    std::string_view item = text.substr(start, comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
    start = comma + 1;
  }
  return out;
}

bool Has(const std::vector<metrics::Sample>& samples, std::string_view name) {
  return !name.empty() && metrics::FindSample(samples, name) != nullptr;
}

// A count from a gauge: negative, NaN or huge values from a broken server are clamped.
int64_t Count(double v) {
  if (!(v > 0)) return 0;
  if (v > 1e12) return static_cast<int64_t>(1e12);
  return static_cast<int64_t>(std::llround(v));
}

}  // namespace

absl::StatusOr<sched::EndpointMetrics> ExtractMetrics(std::string_view text, Engine engine,
                                                      Time now) {
  auto parsed = metrics::ParseText(text);
  if (!parsed.ok()) {
    return absl::Status(absl::StatusCode::kInvalidArgument,
                        fmt::format("unparsable metrics: {}", MessageOf(parsed.status())));
  }
  const auto& samples = *parsed;
  const Names& names = engine == Engine::kSglang ? kSglangNames : kVllmNames;
  std::string_view kv_name = Has(samples, names.kv) ? names.kv : names.kv_legacy;
  if (!Has(samples, names.waiting) && !Has(samples, kv_name)) {
    return Errorf(absl::StatusCode::kNotFound, "no {} nor {} in the metrics", names.waiting,
                  names.kv);
  }
  sched::EndpointMetrics out;
  out.waiting_requests = Count(metrics::SumValues(samples, names.waiting));
  out.running_requests = Count(metrics::SumValues(samples, names.running));
  double kv = 0;
  for (const auto& s : samples) {
    if (s.name == kv_name && s.value > kv) kv = s.value;  // the busiest rank
  }
  out.kv_cache_usage = kv > 1 ? 1 : kv;
  if (const auto* info = metrics::FindSample(samples, names.cache_info)) {
    out.block_size = LabelInt(*info, names.block_size_label);
    out.num_gpu_blocks = LabelInt(*info, names.num_blocks_label);
  }
  if (engine == Engine::kVllm) {
    const metrics::Sample* newest = nullptr;
    for (const auto& s : samples) {
      if (s.name == "vllm:lora_requests_info" && (newest == nullptr || s.value > newest->value)) {
        newest = &s;
      }
    }
    if (newest != nullptr) {
      out.running_lora_adapters = SplitList(newest->Label("running_lora_adapters").value_or(""));
      out.waiting_lora_adapters = SplitList(newest->Label("waiting_lora_adapters").value_or(""));
      out.max_lora = LabelInt(*newest, "max_lora");
    }
  }
  out.valid = true;
  out.scraped_at = now;
  return out;
}

struct Scraper::Shared {
  asio::io_context& io;
  Datastore& datastore;
  ScraperOptions options;
  EppMetrics* metrics;
  Clock& clock;
  http::Client client;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> scrapes{0};
  std::atomic<uint64_t> failures{0};

  std::mutex mu;
  std::set<std::string, std::less<>> active;  // addresses with a running loop
  std::vector<std::pair<std::string, sched::EndpointMetrics>> pending;
  bool publish_posted = false;

  Shared(asio::io_context& io_in, Datastore& ds, ScraperOptions opts, EppMetrics* m, Clock& c)
      : io(io_in),
        datastore(ds),
        options(std::move(opts)),
        metrics(m),
        clock(c),
        client(io_in.get_executor(), MakeClientOptions(options)) {}

  static http::ClientOptions MakeClientOptions(const ScraperOptions& options) {
    http::ClientOptions out;
    out.connect_timeout = options.timeout;
    out.request_timeout = options.timeout;
    out.max_idle_per_host = 2;
    out.max_response_body_bytes = 16 << 20;
    return out;
  }

  // Queues a result; the first one of a burst posts a publish that takes all queued results
  // in one snapshot swap.
  void Deliver(std::string address, sched::EndpointMetrics metrics_in,
               const std::shared_ptr<Shared>& self) {
    std::lock_guard lock(mu);
    pending.emplace_back(std::move(address), std::move(metrics_in));
    if (publish_posted) return;
    publish_posted = true;
    asio::post(io, [self] {
      std::vector<std::pair<std::string, sched::EndpointMetrics>> batch;
      {
        std::lock_guard inner(self->mu);
        batch.swap(self->pending);
        self->publish_posted = false;
      }
      self->datastore.UpdateMetrics(batch);
    });
  }
};

std::string ScrapeAddress(const std::string& address, int port) {
  const size_t colon = address.rfind(':');
  if (port == 0 || colon == std::string::npos) return address;
  return fmt::format("{}:{}", std::string_view(address).substr(0, colon), port);
}

namespace {

const std::shared_ptr<spdlog::logger>& ScrapeLog() {
  static const std::shared_ptr<spdlog::logger> log = Logger("epp-scraper");
  return log;
}

asio::awaitable<void> ScrapeLoop(std::shared_ptr<Scraper::Shared> shared, std::string address,
                                 Engine engine) {
  const auto& log = ScrapeLog();
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string url = fmt::format("http://{}{}", ScrapeAddress(address, shared->options.port),
                                shared->options.path);
  bool was_failing = false;
  while (!shared->stopping.load()) {
    auto snapshot = shared->datastore.Current();
    if (snapshot->Find(address) < 0) break;  // the endpoint left
    auto started = std::chrono::steady_clock::now();
    http::ClientRequest request = http::ClientRequest::Get(url);
    request.timeout = shared->options.timeout;
    auto response = co_await shared->client.Fetch(std::move(request));
    shared->scrapes.fetch_add(1);
    absl::Status error;
    if (!response.ok()) {
      error = response.status();
    } else if (response->status != 200) {
      error = Errorf(absl::StatusCode::kUnavailable, "HTTP {}", response->status);
    } else {
      auto extracted = ExtractMetrics(response->body, engine, shared->clock.Now());
      if (extracted.ok()) {
        shared->Deliver(address, std::move(*extracted), shared);
      } else {
        error = extracted.status();
      }
    }
    if (!error.ok()) {
      shared->failures.fetch_add(1);
      if (shared->metrics != nullptr) shared->metrics->ScrapeError();
      if (!was_failing) log->warn("scrape of {} failed: {}", address, MessageOf(error));
      was_failing = true;
    } else if (was_failing) {
      log->info("scrape of {} recovered", address);
      was_failing = false;
    }
    auto elapsed = std::chrono::steady_clock::now() - started;
    auto wait = shared->options.interval - elapsed;
    if (wait < std::chrono::milliseconds(1)) wait = std::chrono::milliseconds(1);
    timer.expires_after(wait);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  std::lock_guard lock(shared->mu);
  shared->active.erase(address);
}

// Starts loops for endpoints that have none, every interval.
asio::awaitable<void> Supervise(std::shared_ptr<Scraper::Shared> shared) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!shared->stopping.load()) {
    auto snapshot = shared->datastore.Current();
    for (size_t i = 0; i < snapshot->endpoints.size(); ++i) {
      const std::string& address = snapshot->endpoints[i].address;
      bool start = false;
      {
        std::lock_guard lock(shared->mu);
        start = shared->active.insert(address).second;
      }
      if (start) {
        asio::co_spawn(asio::make_strand(shared->io),
                       ScrapeLoop(shared, address, snapshot->engines[i]), asio::detached);
      }
    }
    timer.expires_after(shared->options.interval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

Scraper::Scraper(asio::io_context& io, Datastore& datastore, ScraperOptions options,
                 EppMetrics* metrics, Clock& clock)
    : shared_(std::make_shared<Shared>(io, datastore, std::move(options), metrics, clock)) {}

Scraper::~Scraper() { Stop(); }

void Scraper::Start() {
  asio::co_spawn(asio::make_strand(shared_->io), Supervise(shared_), asio::detached);
}

void Scraper::Stop() { shared_->stopping.store(true); }

Scraper::Stats Scraper::stats() const {
  return Stats{shared_->scrapes.load(), shared_->failures.load()};
}

}  // namespace zumik::epp

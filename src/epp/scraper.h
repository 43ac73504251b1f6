// Scrapes every endpoint's /metrics on a fixed interval (50 ms by default) and publishes the
// values into the Datastore as new snapshots; picking never waits for a scrape. A failed or
// garbage scrape leaves the previous values in place, so they age and become stale.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "epp/datastore.h"
#include "sched/endpoint.h"

namespace zumik::epp {

class EppMetrics;

// Maps a model server's exposition text to the scheduler's metrics, by engine: vLLM names
// (vllm:kv_cache_usage_perc, or the older vllm:gpu_cache_usage_perc; vllm:cache_config_info
// block_size / num_gpu_blocks; vllm:lora_requests_info, newest sample) or SGLang names
// (sglang:num_queue_reqs, sglang:num_running_reqs, sglang:token_usage,
// sglang:cache_config_info page_size / num_pages). Sums over series (data-parallel ranks,
// several models). kInvalidArgument for unparsable text; kNotFound when neither the queue
// nor the KV-cache metric is present. `now` becomes scraped_at.
absl::StatusOr<sched::EndpointMetrics> ExtractMetrics(std::string_view text, Engine engine,
                                                      Time now);

struct ScraperOptions {
  Duration interval = std::chrono::milliseconds(50);
  Duration timeout = std::chrono::seconds(1);
  std::string path = "/metrics";
  // The port /metrics is scraped on; 0 = the endpoint's own port (where requests go). Set when
  // requests enter through a proxy on the pod, such as Knative's queue-proxy, that should not
  // see (or count) the scrapes (upstream EPP flag --model-server-metrics-port).
  int port = 0;
};

// "host:port" (IPv6 hosts in brackets) with its port replaced by `port`; `address` unchanged
// when `port` is 0.
std::string ScrapeAddress(const std::string& address, int port);

class Scraper {
 public:
  // `datastore` and `metrics` (may be null) must outlive the io_context's threads.
  Scraper(boost::asio::io_context& io, Datastore& datastore, ScraperOptions options,
          EppMetrics* metrics = nullptr, Clock& clock = RealClock::Instance());
  ~Scraper();
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;

  // Starts scraping (endpoints that join later are picked up within one interval).
  void Start();
  // Stops the loops at their next step; safe from any thread.
  void Stop();

  struct Stats {
    uint64_t scrapes = 0;
    uint64_t failures = 0;
  };
  Stats stats() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace zumik::epp

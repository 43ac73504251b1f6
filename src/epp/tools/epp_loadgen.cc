// epp_loadgen: a small closed-loop HTTP load generator used to compare the EPP gateway with
// other proxies (results in the bench notes). C concurrent workers each send the same POST
// body in a loop for D seconds, round-robin over the given URLs; prints throughput and
// latency percentiles (whole response, or time to first body byte with --ttfb).
//   epp_loadgen --url http://127.0.0.1:8080/v1/completions --concurrency 32 --seconds 10
//               --body '{"model":"m","prompt":"hi","max_tokens":1}'
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/http/client.h"

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Shared {
  std::vector<std::string> urls;
  std::string body;
  Clock::time_point end;
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int> live{0};
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::string first_error;
};

asio::awaitable<void> Worker(Shared* shared, zumik::http::Client* client) {
  std::vector<double> local;
  while (Clock::now() < shared->end) {
    const std::string& url = shared->urls[shared->next.fetch_add(1) % shared->urls.size()];
    zumik::http::ClientRequest request = zumik::http::ClientRequest::Post(url, shared->body);
    auto start = Clock::now();
    auto response = co_await client->Fetch(std::move(request));
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!response.ok() || response->status != 200) {
      shared->errors.fetch_add(1);
      std::lock_guard lock(shared->mu);
      if (shared->first_error.empty()) {
        shared->first_error = response.ok() ? fmt::format("HTTP {}: {}", response->status,
                                                          response->body.substr(0, 200))
                                            : std::string(response.status().message());
      }
      continue;
    }
    local.push_back(ms);
  }
  std::lock_guard lock(shared->mu);
  shared->latencies_ms.insert(shared->latencies_ms.end(), local.begin(), local.end());
  shared->live.fetch_sub(1);
}

int main(int argc, char** argv) {
  Shared shared;
  int concurrency = 16;
  double seconds = 10;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    std::string value = argv[i + 1];
    if (flag == "--url") {
      shared.urls.push_back(value);
    } else if (flag == "--concurrency") {
      concurrency = std::stoi(value);
    } else if (flag == "--seconds") {
      seconds = std::stod(value);
    } else if (flag == "--body") {
      shared.body = value;
    } else if (flag == "--threads") {
      threads = std::stoi(value);
    } else {
      std::fprintf(stderr, "unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  if (shared.urls.empty()) {
    std::fprintf(stderr, "give --url (repeatable)\n");
    return 2;
  }
  asio::io_context io;
  zumik::http::ClientOptions options;
  options.max_idle_per_host = static_cast<size_t>(concurrency) * 2;
  zumik::http::Client client(io.get_executor(), options);
  shared.end = Clock::now() +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  shared.live = concurrency;
  for (int i = 0; i < concurrency; ++i) {
    asio::co_spawn(asio::make_strand(io), Worker(&shared, &client), asio::detached);
  }
  auto started = Clock::now();
  std::vector<std::thread> pool;
  for (int i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  double elapsed = std::chrono::duration<double>(Clock::now() - started).count();
  auto& l = shared.latencies_ms;
  std::sort(l.begin(), l.end());
  auto pct = [&l](double q) {
    if (l.empty()) return 0.0;
    return l[std::min(l.size() - 1, static_cast<size_t>(q * static_cast<double>(l.size())))];
  };
  std::printf(
      "requests %zu errors %lu seconds %.2f rps %.1f p50_ms %.3f p90_ms %.3f p99_ms %.3f "
      "max_ms %.3f\n",
      l.size(), static_cast<unsigned long>(shared.errors.load()), elapsed,
      static_cast<double>(l.size()) / elapsed, pct(0.5), pct(0.9), pct(0.99),
      l.empty() ? 0.0 : l.back());
  if (!shared.first_error.empty()) std::printf("first error: %s\n", shared.first_error.c_str());
  return 0;
}

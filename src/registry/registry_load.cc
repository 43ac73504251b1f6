// registry_load: end-to-end HTTP load for the registry's performance figures.
//   registry_load --db sqlite:/tmp/r.db --clusters 10000 --rate 5000 --duration 10
// starts a registry in this process on that database (or, with --target HOST:PORT and
// --api-key, uses a running one), registers N clusters, then sends heartbeats at a fixed
// total rate over C keep-alive connections (paced; latency counted from each beat's
// scheduled time, so a stall is not hidden), and times GET /v1/clusters of all N.
// Prints achieved rate, p50/p99/max latency and the list time.
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fmt/format.h"
#include "registry/credentials.h"
#include "registry/registry_server.h"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string db;
  std::string host = "127.0.0.1";
  std::string port;
  std::string api_key;
  int clusters = 10000;
  double rate = 5000;
  double duration_s = 10;
  int connections = 16;
  int server_threads = 2;
};

// One keep-alive HTTP/1.1 connection, synchronous.
class Connection {
 public:
  Connection(const std::string& host, const std::string& port) : socket_(io_) {
    asio::ip::tcp::resolver resolver(io_);
    asio::connect(socket_, resolver.resolve(host, port));
    socket_.set_option(asio::ip::tcp::no_delay(true));
  }

  // Returns the status; `body` gets the response body.
  int Send(beast::http::verb verb, const std::string& target, const std::string& credential,
           const std::string& request_body, std::string* body = nullptr) {
    beast::http::request<beast::http::string_body> request{verb, target, 11};
    request.set(beast::http::field::host, "registry");
    request.set(beast::http::field::authorization, "Bearer " + credential);
    request.set(beast::http::field::content_type, "application/json");
    request.body() = request_body;
    request.prepare_payload();
    beast::http::write(socket_, request);
    beast::http::response<beast::http::string_body> response;
    beast::http::response_parser<beast::http::string_body> parser;
    parser.body_limit(256 << 20);
    beast::http::read(socket_, buffer_, parser);
    if (body != nullptr) *body = parser.get().body();
    return static_cast<int>(parser.get().result_int());
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  beast::flat_buffer buffer_;
};

struct Cluster {
  std::string id;
  std::string token;
};

double Percentile(std::vector<double>& values, double p) {
  if (values.empty()) return 0;
  const size_t index =
      std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<long>(index), values.end());
  return values[index];
}

bool Parse(int argc, char** argv, Args& args) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    if (flag == "--db") {
      args.db = value;
    } else if (flag == "--target") {
      const size_t colon = value.rfind(':');
      if (colon == std::string::npos) return false;
      args.host = value.substr(0, colon);
      args.port = value.substr(colon + 1);
    } else if (flag == "--api-key") {
      args.api_key = value;
    } else if (flag == "--clusters") {
      args.clusters = std::atoi(value.c_str());
    } else if (flag == "--rate") {
      args.rate = std::atof(value.c_str());
    } else if (flag == "--duration") {
      args.duration_s = std::atof(value.c_str());
    } else if (flag == "--connections") {
      args.connections = std::atoi(value.c_str());
    } else if (flag == "--server-threads") {
      args.server_threads = std::atoi(value.c_str());
    } else {
      return false;
    }
  }
  return (!args.db.empty() || (!args.port.empty() && !args.api_key.empty())) && args.clusters > 0 &&
         args.rate > 0 && args.connections > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!Parse(argc, argv, args)) {
    std::fprintf(stderr,
                 "usage: registry_load (--db URL | --target HOST:PORT --api-key KEY) [--clusters N]"
                 " [--rate PER_S] [--duration S] [--connections C] [--server-threads T]\n");
    return 2;
  }
  std::unique_ptr<zumik::registry::RegistryServer> server;
  if (!args.db.empty()) {
    zumik::registry::RegistryServerOptions options;
    options.db = args.db;
    options.threads = args.server_threads;
    options.service.api_rate_per_s = 1e9;
    options.service.api_burst = 1e9;
    server = std::make_unique<zumik::registry::RegistryServer>(options);
    if (auto status = server->Start(); !status.ok()) {
      std::fprintf(stderr, "registry_load: %s\n", std::string(status.message()).c_str());
      return 1;
    }
    args.port = std::to_string(server->port());
    auto key = zumik::registry::GenerateApiKey();
    (void)server->store().InsertApiKey(
        {key.lookup_prefix, "load", key.sha256_hex, 0, std::nullopt});
    args.api_key = key.key.Reveal();
  }

  // Register (in parallel over the connections).
  std::vector<Cluster> clusters(static_cast<size_t>(args.clusters));
  const auto register_start = Clock::now();
  {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(args.connections));
    std::atomic<int> failures{0};
    for (int t = 0; t < args.connections; ++t) {
      threads.emplace_back([&, t] {
        Connection conn(args.host, args.port);
        for (int i = t; i < args.clusters; i += args.connections) {
          std::string body;
          const std::string request = fmt::format(
              R"({{"name":"load-{}","profile":"{}","stack":{{"router":"epp","runtime":"vllm"}},)"
              R"("fingerprint":"load-uid-{}"}})",
              i, i % 2 ? "byoc_dynamo" : "byoc_epp", i);
          const int status =
              conn.Send(beast::http::verb::post, "/v1/clusters", args.api_key, request, &body);
          if (status != 200 && status != 201) {
            ++failures;
            continue;
          }
          auto object = boost::json::parse(body).as_object();
          clusters[static_cast<size_t>(i)] =
              Cluster{std::string(object["id"].as_string()),
                      std::string(object["cluster_token"].as_string())};
        }
      });
    }
    for (auto& thread : threads) thread.join();
    if (failures > 0) {
      std::fprintf(stderr, "registry_load: %d registrations failed\n", failures.load());
      return 1;
    }
  }
  const double register_s = std::chrono::duration<double>(Clock::now() - register_start).count();
  std::printf("registered %d clusters in %.2f s (%.0f/s)\n", args.clusters, register_s,
              args.clusters / register_s);

  // Heartbeats at a fixed total rate.
  std::vector<std::vector<double>> latencies(static_cast<size_t>(args.connections));
  std::atomic<long> errors{0};
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(args.duration_s));
  const auto period = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(args.connections / args.rate));
  {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(args.connections));
    for (int t = 0; t < args.connections; ++t) {
      threads.emplace_back([&, t] {
        Connection conn(args.host, args.port);
        auto& mine = latencies[static_cast<size_t>(t)];
        mine.reserve(static_cast<size_t>(args.rate * args.duration_s / args.connections) + 16);
        size_t next_cluster = static_cast<size_t>(t);
        auto scheduled = start + period * t / args.connections;
        while (scheduled < end) {
          std::this_thread::sleep_until(scheduled);
          const Cluster& c = clusters[next_cluster % clusters.size()];
          next_cluster += static_cast<size_t>(args.connections);
          const int status = conn.Send(beast::http::verb::post,
                                       "/v1/clusters/" + c.id + "/heartbeat", c.token, "{}");
          if (status != 200) ++errors;
          mine.push_back(
              std::chrono::duration<double, std::milli>(Clock::now() - scheduled).count());
          scheduled += period;
        }
      });
    }
    for (auto& thread : threads) thread.join();
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  const size_t sent = all.size();
  const double p50 = Percentile(all, 0.50);
  const double p99 = Percentile(all, 0.99);
  const double max = all.empty() ? 0 : *std::max_element(all.begin(), all.end());
  std::printf(
      "heartbeats: %zu in %.2f s = %.0f/s (target %.0f/s), errors %ld, latency ms "
      "p50 %.3f p99 %.3f max %.3f\n",
      sent, elapsed, static_cast<double>(sent) / elapsed, args.rate, errors.load(), p50, p99, max);

  // Listing all clusters (the org's whole fleet) through the API.
  {
    Connection conn(args.host, args.port);
    std::vector<double> list_ms;
    size_t bytes = 0;
    for (int i = 0; i < 10; ++i) {
      std::string body;
      const auto t0 = Clock::now();
      const int status = conn.Send(beast::http::verb::get, "/v1/clusters", args.api_key, "", &body);
      list_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      bytes = body.size();
      if (status != 200) ++errors;
    }
    std::sort(list_ms.begin(), list_ms.end());
    std::printf("list %d clusters over HTTP: median %.1f ms, max %.1f ms, %zu bytes\n",
                args.clusters, list_ms[list_ms.size() / 2], list_ms.back(), bytes);
  }
  if (server) server->Stop();
  return errors.load() == 0 ? 0 : 1;
}

// `zumik up --exit --bench-seconds 20` end to end: every component starts, the benchmark runs
// through both gateways, the report is written, the cluster is registered and heartbeating,
// and everything is stopped with every port released.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/http/client.h"
#include "support/process.h"

namespace zumik {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;
namespace json = boost::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> OutputLines(const std::string& command) {
  std::vector<std::string> lines;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return lines;
  std::array<char, 512> buffer{};
  while (std::fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) {
    std::string line(buffer.data());
    while (!line.empty() && line.back() == '\n') line.pop_back();
    lines.push_back(line);
  }
  pclose(pipe);
  return lines;
}

bool PortFree(int port) { return !testing::WaitForPort(port, milliseconds(1)); }

json::object GetJson(const std::string& url, const std::string& key) {
  auto response = http::FetchBlocking(http::Method::get, url, {},
                                      {{"Authorization", "Bearer " + key}}, seconds(5));
  EXPECT_TRUE(response.ok()) << response.status();
  if (!response.ok()) return {};
  EXPECT_EQ(response->status, 200) << response->body;
  boost::system::error_code ec;
  json::value doc = json::parse(response->body, ec);
  EXPECT_FALSE(ec) << response->body;
  return doc.is_object() ? doc.get_object() : json::object{};
}

TEST(ZumikUp, RunsTheProfileBenchmarksReportsRegistersAndStopsClean) {
  const int replicas = 2;
  const int base = testing::PickFreePortRange(10 + 2 * replicas);
  const std::string run_dir = testing::MakeTempDir("zumik-up-e2e") + "/run";
  testing::ChildProcess up(
      {testing::ZumikBinary(), "up", "--exit", "--bench-seconds", "20", "--replicas",
       std::to_string(replicas), "--port-base", std::to_string(base), "--run-dir", run_dir},
      run_dir + ".log");
  const int code = up.Wait(milliseconds(240000));
  const std::string output = up.ReadLog();
  ASSERT_EQ(code, 0) << output;

  // Progress, the side-by-side table and the URLs were printed.
  EXPECT_THAT(output, HasSubstr("[1/7] registry"));
  EXPECT_THAT(output, HasSubstr("[7/7] report"));
  EXPECT_THAT(output, HasSubstr("round-robin"));
  EXPECT_THAT(output, HasSubstr("TTFT p90 (ms)"));
  EXPECT_THAT(output, HasSubstr("registry page"));
  EXPECT_THAT(output, HasSubstr("every port released"));

  // The report and plots.
  const std::string report = ReadFile(run_dir + "/report.html");
  EXPECT_THAT(report, HasSubstr("EPP vs round-robin"));
  EXPECT_THAT(report, HasSubstr("<svg"));
  EXPECT_THAT(report, HasSubstr("byc_"));
  EXPECT_THAT(report, HasSubstr("Fleet: 2 x h100-llama-3.1-8b per gateway (simulated"));
  EXPECT_THAT(ReadFile(run_dir + "/ttft-p90.svg"), HasSubstr("<svg"));
  EXPECT_THAT(ReadFile(run_dir + "/throughput.svg"), HasSubstr("<svg"));
  for (const char* name : {"/bench-epp.json", "/bench-round-robin.json"}) {
    boost::system::error_code ec;
    json::value doc = json::parse(ReadFile(run_dir + name), ec);
    ASSERT_FALSE(ec) << name;
    const auto& stage = doc.at("policies").at(0).at("stages").at(0).as_object();
    EXPECT_GT(stage.at("requests").to_number<double>(), 0) << name;
    EXPECT_EQ(stage.at("errors").to_number<double>(), 0) << name;
  }

  // Everything stopped: every port is free again.
  for (int port = base; port < base + 10 + 2 * replicas; ++port) {
    EXPECT_TRUE(PortFree(port)) << "port " << port << " still in use";
  }
  // With Prometheus installed, the benchmark waited for its first scrape of every target.
  if (output.find("skipped: 'prometheus'") == std::string::npos) {
    EXPECT_THAT(output, HasSubstr(fmt::format("every one of its {} targets scraped once",
                                              2 * replicas + 3)));
  }

  // The registry database kept the cluster: reopen it and look.
  const int registry_port = testing::PickFreePort();
  testing::ChildProcess registry(
      {testing::ZumikBinary(), "registry", "--listen", std::to_string(registry_port), "--db",
       "sqlite:" + run_dir + "/registry.db"},
      run_dir + "/registry-reopened.log");
  ASSERT_TRUE(testing::WaitForPort(registry_port, milliseconds(10000)));
  const std::string key = ReadFile(run_dir + "/api-key");
  ASSERT_THAT(key, HasSubstr("zk_live_"));
  json::object list =
      GetJson("http://127.0.0.1:" + std::to_string(registry_port) + "/v1/clusters", key);
  ASSERT_TRUE(list.contains("clusters")) << json::serialize(list);
  const auto& clusters = list.at("clusters").as_array();
  ASSERT_EQ(clusters.size(), 1u);
  const auto& cluster = clusters[0].as_object();
  const std::string id(cluster.at("id").as_string());
  EXPECT_TRUE(id.starts_with("byc_")) << id;
  EXPECT_EQ(cluster.at("profile").as_string(), "byoc_epp");
  EXPECT_THAT(output, HasSubstr(id));

  json::object detail =
      GetJson("http://127.0.0.1:" + std::to_string(registry_port) + "/v1/clusters/" + id, key);
  const std::string text = json::serialize(detail);
  // Heartbeats arrived and carried the simulated fleet's GPUs.
  EXPECT_TRUE(detail.contains("last_heartbeat_at")) << text;
  EXPECT_FALSE(detail.at("last_heartbeat_at").is_null()) << text;
  EXPECT_THAT(text, HasSubstr("NVIDIA-H100-80GB-HBM3")) << text;
  EXPECT_THAT(text, HasSubstr(R"("replicas":{"ready":2,"desired":2})")) << text;
  registry.Stop();

  // A second run in the same directory revokes the first run's API key.
  const std::string first_key = ReadFile(run_dir + "/api-key");
  testing::ChildProcess again({testing::ZumikBinary(), "up", "--exit", "--no-bench", "--replicas",
                               "1", "--port-base", std::to_string(base), "--run-dir", run_dir},
                              run_dir + "-again.log");
  ASSERT_EQ(again.Wait(milliseconds(120000)), 0) << again.ReadLog();
  // `keys list`: PREFIX  CREATED  REVOKED ("-" while active), one line per key.
  const std::vector<std::string> keys =
      OutputLines(fmt::format("{} registry keys list --org local --db sqlite:{}/registry.db",
                              testing::ZumikBinary(), run_dir));
  ASSERT_EQ(keys.size(), 3u) << "a header and two keys";
  int active = 0;
  for (const std::string& line : keys) {
    if (line.ends_with(" -")) ++active;
    if (line.starts_with(first_key.substr(0, 16))) {
      EXPECT_FALSE(line.ends_with(" -")) << "the first run's key is still active: " << line;
    }
  }
  EXPECT_EQ(active, 1);
}

// Listening TCP sockets on ports [first, last) in /proc/net/tcp{,6}: "ADDRESS:PORT" in hex, as
// the kernel prints them (127.0.0.1 is 0100007F; 0.0.0.0 is 00000000).
std::vector<std::string> Listeners(int first, int last) {
  std::vector<std::string> found;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const size_t colon = local.rfind(':');
      if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
      const int port = std::stoi(local.substr(colon + 1), nullptr, 16);
      if (port >= first && port < last) found.push_back(local);
    }
  }
  return found;
}

TEST(ZumikUp, ListensOnLoopbackOnlyPassesLmcacheAndAnInterruptedRunSaysSoAndFails) {
  const int replicas = 1;
  const int ports = 10 + 2 * replicas;
  const int base = testing::PickFreePortRange(ports);
  const std::string run_dir = testing::MakeTempDir("zumik-up-interrupt") + "/run";
  testing::ChildProcess up({testing::ZumikBinary(), "up", "--bench-seconds", "60", "--replicas",
                            std::to_string(replicas), "--port-base", std::to_string(base),
                            "--run-dir", run_dir, "--lmcache"},
                           run_dir + ".log");
  const auto deadline = std::chrono::steady_clock::now() + seconds(90);
  while (up.ReadLog().find("[6/7] benchmark") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(200));
  }
  ASSERT_THAT(up.ReadLog(), HasSubstr("[6/7] benchmark"));

  // Every server of the profile (gateways included) listens on 127.0.0.1 alone.
  const std::vector<std::string> listening = Listeners(base, base + ports);
  EXPECT_GE(listening.size(), 8u);
  for (const std::string& local : listening) {
    EXPECT_TRUE(local.starts_with("0100007F:")) << local << " is not 127.0.0.1";
  }

  // --lmcache: both fleets' replicas (from base + 10, then the baseline's) have the LMCache tier.
  for (int port : {base + 10, base + 10 + replicas}) {
    auto metrics = http::FetchBlocking(
        http::Method::get, fmt::format("http://127.0.0.1:{}/metrics", port), {}, {}, seconds(5));
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    EXPECT_THAT(metrics->body, HasSubstr("lmcache:num_hit_tokens_total")) << port;
  }

  // Ctrl-C in the middle of the benchmark: no report, everything stopped, and a failing exit.
  ASSERT_EQ(kill(up.pid(), SIGINT), 0);
  EXPECT_EQ(up.Wait(milliseconds(30000)), 130) << up.ReadLog();
  EXPECT_THAT(up.ReadLog(), HasSubstr("interrupted by Ctrl-C (SIGINT) before the run finished"));
  EXPECT_FALSE(std::filesystem::exists(run_dir + "/report.html"));
  for (int port = base; port < base + ports; ++port) {
    EXPECT_TRUE(PortFree(port)) << "port " << port << " still in use";
  }
}

}  // namespace
}  // namespace zumik

// `zumik up --exit --bench-seconds 20` end to end: every component starts, the benchmark runs
// through both gateways, the report is written, the cluster is registered and heartbeating,
// and everything is stopped with every port released.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

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
}

}  // namespace
}  // namespace zumik

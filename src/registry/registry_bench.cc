// Google Benchmark: the registry's in-process costs — accepting a heartbeat, listing 10,000
// clusters as the JSON API returns them, and writing a batch of heartbeats to SQLite.
// End-to-end HTTP figures come from registry_load.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

#include "core/clock.h"
#include "registry/credentials.h"
#include "registry/service.h"

namespace zumik::registry {
namespace {

struct Fleet {
  std::unique_ptr<Store> store;
  std::unique_ptr<RegistryService> service;
  std::vector<RegisterResult> clusters;
  Caller caller;
};

// 10,000 registered clusters with a status snapshot each, on a temp SQLite file.
Fleet& TenThousand() {
  static Fleet* fleet = [] {
    auto* f = new Fleet;
    static char dir[] = "/tmp/zumik-registry-bench-XXXXXX";
    if (mkdtemp(dir) == nullptr) std::abort();
    // The database goes when the benchmark exits; SQLite's open handle does not stop that.
    std::atexit([] { std::filesystem::remove_all(dir); });
    f->store = *OpenStore(std::string("sqlite:") + dir + "/bench.db");
    ServiceOptions options;
    options.heartbeat_rate_per_s = 1e9;
    options.heartbeat_burst = 1e9;
    f->service =
        std::make_unique<RegistryService>(*f->store, RealClock::Instance(), options, nullptr);
    (void)f->service->Load();
    f->caller = Caller{"bench", "zk_live_bench000"};
    HeartbeatRequest beat;
    beat.status = StatusSnapshot{};
    beat.status->gpus = {{"NVIDIA-H100-80GB-HBM3", 8}};
    beat.status->nodes = 1;
    beat.status->model = "meta-llama/Llama-3.1-8B-Instruct";
    beat.status->routes = {{"/v1/completions", "epp"}};
    for (int i = 0; i < 10'000; ++i) {
      RegisterRequest request;
      request.name = "cluster-" + std::to_string(i);
      request.profile = i % 2 ? Profile::kByocDynamo : Profile::kByocEpp;
      request.stack = Stack{"epp", "vllm", "kserve", "aibrix", "lmcache"};
      request.fingerprint = "uid-" + std::to_string(i);
      f->clusters.push_back(*f->service->RegisterCluster(f->caller, request));
      beat.status->routes[0].path = "/v1/route-" + std::to_string(i);
      (void)f->service->Heartbeat(f->clusters.back().id, f->clusters.back().cluster_token.Reveal(),
                                  beat);
    }
    (void)f->service->Flush();
    return f;
  }();
  return *fleet;
}

void BM_Heartbeat(benchmark::State& state) {
  Fleet& fleet = TenThousand();
  size_t i = static_cast<size_t>(state.thread_index()) * 997;
  const HeartbeatRequest empty;
  for (auto _ : state) {
    const RegisterResult& c = fleet.clusters[i++ % fleet.clusters.size()];
    benchmark::DoNotOptimize(fleet.service->Heartbeat(c.id, c.cluster_token.Reveal(), empty));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Heartbeat)->Threads(1)->Threads(4)->UseRealTime();

void BM_DecodeAndHeartbeatWithStatus(benchmark::State& state) {
  Fleet& fleet = TenThousand();
  size_t i = 0;
  const std::string body =
      R"({"status":{"gpus":[{"product":"NVIDIA-H100-80GB-HBM3","count":8}],"nodes":1,)"
      R"("replicas":{"ready":1,"desired":1},"model":"m","routes":[{"path":"/v1/x","owner":"epp"}]}})";
  for (auto _ : state) {
    const RegisterResult& c = fleet.clusters[i++ % fleet.clusters.size()];
    auto request = DecodeHeartbeatRequest(body);
    benchmark::DoNotOptimize(fleet.service->Heartbeat(c.id, c.cluster_token.Reveal(), *request));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAndHeartbeatWithStatus);

void BM_ListTenThousandClustersJson(benchmark::State& state) {
  Fleet& fleet = TenThousand();
  size_t bytes = 0;
  for (auto _ : state) {
    std::string json = fleet.service->ListJson("bench", {});
    bytes = json.size();
    benchmark::DoNotOptimize(json);
  }
  state.counters["response_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_ListTenThousandClustersJson)->Unit(benchmark::kMillisecond);

void BM_RenderPageTenThousand(benchmark::State& state) {
  Fleet& fleet = TenThousand();
  for (auto _ : state) benchmark::DoNotOptimize(fleet.service->RenderPage("bench"));
}
BENCHMARK(BM_RenderPageTenThousand)->Unit(benchmark::kMillisecond);

void BM_FlushSqlite(benchmark::State& state) {
  Fleet& fleet = TenThousand();
  const size_t batch = static_cast<size_t>(state.range(0));
  std::vector<HeartbeatWrite> writes;
  writes.reserve(batch);
  for (size_t i = 0; i < batch; ++i) {
    writes.push_back({fleet.clusters[i].id, 1.7e9 + static_cast<double>(i), std::nullopt});
  }
  for (auto _ : state) {
    if (!fleet.store->WriteHeartbeats(writes).ok()) state.SkipWithError("write failed");
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_FlushSqlite)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zumik::registry

BENCHMARK_MAIN();

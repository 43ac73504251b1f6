// epp_rss: memory of the EPP pipeline with a large prefix index. Builds a 64-endpoint pool
// with fresh metrics, admits unique long prompts through Pipeline::Admit (completing each)
// until the scheduler's prefix index holds the requested number of blocks, then prints the
// process RSS. Usage: epp_rss [blocks=1000000] [endpoints=64] [policy=zumik-default]
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "core/clock.h"
#include "epp/pipeline.h"

namespace {

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t blocks = argc > 1 ? std::stoll(argv[1]) : 1'000'000;
  int endpoints = argc > 2 ? std::stoi(argv[2]) : 64;
  std::string policy = argc > 3 ? argv[3] : "zumik-default";
  zumik::VirtualClock clock(std::chrono::seconds(1));
  zumik::epp::Datastore datastore;
  std::vector<zumik::epp::EndpointSpec> specs;
  for (int i = 0; i < endpoints; ++i) {
    zumik::epp::EndpointSpec spec;
    spec.address = fmt::format("10.0.{}.{}:8000", i / 250, i % 250 + 1);
    specs.push_back(spec);
  }
  datastore.SetEndpoints(specs);
  long base_kb = RssKb();
  zumik::epp::PipelineOptions options;
  options.policy = policy;
  auto pipeline = zumik::epp::Pipeline::Create(options, datastore, nullptr, clock);
  if (!pipeline.ok()) {
    std::fprintf(stderr, "%s\n", std::string(pipeline.status().message()).c_str());
    return 1;
  }
  // 4096-token prompts (16 KiB): 256 blocks of 16 tokens each, all distinct.
  std::string prompt(16384, 'a');
  int64_t requests = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  while ((*pipeline)->SchedulerStats().prefix_index_entries < blocks) {
    // Refresh the metrics now and then so they never go stale for the scorers.
    if (requests % 512 == 0) {
      for (const auto& spec : specs) {
        zumik::sched::EndpointMetrics m;
        m.valid = true;
        m.scraped_at = clock.Now();
        datastore.UpdateMetrics(spec.address, m);
      }
    }
    std::string unique = fmt::format("{:016x}", requests * 0x9E3779B97F4A7C15ull);
    std::copy(unique.begin(), unique.end(), prompt.begin());
    std::string body = fmt::format(R"({{"model":"m","prompt":"{}"}})", prompt);
    auto result = (*pipeline)->Admit("/v1/completions", headers, body, {});
    if (auto* admission = std::get_if<zumik::epp::Admission>(&result)) {
      (*pipeline)->OnDone(*admission->ctx);
    } else {
      std::fprintf(stderr, "rejected: %s\n",
                   std::get<zumik::epp::Rejection>(result).json_body.c_str());
      return 1;
    }
    clock.Advance(std::chrono::milliseconds(1));
    ++requests;
  }
  auto stats = (*pipeline)->SchedulerStats();
  long rss_kb = RssKb();
  std::printf(
      "endpoints %d requests %ld prefix_index_entries %ld prefix_index_bytes %ld "
      "rss_mb %.1f (before pipeline %.1f)\n",
      endpoints, static_cast<long>(requests), static_cast<long>(stats.prefix_index_entries),
      static_cast<long>(stats.prefix_index_bytes), static_cast<double>(rss_kb) / 1024.0,
      static_cast<double>(base_kb) / 1024.0);
  return 0;
}

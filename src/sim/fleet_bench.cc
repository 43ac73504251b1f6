// sim_fleet_bench: how fast the virtual-time fleet runs. 8 replicas at 40 QPS Poisson of
// b2b-like traffic (150 groups x 5 prompts, 6,000-token system prompt + 1,200-token question,
// 1,000 output tokens, prompts cycling) for 10 virtual minutes, on h100x2-qwen3-32b-tp2 and on
// h100-llama-3.1-8b, routed round-robin. Prints virtual seconds per wall second (target >= 200x)
// and, as a sanity check of the model, the same run with each group pinned to one replica.
//
// Usage: sim_fleet_bench [--no-itl]   (--no-itl: records keep no per-token gaps)
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "core/rng.h"
#include "sim/fleet.h"

namespace zumik::sim {
namespace {

struct CorpusPrompt {
  std::shared_ptr<const Prompt> prompt;
  int group;
};

// inference-perf's shared_prefix generator: every prompt built once, shuffled, sent cyclically.
std::vector<CorpusPrompt> BuildB2bCorpus(Rng& rng) {
  constexpr int kGroups = 150, kPerGroup = 5, kSystem = 6000, kQuestion = 1200;
  std::vector<CorpusPrompt> corpus;
  std::vector<TokenId> tokens;
  for (int g = 0; g < kGroups; ++g) {
    std::vector<TokenId> system(kSystem);
    for (TokenId& t : system) t = static_cast<TokenId>(rng.Next());
    for (int q = 0; q < kPerGroup; ++q) {
      tokens = system;
      for (int i = 0; i < kQuestion; ++i) tokens.push_back(static_cast<TokenId>(rng.Next()));
      corpus.push_back({MakePrompt(tokens), g});
    }
  }
  for (size_t i = corpus.size() - 1; i > 0; --i) {
    std::swap(corpus[i], corpus[rng.UniformInt(0, static_cast<int64_t>(i))]);
  }
  return corpus;
}

enum class Policy { kRoundRobin, kGroupAffinity };

void RunOne(const std::string& profile_name, Policy policy, bool record_itl) {
  constexpr int kReplicas = 8;
  constexpr double kQps = 40, kSeconds = 600;
  Rng rng(1);
  const std::vector<CorpusPrompt> corpus = BuildB2bCorpus(rng);
  std::vector<Profile> profiles(kReplicas, *LoadProfile(profile_name));
  FleetOptions options;
  options.record_itl = record_itl;
  Fleet fleet(std::move(profiles), options);
  uint64_t rr = 0;
  fleet.set_router([&](const FleetRequest& r, std::span<const ReplicaView> views, Time) {
    const uint64_t key = policy == Policy::kRoundRobin ? rr++ : static_cast<uint64_t>(r.tag);
    return static_cast<int>(key % views.size());
  });
  double t = 0;
  RequestId id = 0;
  while (true) {
    t += rng.Exponential(1.0 / kQps);
    if (t >= kSeconds) break;
    const CorpusPrompt& p = corpus[id % corpus.size()];
    FleetRequest r;
    r.id = id++;
    r.arrival = FromSeconds(t);
    r.prompt = p.prompt;
    r.tag = p.group;
    r.max_tokens = 1000;
    r.ignore_eos = true;
    fleet.Submit(std::move(r));
  }

  // Wall time is what the target is stated in; CPU time shows how much of it was ours on a
  // shared machine.
  const std::clock_t cpu_start = std::clock();
  const auto start = std::chrono::steady_clock::now();
  fleet.Run(FromSeconds(kSeconds));
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;

  int64_t output = 0;
  for (const RequestRecord& r : fleet.records()) output += r.output_tokens;
  int64_t preemptions = 0, queries = 0, hits = 0, queued = 0, evictions = 0;
  for (const ReplicaStats& s : fleet.Stats()) {
    preemptions += s.engine.preemptions;
    queries += s.engine.prefix_cache_queries;
    hits += s.engine.prefix_cache_hits;
    queued += s.engine.num_waiting + s.engine.num_admitting;
    evictions += fleet.engine(s.index).kv().pool().num_evictions();
  }
  std::printf(
      "%-21s %-14s %3.0f virtual s in %6.3f wall s (%.3f CPU s) => %5.0fx real time "
      "(%.0fx per CPU s)\n"
      "    %lld requests, %zu finished, %lld queued at the end; %lld steps; output %.0f tok/s; "
      "prefix hits %.1f%%; %lld preemptions; %lld block evictions\n",
      profile_name.c_str(), policy == Policy::kRoundRobin ? "round-robin" : "group-affinity",
      kSeconds, wall, cpu, kSeconds / wall, kSeconds / cpu, static_cast<long long>(id),
      fleet.records().size(), static_cast<long long>(queued),
      static_cast<long long>(fleet.num_steps()), static_cast<double>(output) / kSeconds,
      queries > 0 ? 100.0 * static_cast<double>(hits) / static_cast<double>(queries) : 0.0,
      static_cast<long long>(preemptions), static_cast<long long>(evictions));
}

}  // namespace
}  // namespace zumik::sim

int main(int argc, char** argv) {
  using zumik::sim::Policy;
  const bool record_itl = !(argc > 1 && std::string(argv[1]) == "--no-itl");
  std::printf("8 replicas, b2b 150x5 (6000+1200 in, 1000 out), 40 QPS Poisson, record_itl=%s\n",
              record_itl ? "true" : "false");
  for (const char* profile : {"h100x2-qwen3-32b-tp2", "h100-llama-3.1-8b"}) {
    zumik::sim::RunOne(profile, Policy::kRoundRobin, record_itl);
    zumik::sim::RunOne(profile, Policy::kGroupAffinity, record_itl);
  }
  return 0;
}

// The virtual-time runner: a workload's stages driven through sim::Fleet, with the scheduling
// library (or the oracle) as the fleet's router. Stage semantics follow inference-perf: issue,
// wait for every request of the stage (or its timeout), pause, next stage; KV state carries over.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "bench/generator.h"
#include "bench/ideal_cache.h"
#include "bench/runner.h"
#include "core/status.h"
#include "sched/scheduler.h"
#include "sim/fleet.h"

namespace zumik::bench {
namespace {

// The reference router: each true prefix group is pinned to one replica, groups spread so
// replicas hold equally many of them (conversations, which come and go, go to the replica with
// the least outstanding work); requests without a group go to the least-loaded replica.
class Oracle {
 public:
  Oracle(int replicas, bool by_load)
      : load_(static_cast<size_t>(replicas), 0),
        groups_(static_cast<size_t>(replicas), 0),
        by_load_(by_load) {}

  int Route(int64_t group, int64_t work) {
    int r = -1;
    if (group >= 0) {
      if (auto it = home_.find(group); it != home_.end()) r = it->second;
    }
    if (r < 0) {
      r = 0;
      for (int i = 1; i < static_cast<int>(load_.size()); ++i) {
        const auto key = [&](int k) {
          const size_t u = static_cast<size_t>(k);
          return group >= 0 && !by_load_ ? std::make_pair(groups_[u], load_[u])
                                         : std::make_pair(int64_t{0}, load_[u]);
        };
        if (key(i) < key(r)) r = i;
      }
      if (group >= 0) {
        home_[group] = r;
        ++groups_[static_cast<size_t>(r)];
      }
    }
    load_[static_cast<size_t>(r)] += work;
    return r;
  }
  void Done(int replica, int64_t work) { load_[static_cast<size_t>(replica)] -= work; }

 private:
  std::vector<int64_t> load_;  // outstanding prompt + output tokens
  std::vector<int64_t> groups_;
  absl::flat_hash_map<int64_t, int> home_;
  bool by_load_;
};

class VirtualRun {
 public:
  VirtualRun(const Workload& workload, std::string policy, const VirtualOptions& options)
      : workload_(workload),
        policy_(std::move(policy)),
        options_(options),
        generator_(workload, MakeGenOptions(options)),
        rng_(workload.seed ^ 0xa5a5a5a5ULL) {}

  absl::StatusOr<PolicyReport> Run();

 private:
  struct Pending {
    GenRequest request;
    size_t stage = 0;
    int client = -1;
    int replica = -1;
    sched::PickHandle handle = sched::kNoPickHandle;
  };

  static GeneratorOptions MakeGenOptions(const VirtualOptions& options) {
    GeneratorOptions g;
    g.make_tokens = true;
    int max_len = 1 << 30;
    for (const sim::Profile& p : options.fleet) max_len = std::min(max_len, p.max_model_len);
    g.max_context_tokens = max_len;
    return g;
  }

  int Route(const sim::FleetRequest& request, std::span<const sim::ReplicaView> views, Time now);
  void OnComplete(const sim::RequestRecord& record, sim::Fleet& fleet);
  void Submit(GenRequest request, Time at, size_t stage, int client);
  bool StuckOnRejections(const sim::RequestRecord& record, Time now);
  void Progress(double done) const {
    if (options_.progress) options_.progress(policy_, done, num_stages_);
  }

  const Workload& workload_;
  std::string policy_;
  const VirtualOptions& options_;
  Generator generator_;
  Rng rng_;
  std::unique_ptr<sim::Fleet> fleet_;
  std::unique_ptr<sched::Scheduler> scheduler_;
  std::unique_ptr<Oracle> oracle_;
  std::vector<sched::Endpoint> endpoints_;
  std::string model_;
  absl::flat_hash_map<sim::RequestId, Pending> pending_;
  sim::RequestId next_id_ = 1;
  std::vector<StageAccumulator> acc_;
  std::vector<int64_t> outstanding_;  // per stage
  // Closed loop.
  size_t stage_ = 0;
  Time stage_end_{0};
  int clients_ = 0;
  int num_stages_ = 0;
  int64_t completed_ = 0;
  int64_t stage_total_ = 0;
  Time last_reject_at_{-1};
  int64_t rejects_at_instant_ = 0;
  absl::Status stuck_;
  // The ideal hit rates: one cache of every block ever computed (prefilled, or decoded for an
  // answer that a later turn carries), unbounded and bounded by the fleet's KV (ideal_cache.h).
  IdealCache ideal_blocks_;
  IdealCache ideal_fleet_kv_;
  std::vector<int64_t> ideal_cached_, ideal_fleet_kv_cached_, ideal_prompt_;
};

int VirtualRun::Route(const sim::FleetRequest& request, std::span<const sim::ReplicaView> views,
                      Time now) {
  auto it = pending_.find(request.id);
  if (it == pending_.end()) return -1;
  Pending& p = it->second;
  const int64_t work = p.request.prompt->prompt_tokens + p.request.output_len;
  if (oracle_) {
    p.replica = oracle_->Route(p.request.group, work);
    return p.replica;
  }
  for (size_t i = 0; i < views.size(); ++i) {
    const sim::ReplicaView& v = views[i];
    sched::EndpointMetrics& m = endpoints_[i].metrics;
    m.waiting_requests = v.num_waiting;
    m.running_requests = v.num_running;
    m.kv_cache_usage = v.kv_usage;
    m.block_size = v.block_size;
    m.num_gpu_blocks = v.num_gpu_blocks;
    m.valid = true;
    m.scraped_at = v.scraped_at;
  }
  sched::InferenceRequest req;
  req.model = model_;
  req.prompt = p.request.prompt->text;
  req.prompt_tokens = p.request.prompt->prompt_tokens;
  if (p.request.session >= 0) req.session_key = std::to_string(p.request.session);
  absl::StatusOr<sched::PickResult> pick = scheduler_->Pick(req, endpoints_, now);
  if (!pick.ok() || pick->target_indices.empty()) return -1;
  p.handle = pick->handle;
  p.replica = static_cast<int>(pick->target_indices.front());
  return p.replica;
}

void VirtualRun::Submit(GenRequest request, Time at, size_t stage, int client) {
  sim::FleetRequest fr;
  fr.id = next_id_++;
  fr.arrival = at;
  fr.prompt = request.prompt->tokens;
  fr.max_tokens = request.output_len;
  fr.min_tokens = request.output_len;
  fr.ignore_eos = true;
  fr.seed = request.engine_seed.value_or(fr.id);
  fr.tag = static_cast<int64_t>(stage);
  {
    const sim::Prompt& prompt = *request.prompt->tokens;
    const int bs = prompt.block_size;
    // A fully cached prompt still recomputes its last block, as vLLM does.
    const int64_t cacheable = bs > 0 ? (prompt.size() - 1) / bs : 0;
    ideal_prompt_[stage] += prompt.size();
    for (auto [cache, cached] : {std::pair{&ideal_blocks_, &ideal_cached_},
                                 std::pair{&ideal_fleet_kv_, &ideal_fleet_kv_cached_}}) {
      (*cached)[stage] += std::min(cache->Match(prompt.block_hashes), cacheable) * bs;
      cache->Insert(prompt.block_hashes);
      // A multi-turn answer's blocks are computed too (decoded), and its next turn carries them.
      cache->Insert(request.answer_block_hashes);
    }
  }
  Pending p;
  p.request = std::move(request);
  p.stage = stage;
  p.client = client;
  pending_.emplace(fr.id, std::move(p));
  ++outstanding_[stage];
  fleet_->Submit(std::move(fr));
}

// A closed-loop client resends as soon as its request ends, so if its requests are always
// rejected (too long for every replica) virtual time stops: end the loop and report it rather
// than spin forever.
bool VirtualRun::StuckOnRejections(const sim::RequestRecord& record, Time now) {
  constexpr int64_t kMaxRejectsAtOneInstant = 10000;
  if (!record.rejected || now != last_reject_at_) {
    rejects_at_instant_ = record.rejected ? 1 : 0;
    last_reject_at_ = now;
    return false;
  }
  if (++rejects_at_instant_ < kMaxRejectsAtOneInstant) return false;
  stuck_ = Errorf(absl::StatusCode::kFailedPrecondition,
                  "policy '{}': closed loop stuck at t={:.3f}s: {} requests in a row rejected "
                  "(the last one {} prompt tokens; is it over the replicas' max_model_len?)",
                  policy_, ToSeconds(now), rejects_at_instant_, record.prompt_tokens);
  clients_ = 0;
  return true;
}

void VirtualRun::OnComplete(const sim::RequestRecord& record, sim::Fleet& fleet) {
  auto it = pending_.find(record.id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  --outstanding_[p.stage];
  const bool ok = !record.rejected && record.finish_reason != sim::FinishReason::kAbort;
  if (scheduler_ && p.handle != sched::kNoPickHandle) {
    sched::Completion c;
    c.success = ok;
    c.prompt_tokens = record.prompt_tokens;
    c.cached_tokens = record.cached_tokens;
    c.output_tokens = record.output_tokens;
    // A multi-turn answer as the next turn carries it (what a gateway reads in the response).
    std::string answer;
    if (ok && p.request.answer_text_seed && record.output_tokens == p.request.output_len) {
      AppendText(answer, p.request.output_len, *p.request.answer_text_seed);
      c.response_texts = {answer};
    }
    scheduler_->OnComplete(p.handle, fleet.now(), c);
  }
  if (oracle_ && p.replica >= 0) {
    oracle_->Done(p.replica, p.request.prompt->prompt_tokens + p.request.output_len);
  }
  Sample s;
  s.ok = ok;
  if (!ok) s.error = record.rejected ? "rejected" : "timeout";
  if (record.first_token.count() >= 0) s.ttft_ms = ToMillis(record.ttft());
  s.e2e_ms = ToMillis(record.e2e());
  s.finished_s = ToSeconds(record.finished);
  s.prompt_tokens =
      record.prompt_tokens > 0 ? record.prompt_tokens : p.request.prompt->prompt_tokens;
  s.cached_tokens = record.rejected ? 0 : record.cached_tokens;
  s.output_tokens = record.output_tokens;
  StageAccumulator& acc = acc_[p.stage];
  acc.Add(s);
  for (float gap : record.itl_s) acc.AddItl(1000.0 * gap);
  if (++completed_ % 512 == 0 && stage_total_ > 0) {
    Progress(static_cast<double>(stage_) + std::min(1.0, static_cast<double>(acc.requests()) /
                                                             static_cast<double>(stage_total_)));
  }
  // Closed loop: the client sends its next request as soon as this one ends.
  if (p.client >= 0 && p.client < clients_ && fleet.now() < stage_end_ && p.stage == stage_ &&
      !StuckOnRejections(record, fleet.now())) {
    Submit(generator_.NextForClient(p.client), fleet.now(), stage_, p.client);
  }
}

absl::StatusOr<PolicyReport> VirtualRun::Run() {
  if (options_.fleet.empty()) {
    return absl::InvalidArgumentError("the fleet is empty (--fleet PROFILE:COUNT)");
  }
  sim::FleetOptions fo;
  fo.scrape_interval = options_.scrape_interval;
  fo.seed = workload_.seed;
  fo.record_itl = true;
  fleet_ = std::make_unique<sim::Fleet>(options_.fleet, fo);
  model_ = options_.fleet.front().served_model_name;
  int64_t fleet_blocks = 0;
  for (int i = 0; i < fleet_->num_replicas(); ++i) {
    fleet_blocks += fleet_->engine(i).profile().num_gpu_blocks();
  }
  ideal_fleet_kv_ = IdealCache(std::max<int64_t>(fleet_blocks, 1));
  for (int i = 0; i < fleet_->num_replicas(); ++i) {
    sched::Endpoint e;
    e.id = static_cast<sched::EndpointId>(i);
    e.address = fmt::format("10.0.0.{}:8000", i + 1);
    e.name = fmt::format("bench/replica-{}", i);
    endpoints_.push_back(std::move(e));
  }
  if (policy_ == kOraclePolicy) {
    oracle_ = std::make_unique<Oracle>(
        fleet_->num_replicas(),
        workload_.kind == WorkloadKind::kMultiTurn || workload_.kind == WorkloadKind::kTrace);
  } else {
    absl::StatusOr<std::unique_ptr<sched::Scheduler>> s =
        sched::Scheduler::FromPolicy(policy_, rng_);
    if (!s.ok()) {
      std::string message(MessageOf(s.status()));
      if (s.status().code() == absl::StatusCode::kNotFound) {
        message += "; the bench also runs 'oracle' (a reference that knows the prefix groups)";
      }
      if (!message.starts_with("policy '")) {
        message = fmt::format("policy '{}': {}", policy_, message);
      }
      return absl::Status(s.status().code(), message);
    }
    scheduler_ = std::move(*s);
  }
  fleet_->set_router([this](const sim::FleetRequest& r, std::span<const sim::ReplicaView> v,
                            Time now) { return Route(r, v, now); });
  fleet_->set_on_complete([this](const sim::RequestRecord& r, sim::Fleet& f) { OnComplete(r, f); });
  fleet_->set_on_first_token([this](const sim::FirstTokenEvent& e, int, Time at) {
    if (!scheduler_) return;
    if (auto it = pending_.find(e.id); it != pending_.end()) {
      scheduler_->OnFirstToken(it->second.handle, at);
    }
  });

  // Stages: a trace is one stage at its own timestamps.
  std::vector<Stage> stages = workload_.load.stages;
  const bool trace = workload_.kind == WorkloadKind::kTrace;
  if (trace) {
    const auto& recs = workload_.trace.records;
    Stage s;
    const double span = std::max(1e-3, recs.back().t);
    s.rate = static_cast<double>(recs.size()) / span;
    s.duration = FromSeconds(span);
    stages = {s};
  }
  num_stages_ = static_cast<int>(stages.size());
  acc_.resize(stages.size());
  outstanding_.assign(stages.size(), 0);
  ideal_cached_.assign(stages.size(), 0);
  ideal_fleet_kv_cached_.assign(stages.size(), 0);
  ideal_prompt_.assign(stages.size(), 0);
  std::vector<StageStats> stats;
  Time cursor{0};
  const bool closed = workload_.load.arrival == Arrival::kConcurrency;
  for (size_t si = 0; si < stages.size(); ++si) {
    const Stage& stage = stages[si];
    stage_ = si;
    const Time start = std::max(cursor, fleet_->now());
    stage_end_ = start + stage.duration;
    Progress(static_cast<double>(si));
    if (trace) {
      stage_total_ = static_cast<int64_t>(workload_.trace.records.size());
      for (size_t i = 0;; ++i) {
        auto next = generator_.TraceRequest(i);
        if (!next) break;
        const Time at = start + FromSeconds(next->first);
        fleet_->Run(at);
        Submit(std::move(next->second), at, si, -1);
      }
    } else if (closed) {
      clients_ = static_cast<int>(stage.rate);
      stage_total_ = clients_;
      fleet_->Run(start);
      for (int c = 0; c < clients_; ++c) Submit(generator_.NextForClient(c), start, si, c);
    } else {
      clients_ = 0;
      const std::vector<double> offsets =
          ArrivalOffsets(workload_.load, stage, workload_.seed * 7919 + si);
      stage_total_ = static_cast<int64_t>(offsets.size());
      for (double offset : offsets) {
        const Time at = start + FromSeconds(offset);
        fleet_->Run(at);
        Submit(generator_.Next(), at, si, -1);
      }
    }
    bool timed_out = false;
    if (stage.timeout > Duration{0}) {
      fleet_->Run(stage_end_ + stage.timeout);
      if (outstanding_[si] > 0) {
        timed_out = true;
        clients_ = 0;
        std::vector<sim::RequestId> ids;
        for (const auto& [id, p] : pending_) {
          if (p.stage == si) ids.push_back(id);
        }
        std::sort(ids.begin(), ids.end());
        for (sim::RequestId id : ids) fleet_->Abort(id);
        // Anything not yet holding a replica completes (or is rejected) on its own.
      }
    }
    fleet_->Run();
    if (!stuck_.ok()) return stuck_;
    fleet_->TakeRecords();  // already folded into the accumulators
    cursor = fleet_->now() + stage.interval;
    StageStats st = FinishStage(acc_[si], stage.rate, stage.warmup, ToSeconds(start),
                                workload_.slo_ttft_p90_ms);
    st.timed_out = timed_out;
    acc_[si] = StageAccumulator();  // free the samples
    if (!stage.warmup) stats.push_back(std::move(st));
  }
  Progress(static_cast<double>(stages.size()));
  PolicyReport report;
  report.policy = policy_;
  report.stages = std::move(stats);
  double cached = 0, prompt = 0;
  for (const StageStats& s : report.stages) {
    prompt += s.input_tokens_per_s * s.duration_s;
    cached += s.prefix_hit_rate * s.input_tokens_per_s * s.duration_s;
  }
  report.prefix_hit_rate = prompt > 0 ? cached / prompt : 0;
  int64_t ideal_cached = 0, ideal_fleet_kv_cached = 0, ideal_prompt = 0;
  for (size_t si = 0; si < stages.size(); ++si) {
    if (stages[si].warmup) continue;
    ideal_cached += ideal_cached_[si];
    ideal_fleet_kv_cached += ideal_fleet_kv_cached_[si];
    ideal_prompt += ideal_prompt_[si];
  }
  auto ratio = [&](int64_t hit_tokens) {
    return ideal_prompt > 0 ? static_cast<double>(hit_tokens) / static_cast<double>(ideal_prompt)
                            : 0;
  };
  report.ideal_prefix_hit_rate = ratio(ideal_cached);
  report.ideal_fleet_kv_prefix_hit_rate = ratio(ideal_fleet_kv_cached);
  report.has_ideal = true;
  Summarize(report, workload_.slo_ttft_p90_ms);
  return report;
}

}  // namespace

std::vector<double> ArrivalOffsets(const LoadSpec& load, const Stage& stage, uint64_t seed) {
  Rng rng(seed);
  const double duration = ToSeconds(stage.duration);
  const auto n = static_cast<int64_t>(std::llround(stage.rate * duration));
  std::vector<double> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(n, 0)));
  const double mean_gap = 1.0 / stage.rate;
  double t = 0;
  for (int64_t i = 0; i < n; ++i) {
    switch (load.arrival) {
      case Arrival::kConstant:
        out.push_back(static_cast<double>(i) * mean_gap);
        continue;
      case Arrival::kGamma:
        t += rng.Gamma(1.0 / (load.cv * load.cv), mean_gap);
        break;
      case Arrival::kPoisson:
      case Arrival::kConcurrency:
        t += rng.Exponential(mean_gap);
        break;
    }
    out.push_back(t);
  }
  return out;
}

absl::StatusOr<std::vector<sim::Profile>> ParseFleet(std::string_view spec) {
  std::vector<sim::Profile> out;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    std::string_view part = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (part.empty()) continue;
    int count = 1;
    std::string_view name = part;
    if (const size_t colon = part.rfind(':'); colon != std::string_view::npos) {
      const std::string n(part.substr(colon + 1));
      char* end = nullptr;
      const long v = std::strtol(n.c_str(), &end, 10);
      if (n.empty() || *end != '\0' || v < 1 || v > 4096) {
        return Errorf(absl::StatusCode::kInvalidArgument,
                      "--fleet '{}': the count after ':' must be a number from 1 to 4096", part);
      }
      count = static_cast<int>(v);
      name = part.substr(0, colon);
    }
    absl::StatusOr<sim::Profile> profile = sim::ResolveProfile(name);
    if (!profile.ok()) {
      return Errorf(absl::StatusCode::kInvalidArgument, "--fleet '{}': {}", part,
                    MessageOf(profile.status()));
    }
    for (int i = 0; i < count; ++i) out.push_back(*profile);
  }
  if (out.empty()) return absl::InvalidArgumentError("--fleet: no replicas (PROFILE:COUNT)");
  return out;
}

absl::StatusOr<PolicyReport> RunVirtualPolicy(const Workload& workload, const std::string& policy,
                                              const VirtualOptions& options) {
  VirtualRun run(workload, policy, options);
  return run.Run();
}

absl::StatusOr<Report> RunVirtual(const Workload& workload,
                                  const std::vector<std::string>& policies,
                                  const VirtualOptions& options) {
  Report report;
  report.workload = workload.name;
  report.fleet = options.fleet_text;
  report.mode = "virtual";
  report.arrival = std::string(ArrivalName(workload.load.arrival));
  if (workload.kind == WorkloadKind::kTrace) report.arrival = "trace";
  report.seed = workload.seed;
  report.slo_ttft_p90_ms = workload.slo_ttft_p90_ms;
  std::vector<absl::StatusOr<PolicyReport>> results(policies.size(), absl::UnknownError("not run"));
  const int jobs = std::clamp<int>(options.jobs, 1, static_cast<int>(policies.size()));
  if (jobs <= 1) {
    for (size_t i = 0; i < policies.size(); ++i) {
      results[i] = RunVirtualPolicy(workload, policies[i], options);
    }
  } else {
    std::mutex mu;
    size_t next = 0;
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(jobs));
    for (int j = 0; j < jobs; ++j) {
      threads.emplace_back([&] {
        for (;;) {
          size_t i;
          {
            std::lock_guard lock(mu);
            if (next >= policies.size()) return;
            i = next++;
          }
          absl::StatusOr<PolicyReport> r = RunVirtualPolicy(workload, policies[i], options);
          std::lock_guard lock(mu);
          results[i] = std::move(r);
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  for (auto& r : results) {
    if (!r.ok()) return r.status();
    report.policies.push_back(std::move(*r));
  }
  return report;
}

}  // namespace zumik::bench

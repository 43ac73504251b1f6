// Virtual-time fleet event loop (see fleet.h).
#include "sim/fleet.h"

#include <algorithm>
#include <cassert>

#include "fmt/format.h"

namespace zumik::sim {

Fleet::Fleet(std::vector<Profile> replicas, FleetOptions options) : options_(std::move(options)) {
  EngineOptions engine_options;
  engine_options.seed = options_.seed;
  engine_options.record_token_times = options_.record_itl;
  replicas_.resize(replicas.size());
  views_.resize(replicas.size());
  for (size_t i = 0; i < replicas.size(); ++i) {
    Replica& rep = replicas_[i];
    rep.engine = std::make_unique<Engine>(std::move(replicas[i]), engine_options);
    rep.address =
        i < options_.addresses.size() ? options_.addresses[i] : fmt::format("replica-{}", i);
  }
  for (size_t i = 0; i < replicas_.size(); ++i) {
    views_[i].index = static_cast<int>(i);
    views_[i].address = replicas_[i].address;
    views_[i].profile = replicas_[i].engine->profile().name;
    Snapshot(static_cast<int>(i), Time{0});
  }
  next_scrape_ = options_.scrape_interval;
}

void Fleet::Push(Time at, EventKind kind, int32_t index) {
  events_.push(Event{at, next_seq_++, kind, index});
}

void Fleet::Submit(FleetRequest request) {
  request.arrival = std::max(request.arrival, now_);
  int32_t slot;
  if (free_slots_.empty()) {
    slot = static_cast<int32_t>(arrivals_.size());
    arrivals_.push_back(std::move(request));
  } else {
    slot = free_slots_.back();
    free_slots_.pop_back();
    arrivals_[slot] = std::move(request);
  }
  Push(arrivals_[slot].arrival, EventKind::kArrival, slot);
}

void Fleet::Snapshot(int replica, Time t) {
  const Engine& engine = *replicas_[replica].engine;
  const Scheduler& scheduler = engine.scheduler();
  const BlockPool& pool = engine.kv().pool();
  ReplicaView& v = views_[replica];
  v.num_running = scheduler.num_running();
  v.num_waiting = scheduler.num_waiting();
  v.kv_usage = pool.Usage();
  v.block_size = pool.block_size();
  v.num_gpu_blocks = pool.num_blocks();
  v.prefix_cache_queries = scheduler.counters().prefix_cache_queries;
  v.prefix_cache_hits = scheduler.counters().prefix_cache_hits;
  v.scraped_at = t;
}

// State only changes at events, so the state before the first event at or past a scrape tick
// is the state at that tick.
void Fleet::MaybeScrape(Time t) {
  const Duration interval = options_.scrape_interval;
  if (interval <= Duration{0} || t < next_scrape_) return;
  const Time tick = next_scrape_ + (t - next_scrape_) / interval * interval;
  for (int i = 0; i < num_replicas(); ++i) Snapshot(i, tick);
  next_scrape_ = tick + interval;
}

int64_t Fleet::Run(Time until) {
  int64_t processed = 0;
  while (!events_.empty()) {
    const Event event = events_.top();
    if (event.at > until) {
      now_ = std::max(now_, until);
      break;
    }
    events_.pop();
    now_ = event.at;
    MaybeScrape(now_);
    switch (event.kind) {
      case EventKind::kArrival:
        OnArrival(event.index);
        break;
      case EventKind::kWake: {
        Replica& rep = replicas_[event.index];
        if (event.at != rep.wake_at) break;  // superseded by an earlier wake
        rep.wake_at = Time::max();
        if (!rep.stepping) StartStepOrSleep(event.index);
        break;
      }
      case EventKind::kStepEnd:
        OnStepEnd(event.index);
        break;
    }
    ++processed;
  }
  return processed;
}

void Fleet::OnArrival(int32_t slot) {
  FleetRequest request = std::move(arrivals_[slot]);
  arrivals_[slot] = FleetRequest{};
  free_slots_.push_back(slot);

  if (options_.scrape_interval <= Duration{0}) {
    for (int i = 0; i < num_replicas(); ++i) Snapshot(i, now_);
  }
  const int r = route_ ? route_(request, views_, now_)
                       : static_cast<int>(request.id % static_cast<uint64_t>(num_replicas()));
  RequestRecord rejected;
  rejected.id = request.id;
  rejected.tag = request.tag;
  rejected.rejected = true;
  rejected.arrival = request.arrival;
  rejected.finished = now_;
  rejected.prompt_tokens = request.prompt ? request.prompt->size() : 0;
  if (r < 0 || r >= num_replicas()) {
    Complete(std::move(rejected));
    return;
  }
  Replica& rep = replicas_[r];
  RequestSpec spec;
  spec.id = request.id;
  spec.prompt = std::move(request.prompt);
  spec.max_tokens = request.max_tokens;
  spec.min_tokens = request.min_tokens;
  spec.ignore_eos = request.ignore_eos;
  spec.seed = request.seed;
  spec.arrival = request.arrival;
  if (!rep.engine->Add(std::move(spec)).ok()) {
    rejected.replica = r;
    Complete(std::move(rejected));
    return;
  }
  ++rep.routed;
  in_flight_[request.id] = InFlight{request.tag, r};
  if (!rep.stepping) StartStepOrSleep(r);
}

void Fleet::StartStepOrSleep(int replica) {
  Replica& rep = replicas_[replica];
  Engine& engine = *rep.engine;
  const std::optional<Time> next = engine.NextStepTime();
  if (!next) return;
  if (*next > now_) {
    if (*next < rep.wake_at) {
      rep.wake_at = *next;
      Push(*next, EventKind::kWake, replica);
    }
    return;
  }
  const StepResult& result = engine.Step(now_);
  // The engine plans a step whenever a sequence is waiting or running (KV capacity is checked
  // at Add), so an idle step here would stall the replica.
  assert(!result.idle());
  if (result.idle()) return;
  rep.stepping = true;
  ++num_steps_;
  Push(result.end, EventKind::kStepEnd, replica);
}

void Fleet::OnStepEnd(int replica) {
  Replica& rep = replicas_[replica];
  rep.stepping = false;
  // The engine's last StepResult stays valid until its next Step(), below.
  if (on_first_token_) {
    for (const FirstTokenEvent& first : rep.engine->last_step().first_tokens) {
      on_first_token_(first, replica, now_);
    }
  }
  for (const RequestResult& result : rep.engine->last_step().finished) {
    int64_t tag = 0;
    if (auto it = in_flight_.find(result.id); it != in_flight_.end()) {
      tag = it->second.tag;
      in_flight_.erase(it);
    }
    Complete(ToRecord(result, replica, tag));
  }
  StartStepOrSleep(replica);
}

bool Fleet::Abort(RequestId id) {
  auto it = in_flight_.find(id);
  if (it == in_flight_.end()) return false;
  const InFlight where = it->second;
  in_flight_.erase(it);
  std::optional<RequestResult> result = replicas_[where.replica].engine->Abort(id, now_);
  if (!result) return false;
  Complete(ToRecord(*result, where.replica, where.tag));
  return true;
}

void Fleet::Complete(RequestRecord record) {
  records_.push_back(std::move(record));
  if (on_complete_) on_complete_(records_.back(), *this);
}

RequestRecord Fleet::ToRecord(const RequestResult& r, int replica, int64_t tag) const {
  RequestRecord rec;
  rec.id = r.id;
  rec.tag = tag;
  rec.replica = replica;
  rec.finish_reason = r.finish_reason;
  rec.arrival = r.arrival;
  rec.first_token = r.first_token;
  rec.finished = r.finished;
  rec.prompt_tokens = r.prompt_tokens;
  rec.cached_tokens = r.cached_tokens;
  rec.output_tokens = r.output_tokens;
  rec.preemptions = r.preemptions;
  if (r.output_tokens >= 2) {
    // The last token is produced at the finishing step's end.
    rec.itl_mean_s = ToSeconds(r.finished - r.first_token) / (r.output_tokens - 1);
  }
  const std::vector<Time>& times = r.token_times;
  if (times.size() >= 2) {
    rec.itl_s.reserve(times.size() - 1);
    for (size_t i = 1; i < times.size(); ++i) {
      const double gap = ToSeconds(times[i] - times[i - 1]);
      rec.itl_max_s = std::max(rec.itl_max_s, gap);
      rec.itl_s.push_back(static_cast<float>(gap));
    }
  }
  return rec;
}

std::vector<ReplicaStats> Fleet::Stats() const {
  std::vector<ReplicaStats> out;
  out.reserve(replicas_.size());
  for (int i = 0; i < num_replicas(); ++i) {
    out.push_back({i, replicas_[i].engine->profile().name, replicas_[i].routed,
                   replicas_[i].engine->Stats()});
  }
  return out;
}

}  // namespace zumik::sim

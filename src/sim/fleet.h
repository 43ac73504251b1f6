// A virtual-time fleet of replicas: a discrete-event loop (arrivals, step completions,
// admissions after t_api) over the same Engine the HTTP server runs, with no sockets, threads
// or clocks, deterministic for given inputs. A router callback picks a replica at each arrival
// from what a real router could observe, refreshed every scrape_interval (a scraper's
// staleness); a completion callback lets a router track its in-flight counts and lets
// closed-loop clients submit their next request.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <span>
#include <string>
#include <vector>

#include "core/clock.h"
#include "sim/engine.h"
#include "sim/profile.h"

namespace zumik::sim {

struct FleetRequest {
  RequestId id = 0;  // unique within the fleet run
  Time arrival{0};
  std::shared_ptr<const Prompt> prompt;
  int max_tokens = 16;
  int min_tokens = 0;
  bool ignore_eos = false;  // as the OpenAI API; benchmarks usually set true
  uint64_t seed = 0;
  int64_t tag = 0;  // the caller's (e.g. prefix group, stage); the fleet never reads it
};

// A replica as a router sees it: the last scrape of its metrics. Views (and their strings) are
// valid during the Route call.
struct ReplicaView {
  int index = 0;
  std::string_view address;
  std::string_view profile;
  int num_running = 0;
  int num_waiting = 0;  // vLLM's waiting queue (requests still in t_api are not visible)
  double kv_usage = 0;
  int block_size = 0;
  int num_gpu_blocks = 0;
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  Time scraped_at{0};
};

struct RequestRecord {
  RequestId id = 0;
  int64_t tag = 0;
  int replica = -1;       // -1: rejected before reaching a replica
  bool rejected = false;  // bad route or the engine refused it (e.g. too long)
  FinishReason finish_reason = FinishReason::kAbort;
  Time arrival{0};
  Time first_token{-1};
  Time finished{0};
  int prompt_tokens = 0;
  int cached_tokens = 0;
  int output_tokens = 0;
  int preemptions = 0;
  double itl_mean_s = 0;  // (last token - first token) / (output tokens - 1)
  double itl_max_s = 0;
  std::vector<float> itl_s;  // every inter-token gap (FleetOptions::record_itl)

  Duration ttft() const { return first_token - arrival; }
  Duration e2e() const { return finished - arrival; }
};

struct ReplicaStats {
  int index = 0;
  std::string profile;
  int64_t routed = 0;  // requests the router sent here
  EngineStats engine;
};

struct FleetOptions {
  Duration scrape_interval = std::chrono::milliseconds(50);  // 0: views always fresh
  std::vector<std::string> addresses;                        // default "replica-<i>"
  uint64_t seed = 1;                                         // engines' seed (natural stop lengths)
  bool record_itl = true;
};

class Fleet;
using RouteFn =
    std::function<int(const FleetRequest&, std::span<const ReplicaView> replicas, Time now)>;
// Called when a request finishes (or is rejected), at record.finished; may Submit() requests
// arriving at or after fleet.now().
using CompletionFn = std::function<void(const RequestRecord&, Fleet& fleet)>;
// Called when a request's first token is produced (the end of its prefill), at that step's end:
// a streaming client sees its first chunk then, so a router learns of it then.
using FirstTokenFn = std::function<void(const FirstTokenEvent&, int replica, Time at)>;

class Fleet {
 public:
  Fleet(std::vector<Profile> replicas, FleetOptions options = {});
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  void set_router(RouteFn route) { route_ = std::move(route); }
  void set_on_complete(CompletionFn done) { on_complete_ = std::move(done); }
  void set_on_first_token(FirstTokenFn first) { on_first_token_ = std::move(first); }

  // Schedules an arrival; times before now() are moved to now().
  void Submit(FleetRequest request);
  // Aborts a request a replica holds (e.g. a stage timeout): it completes now with
  // finish_reason abort. False when no replica holds it (not arrived yet, or finished).
  bool Abort(RequestId id);
  // Processes events in time order until none remain or the next one is after `until`
  // (then now() becomes `until`). Returns the number of events processed.
  int64_t Run(Time until = Time::max());
  bool Idle() const { return events_.empty(); }

  Time now() const { return now_; }
  int num_replicas() const { return static_cast<int>(replicas_.size()); }
  const Engine& engine(int replica) const { return *replicas_[replica].engine; }
  // Finished requests in completion order.
  const std::vector<RequestRecord>& records() const { return records_; }
  std::vector<RequestRecord> TakeRecords() { return std::exchange(records_, {}); }
  std::vector<ReplicaStats> Stats() const;
  int64_t num_steps() const { return num_steps_; }

 private:
  enum class EventKind : uint8_t { kArrival, kWake, kStepEnd };
  struct Event {
    Time at;
    uint64_t seq;  // FIFO among equal times
    EventKind kind;
    int32_t index;  // arrival slot or replica
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  struct Replica {
    std::unique_ptr<Engine> engine;
    std::string address;
    bool stepping = false;
    Time wake_at = Time::max();  // pending wake event, if any
    int64_t routed = 0;
  };

  void Push(Time at, EventKind kind, int32_t index);
  void MaybeScrape(Time t);
  void Snapshot(int replica, Time t);
  void OnArrival(int32_t slot);
  void StartStepOrSleep(int replica);
  void OnStepEnd(int replica);
  void Complete(RequestRecord record);
  RequestRecord ToRecord(const RequestResult& r, int replica, int64_t tag) const;

  FleetOptions options_;
  std::vector<Replica> replicas_;
  std::vector<ReplicaView> views_;
  Time next_scrape_{0};
  RouteFn route_;
  CompletionFn on_complete_;
  FirstTokenFn on_first_token_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  uint64_t next_seq_ = 0;
  Time now_{0};
  std::vector<FleetRequest> arrivals_;  // slots of pending arrivals
  std::vector<int32_t> free_slots_;
  struct InFlight {
    int64_t tag;
    int replica;
  };
  absl::flat_hash_map<RequestId, InFlight> in_flight_;
  std::vector<RequestRecord> records_;
  int64_t num_steps_ = 0;
};

}  // namespace zumik::sim

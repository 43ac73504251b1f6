// The EPP's endpoint datastore: the current set of model-server endpoints (from static flags,
// DNS or Kubernetes discovery) with their latest scraped metrics, published as immutable
// snapshots. Readers (every pick) take a shared_ptr to the current snapshot and never wait on
// writers (discovery, the scraper): writers build a new snapshot and swap it in.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "sched/endpoint.h"

namespace zumik::epp {

// The metrics dialect of an endpoint, chosen by pod label llm-d.ai/engine-type (legacy
// inference.networking.k8s.io/engine-type); vLLM by default.
enum class Engine { kVllm, kSglang };
Engine EngineOfLabels(const sched::Labels& labels);

struct EndpointSpec {
  std::string address;  // "ip:port" (IPv6 as "[::1]:port")
  std::string name;     // "namespace/pod"; defaults to the address
  sched::Labels labels;
  bool ready = true;
};

struct Snapshot {
  uint64_t version = 0;
  std::vector<sched::Endpoint> endpoints;  // sorted by address
  std::vector<Engine> engines;             // aligned with endpoints

  // Index in `endpoints`, or -1.
  int Find(std::string_view address) const;
};

class Datastore {
 public:
  Datastore();
  Datastore(const Datastore&) = delete;
  Datastore& operator=(const Datastore&) = delete;

  // Replaces the endpoint set. Endpoints that stay keep their id and metrics; new ones get
  // the smallest free id and no metrics; removed ones free their id.
  void SetEndpoints(std::vector<EndpointSpec> specs);
  // Stores a scrape result for `address` (ignored if it left the set meanwhile).
  void UpdateMetrics(std::string_view address, const sched::EndpointMetrics& metrics);
  // Several at once, one snapshot swap (the scraper batches a tick's results).
  void UpdateMetrics(const std::vector<std::pair<std::string, sched::EndpointMetrics>>& batch);

  std::shared_ptr<const Snapshot> Current() const;
  size_t size() const;

 private:
  void PublishLocked(std::shared_ptr<Snapshot> next);

  mutable std::mutex mu_;  // writers; and the pointer swap
  std::shared_ptr<const Snapshot> current_;
  std::vector<bool> used_ids_;
  uint64_t version_ = 0;
};

// Parses "host:port,host:port" (commas, whitespace or newlines) into specs; IPv6 as
// "[addr]:port". kInvalidArgument naming the bad entry.
absl::StatusOr<std::vector<EndpointSpec>> ParseEndpointList(std::string_view text);

}  // namespace zumik::epp

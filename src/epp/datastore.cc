// The endpoint datastore and its immutable snapshots (see datastore.h).
#include "epp/datastore.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "core/status.h"

namespace zumik::epp {

Engine EngineOfLabels(const sched::Labels& labels) {
  const std::string* engine = sched::FindLabel(labels, "llm-d.ai/engine-type");
  if (engine == nullptr) {
    engine = sched::FindLabel(labels, "inference.networking.k8s.io/engine-type");
  }
  if (engine != nullptr && *engine == "sglang") return Engine::kSglang;
  return Engine::kVllm;
}

int Snapshot::Find(std::string_view address) const {
  auto it =
      std::lower_bound(endpoints.begin(), endpoints.end(), address,
                       [](const sched::Endpoint& e, std::string_view a) { return e.address < a; });
  if (it == endpoints.end() || it->address != address) return -1;
  return static_cast<int>(it - endpoints.begin());
}

Datastore::Datastore() : current_(std::make_shared<Snapshot>()) {}

std::shared_ptr<const Snapshot> Datastore::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

size_t Datastore::size() const { return Current()->endpoints.size(); }

void Datastore::PublishLocked(std::shared_ptr<Snapshot> next) {
  next->version = ++version_;
  current_ = std::move(next);
}

void Datastore::SetEndpoints(std::vector<EndpointSpec> specs) {
  std::sort(specs.begin(), specs.end(),
            [](const EndpointSpec& a, const EndpointSpec& b) { return a.address < b.address; });
  specs.erase(std::unique(specs.begin(), specs.end(),
                          [](const EndpointSpec& a, const EndpointSpec& b) {
                            return a.address == b.address;
                          }),
              specs.end());
  std::lock_guard lock(mu_);
  const Snapshot& old = *current_;
  auto next = std::make_shared<Snapshot>();
  next->endpoints.reserve(specs.size());
  // Free the ids of endpoints that leave first, so the new ones can reuse them.
  std::vector<std::string_view> keep;
  keep.reserve(specs.size());
  for (const auto& spec : specs) keep.push_back(spec.address);
  for (const auto& e : old.endpoints) {
    if (!std::binary_search(keep.begin(), keep.end(), std::string_view(e.address))) {
      used_ids_[e.id] = false;
    }
  }
  for (auto& spec : specs) {
    sched::Endpoint endpoint;
    int index = old.Find(spec.address);
    if (index >= 0) {
      endpoint = old.endpoints[static_cast<size_t>(index)];
    } else {
      auto free = std::find(used_ids_.begin(), used_ids_.end(), false);
      endpoint.id = static_cast<sched::EndpointId>(free - used_ids_.begin());
      if (free == used_ids_.end()) {
        used_ids_.push_back(true);
      } else {
        *free = true;
      }
    }
    endpoint.address = spec.address;
    endpoint.name = spec.name.empty() ? spec.address : spec.name;
    endpoint.labels = std::move(spec.labels);
    endpoint.ready = spec.ready;
    next->engines.push_back(EngineOfLabels(endpoint.labels));
    next->endpoints.push_back(std::move(endpoint));
  }
  PublishLocked(std::move(next));
}

void Datastore::UpdateMetrics(std::string_view address, const sched::EndpointMetrics& metrics) {
  std::vector<std::pair<std::string, sched::EndpointMetrics>> batch;
  batch.emplace_back(std::string(address), metrics);
  UpdateMetrics(batch);
}

void Datastore::UpdateMetrics(
    const std::vector<std::pair<std::string, sched::EndpointMetrics>>& batch) {
  if (batch.empty()) return;
  std::lock_guard lock(mu_);
  auto next = std::make_shared<Snapshot>(*current_);
  bool changed = false;
  for (const auto& [address, metrics] : batch) {
    int index = next->Find(address);
    if (index < 0) continue;
    next->endpoints[static_cast<size_t>(index)].metrics = metrics;
    changed = true;
  }
  if (changed) PublishLocked(std::move(next));
}

absl::StatusOr<std::vector<EndpointSpec>> ParseEndpointList(std::string_view text) {
  std::vector<EndpointSpec> specs;
  size_t i = 0;
  auto is_sep = [](char c) { return c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (i < text.size()) {
    while (i < text.size() && is_sep(text[i])) ++i;
    size_t start = i;
    while (i < text.size() && !is_sep(text[i])) ++i;
    std::string_view entry = text.substr(start, i - start);
    if (entry.empty()) continue;
    if (entry.front() == '#') {  // a comment runs to the end of the line
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    size_t colon = entry.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == entry.size()) {
      return Errorf(absl::StatusCode::kInvalidArgument, "endpoint '{}' is not HOST:PORT", entry);
    }
    std::string_view host = entry.substr(0, colon);
    std::string_view port_text = entry.substr(colon + 1);
    if (host.front() == '[' ? host.back() != ']' : host.find(':') != std::string_view::npos) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "endpoint '{}': IPv6 addresses need brackets, [addr]:port", entry);
    }
    int port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 1 ||
        port > 65535) {
      return Errorf(absl::StatusCode::kInvalidArgument, "endpoint '{}': bad port '{}'", entry,
                    port_text);
    }
    EndpointSpec spec;
    spec.address = std::string(entry);
    specs.push_back(std::move(spec));
  }
  return specs;
}

}  // namespace zumik::epp

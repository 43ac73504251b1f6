// Endpoint discovery from the DNS A/AAAA records of a (headless Kubernetes) Service: every
// address NAME resolves to becomes an endpoint "ip:PORT". Re-resolved periodically; a failed
// resolution keeps the previous set (a DNS hiccup must not empty the pool).
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "epp/datastore.h"

namespace zumik::epp {

struct DnsTarget {
  std::string name;
  uint16_t port = 0;
};
// "NAME:PORT" (e.g. "vllm.default.svc.cluster.local:8000").
absl::StatusOr<DnsTarget> ParseDnsTarget(std::string_view text);

struct DnsDiscoveryOptions {
  DnsTarget target;
  Duration interval = std::chrono::seconds(5);
};

class DnsDiscovery {
 public:
  // `datastore` must outlive the io_context's threads.
  DnsDiscovery(boost::asio::io_context& io, Datastore& datastore, DnsDiscoveryOptions options);
  ~DnsDiscovery();
  DnsDiscovery(const DnsDiscovery&) = delete;
  DnsDiscovery& operator=(const DnsDiscovery&) = delete;

  void Start();
  void Stop();
  uint64_t resolutions() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace zumik::epp

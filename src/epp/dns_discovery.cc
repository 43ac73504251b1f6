// DNS-based endpoint discovery (see dns_discovery.h).
#include "epp/dns_discovery.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>

#include "core/log.h"
#include "core/status.h"

namespace zumik::epp {
namespace asio = boost::asio;

absl::StatusOr<DnsTarget> ParseDnsTarget(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Errorf(absl::StatusCode::kInvalidArgument, "--dns '{}' is not NAME:PORT", text);
  }
  int port = 0;
  std::string_view port_text = text.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return Errorf(absl::StatusCode::kInvalidArgument, "--dns '{}': bad port", text);
  }
  return DnsTarget{std::string(text.substr(0, colon)), static_cast<uint16_t>(port)};
}

struct DnsDiscovery::Shared {
  asio::io_context& io;
  Datastore& datastore;
  DnsDiscoveryOptions options;
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> resolutions{0};
  Shared(asio::io_context& i, Datastore& d, DnsDiscoveryOptions o)
      : io(i), datastore(d), options(std::move(o)) {}
};

namespace {

std::vector<EndpointSpec> SpecsOf(const asio::ip::tcp::resolver::results_type& results,
                                  uint16_t port) {
  std::vector<EndpointSpec> specs;
  for (const auto& entry : results) {
    auto address = entry.endpoint().address();
    EndpointSpec spec;
    spec.address = address.is_v6() ? fmt::format("[{}]:{}", address.to_string(), port)
                                   : fmt::format("{}:{}", address.to_string(), port);
    specs.push_back(std::move(spec));
  }
  return specs;
}

asio::awaitable<void> ResolveLoop(std::shared_ptr<DnsDiscovery::Shared> shared) {
  auto log = Logger("epp-dns");
  asio::ip::tcp::resolver resolver(co_await asio::this_coro::executor);
  asio::steady_timer timer(co_await asio::this_coro::executor);
  std::string port = std::to_string(shared->options.target.port);
  while (!shared->stopping.load()) {
    boost::system::error_code ec;
    auto results = co_await resolver.async_resolve(shared->options.target.name, port,
                                                   asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      log->warn("resolving {} failed: {}; keeping {} endpoints", shared->options.target.name,
                ec.message(), shared->datastore.size());
    } else {
      shared->resolutions.fetch_add(1);
      shared->datastore.SetEndpoints(SpecsOf(results, shared->options.target.port));
    }
    timer.expires_after(shared->options.interval);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace

DnsDiscovery::DnsDiscovery(asio::io_context& io, Datastore& datastore, DnsDiscoveryOptions options)
    : shared_(std::make_shared<Shared>(io, datastore, std::move(options))) {}

DnsDiscovery::~DnsDiscovery() { Stop(); }

void DnsDiscovery::Start() { asio::co_spawn(shared_->io, ResolveLoop(shared_), asio::detached); }

void DnsDiscovery::Stop() { shared_->stopping.store(true); }

uint64_t DnsDiscovery::resolutions() const { return shared_->resolutions.load(); }

}  // namespace zumik::epp

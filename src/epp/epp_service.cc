// Wiring of the EPP process (see epp_service.h).
#include "epp/epp_service.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/http/server.h"
#include "core/log.h"
#include "core/metrics/exposition.h"
#include "core/status.h"
#include "epp/dns_discovery.h"
#include "epp/epp_metrics.h"

#ifdef ZUMIK_EPP_HAVE_EXTPROC
#include "epp/extproc/server.h"
#endif
#ifdef ZUMIK_EPP_HAVE_KUBE
#include "kube/client.h"
#include "kube/model_config_watch.h"
#include "kube/pool_discovery.h"
#endif

namespace zumik::epp {
namespace asio = boost::asio;

bool HaveExtProc() {
#ifdef ZUMIK_EPP_HAVE_EXTPROC
  return true;
#else
  return false;
#endif
}

bool HaveKubeDiscovery() {
#ifdef ZUMIK_EPP_HAVE_KUBE
  return true;
#else
  return false;
#endif
}

// One gateway worker: a single-threaded io_context with its own Gateway (listener and
// upstream pool).
struct GatewayWorker {
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::unique_ptr<Gateway> gateway;
  std::thread thread;
};

struct EppService::Impl {
  EppServiceOptions options;
  // The io_contexts are destroyed explicitly in StopAll, before the pipeline and datastore:
  // destroying one destroys its suspended handler coroutines, whose cleanup still completes
  // picks in the pipeline.
  // Discovery, scraping and the metrics port.
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;  // before io
  std::thread thread;
  std::vector<GatewayWorker> workers;
  Datastore datastore;
  std::unique_ptr<EppMetrics> metrics;
  std::shared_ptr<Pipeline> pipeline;
  std::unique_ptr<Scraper> scraper;
  std::unique_ptr<DnsDiscovery> dns;
  std::unique_ptr<http::Server> metrics_server;
#ifdef ZUMIK_EPP_HAVE_EXTPROC
  std::unique_ptr<extproc::ExtProcServer> extproc;
#endif
#ifdef ZUMIK_EPP_HAVE_KUBE
  std::unique_ptr<kube::Client> kube_client;
  std::unique_ptr<kube::PoolDiscovery> pool;
  std::unique_ptr<kube::ModelConfigWatch> model_config;
#endif
  bool stopped = false;

  ~Impl() { StopAll(std::chrono::milliseconds(100)); }

  void StopAll(std::chrono::nanoseconds grace) {
    if (stopped) return;
    stopped = true;
#ifdef ZUMIK_EPP_HAVE_EXTPROC
    if (extproc) extproc->Shutdown();
#endif
#ifdef ZUMIK_EPP_HAVE_KUBE
    if (pool) pool->Stop();
    if (model_config) model_config->Stop();
#endif
    {
      // The workers drain in parallel: one grace period in all, not one per worker.
      std::vector<std::thread> stoppers;
      for (auto& w : workers) {
        if (w.gateway) stoppers.emplace_back([&w, grace] { w.gateway->Stop(grace); });
      }
      for (auto& t : stoppers) t.join();
    }
    if (metrics_server) metrics_server->Stop(std::chrono::milliseconds(100));
    if (scraper) scraper->Stop();
    if (dns) dns->Stop();
    work.reset();
    io->stop();
    if (thread.joinable()) thread.join();
    for (auto& w : workers) {
      w.work.reset();
      w.io->stop();
      if (w.thread.joinable()) w.thread.join();
    }
    for (auto& w : workers) {
      w.gateway.reset();
      w.io.reset();
    }
    metrics_server.reset();
#ifdef ZUMIK_EPP_HAVE_KUBE
    pool.reset();
    model_config.reset();
    kube_client.reset();
#endif
    scraper.reset();
    dns.reset();
    io.reset();
  }
};

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Errorf(absl::StatusCode::kNotFound, "cannot read endpoints file '{}'", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

asio::awaitable<void> ServeMetrics(EppMetrics* metrics, http::ResponseWriter& writer) {
  std::string text = metrics->registry().Expose();
  http::IgnoreClientGone(co_await writer.Respond(200, text, metrics::kContentType));
}

asio::awaitable<void> ServeOk(http::ResponseWriter& writer) {
  std::string_view body = "ok";
  std::string_view type = "text/plain";
  http::IgnoreClientGone(co_await writer.Respond(200, body, type));
}

absl::Status AddDiscovery(EppService::Impl& impl) {
  const EppServiceOptions& o = impl.options;
  int sources = (!o.endpoints.empty() || !o.endpoints_file.empty() ? 1 : 0) +
                (!o.dns.empty() ? 1 : 0) + (!o.pool_name.empty() ? 1 : 0);
  if (sources == 0) {
    return absl::InvalidArgumentError(
        "no endpoints: give --endpoints, --endpoints-file, --dns or --pool-name");
  }
  if (sources > 1) {
    return absl::InvalidArgumentError(
        "give only one of --endpoints/--endpoints-file, --dns and --pool-name");
  }
  if (!o.endpoints.empty() || !o.endpoints_file.empty()) {
    std::string text;
    for (const auto& entry : o.endpoints) text += entry + ",";
    if (!o.endpoints_file.empty()) {
      ASSIGN_OR_RETURN(std::string file, ReadFile(o.endpoints_file));
      text += file;
    }
    ASSIGN_OR_RETURN(auto specs, ParseEndpointList(text));
    if (specs.empty()) return absl::InvalidArgumentError("the endpoint list is empty");
    impl.datastore.SetEndpoints(std::move(specs));
    return absl::OkStatus();
  }
  if (!o.dns.empty()) {
    DnsDiscoveryOptions dns;
    ASSIGN_OR_RETURN(dns.target, ParseDnsTarget(o.dns));
    dns.interval = o.dns_interval;
    impl.dns = std::make_unique<DnsDiscovery>(*impl.io, impl.datastore, dns);
    impl.dns->Start();
    return absl::OkStatus();
  }
#ifdef ZUMIK_EPP_HAVE_KUBE
  ASSIGN_OR_RETURN(kube::Config config, kube::ResolveConfig(o.kubeconfig));
  impl.kube_client = std::make_unique<kube::Client>(impl.io->get_executor(), std::move(config));
  kube::PoolDiscoveryOptions pool;
  pool.namespace_name = o.pool_namespace;
  pool.pool_name = o.pool_name;
  pool.pool_group = o.pool_group;
  Datastore* datastore = &impl.datastore;
  impl.pool = std::make_unique<kube::PoolDiscovery>(
      impl.io->get_executor(), *impl.kube_client, pool,
      [datastore](const std::vector<kube::PoolEndpoint>& endpoints) {
        std::vector<EndpointSpec> specs;
        for (const auto& e : endpoints) {
          EndpointSpec spec;
          spec.address = e.HostPort();
          spec.name = e.pod_name;
          for (const auto& [key, value] : e.labels) spec.labels.emplace_back(key, value);
          specs.push_back(std::move(spec));
        }
        datastore->SetEndpoints(std::move(specs));
      });
  impl.pool->Start();
  // The pool's InferenceObjectives (priorities) and InferenceModelRewrites.
  kube::ModelConfigWatchOptions watch;
  watch.namespace_name = o.pool_namespace;
  Pipeline* pipeline = impl.pipeline.get();
  impl.model_config = std::make_unique<kube::ModelConfigWatch>(
      impl.io->get_executor(), *impl.kube_client, watch,
      [pipeline, pool_name = o.pool_name](const kube::ModelConfigObjects& objects) {
        static auto logger = Logger("epp");
        std::vector<std::string> problems;
        auto rules = std::make_shared<const ModelRules>(
            ModelRules::FromObjects(objects.objectives, objects.rewrites, pool_name, &problems));
        for (const std::string& problem : problems) logger->warn("{}", problem);
        logger->info("pool {}: {} InferenceObjectives, {} model rewrite rules", pool_name,
                     rules->objective_count(), rules->rule_count());
        pipeline->SetClusterRules(std::move(rules));
      });
  impl.model_config->Start();
  return absl::OkStatus();
#else
  return absl::UnimplementedError(
      "--pool-name: Kubernetes discovery is not built into this binary (src/kube missing)");
#endif
}

// The first worker listens and hands each connection it accepts to the worker with the fewest
// (SO_REUSEPORT's hash would put 3 of 4 clients on one core as often as not).
absl::Status StartGatewayWorkers(EppService::Impl& impl) {
  const size_t count = static_cast<size_t>(std::max(1, impl.options.threads));
  GatewayOptions gateway = impl.options.gateway;
  gateway.host = impl.options.host;
  gateway.port = static_cast<uint16_t>(impl.options.listen_http);
  gateway.single_threaded = true;
  impl.workers.resize(count);
  std::vector<Gateway*> gateways;
  for (GatewayWorker& w : impl.workers) {
    w.work.emplace(w.io->get_executor());
    w.gateway = std::make_unique<Gateway>(*w.io, *impl.pipeline, gateway);
    gateways.push_back(w.gateway.get());
  }
  if (count > 1) gateways.front()->SpreadConnectionsOver(gateways);
  for (GatewayWorker& w : impl.workers) {
    RETURN_IF_ERROR(&w == &impl.workers.front() ? w.gateway->Start()
                                                : w.gateway->StartWithoutListener());
    w.thread = std::thread([io = w.io.get()] { io->run(); });
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<EppService>> EppService::Start(EppServiceOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  Impl& s = *impl;
  s.work.emplace(s.io->get_executor());
  ASSIGN_OR_RETURN(s.metrics, EppMetrics::Create(s.options.pool_label));
  PipelineOptions& pipeline_options = s.options.pipeline;
  if (pipeline_options.unresponsive_after > Duration::zero()) {
    // Metrics a scrape or two old are not a sign of a hung server.
    pipeline_options.unresponsive_after =
        std::max(pipeline_options.unresponsive_after,
                 2 * s.options.scraper.interval + s.options.scraper.timeout);
  }
  ASSIGN_OR_RETURN(auto pipeline, Pipeline::Create(pipeline_options, s.datastore, s.metrics.get()));
  s.pipeline = std::move(pipeline);
  RETURN_IF_ERROR(AddDiscovery(s));
  s.thread = std::thread([io = s.io.get()] { io->run(); });
  s.scraper = std::make_unique<Scraper>(*s.io, s.datastore, s.options.scraper, s.metrics.get());
  s.scraper->Start();

  if (s.options.metrics_port >= 0) {
    http::ServerOptions server_options;
    server_options.host = s.options.host;
    server_options.port = static_cast<uint16_t>(s.options.metrics_port);
    server_options.name = "epp-metrics";
    http::Router router;
    EppMetrics* metrics = s.metrics.get();
    router.Get("/metrics", [metrics](http::Request&, http::ResponseWriter& writer) {
      return ServeMetrics(metrics, writer);
    });
    router.Get("/health",
               [](http::Request&, http::ResponseWriter& writer) { return ServeOk(writer); });
    s.metrics_server =
        std::make_unique<http::Server>(*s.io, std::move(server_options), std::move(router));
    RETURN_IF_ERROR(s.metrics_server->Start());
  }
  if (s.options.listen_http >= 0) RETURN_IF_ERROR(StartGatewayWorkers(s));
  if (s.options.listen_grpc >= 0) {
#ifdef ZUMIK_EPP_HAVE_EXTPROC
    extproc::ExtProcOptions grpc;
    grpc.host = s.options.host;
    grpc.port = s.options.listen_grpc;
    grpc.tls.enabled = s.options.grpc_tls;
    grpc.tls.cert_file = s.options.grpc_cert_file;
    grpc.tls.key_file = s.options.grpc_key_file;
    grpc.health_port = s.options.grpc_health_port;
    ASSIGN_OR_RETURN(s.extproc, extproc::StartExtProcServer(grpc, s.pipeline));
#else
    return absl::UnimplementedError(
        "--listen-grpc: the ext_proc server is not built into this binary");
#endif
  }
  return std::unique_ptr<EppService>(new EppService(std::move(impl)));
}

EppService::EppService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

EppService::~EppService() = default;

int EppService::http_port() const {
  return impl_->workers.empty() ? -1 : impl_->workers.front().gateway->port();
}

int EppService::grpc_port() const {
#ifdef ZUMIK_EPP_HAVE_EXTPROC
  return impl_->extproc ? impl_->extproc->port() : -1;
#else
  return -1;
#endif
}

int EppService::grpc_health_port() const {
#ifdef ZUMIK_EPP_HAVE_EXTPROC
  return impl_->extproc ? impl_->extproc->health_port() : -1;
#else
  return -1;
#endif
}

int EppService::metrics_port() const {
  return impl_->metrics_server ? impl_->metrics_server->port() : -1;
}

Pipeline& EppService::pipeline() { return *impl_->pipeline; }

Datastore& EppService::datastore() { return impl_->datastore; }

void EppService::Stop(std::chrono::nanoseconds grace) { impl_->StopAll(grace); }

}  // namespace zumik::epp

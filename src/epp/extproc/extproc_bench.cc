// ext_proc benchmarks (issue 5 performance targets):
//  - BM_HandlerExchange4KB: the message handler alone (one full request/response exchange).
//  - BM_GrpcExchange4KB: whole Envoy-like streams over loopback gRPC against a server in a
//    forked child process, so the server's own CPU per request is measured (cpu_us_per_req;
//    req/s per core = 1e6 / cpu_us_per_req). --server_threads=N sets the server's
//    ExtProcOptions::worker_threads (default 1, as in production).
//  - BM_GrpcLatencyAt2000Rps: added latency (p50/p99 µs) of the request phase — headers + body
//    in, headers + body replies out — at a paced 2,000 req/s (latency from the intended start,
//    so queueing is not hidden).
//  - BM_Pipeline400KB (when the EPP pipeline is built in): a ~400 KB chat body through the
//    handler with the real pipeline: parse + admission + pick + chunked echo.
#include <benchmark/benchmark.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "epp/extproc/envoy_harness.h"
#include "epp/extproc/server.h"
#include "epp/extproc/stream_processor.h"

#ifdef ZUMIK_EXTPROC_HAVE_PIPELINE
#include "epp/datastore.h"
#include "epp/extproc/pipeline_backend.h"
#include "epp/pipeline.h"
#endif

namespace zumik::epp::extproc {
namespace {

// A pipeline that answers at once: isolates the transport's cost.
class NullBackend final : public Backend {
 public:
  AdmitResult Admit(std::string_view, const HeaderList&, std::string_view,
                    std::span<const std::string>) override {
    return BackendAdmission{{"10.0.0.1:8000", "10.0.0.2:8000"}, ctx_, {}, {}, std::nullopt};
  }
  void OnResponseHeaders(void*, int, std::string_view) override {}
  void OnResponseBody(void*, std::string_view, bool) override {}
  void OnDone(void*) override {}
  const std::string& profile_header() const override { return profile_; }
  size_t max_body_bytes() const override { return 64 << 20; }

 private:
  std::shared_ptr<void> ctx_ = std::make_shared<int>(0);
  std::string profile_ = "byoc_epp";
};

std::string ChatBody(size_t bytes) {
  std::string head =
      R"({"model":"meta-llama/Llama-3.1-8B-Instruct","messages":[{"role":"user","content":")";
  std::string tail = R"("}],"stream":true,"max_tokens":64})";
  std::string filler;
  const std::string words = "the quick brown fox jumps over the lazy dog ";
  while (head.size() + filler.size() + tail.size() < bytes) filler += words;
  filler.resize(bytes > head.size() + tail.size() ? bytes - head.size() - tail.size() : 0);
  return head + filler + tail;
}

int g_server_port = 0;
int g_server_threads = 1;  // --server_threads=N (ExtProcOptions::worker_threads)
pid_t g_server_pid = -1;

double ServerCpuSeconds() {
  std::ifstream stat(fmt::format("/proc/{}/stat", g_server_pid));
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  // Fields after the ")" of the command name: state is field 3; utime 14, stime 15.
  size_t close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

void BM_HandlerExchange4KB(benchmark::State& state) {
  NullBackend backend;
  std::string body = ChatBody(4096);
  auto headers = harness::RequestHeaders("POST", "/v1/chat/completions",
                                         {{"content-type", "application/json"}}, false);
  auto request_body = harness::RequestBody(body, true);
  auto response_headers = harness::ResponseHeaders(200, "application/json", false);
  auto response_body = harness::ResponseBody(R"({"usage":{"prompt_tokens":1000}})", true);
  std::vector<ext_proc_pb::ProcessingResponse> out;
  for (auto _ : state) {
    StreamProcessor processor(backend);
    out.clear();
    (void)processor.Handle(headers, out);
    (void)processor.Handle(request_body, out);
    (void)processor.Handle(response_headers, out);
    (void)processor.Handle(response_body, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HandlerExchange4KB);

// One full Envoy-like exchange on a fresh stream.
bool Exchange(harness::EnvoyClient& client, const harness::RequestSpec& spec) {
  auto stream = client.Open();
  auto request = harness::DriveRequest(*stream, spec);
  if (!request.headers_reply.has_value()) return false;
  auto response = harness::DriveResponse(*stream, 200, "application/json",
                                         {R"({"usage":{"prompt_tokens":1000}})"});
  stream->CloseSend();
  while (stream->Receive().has_value()) {
  }
  return stream->Finish().ok() && response.body_replies.size() == 1;
}

std::atomic<double> g_cpu_start{0};
std::atomic<int64_t> g_failures{0};

void BM_GrpcExchange4KB(benchmark::State& state) {
  harness::EnvoyClient client(fmt::format("127.0.0.1:{}", g_server_port), false);
  harness::RequestSpec spec;
  spec.path = "/v1/chat/completions";
  spec.body = ChatBody(4096);
  Exchange(client, spec);  // connect
  if (state.thread_index() == 0) g_cpu_start = ServerCpuSeconds();
  for (auto _ : state) {
    if (!Exchange(client, spec)) g_failures++;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    double cpu = ServerCpuSeconds() - g_cpu_start.load();
    // Approximate: thread 0 reads the CPU when it finishes; the other threads finish together.
    state.counters["server_cpu_us_per_req"] =
        benchmark::Counter(cpu * 1e6 / static_cast<double>(state.iterations() * state.threads()));
    state.counters["failures"] = static_cast<double>(g_failures.load());
  }
}
BENCHMARK(BM_GrpcExchange4KB)->Threads(1)->Threads(4)->Threads(16)->UseRealTime();

void BM_GrpcLatencyAt2000Rps(benchmark::State& state) {
  constexpr int kThreads = 4;
  constexpr double kRate = 2000;
  const int requests = static_cast<int>(state.range(0));
  for (auto _ : state) {
    std::vector<std::vector<double>> latencies(kThreads);
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    auto start = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        harness::EnvoyClient client(fmt::format("127.0.0.1:{}", g_server_port), false);
        harness::RequestSpec spec;
        spec.body = ChatBody(4096);
        Exchange(client, spec);  // connect
        for (int i = t; i < requests; i += kThreads) {
          auto intended = start + std::chrono::nanoseconds(static_cast<int64_t>(i * 1e9 / kRate));
          std::this_thread::sleep_until(intended);
          auto stream = client.Open();
          auto request = harness::DriveRequest(*stream, spec);
          auto done = std::chrono::steady_clock::now();
          if (!request.headers_reply.has_value()) g_failures++;
          latencies[t].push_back(
              std::chrono::duration<double, std::micro>(done - intended).count());
          stream->Cancel();
        }
      });
    }
    for (auto& thread : threads) thread.join();
    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto quantile = [&](double q) {
      return all.empty() ? 0.0
                         : all[std::min(all.size() - 1,
                                        static_cast<size_t>(q * static_cast<double>(all.size())))];
    };
    state.counters["p50_us"] = quantile(0.50);
    state.counters["p99_us"] = quantile(0.99);
    state.counters["max_us"] = all.empty() ? 0.0 : all.back();
    state.counters["requests"] = static_cast<double>(all.size());
    state.counters["failures"] = static_cast<double>(g_failures.load());
  }
}
BENCHMARK(BM_GrpcLatencyAt2000Rps)
    ->Arg(10000)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

#ifdef ZUMIK_EXTPROC_HAVE_PIPELINE
void BM_Pipeline400KB(benchmark::State& state) {
  Datastore datastore;
  std::vector<EndpointSpec> specs;
  for (int i = 0; i < 8; ++i) {
    EndpointSpec spec;
    spec.address = fmt::format("10.0.0.{}:8000", i + 1);
    specs.push_back(spec);
  }
  datastore.SetEndpoints(specs);
  PipelineOptions options;
  auto pipeline = Pipeline::Create(options, datastore);
  if (!pipeline.ok()) {
    state.SkipWithError(std::string(pipeline.status().message()).c_str());
    return;
  }
  std::shared_ptr<Pipeline> shared = std::move(*pipeline);
  PipelineBackend backend(shared);
  std::string body = ChatBody(size_t{400} * 1024);
  auto headers = harness::RequestHeaders("POST", "/v1/chat/completions", {}, false);
  std::vector<ext_proc_pb::ProcessingRequest> chunks;
  for (size_t offset = 0; offset < body.size(); offset += 65536) {
    chunks.push_back(harness::RequestBody(std::string_view(body).substr(offset, 65536),
                                          offset + 65536 >= body.size()));
  }
  std::vector<ext_proc_pb::ProcessingResponse> out;
  int64_t failures = 0;
  for (auto _ : state) {
    StreamProcessor processor(backend);
    out.clear();
    (void)processor.Handle(headers, out);
    for (const auto& chunk : chunks) (void)processor.Handle(chunk, out);
    if (out.empty() || !out[0].has_request_headers()) failures++;
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["failures"] = static_cast<double>(failures);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(body.size()));
}
BENCHMARK(BM_Pipeline400KB)->Unit(benchmark::kMicrosecond);
#endif

// The server child: serves the NullBackend until the parent exits.
[[noreturn]] void ServeChild(int port_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  ExtProcOptions options;
  options.host = "127.0.0.1";
  options.port = 0;
  options.worker_threads = g_server_threads;
  auto server = StartExtProcServer(options, std::make_shared<NullBackend>());
  int port = server.ok() ? (*server)->port() : -1;
  if (write(port_fd, &port, sizeof(port)) != sizeof(port)) _exit(1);
  close(port_fd);
  while (true) pause();
}

}  // namespace
}  // namespace zumik::epp::extproc

int main(int argc, char** argv) {
  using namespace zumik::epp::extproc;
  // Our own flag, removed before Google Benchmark sees the arguments.
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.starts_with("--server_threads=")) {
      g_server_threads = std::atoi(argv[i] + std::string_view("--server_threads=").size());
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  int fds[2];
  if (pipe(fds) != 0) return 1;
  // Fork before anything touches gRPC in this process.
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    ServeChild(fds[1]);
  }
  close(fds[1]);
  if (read(fds[0], &g_server_port, sizeof(g_server_port)) != sizeof(g_server_port) ||
      g_server_port <= 0) {
    std::fprintf(stderr, "ext_proc server child failed to start\n");
    return 1;
  }
  g_server_pid = pid;
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  return 0;
}

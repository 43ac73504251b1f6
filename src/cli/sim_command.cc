// `zumik sim`: serve N simulated vLLM replicas over HTTP until SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>

#include "cli/commands.h"
#include "cli/signals.h"
#include "core/http/url.h"
#include "core/status.h"
#include "sim/profile.h"
#include "sim/server/sim_server.h"

namespace zumik::cli {

void AddSimCommand(CLI::App& app) {
  struct Flags {
    int replicas = 1;
    int port = 8000;
    std::string host = "127.0.0.1";
    std::string profile = std::string(sim::kDefaultProfile);
    std::vector<std::string> sets;
    uint64_t seed = 1;
    int threads = 2;
    bool lmcache = false;
    bool responses_store = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "sim", "Serve N simulated vLLM replicas (OpenAI API + vLLM metrics) on ports P..P+N-1");
  cmd->add_option("--replicas", flags->replicas, "Number of replicas")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--port", flags->port, "Port of replica 0; replica i listens on port+i")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", flags->host, "Address to listen on")->capture_default_str();
  std::string profiles_help = "Replica profile, built-in name or profile YAML file: ";
  for (const auto& name : sim::ProfileNames()) profiles_help += name + " ";
  cmd->add_option("--profile", flags->profile, profiles_help)->capture_default_str();
  cmd->add_option("--set", flags->sets,
                  "Override a profile constant, e.g. --set c_lin=25us --set max_num_seqs=256");
  cmd->add_flag("--lmcache", flags->lmcache, "Enable the simulated LMCache CPU KV tier");
  cmd->add_flag("--responses-store", flags->responses_store,
                "Keep store:true Responses API responses per replica (the last 10000 each) for "
                "previous_response_id, GET /v1/responses/{id} and /cancel, as vLLM does with "
                "VLLM_ENABLE_RESPONSES_API_STORE=1 (off: `store` is ignored, as in vLLM)");
  cmd->add_option("--seed", flags->seed, "Seed of generated text and stop lengths")
      ->capture_default_str();
  cmd->add_option("--threads", flags->threads, "I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));

  cmd->callback([flags] {
    std::vector<std::string> sets = flags->sets;
    if (flags->lmcache) sets.push_back("lmcache.enabled=true");
    auto profile = sim::ResolveProfile(flags->profile, sets);
    if (!profile.ok()) {
      std::fprintf(stderr, "zumik sim: %s\n", std::string(MessageOf(profile.status())).c_str());
      ExitCode() = 2;
      return;
    }
    sim::SimServerOptions options;
    options.replicas = flags->replicas;
    options.host = flags->host;
    options.port = static_cast<uint16_t>(flags->port);
    options.profile = *profile;
    options.seed = flags->seed;
    options.threads = flags->threads;
    options.responses_store = flags->responses_store;
    BlockTerminationSignals();
    sim::SimServer server(options);
    if (absl::Status status = server.Start(); !status.ok()) {
      std::fprintf(stderr, "zumik sim: %s\n", std::string(MessageOf(status)).c_str());
      ExitCode() = 1;
      return;
    }
    std::printf("zumik sim: %d x %s serving model \"%s\"\n", flags->replicas, profile->name.c_str(),
                profile->served_model_name.c_str());
    for (const auto& replica : server.replicas()) {
      std::printf(
          "  %s  http://%s  (/v1/completions, /v1/chat/completions, /v1/responses, /metrics)\n",
          replica->name().c_str(), http::HostPort(flags->host, replica->port()).c_str());
    }
    std::printf(
        "try: curl -s http://%s/v1/completions -H 'Content-Type: application/json' "
        "-d '{\"model\":\"%s\",\"prompt\":\"Hello\",\"max_tokens\":16}'\n",
        http::HostPort(flags->host, server.replicas().front()->port()).c_str(),
        profile->served_model_name.c_str());
    std::printf("Ctrl-C stops.\n");
    std::fflush(stdout);
    const int signal = WaitForTerminationSignal();
    std::printf("zumik sim: signal %d, shutting down\n", signal);
    server.Stop(std::chrono::seconds(5));
  });
}

}  // namespace zumik::cli

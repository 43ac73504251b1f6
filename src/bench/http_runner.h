// The HTTP runner: a workload's stages against an OpenAI-compatible endpoint in real time,
// streaming (SSE) so TTFT and inter-token latency come from chunk arrival times. One
// io_context thread drives every stream with Asio coroutines over a keep-alive pool, which
// is what lets thousands of concurrent streams run on two cores.
#pragma once

#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "bench/workload.h"
#include "core/clock.h"

namespace zumik::bench {

struct HttpOptions {
  std::string target;  // "http://HOST:PORT"
  std::string model;   // overrides the workload's; empty: the target's first /v1/models id
  // Per request when the stage sets no timeout.
  Duration request_timeout = std::chrono::minutes(30);
  size_t max_connections = 8192;  // idle keep-alive connections kept
  ProgressFn progress;
};

// The request body for a prompt (completions or chat, streaming with usage); exposed for tests.
// Chat: `prompt`'s first `system_len` bytes are the system message; `message_ends` (see
// PromptData::message_ends) split the rest into user, assistant, user, ... messages (empty:
// one user message). Completions send the whole text as the prompt.
std::string RequestBody(const Workload& workload, const std::string& model,
                        const std::string& prompt, int system_len, int max_tokens,
                        std::span<const size_t> message_ends = {});

absl::StatusOr<Report> RunHttp(const Workload& workload, const HttpOptions& options);

}  // namespace zumik::bench

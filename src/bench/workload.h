// Benchmark workloads (docs/specs/workloads.md): the YAML file format — request kind and its
// length distributions, arrival process and stage ladder, SLO — parsed with file:line errors.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/rng.h"

namespace zumik::bench {

// A length in tokens: a fixed number or a distribution, clamped to [min, max].
struct LengthDist {
  enum class Kind { kFixed, kNormal, kUniform, kLogNormal };
  Kind kind = Kind::kFixed;
  double mean = 0;
  double std = 0;
  double min = 0;
  double max = 0;  // 0: no upper bound (fixed, normal)

  static LengthDist Fixed(double value);
  // Never below 1 (or min when larger).
  int Sample(Rng& rng) const;
  double Mean() const;
};

enum class WorkloadKind { kSharedPrefix, kMultiTurn, kLongDocQa, kRandom, kTrace };
std::string_view KindName(WorkloadKind kind);

// num_groups system prompts, each with prompts_per_group questions; request i sends corpus
// prompt i mod N of the shuffled corpus when cycling (inference-perf), else a random one.
struct SharedPrefixSpec {
  int num_groups = 1;
  int prompts_per_group = 1;
  LengthDist system_prompt_len = LengthDist::Fixed(1000);
  LengthDist question_len = LengthDist::Fixed(100);
  LengthDist output_len = LengthDist::Fixed(100);
  bool cycle = true;
};

// Conversations: num_groups system prompts, conversations_per_group conversations each; a turn's
// prompt is the system prompt, every earlier question and answer, and the new question.
struct MultiTurnSpec {
  int num_groups = 1;
  int conversations_per_group = 1;
  LengthDist system_prompt_len = LengthDist::Fixed(1000);
  LengthDist question_len = LengthDist::Fixed(100);
  LengthDist output_len = LengthDist::Fixed(100);
  LengthDist turns = LengthDist::Fixed(0);  // per conversation; 0: unbounded
};

// num_documents documents; each request asks a question about one, picked at random
// (repeat_mode random) or in order (tile).
struct LongDocQaSpec {
  int num_documents = 8;
  LengthDist document_len = LengthDist::Fixed(20000);
  LengthDist question_len = LengthDist::Fixed(100);
  LengthDist output_len = LengthDist::Fixed(100);
  bool random_order = true;
};

struct RandomSpec {
  LengthDist input_len = LengthDist::Fixed(1000);
  LengthDist output_len = LengthDist::Fixed(128);
};

// One JSONL record: {"t": s, "input_len" or "prompt", "output_len", "session", "hash_ids"}.
struct TraceRecord {
  double t = 0;
  int input_len = 0;
  std::string prompt;  // replaces input_len when set
  int output_len = 1;
  std::string session;
  std::vector<int64_t> hash_ids;  // 512-token blocks (Mooncake): equal ids, equal text
};

struct TraceSpec {
  std::string path;  // as written; resolved against the workload file's folder
  int hash_block_tokens = 512;
  std::vector<TraceRecord> records;  // loaded, sorted by t
};

enum class Arrival { kPoisson, kConstant, kGamma, kConcurrency };
std::string_view ArrivalName(Arrival arrival);

// Limits a workload file is checked against when it loads: open-loop arrivals are drawn up
// front (memory grows with rate x duration), and a run's results are kept per request.
inline constexpr int64_t kMaxWorkloadRequests = 2'000'000;
inline constexpr int kMaxConcurrency = 100'000;
inline constexpr Duration kMaxStageDuration = std::chrono::hours(24);

struct Stage {
  double rate = 1;  // requests/s, or concurrent clients for `concurrency`
  Duration duration = std::chrono::seconds(30);
  bool warmup = false;
  Duration timeout{0};   // after the stage's issuing ends; 0: wait for every request
  Duration interval{0};  // pause after the stage
};

struct LoadSpec {
  Arrival arrival = Arrival::kPoisson;
  double cv = 1;  // gamma: coefficient of variation of inter-arrival gaps (1 = Poisson)
  std::vector<Stage> stages;
};

struct Workload {
  std::string name;
  WorkloadKind kind = WorkloadKind::kRandom;
  uint64_t seed = 1;
  std::string api = "completions";  // completions | chat
  bool stream = true;
  std::string model;  // HTTP mode; empty: the target's first /v1/models entry
  SharedPrefixSpec shared_prefix;
  MultiTurnSpec multi_turn;
  LongDocQaSpec long_doc_qa;
  RandomSpec random;
  TraceSpec trace;
  LoadSpec load;
  double slo_ttft_p90_ms = 2000;
  std::string source;  // file it came from
};

absl::StatusOr<Workload> ParseWorkload(std::string_view yaml, const std::string& source);
// Reads the file; a trace's path is resolved against the file's folder and loaded.
absl::StatusOr<Workload> LoadWorkload(const std::string& path);
// Parses trace JSONL ("source:line" in errors); records sorted by t.
absl::StatusOr<std::vector<TraceRecord>> ParseTrace(std::string_view jsonl,
                                                    const std::string& source);

}  // namespace zumik::bench

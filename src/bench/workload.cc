// Workload YAML parsing: every field through FieldReader so a typo or a bad value names the
// file, line and key.
#include "bench/workload.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/status.h"

namespace zumik::bench {
namespace {

using absl::Status;

LengthDist::Kind DistKind(std::string_view name, bool* ok) {
  *ok = true;
  if (name == "normal") return LengthDist::Kind::kNormal;
  if (name == "uniform") return LengthDist::Kind::kUniform;
  if (name == "lognormal") return LengthDist::Kind::kLogNormal;
  if (name == "fixed") return LengthDist::Kind::kFixed;
  *ok = false;
  return LengthDist::Kind::kFixed;
}

// A length: a number, or {dist: normal|uniform|lognormal|fixed, mean, std, min, max}.
Status ReadLength(FieldReader& parent, std::string_view key, LengthDist* out) {
  YAML::Node node = parent.Child(key);
  if (!node.IsDefined() || node.IsNull()) return absl::OkStatus();
  if (node.IsScalar()) {
    double value = 0;
    try {
      value = node.as<double>();
    } catch (const YAML::Exception&) {
      return parent.Error(key, fmt::format("expected a length (a number of tokens or a "
                                           "{{dist: ...}} map), got '{}'",
                                           node.Scalar()));
    }
    if (value < 0) return parent.Error(key, "a length cannot be negative");
    *out = LengthDist::Fixed(value);
    return absl::OkStatus();
  }
  FieldReader reader(node, parent.source(), parent.PathOf(key));
  RETURN_IF_ERROR(reader.CheckIsMap());
  std::string dist = "fixed";
  LengthDist d;
  RETURN_IF_ERROR(reader.Read("dist", &dist));
  RETURN_IF_ERROR(reader.Read("mean", &d.mean));
  RETURN_IF_ERROR(reader.Read("std", &d.std));
  RETURN_IF_ERROR(reader.Read("min", &d.min));
  RETURN_IF_ERROR(reader.Read("max", &d.max));
  double value = -1;
  RETURN_IF_ERROR(reader.Read("value", &value));
  bool ok = false;
  d.kind = DistKind(dist, &ok);
  if (!ok) return reader.Error("dist", "expected normal, uniform, lognormal or fixed");
  if (value >= 0) d.mean = value;
  if (d.kind == LengthDist::Kind::kUniform) {
    if (d.max <= 0 || d.max < d.min) return reader.Error("max", "uniform needs 0 <= min <= max");
  } else if (d.mean <= 0) {
    return reader.Error("mean", "must be > 0");
  }
  if (d.max > 0 && d.max < d.min) return reader.Error("max", "must be >= min");
  if (d.std < 0 || d.min < 0) return reader.Error(d.std < 0 ? "std" : "min", "cannot be negative");
  RETURN_IF_ERROR(reader.Finish());
  *out = d;
  return absl::OkStatus();
}

Status ReadPositive(FieldReader& reader, std::string_view key, int* out) {
  RETURN_IF_ERROR(reader.Read(key, out));
  if (*out < 1) return reader.Error(key, "must be >= 1");
  return absl::OkStatus();
}

Status ReadSharedPrefix(FieldReader& reader, SharedPrefixSpec* s) {
  RETURN_IF_ERROR(reader.CheckIsMap());
  RETURN_IF_ERROR(ReadPositive(reader, "num_groups", &s->num_groups));
  RETURN_IF_ERROR(ReadPositive(reader, "prompts_per_group", &s->prompts_per_group));
  RETURN_IF_ERROR(ReadLength(reader, "system_prompt_len", &s->system_prompt_len));
  RETURN_IF_ERROR(ReadLength(reader, "question_len", &s->question_len));
  RETURN_IF_ERROR(ReadLength(reader, "output_len", &s->output_len));
  RETURN_IF_ERROR(reader.Read("cycle", &s->cycle));
  return reader.Finish();
}

Status ReadMultiTurn(FieldReader& reader, MultiTurnSpec* s) {
  RETURN_IF_ERROR(reader.CheckIsMap());
  RETURN_IF_ERROR(ReadPositive(reader, "num_groups", &s->num_groups));
  RETURN_IF_ERROR(ReadPositive(reader, "conversations_per_group", &s->conversations_per_group));
  RETURN_IF_ERROR(ReadLength(reader, "system_prompt_len", &s->system_prompt_len));
  RETURN_IF_ERROR(ReadLength(reader, "question_len", &s->question_len));
  RETURN_IF_ERROR(ReadLength(reader, "output_len", &s->output_len));
  RETURN_IF_ERROR(ReadLength(reader, "turns", &s->turns));
  return reader.Finish();
}

Status ReadLongDoc(FieldReader& reader, LongDocQaSpec* s) {
  RETURN_IF_ERROR(reader.CheckIsMap());
  RETURN_IF_ERROR(ReadPositive(reader, "num_documents", &s->num_documents));
  RETURN_IF_ERROR(ReadLength(reader, "document_len", &s->document_len));
  RETURN_IF_ERROR(ReadLength(reader, "question_len", &s->question_len));
  RETURN_IF_ERROR(ReadLength(reader, "output_len", &s->output_len));
  std::string mode = "random";
  RETURN_IF_ERROR(reader.Read("repeat_mode", &mode));
  if (mode != "random" && mode != "tile") {
    return reader.Error("repeat_mode", "expected random or tile");
  }
  s->random_order = mode == "random";
  return reader.Finish();
}

Status ReadRandom(FieldReader& reader, RandomSpec* s) {
  RETURN_IF_ERROR(reader.CheckIsMap());
  RETURN_IF_ERROR(ReadLength(reader, "input_len", &s->input_len));
  RETURN_IF_ERROR(ReadLength(reader, "output_len", &s->output_len));
  return reader.Finish();
}

Status ReadTrace(FieldReader& reader, TraceSpec* s) {
  RETURN_IF_ERROR(reader.CheckIsMap());
  RETURN_IF_ERROR(reader.Read("path", &s->path));
  if (s->path.empty()) return reader.Error("path", "a trace needs the path of its JSONL file");
  RETURN_IF_ERROR(ReadPositive(reader, "hash_block_tokens", &s->hash_block_tokens));
  return reader.Finish();
}

Status ReadStage(const YAML::Node& node, const std::string& source, const std::string& path,
                 Stage* stage) {
  FieldReader reader(node, source, path);
  RETURN_IF_ERROR(reader.CheckIsMap());
  if (!reader.Has("rate")) return reader.Error("rate", "every stage needs a rate");
  RETURN_IF_ERROR(reader.Read("rate", &stage->rate));
  if (!(stage->rate > 0) || !std::isfinite(stage->rate)) {
    return reader.Error("rate", "must be a finite number > 0");
  }
  RETURN_IF_ERROR(reader.Read("duration", &stage->duration));
  if (stage->duration <= Duration{0}) return reader.Error("duration", "must be > 0");
  if (stage->duration > kMaxStageDuration) {
    return reader.Error("duration", "a stage runs at most 24h");
  }
  RETURN_IF_ERROR(reader.Read("warmup", &stage->warmup));
  RETURN_IF_ERROR(reader.Read("timeout", &stage->timeout));
  RETURN_IF_ERROR(reader.Read("interval", &stage->interval));
  return reader.Finish();
}

Status ReadLoad(FieldReader& reader, LoadSpec* load) {
  RETURN_IF_ERROR(reader.CheckIsMap());
  std::string arrival = "poisson";
  RETURN_IF_ERROR(reader.Read("arrival", &arrival));
  if (arrival == "poisson") {
    load->arrival = Arrival::kPoisson;
  } else if (arrival == "constant") {
    load->arrival = Arrival::kConstant;
  } else if (arrival == "gamma") {
    load->arrival = Arrival::kGamma;
  } else if (arrival == "concurrency") {
    load->arrival = Arrival::kConcurrency;
  } else {
    return reader.Error("arrival", "expected poisson, constant, gamma or concurrency");
  }
  RETURN_IF_ERROR(reader.Read("cv", &load->cv));
  if (!(load->cv > 0)) return reader.Error("cv", "must be > 0");
  if (reader.Has("cv") && load->arrival != Arrival::kGamma) {
    return reader.Error("cv", "only `arrival: gamma` takes a cv");
  }
  YAML::Node stages = reader.Child("stages");
  if (stages.IsDefined() && !stages.IsNull()) {
    if (!stages.IsSequence()) return reader.Error("stages", "expected a list of stages");
    double total_requests = 0;
    for (size_t i = 0; i < stages.size(); ++i) {
      Stage stage;
      RETURN_IF_ERROR(ReadStage(stages[i], reader.source(),
                                fmt::format("{}[{}]", reader.PathOf("stages"), i), &stage));
      if (load->arrival == Arrival::kConcurrency && stage.rate != std::floor(stage.rate)) {
        return absl::InvalidArgumentError(
            fmt::format("{}: key '{}[{}].rate': a concurrency must be a whole number",
                        Where(stages[i], reader.source()), reader.PathOf("stages"), i));
      }
      if (load->arrival == Arrival::kConcurrency && stage.rate > kMaxConcurrency) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: key '{}[{}].rate': at most {} concurrent clients",
            Where(stages[i], reader.source()), reader.PathOf("stages"), i, kMaxConcurrency));
      }
      // Open-loop arrivals are drawn up front, one entry per request.
      if (load->arrival != Arrival::kConcurrency) {
        const double requests = stage.rate * ToSeconds(stage.duration);
        total_requests += requests;
        if (total_requests > static_cast<double>(kMaxWorkloadRequests)) {
          return absl::InvalidArgumentError(fmt::format(
              "{}: key '{}[{}]': rate x duration makes {:.3g} requests, {:.3g} with the stages "
              "before; a workload sends at most {}: lower the rate or the duration",
              Where(stages[i], reader.source()), reader.PathOf("stages"), i, requests,
              total_requests, kMaxWorkloadRequests));
        }
      }
      load->stages.push_back(stage);
    }
  }
  return reader.Finish();
}

Status ReadWorkload(const YAML::Node& root, const std::string& source, Workload* w) {
  FieldReader reader(root, source);
  RETURN_IF_ERROR(reader.CheckIsMap());
  RETURN_IF_ERROR(reader.Read("name", &w->name));
  std::string kind;
  RETURN_IF_ERROR(reader.Read("kind", &kind));
  int64_t seed = 1;
  RETURN_IF_ERROR(reader.Read("seed", &seed));
  if (seed < 0) return reader.Error("seed", "must be >= 0");
  w->seed = static_cast<uint64_t>(seed);
  RETURN_IF_ERROR(reader.Read("api", &w->api));
  if (w->api != "completions" && w->api != "chat") {
    return reader.Error("api", "expected completions or chat");
  }
  RETURN_IF_ERROR(reader.Read("stream", &w->stream));
  if (!w->stream) {
    return reader.Error("stream",
                        "zumik bench streams every request (TTFT and ITL are measured on the "
                        "stream): set it to true or leave it out");
  }
  RETURN_IF_ERROR(reader.Read("model", &w->model));

  struct Section {
    std::string_view key;
    WorkloadKind kind;
  };
  static constexpr Section kSections[] = {{"shared_prefix", WorkloadKind::kSharedPrefix},
                                          {"multi_turn", WorkloadKind::kMultiTurn},
                                          {"long_doc_qa", WorkloadKind::kLongDocQa},
                                          {"random", WorkloadKind::kRandom},
                                          {"trace", WorkloadKind::kTrace}};
  bool known = false;
  for (const Section& s : kSections) {
    if (kind == KindName(s.kind)) {
      w->kind = s.kind;
      known = true;
    }
  }
  if (!known) {
    return reader.Error("kind", kind.empty() ? "missing: shared-prefix, multi-turn, long-doc-qa, "
                                               "random or trace"
                                             : "expected shared-prefix, multi-turn, long-doc-qa, "
                                               "random or trace");
  }
  for (const Section& s : kSections) {
    if (!reader.Has(s.key)) continue;
    if (s.kind != w->kind) {
      return reader.Error(s.key, fmt::format("does not belong to kind {}", kind));
    }
    FieldReader sub(reader.Child(s.key), source, std::string(s.key));
    switch (s.kind) {
      case WorkloadKind::kSharedPrefix:
        RETURN_IF_ERROR(ReadSharedPrefix(sub, &w->shared_prefix));
        break;
      case WorkloadKind::kMultiTurn:
        RETURN_IF_ERROR(ReadMultiTurn(sub, &w->multi_turn));
        break;
      case WorkloadKind::kLongDocQa:
        RETURN_IF_ERROR(ReadLongDoc(sub, &w->long_doc_qa));
        break;
      case WorkloadKind::kRandom:
        RETURN_IF_ERROR(ReadRandom(sub, &w->random));
        break;
      case WorkloadKind::kTrace:
        RETURN_IF_ERROR(ReadTrace(sub, &w->trace));
        break;
    }
  }
  if (w->kind == WorkloadKind::kTrace && w->trace.path.empty()) {
    return reader.Error("trace", "kind trace needs trace: {path: FILE.jsonl}");
  }
  FieldReader load(reader.Child("load"), source, "load");
  RETURN_IF_ERROR(ReadLoad(load, &w->load));
  if (w->load.stages.empty() && w->kind != WorkloadKind::kTrace) {
    return reader.Error("load", "needs at least one stage (load.stages)");
  }
  FieldReader slo(reader.Child("slo"), source, "slo");
  RETURN_IF_ERROR(slo.CheckIsMap());
  RETURN_IF_ERROR(slo.Read("ttft_p90_ms", &w->slo_ttft_p90_ms));
  if (!(w->slo_ttft_p90_ms > 0)) return slo.Error("ttft_p90_ms", "must be > 0");
  RETURN_IF_ERROR(slo.Finish());
  RETURN_IF_ERROR(reader.Finish());
  if (w->name.empty()) w->name = "workload";
  return absl::OkStatus();
}

}  // namespace

LengthDist LengthDist::Fixed(double value) {
  LengthDist d;
  d.kind = Kind::kFixed;
  d.mean = value;
  return d;
}

int LengthDist::Sample(Rng& rng) const {
  double v = mean;
  switch (kind) {
    case Kind::kFixed:
      break;
    case Kind::kNormal:
      v = rng.Normal(mean, std);
      break;
    case Kind::kUniform:
      v = rng.Uniform(min, max);
      break;
    case Kind::kLogNormal: {
      // sigma from std when given (std/mean = sqrt(exp(s^2) - 1)), else a moderate spread.
      const double cv = std > 0 ? std / mean : 0.8;
      v = rng.LogNormal(mean, std::sqrt(std::log1p(cv * cv)));
      break;
    }
  }
  v = std::max(v, min);
  if (max > 0) v = std::min(v, max);
  return std::max(1, static_cast<int>(std::lround(v)));
}

double LengthDist::Mean() const {
  if (kind == Kind::kUniform) return (min + max) / 2;
  return mean;
}

std::string_view KindName(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kSharedPrefix:
      return "shared-prefix";
    case WorkloadKind::kMultiTurn:
      return "multi-turn";
    case WorkloadKind::kLongDocQa:
      return "long-doc-qa";
    case WorkloadKind::kRandom:
      return "random";
    case WorkloadKind::kTrace:
      return "trace";
  }
  return "?";
}

std::string_view ArrivalName(Arrival arrival) {
  switch (arrival) {
    case Arrival::kPoisson:
      return "poisson";
    case Arrival::kConstant:
      return "constant";
    case Arrival::kGamma:
      return "gamma";
    case Arrival::kConcurrency:
      return "concurrency";
  }
  return "?";
}

absl::StatusOr<Workload> ParseWorkload(std::string_view yaml, const std::string& source) {
  ASSIGN_OR_RETURN(YamlDoc doc, ParseYaml(yaml, source));
  Workload w;
  w.source = source;
  try {
    RETURN_IF_ERROR(ReadWorkload(doc.root, source, &w));
  } catch (const YAML::Exception& e) {
    return Errorf(absl::StatusCode::kInvalidArgument, "{}: {}", source, e.what());
  }
  return w;
}

absl::StatusOr<std::vector<TraceRecord>> ParseTrace(std::string_view jsonl,
                                                    const std::string& source) {
  std::vector<TraceRecord> out;
  size_t line_no = 0;
  while (!jsonl.empty()) {
    const size_t nl = jsonl.find('\n');
    std::string_view line = jsonl.substr(0, nl);
    jsonl = nl == std::string_view::npos ? std::string_view() : jsonl.substr(nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    auto bad = [&](std::string_view why) {
      return Errorf(absl::StatusCode::kInvalidArgument, "{}:{}: {}", source, line_no, why);
    };
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) return bad("expected one JSON object per line");
    const boost::json::object& o = v.get_object();
    TraceRecord r;
    auto number = [&](std::string_view key, double* x) -> bool {
      const boost::json::value* f = o.if_contains(key);
      if (!f) return true;
      if (f->is_int64()) {
        *x = static_cast<double>(f->get_int64());
      } else if (f->is_uint64()) {
        *x = static_cast<double>(f->get_uint64());
      } else if (f->is_double()) {
        *x = f->get_double();
      } else {
        return false;
      }
      return true;
    };
    double t = -1, input = 0, output = 1;
    if (!o.contains("t") || !number("t", &t) || t < 0) return bad("'t' must be seconds >= 0");
    // Whole token counts a replica could take (a larger double would not fit an int).
    constexpr double kMaxLen = 10'000'000;
    if (!number("input_len", &input) || input < 0 || input > kMaxLen) {
      return bad("'input_len' must be a number of tokens from 0 to 10000000");
    }
    if (!number("output_len", &output) || output < 1 || output > kMaxLen) {
      return bad("'output_len' must be a number of tokens from 1 to 10000000");
    }
    r.t = t;
    r.input_len = static_cast<int>(input);
    r.output_len = static_cast<int>(output);
    if (const auto* p = o.if_contains("prompt")) {
      if (!p->is_string()) return bad("'prompt' must be a string");
      r.prompt = std::string(p->get_string());
    }
    if (const auto* s = o.if_contains("session")) {
      if (s->is_string()) {
        r.session = std::string(s->get_string());
      } else if (s->is_int64()) {
        r.session = std::to_string(s->get_int64());
      } else {
        return bad("'session' must be a string or an integer");
      }
    }
    if (const auto* h = o.if_contains("hash_ids")) {
      if (!h->is_array()) return bad("'hash_ids' must be a list of integers");
      for (const auto& id : h->get_array()) {
        if (!id.is_int64()) return bad("'hash_ids' must be a list of integers");
        r.hash_ids.push_back(id.get_int64());
      }
    }
    if (r.prompt.empty() && r.input_len == 0 && r.hash_ids.empty()) {
      return bad("needs 'input_len', 'prompt' or 'hash_ids'");
    }
    out.push_back(std::move(r));
  }
  if (out.empty()) return Errorf(absl::StatusCode::kInvalidArgument, "{}: empty trace", source);
  std::stable_sort(out.begin(), out.end(),
                   [](const TraceRecord& a, const TraceRecord& b) { return a.t < b.t; });
  return out;
}

absl::StatusOr<Workload> LoadWorkload(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "workload '{}' is a directory: give a workload file (bench/workloads/*.yaml)",
                  path);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Errorf(absl::StatusCode::kNotFound,
                  "cannot read workload file '{}': {} (the standard workloads are "
                  "bench/workloads/NAME.yaml)",
                  path, std::strerror(errno));
  }
  std::stringstream text;
  text << in.rdbuf();
  ASSIGN_OR_RETURN(Workload w, ParseWorkload(text.str(), path));
  if (w.kind == WorkloadKind::kTrace) {
    std::filesystem::path trace(w.trace.path);
    if (trace.is_relative()) trace = std::filesystem::path(path).parent_path() / trace;
    std::ifstream tin(trace, std::ios::binary);
    if (!tin) {
      return Errorf(absl::StatusCode::kNotFound, "{}: cannot read trace file '{}'", path,
                    trace.string());
    }
    std::stringstream ttext;
    ttext << tin.rdbuf();
    ASSIGN_OR_RETURN(w.trace.records, ParseTrace(ttext.str(), trace.string()));
  }
  return w;
}

}  // namespace zumik::bench

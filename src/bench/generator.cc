// Request generation: prompt text built from seeded pieces (system prompts, questions,
// documents, answers), so equal pieces are equal bytes and therefore equal simulator tokens.
#include "bench/generator.h"

#include <algorithm>
#include <cstring>
#include <span>
#include <string_view>

#include "sim/sequence.h"
#include "sim/tokenizer.h"

namespace zumik::bench {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Piece kinds, mixed into seeds so pieces never collide.
enum : uint64_t {
  kSystem = 1,
  kQuestion,
  kDocument,
  kRandomInput,
  kAnswer,
  kTraceBlock,
  kTraceTail,
  kShuffle,
  kLengths,
  kConversation,
  kEngineSeed,
};

}  // namespace

void AppendText(std::string& out, int tokens, uint64_t seed) {
  // Lowercase words of 4 letters; a space every few words keeps it readable in logs.
  const size_t start = out.size();
  out.resize(start + static_cast<size_t>(tokens) * 4);
  char* p = out.data() + start;
  uint64_t state = Mix(seed ^ 0x5bd1e995ULL);
  for (int i = 0; i < tokens; ++i) {
    state = Mix(state + 0x9e3779b97f4a7c15ULL);
    for (int k = 0; k < 4; ++k) p[k] = static_cast<char>('a' + ((state >> (8 * k)) % 26));
    if (i % 4 == 3) p[3] = ' ';
    p += 4;
  }
}

Generator::Generator(const Workload& workload, GeneratorOptions options)
    : workload_(workload), options_(options), rng_(Mix(workload.seed) ^ kLengths) {
  Rng shuffle(Seed(kShuffle, 0));
  switch (workload_.kind) {
    case WorkloadKind::kSharedPrefix: {
      const SharedPrefixSpec& s = workload_.shared_prefix;
      Rng lengths(Seed(kLengths, 1));
      for (int g = 0; g < s.num_groups; ++g) {
        const std::string& system = SystemPrompt(g, s.system_prompt_len);
        for (int q = 0; q < s.prompts_per_group; ++q) {
          std::string text = system;
          AppendText(text, s.question_len.Sample(lengths),
                     Seed(kQuestion, static_cast<uint64_t>(g), static_cast<uint64_t>(q)));
          corpus_.push_back(Finish(std::move(text), static_cast<int>(system.size())));
          corpus_group_.push_back(g);
        }
      }
      // inference-perf shuffles the corpus once with the seed, then sends it cyclically.
      for (size_t i = corpus_.size() - 1; i > 0; --i) {
        const auto j = static_cast<size_t>(shuffle.UniformInt(0, static_cast<int64_t>(i)));
        std::swap(corpus_[i], corpus_[j]);
        std::swap(corpus_group_[i], corpus_group_[j]);
      }
      system_prompts_.clear();
      break;
    }
    case WorkloadKind::kLongDocQa: {
      const LongDocQaSpec& s = workload_.long_doc_qa;
      Rng lengths(Seed(kLengths, 2));
      for (int d = 0; d < s.num_documents; ++d) {
        std::string doc;
        AppendText(doc, s.document_len.Sample(lengths), Seed(kDocument, static_cast<uint64_t>(d)));
        documents_.push_back(std::move(doc));
      }
      break;
    }
    case WorkloadKind::kMultiTurn: {
      const MultiTurnSpec& s = workload_.multi_turn;
      const int n = s.num_groups * s.conversations_per_group;
      slots_.resize(static_cast<size_t>(n));
      slot_order_.resize(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) {
        slots_[static_cast<size_t>(i)].group = i / s.conversations_per_group;
        slot_order_[static_cast<size_t>(i)] = i;
      }
      for (size_t i = slot_order_.size() - 1; i > 0; --i) {
        std::swap(slot_order_[i],
                  slot_order_[static_cast<size_t>(shuffle.UniformInt(0, static_cast<int64_t>(i)))]);
      }
      break;
    }
    case WorkloadKind::kRandom:
    case WorkloadKind::kTrace:
      break;
  }
}

uint64_t Generator::Seed(uint64_t kind, uint64_t a, uint64_t b) const {
  return Mix(Mix(Mix(workload_.seed + kind * 0x9e3779b97f4a7c15ULL) ^ a) + b);
}

std::shared_ptr<const PromptData> Generator::Finish(std::string text, int system_len) {
  auto data = std::make_shared<PromptData>();
  data->text = std::move(text);
  data->system_len = system_len;
  data->prompt_tokens = sim::TokenCount(data->text);
  if (options_.make_tokens) data->tokens = sim::MakePromptFromText(data->text);
  return data;
}

std::shared_ptr<const PromptData> Generator::Finish(std::string text, int system_len,
                                                    std::vector<sim::TokenId> engine_tokens) {
  auto data = std::make_shared<PromptData>();
  data->text = std::move(text);
  data->system_len = system_len;
  data->prompt_tokens = static_cast<int>(engine_tokens.size());
  data->tokens = sim::MakePrompt(std::move(engine_tokens));
  return data;
}

void Generator::AppendEngineAnswer(Conversation& c, GenRequest& r) {
  const sim::Prompt& prompt = *r.prompt->tokens;
  r.engine_seed = Seed(kEngineSeed, static_cast<uint64_t>(c.id), static_cast<uint64_t>(c.turn));
  sim::RequestSpec spec;
  spec.prompt = r.prompt->tokens;
  spec.seed = *r.engine_seed;
  const uint64_t stream = sim::OutputStream(spec);
  c.history_ids = prompt.tokens;
  for (int i = 0; i < r.output_len; ++i) c.history_ids.push_back(sim::OutputTokenId(stream, i));
  // The blocks the answer completes, chained on from the prompt's last full block.
  const int bs = prompt.block_size;
  uint64_t parent = prompt.block_hashes.empty() ? sim::kRootBlockHash : prompt.block_hashes.back();
  const std::span<const sim::TokenId> ids(c.history_ids);
  for (size_t at = prompt.block_hashes.size() * static_cast<size_t>(bs); at + bs <= ids.size();
       at += static_cast<size_t>(bs)) {
    parent = sim::HashBlock(parent, ids.subspan(at, static_cast<size_t>(bs)));
    r.answer_block_hashes.push_back(parent);
  }
}

const std::string& Generator::SystemPrompt(int group, const LengthDist& len) {
  auto it = system_prompts_.find(group);
  if (it != system_prompts_.end()) return it->second;
  Rng lengths(Seed(kLengths, 3, static_cast<uint64_t>(group)));
  std::string text;
  AppendText(text, len.Sample(lengths), Seed(kSystem, static_cast<uint64_t>(group)));
  return system_prompts_.emplace(group, std::move(text)).first->second;
}

GenRequest Generator::SharedPrefix() {
  const SharedPrefixSpec& s = workload_.shared_prefix;
  const size_t n = corpus_.size();
  const size_t i =
      s.cycle ? index_ % n : static_cast<size_t>(rng_.UniformInt(0, static_cast<int64_t>(n) - 1));
  GenRequest r;
  r.prompt = corpus_[i];
  r.group = corpus_group_[i];
  r.output_len = s.output_len.Sample(rng_);
  return r;
}

GenRequest Generator::LongDoc() {
  const LongDocQaSpec& s = workload_.long_doc_qa;
  const size_t d = s.random_order ? static_cast<size_t>(rng_.UniformInt(0, s.num_documents - 1))
                                  : index_ % documents_.size();
  std::string text = documents_[d];
  AppendText(text, s.question_len.Sample(rng_), Seed(kQuestion, d, index_));
  GenRequest r;
  r.prompt = Finish(std::move(text), static_cast<int>(documents_[d].size()));
  r.group = static_cast<int64_t>(d);
  r.output_len = s.output_len.Sample(rng_);
  return r;
}

GenRequest Generator::RandomRequest() {
  const RandomSpec& s = workload_.random;
  std::string text;
  AppendText(text, s.input_len.Sample(rng_), Seed(kRandomInput, index_));
  GenRequest r;
  r.prompt = Finish(std::move(text), 0);
  r.output_len = s.output_len.Sample(rng_);
  return r;
}

void Generator::StartConversation(int slot) {
  const MultiTurnSpec& s = workload_.multi_turn;
  Conversation& c = slots_[static_cast<size_t>(slot)];
  c.id = next_conversation_++;
  Rng lengths(Seed(kConversation, static_cast<uint64_t>(c.id)));
  c.turns =
      s.turns.mean > 0 || s.turns.kind == LengthDist::Kind::kUniform ? s.turns.Sample(lengths) : 0;
  c.turn = 0;
  c.history = SystemPrompt(c.group, s.system_prompt_len);
  c.system_len = static_cast<int>(c.history.size());
  c.history_tokens = sim::TokenCount(c.history);
  if (options_.make_tokens) sim::TokenizeInto(c.history, &c.history_ids);
  c.message_ends.clear();
  c.awaiting = false;
}

void Generator::FitFirstTurn(Conversation& c, int* question, int output) const {
  const int limit = options_.max_context_tokens;
  if (c.history_tokens + *question + output <= limit) return;
  // A system prompt longer than the model's context (codegen's 3k-100k tokens on a 40,960-token
  // model) would be rejected, and a closed-loop client would resend at the same virtual instant
  // forever. Keep its longest prefix that fits the first turn (a prefix, so the group still
  // shares it), and end the conversation there: a second turn could not fit.
  *question = std::min(*question, std::max(1, limit - 2));
  const int keep = std::max(0, limit - *question - std::min(output, limit - *question - 1));
  c.history.resize(std::min(c.history.size(), static_cast<size_t>(keep) * sim::kBytesPerToken));
  c.system_len = static_cast<int>(c.history.size());
  c.history_tokens = sim::TokenCount(c.history);
  if (options_.make_tokens) sim::TokenizeInto(c.history, &c.history_ids);
  c.turns = 1;
}

GenRequest Generator::Turn(int slot, bool* last) {
  const MultiTurnSpec& s = workload_.multi_turn;
  Conversation& c = slots_[static_cast<size_t>(slot)];
  if (c.id < 0 || (c.turns > 0 && c.turn >= c.turns)) StartConversation(slot);
  Rng lengths(Seed(kConversation, static_cast<uint64_t>(c.id), static_cast<uint64_t>(c.turn) + 1));
  int question = s.question_len.Sample(lengths);
  int output = s.output_len.Sample(lengths);
  if (c.history_tokens + question + output > options_.max_context_tokens && c.turn > 0) {
    StartConversation(slot);  // the context is full: the user starts over
  }
  if (c.turn == 0) FitFirstTurn(c, &question, output);
  const int room = options_.max_context_tokens - c.history_tokens - question;
  output = std::max(1, std::min(output, room));
  std::string text = c.history;
  AppendText(text, question,
             Seed(kQuestion, static_cast<uint64_t>(c.id), static_cast<uint64_t>(c.turn)));
  GenRequest r;
  r.group = c.id;
  r.session = c.id;
  r.output_len = output;
  if (options_.real_answers) {
    // The answer joins the history when it arrives (Answer); until then the slot waits.
    c.history = text;
    c.history_tokens += question;
    c.message_ends.push_back(text.size());
    c.awaiting = true;
    r.slot = slot;
    auto data = std::make_shared<PromptData>();
    data->text = std::move(text);
    data->system_len = c.system_len;
    data->prompt_tokens = sim::TokenCount(data->text);
    data->message_ends = c.message_ends;
    r.prompt = std::move(data);
    ++c.turn;
    *last = c.turns > 0 && c.turn >= c.turns;
    return r;
  }
  std::vector<sim::TokenId> engine_tokens;
  if (options_.make_tokens) {
    // Every piece is whole 4-byte tokens, so the question's tokens follow the history's.
    // (AppendEngineAnswer then rebuilds c.history_ids from this prompt.)
    engine_tokens = std::move(c.history_ids);
    const std::vector<sim::TokenId> asked =
        sim::Tokenize(std::string_view(text).substr(c.history.size()));
    engine_tokens.insert(engine_tokens.end(), asked.begin(), asked.end());
  }
  // The next turn's history: this prompt plus the answer. Its text is stand-in bytes of the
  // answer's length; the engine's tokens are the ones it generated (AppendEngineAnswer).
  c.history = text;
  r.answer_text_seed = Seed(kAnswer, static_cast<uint64_t>(c.id), static_cast<uint64_t>(c.turn));
  AppendText(c.history, output, *r.answer_text_seed);
  c.history_tokens += question + output;
  if (options_.make_tokens) {
    r.prompt = Finish(std::move(text), c.system_len, std::move(engine_tokens));
    AppendEngineAnswer(c, r);
  } else {
    r.prompt = Finish(std::move(text), c.system_len);
  }
  ++c.turn;
  *last = c.turns > 0 && c.turn >= c.turns;
  return r;
}

GenRequest Generator::Next() {
  GenRequest r;
  switch (workload_.kind) {
    case WorkloadKind::kSharedPrefix:
      r = SharedPrefix();
      break;
    case WorkloadKind::kLongDocQa:
      r = LongDoc();
      break;
    case WorkloadKind::kRandom:
    case WorkloadKind::kTrace:  // a trace's arrivals come from TraceRequest; this is a fallback
      r = RandomRequest();
      break;
    case WorkloadKind::kMultiTurn: {
      bool last = false;
      r = Turn(slot_order_[index_ % slot_order_.size()], &last);
      break;
    }
  }
  ++index_;
  return r;
}

std::optional<GenRequest> Generator::NextReady() {
  if (!options_.real_answers || workload_.kind != WorkloadKind::kMultiTurn) return Next();
  const int slot = NextFreeSlot(-1);
  if (slot < 0) return std::nullopt;
  bool last = false;
  return Turn(slot, &last);
}

int Generator::NextFreeSlot(int client) {
  const size_t n = slot_order_.size();
  for (size_t k = 0; k < n; ++k) {
    const int slot = slot_order_[(index_ + k) % n];
    const Conversation& c = slots_[static_cast<size_t>(slot)];
    if (!c.awaiting && (c.owner < 0 || c.owner == client)) {
      index_ += k + 1;
      return slot;
    }
  }
  return -1;
}

GenRequest Generator::NextForClient(int client) {
  if (workload_.kind != WorkloadKind::kMultiTurn) return Next();
  if (static_cast<size_t>(client) >= client_slot_.size()) {
    client_slot_.resize(static_cast<size_t>(client) + 1, -1);
  }
  int& slot = client_slot_[static_cast<size_t>(client)];
  if (slot < 0 && options_.real_answers) {
    slot = NextFreeSlot(client);
    // More clients than conversations (the HTTP runner refuses such a workload): share one.
    if (slot < 0) slot = slot_order_[index_++ % slot_order_.size()];
    slots_[static_cast<size_t>(slot)].owner = client;
  } else if (slot < 0) {
    slot = slot_order_[index_ % slot_order_.size()];
    ++index_;
  }
  bool last = false;
  GenRequest r = Turn(slot, &last);
  if (last) {
    slots_[static_cast<size_t>(slot)].owner = -1;
    slot = -1;
  }
  return r;
}

Generator::Conversation* Generator::ConversationOf(const GenRequest& r) {
  if (!options_.real_answers || r.slot < 0 || static_cast<size_t>(r.slot) >= slots_.size()) {
    return nullptr;
  }
  Conversation& c = slots_[static_cast<size_t>(r.slot)];
  // A conversation ended meanwhile (a failed turn) has another id, or none.
  return c.id == r.session && c.awaiting ? &c : nullptr;
}

void Generator::Answer(const GenRequest& r, std::string_view text, int tokens) {
  Conversation* c = ConversationOf(r);
  if (!c) return;
  c->history.append(text);
  c->message_ends.push_back(c->history.size());
  c->history_tokens += std::max(tokens, 0);
  c->awaiting = false;
}

void Generator::EndConversation(const GenRequest& r) {
  Conversation* c = ConversationOf(r);
  if (!c) return;
  c->id = -1;  // Turn starts a new conversation here
  c->awaiting = false;
}

std::optional<std::pair<double, GenRequest>> Generator::TraceRequest(size_t i) {
  const TraceSpec& t = workload_.trace;
  if (i >= t.records.size()) return std::nullopt;
  const TraceRecord& rec = t.records[i];
  std::string text;
  if (!rec.prompt.empty()) {
    text = rec.prompt;
  } else {
    int remaining = rec.input_len > 0 ? rec.input_len
                                      : static_cast<int>(rec.hash_ids.size()) * t.hash_block_tokens;
    for (int64_t id : rec.hash_ids) {
      if (remaining <= 0) break;
      const int n = std::min(remaining, t.hash_block_tokens);
      AppendText(text, n, Seed(kTraceBlock, static_cast<uint64_t>(id)));
      remaining -= n;
    }
    if (remaining > 0) AppendText(text, remaining, Seed(kTraceTail, i));
  }
  GenRequest r;
  r.output_len = rec.output_len;
  if (!rec.session.empty()) {
    auto [it, added] = trace_sessions_.emplace(rec.session, session_ids_);
    if (added) ++session_ids_;
    r.session = r.group = it->second;
  } else if (!rec.hash_ids.empty()) {
    r.group = rec.hash_ids.front();
  }
  r.prompt = Finish(std::move(text), 0);
  return std::make_pair(rec.t, std::move(r));
}

}  // namespace zumik::bench

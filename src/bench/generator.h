// Request generation for a workload: the prompts (text, and for the virtual fleet the
// simulator's tokens), output lengths and true prefix groups, deterministic by seed. Open-loop
// arrivals take request i of one fixed sequence; closed-loop clients keep their conversation
// and take the next one from the same sequence, so every policy sees the same requests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "bench/workload.h"
#include "core/rng.h"
#include "sim/prompt.h"

namespace zumik::bench {

// Text of `tokens` simulator tokens (4 bytes each), a pure function of `seed`.
void AppendText(std::string& out, int tokens, uint64_t seed);

struct PromptData {
  std::string text;    // the completions prompt (chat: the user turn(s), see system_len)
  int system_len = 0;  // bytes of `text` that are the system prompt (chat mode's system message)
  std::shared_ptr<const sim::Prompt> tokens;  // with GeneratorOptions::make_tokens
  int prompt_tokens = 0;
  // With GeneratorOptions::real_answers, a conversation turn: where each message after the
  // system prompt ends in `text` (user, assistant, user, ...; the last is the new question and
  // ends at text.size()), so a chat request sends them as messages. Empty: one user message.
  std::vector<size_t> message_ends;
};

struct GenRequest {
  std::shared_ptr<const PromptData> prompt;
  int output_len = 1;
  int64_t group = -1;    // the true prefix group (oracle); -1 none
  int64_t session = -1;  // conversation; -1 none
  int slot = -1;         // with GeneratorOptions::real_answers: the conversation's slot
  // Virtual fleet, multi-turn: the engine seed that makes this request generate exactly the
  // answer tokens the conversation's next turn carries, and the chained hashes of the blocks
  // those answer tokens fill (past the prompt's full blocks), for the ideal hit rate.
  std::optional<uint64_t> engine_seed;
  std::vector<uint64_t> answer_block_hashes;
  // Multi-turn: the answer as the conversation's next turn carries it after this prompt, i.e.
  // AppendText(text, output_len, *answer_text_seed) (the stand-in answer bytes a router sees).
  // The virtual runner reports it to the scheduler as the response text.
  std::optional<uint64_t> answer_text_seed;
};

struct GeneratorOptions {
  bool make_tokens = false;         // fill PromptData::tokens (the virtual fleet needs them)
  int max_context_tokens = 131072;  // a conversation ends before its prompt + output exceed it
  // HTTP mode: a conversation's next turn carries the answer the server returned, which the
  // caller hands back (Answer, or EndConversation when the turn failed), and a conversation
  // gets no new turn while it waits for one. Off: stand-in answers, fixed by the seed.
  bool real_answers = false;
};

class Generator {
 public:
  Generator(const Workload& workload, GeneratorOptions options = {});

  // The next request of the open-loop sequence.
  GenRequest Next();
  // The same, with real_answers: a multi-turn arrival skips (in the visiting order) every
  // conversation still waiting for its previous answer; nullopt when all of them are.
  std::optional<GenRequest> NextReady();
  // Closed loop: client `client`'s next request (its conversation's next turn, or the next
  // request of the shared sequence). With real_answers a client starts its next conversation
  // in a slot no other client holds and that waits for no answer (the caller makes sure that
  // there are at least as many conversations as clients).
  GenRequest NextForClient(int client);
  // With real_answers: `r`'s answer arrived, `tokens` tokens long (the server's usage, or an
  // estimate); its conversation's next turn carries `text` as the assistant's message.
  void Answer(const GenRequest& r, std::string_view text, int tokens);
  // With real_answers: `r` failed (HTTP error, timeout, cut stream). Its conversation ends, as a
  // user would give up on it; the slot's next turn starts a new conversation.
  void EndConversation(const GenRequest& r);
  // Trace replay: record i's request and arrival offset in seconds; nullopt past the end.
  std::optional<std::pair<double, GenRequest>> TraceRequest(size_t i);

  // The true prefix-sharing structure, for the oracle and the ideal hit rate.
  const Workload& workload() const { return workload_; }

 private:
  struct Conversation {
    int64_t id = -1;
    int group = 0;
    int turns = 0;  // 0: unbounded
    int turn = 0;
    std::string history;
    int history_tokens = 0;
    // With make_tokens: the history as the engine holds it. Questions and the system prompt are
    // their text's tokens; each answer is the tokens the engine generated for it, so the
    // replica that answered holds the answer in its prefix cache, as a real vLLM does. (The
    // text in `history` is what a router sees; it carries stand-in answer bytes of the same
    // length, equal for equal conversations, so byte and token prefixes still agree.)
    std::vector<sim::TokenId> history_ids;
    int system_len = 0;
    // With real_answers: message ends in `history` (PromptData::message_ends), whether the
    // last turn's answer is still to come, and the closed-loop client holding the slot.
    std::vector<size_t> message_ends;
    bool awaiting = false;
    int owner = -1;
  };

  std::shared_ptr<const PromptData> Finish(std::string text, int system_len);
  // The same, with the engine's tokens given (virtual multi-turn: history ids + the question).
  std::shared_ptr<const PromptData> Finish(std::string text, int system_len,
                                           std::vector<sim::TokenId> engine_tokens);
  // Virtual multi-turn: seeds `r` so the engine generates the answer that `c`'s next turn
  // carries, and appends those tokens to c.history_ids.
  void AppendEngineAnswer(Conversation& c, GenRequest& r);
  uint64_t Seed(uint64_t kind, uint64_t a, uint64_t b = 0) const;
  const std::string& SystemPrompt(int group, const LengthDist& len);
  GenRequest SharedPrefix();
  GenRequest LongDoc();
  GenRequest RandomRequest();
  // The next turn of slot `slot`'s conversation; *last = it was the conversation's last turn.
  GenRequest Turn(int slot, bool* last);
  void StartConversation(int slot);
  // Real answers: the slot `slot_order_[(index_ + k) % n]` for the smallest k whose conversation
  // can take a turn (waits for no answer, held by no other client than `client`); -1 if none.
  // Advances index_ past it.
  int NextFreeSlot(int client);
  Conversation* ConversationOf(const GenRequest& r);
  // Turn 0 of `c` with *question and `output` tokens: cuts what does not fit the context.
  void FitFirstTurn(Conversation& c, int* question, int output) const;

  Workload workload_;
  GeneratorOptions options_;
  Rng rng_;
  uint64_t index_ = 0;
  // shared-prefix corpus (built once, shuffled) and its groups.
  std::vector<std::shared_ptr<const PromptData>> corpus_;
  std::vector<int> corpus_group_;
  absl::flat_hash_map<int, std::string> system_prompts_;
  // long-doc-qa documents.
  std::vector<std::string> documents_;
  // multi-turn slots (num_groups x conversations_per_group), in a shuffled visiting order.
  std::vector<Conversation> slots_;
  std::vector<int> slot_order_;
  int64_t next_conversation_ = 0;
  std::vector<int> client_slot_;  // closed loop: the slot each client is talking in, or -1
  int64_t session_ids_ = 0;
  absl::flat_hash_map<std::string, int64_t> trace_sessions_;
};

}  // namespace zumik::bench

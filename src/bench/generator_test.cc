// Request generation: deterministic by seed, prompts cycle as inference-perf's, groups share
// exactly their system prompt, conversations grow turn by turn.
#include "bench/generator.h"

#include <set>

#include "gtest/gtest.h"
#include "sim/sequence.h"

namespace zumik::bench {
namespace {

Workload SharedPrefix(int groups, int per_group, bool cycle = true) {
  Workload w;
  w.kind = WorkloadKind::kSharedPrefix;
  w.shared_prefix.num_groups = groups;
  w.shared_prefix.prompts_per_group = per_group;
  w.shared_prefix.system_prompt_len = LengthDist::Fixed(64);
  w.shared_prefix.question_len = LengthDist::Fixed(16);
  w.shared_prefix.output_len = LengthDist::Fixed(10);
  w.shared_prefix.cycle = cycle;
  return w;
}

// A multi-turn workload with fixed lengths (turns 0: unbounded conversations).
Workload MultiTurn(int groups, int per_group, int system, int question, int output, int turns) {
  Workload w;
  w.kind = WorkloadKind::kMultiTurn;
  w.multi_turn.num_groups = groups;
  w.multi_turn.conversations_per_group = per_group;
  w.multi_turn.system_prompt_len = LengthDist::Fixed(system);
  w.multi_turn.question_len = LengthDist::Fixed(question);
  w.multi_turn.output_len = LengthDist::Fixed(output);
  w.multi_turn.turns = LengthDist::Fixed(turns);
  return w;
}

size_t CommonPrefix(const std::string& a, const std::string& b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) ++n;
  return n;
}

TEST(Generator, TextIsFourBytesPerTokenAndAFunctionOfTheSeed) {
  std::string a, b, c;
  AppendText(a, 100, 5);
  AppendText(b, 100, 5);
  AppendText(c, 100, 6);
  EXPECT_EQ(a.size(), 400u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::string shorter;
  AppendText(shorter, 10, 5);
  EXPECT_EQ(a.substr(0, 40), shorter);  // a shorter piece is a prefix of a longer one
}

TEST(Generator, SharedPrefixCyclesTheShuffledCorpus) {
  Generator g(SharedPrefix(3, 4));
  std::vector<GenRequest> first;
  first.reserve(12);
  for (int i = 0; i < 12; ++i) first.push_back(g.Next());
  std::set<const PromptData*> distinct;
  for (const GenRequest& r : first) distinct.insert(r.prompt.get());
  EXPECT_EQ(distinct.size(), 12u);  // one pass sends every prompt once
  for (int i = 0; i < 12; ++i) {
    const GenRequest r = g.Next();
    EXPECT_EQ(r.prompt.get(), first[static_cast<size_t>(i)].prompt.get());  // then it repeats
    EXPECT_EQ(r.group, first[static_cast<size_t>(i)].group);
  }
}

TEST(Generator, PromptsOfAGroupShareExactlyTheSystemPrompt) {
  Generator g(SharedPrefix(2, 3));
  std::vector<GenRequest> rs;
  rs.reserve(6);
  for (int i = 0; i < 6; ++i) rs.push_back(g.Next());
  for (const GenRequest& a : rs) {
    EXPECT_EQ(a.prompt->prompt_tokens, 80);
    EXPECT_EQ(a.prompt->system_len, 256);
    for (const GenRequest& b : rs) {
      if (&a == &b) continue;
      const size_t common = CommonPrefix(a.prompt->text, b.prompt->text);
      if (a.group == b.group) {
        EXPECT_GE(common, 256u);
        EXPECT_LT(common, 256u + 16);
      } else {
        EXPECT_LT(common, 16u);
      }
    }
  }
}

TEST(Generator, SameSeedSameRequests) {
  Workload w;
  w.kind = WorkloadKind::kRandom;
  w.random.input_len.kind = LengthDist::Kind::kUniform;
  w.random.input_len.min = 10;
  w.random.input_len.max = 100;
  Generator a(w), b(w);
  w.seed = 2;
  Generator c(w);
  bool differs = false;
  for (int i = 0; i < 20; ++i) {
    const GenRequest x = a.Next(), y = b.Next(), z = c.Next();
    EXPECT_EQ(x.prompt->text, y.prompt->text);
    EXPECT_EQ(x.output_len, y.output_len);
    differs |= x.prompt->text != z.prompt->text;
  }
  EXPECT_TRUE(differs);
}

TEST(Generator, ConversationTurnsExtendTheirHistory) {
  const Workload w = MultiTurn(1, 2, 32, 8, 4, 3);
  Generator g(w);
  // Closed loop: client 0's turns are one conversation, each prompt extending the last.
  const GenRequest t1 = g.NextForClient(0);
  const GenRequest t2 = g.NextForClient(0);
  const GenRequest t3 = g.NextForClient(0);
  EXPECT_EQ(t1.session, t2.session);
  EXPECT_EQ(t2.session, t3.session);
  EXPECT_EQ(t1.prompt->prompt_tokens, 40);
  EXPECT_EQ(t2.prompt->prompt_tokens, 40 + 4 + 8);
  EXPECT_EQ(t2.prompt->text.substr(0, t1.prompt->text.size()), t1.prompt->text);
  EXPECT_EQ(t3.prompt->text.substr(0, t2.prompt->text.size()), t2.prompt->text);
  // After the last turn the client starts another conversation.
  const GenRequest next = g.NextForClient(0);
  EXPECT_NE(next.session, t1.session);
  EXPECT_EQ(next.prompt->prompt_tokens, 40);
}

// The answer text a turn reports is the text its next turn carries between the two prompts
// (what a gateway would read in the response and the router indexes with indexResponses).
TEST(Generator, ATurnsAnswerTextIsWhatTheNextTurnCarriesAfterItsPrompt) {
  const Workload w = MultiTurn(1, 1, 32, 8, 20, 2);
  for (bool tokens : {false, true}) {
    GeneratorOptions options;
    options.make_tokens = tokens;
    Generator g(w, options);
    const GenRequest t1 = g.NextForClient(0);
    const GenRequest t2 = g.NextForClient(0);
    ASSERT_TRUE(t1.answer_text_seed.has_value());
    std::string answer;
    AppendText(answer, t1.output_len, *t1.answer_text_seed);
    EXPECT_EQ(t2.prompt->text.substr(0, t1.prompt->text.size() + answer.size()),
              t1.prompt->text + answer);
  }
  // Other workloads have no conversation to carry an answer.
  Generator shared(SharedPrefix(2, 2));
  EXPECT_FALSE(shared.Next().answer_text_seed.has_value());
}

// For the virtual fleet a later turn's engine tokens are the earlier prompt, then exactly the
// tokens the engine generates for that request (its engine seed), then the new question.
TEST(Generator, AVirtualTurnCarriesTheTokensTheEngineGenerated) {
  const Workload w = MultiTurn(1, 1, 32, 8, 40, 2);
  GeneratorOptions options;
  options.make_tokens = true;
  Generator g(w, options);
  const GenRequest t1 = g.NextForClient(0);
  const GenRequest t2 = g.NextForClient(0);
  ASSERT_TRUE(t1.engine_seed.has_value());
  ASSERT_TRUE(t2.engine_seed.has_value());
  EXPECT_NE(*t1.engine_seed, *t2.engine_seed);
  const std::vector<sim::TokenId>& first = t1.prompt->tokens->tokens;
  const std::vector<sim::TokenId>& second = t2.prompt->tokens->tokens;
  ASSERT_EQ(first.size(), 40u);
  ASSERT_EQ(second.size(), 40u + 40u + 8u);
  EXPECT_EQ(t2.prompt->prompt_tokens, 88);
  sim::RequestSpec spec;
  spec.prompt = t1.prompt->tokens;
  spec.seed = *t1.engine_seed;
  const uint64_t stream = sim::OutputStream(spec);
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(second[i], first[i]) << i;
  for (int i = 0; i < 40; ++i) {
    EXPECT_EQ(second[40 + static_cast<size_t>(i)], sim::OutputTokenId(stream, i)) << i;
  }
  // The answer completes blocks 2-4 (tokens 32-79); their hashes are turn 2's.
  ASSERT_EQ(t1.answer_block_hashes.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(t1.answer_block_hashes[k], t2.prompt->tokens->block_hashes[2 + k]) << k;
  }
  // The router's text still extends the previous prompt byte for byte.
  EXPECT_EQ(t2.prompt->text.substr(0, t1.prompt->text.size()), t1.prompt->text);
  // Without make_tokens nothing changes: no engine seed, no tokens.
  Generator plain(w);
  const GenRequest p1 = plain.NextForClient(0);
  EXPECT_FALSE(p1.engine_seed.has_value());
  EXPECT_EQ(p1.prompt->tokens, nullptr);
  EXPECT_EQ(p1.prompt->text, t1.prompt->text);
}

// Multi-turn with fixed lengths, generated for a model with a 1,000-token context.
Generator WithContext1000(int system, int question, int output, int turns = 0) {
  const Workload w = MultiTurn(1, 1, system, question, output, turns);
  GeneratorOptions options;
  options.max_context_tokens = 1000;
  return Generator(w, options);
}

TEST(Generator, ConversationsEndBeforeTheContextLimit) {
  Generator g = WithContext1000(100, 100, 100);
  for (int i = 0; i < 20; ++i) {
    const GenRequest r = g.Next();
    EXPECT_LE(r.prompt->prompt_tokens + r.output_len, 1000);
  }
}

TEST(Generator, ASystemPromptLongerThanTheContextIsCutToAOneTurnConversation) {
  Generator g = WithContext1000(5000, 100, 50, 4);
  const GenRequest first = g.NextForClient(0);
  EXPECT_EQ(first.prompt->prompt_tokens + first.output_len, 1000);  // the longest that fits
  EXPECT_EQ(first.output_len, 50);
  const GenRequest next = g.NextForClient(0);  // the client moves on to another conversation
  EXPECT_NE(next.session, first.session);
  EXPECT_LE(next.prompt->prompt_tokens + next.output_len, 1000);
  const size_t system = static_cast<size_t>(first.prompt->system_len);
  EXPECT_EQ(system, (1000u - 100u - 50u) * 4u);
}

// HTTP mode: a conversation's turns carry the answers the server returned.
Workload Conversations(int groups, int per_group, int turns) {
  return MultiTurn(groups, per_group, 16, 8, 20, turns);
}

GeneratorOptions RealAnswers(int max_context = 131072) {
  GeneratorOptions options;
  options.real_answers = true;
  options.max_context_tokens = max_context;
  return options;
}

TEST(Generator, ARealTurnCarriesTheReturnedAnswerThenTheNextQuestion) {
  Generator g(Conversations(1, 1, 3), RealAnswers());
  const GenRequest t1 = g.NextForClient(0);
  ASSERT_GE(t1.slot, 0);
  ASSERT_EQ(t1.prompt->message_ends, (std::vector<size_t>{t1.prompt->text.size()}));
  EXPECT_EQ(t1.prompt->system_len, 64);
  const std::string answer = "the model's own answer, any length";
  g.Answer(t1, answer, 9);
  const GenRequest t2 = g.NextForClient(0);
  EXPECT_EQ(t2.session, t1.session);
  const std::string& text = t2.prompt->text;
  EXPECT_EQ(text.substr(0, t1.prompt->text.size() + answer.size()), t1.prompt->text + answer);
  EXPECT_EQ(text.size(), t1.prompt->text.size() + answer.size() + size_t{8} * 4);  // + the question
  const size_t q1 = t1.prompt->text.size();
  EXPECT_EQ(t2.prompt->message_ends, (std::vector<size_t>{q1, q1 + answer.size(), text.size()}));
  // The stand-in generator's turn 2 has the same question bytes after different answer bytes.
  Generator standin(Conversations(1, 1, 3));
  const GenRequest s1 = standin.NextForClient(0);
  const GenRequest s2 = standin.NextForClient(0);
  EXPECT_EQ(s1.prompt->text, t1.prompt->text);
  EXPECT_EQ(s2.prompt->text.substr(s2.prompt->text.size() - 32), text.substr(text.size() - 32));
  EXPECT_TRUE(s2.prompt->message_ends.empty());
}

TEST(Generator, RealAnswerTokensCountAgainstTheContext) {
  // 16 + 8 tokens, then a reported 900-token answer: turn 2 (8 + 20 more) would pass 940.
  Generator g(Conversations(1, 1, 0), RealAnswers(940));
  const GenRequest t1 = g.NextForClient(0);
  g.Answer(t1, std::string(40, 'a'), 900);
  const GenRequest t2 = g.NextForClient(0);
  EXPECT_NE(t2.session, t1.session) << "the context is full: the conversation starts over";
  EXPECT_EQ(t2.prompt->text.size(), t1.prompt->text.size());
}

TEST(Generator, OpenLoopSkipsConversationsWaitingForAnAnswer) {
  Generator g(Conversations(1, 2, 0), RealAnswers());
  const std::optional<GenRequest> a = g.NextReady();
  const std::optional<GenRequest> b = g.NextReady();
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->slot, b->slot);
  EXPECT_NE(a->session, b->session);
  EXPECT_FALSE(g.NextReady().has_value()) << "both conversations wait for their answers";
  g.Answer(*b, "bbbb", 1);
  const std::optional<GenRequest> c = g.NextReady();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->session, b->session);  // b's second turn, after its answer
  EXPECT_EQ(c->prompt->message_ends.size(), 3u);
  EXPECT_FALSE(g.NextReady().has_value());
}

TEST(Generator, AFailedTurnEndsItsConversation) {
  Generator g(Conversations(1, 1, 0), RealAnswers());
  const GenRequest t1 = g.NextForClient(0);
  const GenRequest t2 = [&] {
    g.Answer(t1, "aaaa", 1);
    return g.NextForClient(0);
  }();
  ASSERT_EQ(t2.session, t1.session);
  g.EndConversation(t2);
  g.Answer(t2, "late", 1);  // an answer for an ended conversation is dropped
  const GenRequest t3 = g.NextForClient(0);
  EXPECT_NE(t3.session, t1.session);
  EXPECT_EQ(t3.prompt->message_ends.size(), 1u);                            // a first turn
  EXPECT_EQ(t3.prompt->text.substr(0, 64), t1.prompt->text.substr(0, 64));  // same group
}

TEST(Generator, RealClientsTalkInConversationsOfTheirOwn) {
  Generator g(Conversations(1, 3, 2), RealAnswers());
  std::set<int> slots;
  std::vector<GenRequest> firsts;
  for (int client = 0; client < 3; ++client) {
    firsts.push_back(g.NextForClient(client));
    slots.insert(firsts.back().slot);
  }
  EXPECT_EQ(slots.size(), 3u);
  // Client 0 finishes its 2-turn conversation while 1 and 2 wait: its next is slot 0's again.
  g.Answer(firsts[0], "a", 1);
  const GenRequest second = g.NextForClient(0);
  EXPECT_EQ(second.session, firsts[0].session);
  g.Answer(second, "b", 1);
  const GenRequest next = g.NextForClient(0);
  EXPECT_NE(next.session, firsts[0].session);
  EXPECT_EQ(next.slot, firsts[0].slot) << "the only conversation no other client holds";
}

TEST(Generator, TraceBlocksWithEqualIdsHaveEqualText) {
  Workload w;
  w.kind = WorkloadKind::kTrace;
  w.trace.hash_block_tokens = 4;
  TraceRecord a;
  a.t = 0;
  a.hash_ids = {7, 8};
  a.input_len = 10;
  TraceRecord b = a;
  b.t = 1;
  b.hash_ids = {7, 9};
  b.session = "s";
  w.trace.records = {a, b};
  GeneratorOptions options;
  options.make_tokens = true;
  Generator g(w, options);
  auto ra = g.TraceRequest(0), rb = g.TraceRequest(1);
  ASSERT_TRUE(ra && rb);
  EXPECT_FALSE(g.TraceRequest(2).has_value());
  EXPECT_EQ(rb->first, 1);
  EXPECT_EQ(ra->second.prompt->prompt_tokens, 10);
  EXPECT_EQ(CommonPrefix(ra->second.prompt->text, rb->second.prompt->text) / 4, 4u);
  EXPECT_EQ(rb->second.session, 0);
  ASSERT_NE(ra->second.prompt->tokens, nullptr);
  EXPECT_EQ(ra->second.prompt->tokens->size(), 10);
}

}  // namespace
}  // namespace zumik::bench

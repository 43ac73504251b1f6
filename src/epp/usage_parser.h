// Reads token usage from a model server's response as it streams through: SSE `data:` events
// (usage in the final chunk when the client asked for stream_options.include_usage, or the
// Responses API `response.completed` event) or a whole JSON body. Incremental, bounded memory.
#pragma once

#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace zumik::epp {

struct Usage {
  int64_t prompt_tokens = -1;  // -1 = unknown
  int64_t completion_tokens = -1;
  int64_t cached_tokens = -1;
};

// Whether `text` holds `"usage"`, quotes included: the cheap test an SSE event passes before it
// is parsed for usage (true for any event that has the key; a string holding those bytes only
// costs a parse).
bool HasUsageKey(std::string_view text);

class UsageParser {
 public:
  // A JSON body larger than this is not parsed for usage (the bytes still pass through).
  static constexpr size_t kMaxBufferedBytes = 4 << 20;
  // Collected response texts are all dropped (texts() empty) once together they would exceed
  // this.
  static constexpr size_t kMaxTextBytes = 4 << 20;
  // At most this many choices' texts are collected (a request's first `n` samples).
  static constexpr size_t kMaxChoices = 16;

  // Where the generated text is: the choices of completions and chat, or the Responses API's
  // output text (choice_text.h).
  enum class TextSource { kChoice, kResponses };
  // Also collect the generated text, for a scheduler that indexes responses: of choices
  // 0..choices-1 (at most kMaxChoices; the Responses API has one). Off by default: it parses
  // every SSE event, not only those that can carry usage.
  void set_collect_text(bool collect, TextSource source = TextSource::kChoice, size_t choices = 1);
  // The collected texts, by choice index (some possibly empty); none unless collecting, or
  // when they overflowed kMaxTextBytes.
  const std::vector<std::string>& texts() const { return texts_; }

  // Also read the Responses API response's `id` (a whole response's, or the one a stream's
  // `response.created` event announces).
  void set_capture_response_id(bool capture) { capture_response_id_ = capture; }
  // The id read, "" when none (or not capturing).
  const std::string& response_id() const { return response_id_; }

  void set_streaming(bool streaming) { streaming_ = streaming; }
  bool streaming() const { return streaming_; }
  void Feed(std::string_view chunk);
  // End of the body: a buffered JSON body is parsed now.
  void Finish();
  // Feed(last_chunk) then Finish(), without copying a JSON body that arrives in one piece.
  void FinishWith(std::string_view last_chunk);

  const Usage& usage() const { return usage_; }
  // SSE data events seen (streaming), excluding [DONE].
  int64_t events() const { return events_; }
  bool saw_done() const { return saw_done_; }

 private:
  void OnSseLine(std::string_view line);
  void ParseJson(std::string_view json);
  void CollectText(std::string_view json);
  // Past kMaxTextBytes the collected text is dropped (and collection stops).
  void LimitText();
  void CaptureResponseId(std::string_view json);
  void CaptureResponseId(const boost::json::value& root);

  bool streaming_ = false;
  bool overflow_ = false;
  bool finished_ = false;
  std::string buffer_;  // partial SSE line, or the JSON body so far
  Usage usage_;
  bool collect_text_ = false;
  TextSource text_source_ = TextSource::kChoice;
  bool text_overflow_ = false;
  std::vector<std::string> texts_;
  bool capture_response_id_ = false;
  std::string response_id_;
  int64_t events_ = 0;
  bool saw_done_ = false;
};

}  // namespace zumik::epp

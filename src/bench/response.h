// Reading an OpenAI-compatible response, streamed (SSE chunks) or not: the answer text (the
// next turn of a conversation carries it), the usage counts, and whether the server reported
// an error. Split from the HTTP runner so the parsing is tested without a server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "core/http/sse.h"

namespace zumik::bench {

// What one SSE data payload, or one non-streamed body, says.
struct ResponseChunk {
  bool error = false;  // not a JSON object, or an "error" member
  // choices[].text (completions), choices[].delta.content (streamed chat) or
  // choices[].message.content (chat), concatenated; empty when the chunk carries none.
  std::string text;
  int64_t prompt_tokens = -1, completion_tokens = -1, cached_tokens = -1;  // -1: absent
};

ResponseChunk ParseResponseChunk(std::string_view json);

// An SSE response body fed as it arrives (split anywhere): its chunks in order, and with
// `keep_answer` the answer text they carry, concatenated.
class StreamReader {
 public:
  explicit StreamReader(bool keep_answer) : keep_answer_(keep_answer) {}

  // Bad SSE framing (an event past the parser's limit) fails, and the stream with it.
  absl::Status Feed(std::string_view bytes) { return parser_.Feed(bytes); }
  // The next complete chunk; nullopt when none is buffered. "[DONE]" is consumed here and
  // sets done().
  std::optional<ResponseChunk> Next();

  bool done() const { return done_; }
  const std::string& answer() const { return answer_; }

 private:
  bool keep_answer_;
  bool done_ = false;
  http::SseParser parser_;
  std::string answer_;
};

}  // namespace zumik::bench

// Server-Sent Events: the wire format writer and an incremental parser. The parser takes raw
// bytes split anywhere (network reads) and yields events as soon as their blank line arrives;
// it follows the WHATWG rules (LF, CRLF or CR line ends, comments, event/id/retry fields,
// multi-line data, a leading BOM), so the load client can time each event exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace zumik::http {

struct SseEvent {
  // The `event:` field; empty means the default type ("message").
  std::string event;
  // The `data:` lines of the event joined with '\n'.
  std::string data;
  // The last event id seen on the stream (ids persist across events, as in browsers).
  std::string id;

  bool operator==(const SseEvent&) const = default;
};

// Appends one event in wire form: "event: ..\n", "id: ..\n", one "data: " line per line of
// `data` (split at LF, CRLF or CR), then the blank line.
void AppendSseEvent(std::string& out, std::string_view data, std::string_view event = {},
                    std::string_view id = {});
std::string FormatSseEvent(std::string_view data, std::string_view event = {},
                           std::string_view id = {});

class SseParser {
 public:
  static constexpr size_t kDefaultMaxEventBytes = 16 << 20;

  explicit SseParser(size_t max_event_bytes = kDefaultMaxEventBytes);

  // Consumes bytes; complete events become available from Next(). Fails with
  // kResourceExhausted once a line or an event grows past the limit (and stays failed).
  absl::Status Feed(std::string_view bytes);

  // The next complete event, in stream order.
  std::optional<SseEvent> Next();
  bool HasEvent() const { return !ready_.empty(); }

  // Comment lines seen (": ping" keep-alives).
  size_t comments() const { return comments_; }
  // The last `retry:` value, in milliseconds.
  std::optional<int64_t> retry_ms() const { return retry_ms_; }
  const std::string& last_event_id() const { return last_id_; }

 private:
  void ProcessLine(std::string_view line);
  void Dispatch();
  absl::Status CheckLimit(size_t pending);

  size_t max_event_bytes_;
  absl::Status error_;
  // A line split across Feed calls.
  std::string partial_;
  // The previous Feed ended in CR: a leading LF belongs to that line end.
  bool skip_lf_ = false;
  // Bytes of a UTF-8 BOM matched at the very start of the stream; -1 once past it.
  int bom_matched_ = 0;
  std::string data_;
  std::string event_;
  std::string last_id_;
  std::optional<int64_t> retry_ms_;
  size_t comments_ = 0;
  std::deque<SseEvent> ready_;
};

}  // namespace zumik::http

// SSE formatting and incremental parsing.
#include "core/http/sse.h"

#include <charconv>

#include "core/status.h"

namespace zumik::http {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.push_back('\n');
}

}  // namespace

void AppendSseEvent(std::string& out, std::string_view data, std::string_view event,
                    std::string_view id) {
  // Field values cannot hold line breaks: strip them from event and id.
  auto single_line = [](std::string_view value) {
    return value.substr(0, value.find_first_of("\r\n"));
  };
  if (!event.empty()) AppendField(out, "event", single_line(event));
  if (!id.empty()) AppendField(out, "id", single_line(id));
  size_t start = 0;
  while (true) {
    const size_t end = data.find_first_of("\r\n", start);
    AppendField(out, "data", data.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
    if (data[end] == '\r' && start < data.size() && data[start] == '\n') ++start;
  }
  out.push_back('\n');
}

std::string FormatSseEvent(std::string_view data, std::string_view event, std::string_view id) {
  std::string out;
  out.reserve(data.size() + 16);
  AppendSseEvent(out, data, event, id);
  return out;
}

SseParser::SseParser(size_t max_event_bytes) : max_event_bytes_(max_event_bytes) {}

absl::Status SseParser::CheckLimit(size_t pending) {
  if (pending + data_.size() > max_event_bytes_) {
    error_ = Errorf(absl::StatusCode::kResourceExhausted, "SSE event larger than {} bytes",
                    max_event_bytes_);
  }
  return error_;
}

absl::Status SseParser::Feed(std::string_view bytes) {
  if (!error_.ok()) return error_;
  // The BOM may itself arrive split; bytes that turn out not to be one are ordinary text.
  while (bom_matched_ >= 0 && !bytes.empty()) {
    if (bytes.front() == kBom[static_cast<size_t>(bom_matched_)]) {
      bytes.remove_prefix(1);
      if (++bom_matched_ == static_cast<int>(kBom.size())) bom_matched_ = -1;
    } else {
      partial_.append(kBom.substr(0, static_cast<size_t>(bom_matched_)));
      bom_matched_ = -1;
    }
  }
  if (skip_lf_ && !bytes.empty()) {
    if (bytes.front() == '\n') bytes.remove_prefix(1);
    skip_lf_ = false;
  }
  while (!bytes.empty()) {
    const size_t end = bytes.find_first_of("\r\n");
    if (end == std::string_view::npos) {
      RETURN_IF_ERROR(CheckLimit(partial_.size() + bytes.size()));
      partial_.append(bytes);
      break;
    }
    if (partial_.empty()) {
      RETURN_IF_ERROR(CheckLimit(end));
      ProcessLine(bytes.substr(0, end));
    } else {
      RETURN_IF_ERROR(CheckLimit(partial_.size() + end));
      partial_.append(bytes.substr(0, end));
      ProcessLine(partial_);
      partial_.clear();
    }
    size_t next = end + 1;
    if (bytes[end] == '\r') {
      if (next < bytes.size()) {
        if (bytes[next] == '\n') ++next;
      } else {
        skip_lf_ = true;
      }
    }
    bytes.remove_prefix(next);
  }
  return absl::OkStatus();
}

void SseParser::ProcessLine(std::string_view line) {
  if (line.empty()) {
    Dispatch();
    return;
  }
  if (line.front() == ':') {
    ++comments_;
    return;
  }
  const size_t colon = line.find(':');
  const std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    data_.append(value);
    data_.push_back('\n');
  } else if (field == "event") {
    event_.assign(value);
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_.assign(value);
  } else if (field == "retry") {
    int64_t retry = 0;
    const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), retry);
    if (ec == std::errc() && ptr == value.data() + value.size() && !value.empty() &&
        value.front() != '-') {
      retry_ms_ = retry;
    }
  }
}

void SseParser::Dispatch() {
  if (data_.empty()) {
    // No data lines: per the spec nothing is dispatched, and the event type resets.
    event_.clear();
    return;
  }
  data_.pop_back();  // the '\n' after the last data line
  ready_.push_back(SseEvent{std::move(event_), std::move(data_), last_id_});
  event_.clear();
  data_.clear();
}

std::optional<SseEvent> SseParser::Next() {
  if (ready_.empty()) return std::nullopt;
  SseEvent event = std::move(ready_.front());
  ready_.pop_front();
  return event;
}

}  // namespace zumik::http

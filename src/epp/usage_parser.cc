// Incremental usage extraction from SSE and JSON response bodies (see usage_parser.h).
#include "epp/usage_parser.h"

#include <boost/json.hpp>

namespace zumik::epp {
namespace json = boost::json;

namespace {

int64_t IntField(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  if (v == nullptr) return -1;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
  return -1;
}

// Fills `usage` from an OpenAI `usage` object (chat/completions or Responses API names).
void ReadUsage(const json::object& u, Usage& usage) {
  int64_t prompt = IntField(u, "prompt_tokens");
  if (prompt < 0) prompt = IntField(u, "input_tokens");
  int64_t completion = IntField(u, "completion_tokens");
  if (completion < 0) completion = IntField(u, "output_tokens");
  if (prompt >= 0) usage.prompt_tokens = prompt;
  if (completion >= 0) usage.completion_tokens = completion;
  for (std::string_view details : {"prompt_tokens_details", "input_tokens_details"}) {
    const json::value* d = u.if_contains(details);
    if (d != nullptr && d->is_object()) {
      int64_t cached = IntField(d->get_object(), "cached_tokens");
      if (cached >= 0) usage.cached_tokens = cached;
    }
  }
}

}  // namespace

void UsageParser::Feed(std::string_view chunk) {
  if (finished_ || chunk.empty()) return;
  if (!streaming_) {
    if (overflow_) return;
    if (buffer_.size() + chunk.size() > kMaxBufferedBytes) {
      overflow_ = true;
      buffer_.clear();
      buffer_.shrink_to_fit();
      return;
    }
    buffer_.append(chunk);
    return;
  }
  // SSE: handle complete lines; keep the partial tail (bounded: a line longer than the cap is
  // dropped, it cannot be a usage event we could afford to parse anyway).
  size_t start = 0;
  while (true) {
    size_t nl = chunk.find('\n', start);
    if (nl == std::string_view::npos) break;
    std::string_view piece = chunk.substr(start, nl - start);
    if (!buffer_.empty()) {
      if (!overflow_) {
        buffer_.append(piece);
        OnSseLine(buffer_);
      }
      buffer_.clear();
      overflow_ = false;
    } else if (!overflow_) {
      OnSseLine(piece);
    } else {
      overflow_ = false;
    }
    start = nl + 1;
  }
  std::string_view tail = chunk.substr(start);
  if (!tail.empty() && !overflow_) {
    if (buffer_.size() + tail.size() > kMaxBufferedBytes) {
      overflow_ = true;
      buffer_.clear();
    } else {
      buffer_.append(tail);
    }
  }
}

void UsageParser::OnSseLine(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.substr(0, 5) != "data:") return;
  line.remove_prefix(5);
  if (!line.empty() && line.front() == ' ') line.remove_prefix(1);
  if (line == "[DONE]") {
    saw_done_ = true;
    return;
  }
  ++events_;
  // Only events that can carry usage are worth a parse.
  if (line.find("\"usage\"") == std::string_view::npos) return;
  ParseJson(line);
}

void UsageParser::ParseJson(std::string_view text) {
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return;
  const json::object* object = &root.get_object();
  // Responses API: {"type":"response.completed","response":{"usage":{...}}}.
  if (const json::value* response = object->if_contains("response");
      response != nullptr && response->is_object()) {
    object = &response->get_object();
  }
  const json::value* usage = object->if_contains("usage");
  if (usage != nullptr && usage->is_object()) ReadUsage(usage->get_object(), usage_);
}

void UsageParser::Finish() {
  if (finished_) return;
  if (streaming_) {
    if (!buffer_.empty() && !overflow_) OnSseLine(buffer_);
  } else if (!overflow_ && !buffer_.empty()) {
    ParseJson(buffer_);
  }
  finished_ = true;
  buffer_.clear();
  buffer_.shrink_to_fit();
}

}  // namespace zumik::epp

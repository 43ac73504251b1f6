// Incremental usage extraction from SSE and JSON response bodies (see usage_parser.h).
#include "epp/usage_parser.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "epp/choice_text.h"
#include "epp/usage_scanner.h"

namespace zumik::epp {

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

bool HasUsageKey(std::string_view text) {
  // string_view::find stops at every quote of an event (a memchr call apiece) and memmem is
  // no faster: look for a quote followed by a 'u' sixteen positions at a time instead (no
  // other key of an OpenAI event starts with 'u'), then compare the rest.
  static constexpr std::string_view kKey = "\"usage\"";
  const char* p = text.data();
  const size_t n = text.size();
  const auto key_at = [&](size_t i) { return std::memcmp(p + i, kKey.data(), kKey.size()) == 0; };
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i u = _mm_set1_epi8('u');
  for (; i + 16 + kKey.size() <= n; i += 16) {
    const __m128i here = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i next = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i + 1));
    auto starts = static_cast<unsigned>(
        _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(here, quote), _mm_cmpeq_epi8(next, u))));
    while (starts != 0) {
      if (key_at(i + static_cast<size_t>(__builtin_ctz(starts)))) return true;
      starts &= starts - 1;
    }
  }
#endif
  for (; i + kKey.size() <= n; ++i) {
    if (p[i] == '"' && key_at(i)) return true;
  }
  return false;
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
  if (capture_response_id_ && response_id_.empty()) CaptureResponseId(line);
  if (collect_text_) CollectText(line);
  // Only events that can carry usage are worth a parse.
  if (!HasUsageKey(line)) return;
  ParseJson(line);
}

void UsageParser::set_collect_text(bool collect, TextSource source, size_t choices) {
  collect_text_ = collect;
  text_source_ = source;
  const size_t count =
      source == TextSource::kResponses ? 1 : std::clamp<size_t>(choices, 1, kMaxChoices);
  texts_.assign(collect ? count : 0, std::string());
}

void UsageParser::CollectText(std::string_view json) {
  if (text_overflow_) return;
  if (text_source_ == TextSource::kResponses) {
    AppendResponsesText(json, &texts_[0]);
  } else {
    AppendChoiceTexts(json, &texts_);
  }
  LimitText();
}

void UsageParser::LimitText() {
  size_t total = 0;
  for (const std::string& text : texts_) total += text.size();
  if (total > kMaxTextBytes) {
    text_overflow_ = true;
    texts_.clear();
    texts_.shrink_to_fit();
  }
}

void UsageParser::CaptureResponseId(std::string_view json) {
  namespace bj = boost::json;
  // Streamed, the first event (response.created) carries it under "response"; whole, the root.
  if (streaming_ && json.find("\"response.created\"") == std::string_view::npos) return;
  boost::system::error_code ec;
  const bj::value root = bj::parse(bj::string_view(json.data(), json.size()), ec);
  if (!ec) CaptureResponseId(root);
}

void UsageParser::CaptureResponseId(const boost::json::value& root) {
  namespace bj = boost::json;
  if (!root.is_object()) return;
  const bj::object* response = &root.get_object();
  if (streaming_) {
    const bj::value* inner = response->if_contains("response");
    if (inner == nullptr || !inner->is_object()) return;
    response = &inner->get_object();
  }
  const bj::value* object = response->if_contains("object");
  const bj::value* id = response->if_contains("id");
  if (object != nullptr && object->is_string() && object->get_string() == "response" &&
      id != nullptr && id->is_string()) {
    response_id_.assign(id->get_string().data(), id->get_string().size());
  }
}

void UsageParser::ParseJson(std::string_view text) {
  const bool want_id = capture_response_id_ && !streaming_ && response_id_.empty();
  const bool want_text = collect_text_ && !streaming_;
  if (want_id && want_text && text_source_ == TextSource::kResponses) {
    // A whole Responses API body: one DOM serves the id and the output text.
    boost::system::error_code ec;
    const boost::json::value root =
        boost::json::parse(boost::json::string_view(text.data(), text.size()), ec);
    if (!ec) {
      CaptureResponseId(root);
      if (!text_overflow_) AppendResponsesText(root, &texts_[0]);
      LimitText();
    }
  } else {
    if (want_id) CaptureResponseId(text);
    if (want_text) CollectText(text);
  }
  Usage found;
  if (ScanUsage(text, found) == ScanResult::kUnsure) ParseUsage(text, found);
  if (found.prompt_tokens >= 0) usage_.prompt_tokens = found.prompt_tokens;
  if (found.completion_tokens >= 0) usage_.completion_tokens = found.completion_tokens;
  if (found.cached_tokens >= 0) usage_.cached_tokens = found.cached_tokens;
}

void UsageParser::FinishWith(std::string_view last_chunk) {
  // A JSON body that arrives whole is read in place, without buffering a copy.
  if (!finished_ && !streaming_ && !overflow_ && buffer_.empty() && !last_chunk.empty() &&
      last_chunk.size() <= kMaxBufferedBytes) {
    ParseJson(last_chunk);
    finished_ = true;
    return;
  }
  Feed(last_chunk);
  Finish();
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

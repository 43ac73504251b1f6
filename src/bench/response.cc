// OpenAI response parsing for the load client (see response.h).
#include "bench/response.h"

#include <boost/json.hpp>

namespace zumik::bench {
namespace {

int64_t IntField(const boost::json::object& o, std::string_view key) {
  const boost::json::value* v = o.if_contains(key);
  if (!v) return -1;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  return -1;
}

void AppendString(const boost::json::object& o, std::string_view key, std::string& out) {
  if (const auto* t = o.if_contains(key); t && t->is_string()) out.append(t->get_string());
}

}  // namespace

ResponseChunk ParseResponseChunk(std::string_view json) {
  ResponseChunk c;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) {
    c.error = true;
    return c;
  }
  const boost::json::object& o = v.get_object();
  if (o.contains("error")) c.error = true;
  if (const auto* choices = o.if_contains("choices"); choices && choices->is_array()) {
    for (const auto& choice : choices->get_array()) {
      if (!choice.is_object()) continue;
      const auto& co = choice.get_object();
      AppendString(co, "text", c.text);
      for (std::string_view key : {"delta", "message"}) {
        if (const auto* d = co.if_contains(key); d && d->is_object()) {
          AppendString(d->get_object(), "content", c.text);
        }
      }
    }
  }
  if (const auto* u = o.if_contains("usage"); u && u->is_object()) {
    const auto& uo = u->get_object();
    c.prompt_tokens = IntField(uo, "prompt_tokens");
    c.completion_tokens = IntField(uo, "completion_tokens");
    if (const auto* d = uo.if_contains("prompt_tokens_details"); d && d->is_object()) {
      c.cached_tokens = IntField(d->get_object(), "cached_tokens");
    }
  }
  return c;
}

std::optional<ResponseChunk> StreamReader::Next() {
  while (std::optional<http::SseEvent> event = parser_.Next()) {
    if (event->data == "[DONE]") {
      done_ = true;
      continue;
    }
    ResponseChunk c = ParseResponseChunk(event->data);
    if (keep_answer_ && !c.error) answer_ += c.text;
    return c;
  }
  return std::nullopt;
}

}  // namespace zumik::bench

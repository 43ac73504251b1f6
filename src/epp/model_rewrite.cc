// The model-name rewrite (see model_rewrite.h).
#include "epp/model_rewrite.h"

#include <boost/json.hpp>

#include "epp/json_scan.h"

namespace zumik::epp {
namespace json = boost::json;

namespace {

// Finds the byte range of the top-level "model" string value, quotes included.
class ModelLocator : public json_scan::Cursor {
 public:
  explicit ModelLocator(std::string_view body) : Cursor(body), begin_(body.data()) {}

  bool Find(size_t& start, size_t& end) {
    SkipSpace();
    if (!Eat('{')) return false;
    bool found = false;
    const bool ok = Members(1, [&](std::string_view key) {
      if (key != "model") return SkipValue(1);
      if (found || Peek() != '"') return false;  // repeated, or not a string: the DOM decides
      found = true;
      start = Offset();
      if (!String(nullptr)) return false;
      end = Offset();
      return true;
    });
    return ok && found && AtEnd();
  }

 private:
  size_t Offset() const { return static_cast<size_t>(p_ - begin_); }
  const char* begin_;
};

std::optional<std::string> RewriteWithDom(std::string_view body, std::string_view model) {
  boost::system::error_code ec;
  json::value parsed = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !parsed.is_object()) return std::nullopt;
  json::object& object = parsed.get_object();
  json::value* current = object.if_contains("model");
  if (current == nullptr || !current->is_string()) return std::nullopt;
  *current = json::string(json::string_view(model.data(), model.size()));
  return json::serialize(parsed);
}

}  // namespace

std::optional<std::string> RewriteModel(std::string_view body, std::string_view model) {
  size_t start = 0;
  size_t end = 0;
  if (!ModelLocator(body).Find(start, end)) return RewriteWithDom(body, model);
  std::string out;
  const std::string quoted =
      json::serialize(json::string(json::string_view(model.data(), model.size())));
  out.reserve(body.size() - (end - start) + quoted.size());
  out.append(body.substr(0, start));
  out.append(quoted);
  out.append(body.substr(end));
  return out;
}

ModelNameRestorer::ModelNameRestorer(std::string_view served_model, std::string_view client_model) {
  auto quoted = [](std::string_view name) {
    return json::serialize(json::string(json::string_view(name.data(), name.size())));
  };
  const std::string served = quoted(served_model);
  const std::string client = quoted(client_model);
  from_[0] = "\"model\":" + served;
  from_[1] = "\"model\": " + served;
  to_[0] = "\"model\":" + client;
  to_[1] = "\"model\": " + client;
}

void ModelNameRestorer::Feed(std::string_view chunk, bool end, std::string& out) {
  std::string_view text = chunk;
  if (!held_.empty()) {
    held_.append(chunk);
    text = held_;
  }
  constexpr std::string_view kKey = "\"model\":";
  size_t done = 0;  // bytes of `text` already copied to `out`
  size_t at = 0;
  while ((at = text.find(kKey, at)) != std::string_view::npos) {
    const std::string_view rest = text.substr(at);
    int which = -1;
    for (int i = 0; i < 2; ++i) {
      if (rest.starts_with(from_[i])) which = i;
    }
    if (which < 0) {
      // Not (or not yet) a match: if the text ends inside a possible match, hold it back.
      if (!end && (from_[0].starts_with(rest) || from_[1].starts_with(rest))) break;
      at += kKey.size();
      continue;
    }
    out.append(text.substr(done, at - done));
    out.append(to_[which]);
    at += from_[which].size();
    done = at;
  }
  size_t keep = 0;
  if (!end) {
    // The longest tail that begins a match, at most one byte short of one.
    const size_t longest = std::max(from_[0].size(), from_[1].size()) - 1;
    for (size_t n = std::min(longest, text.size() - done); n > 0; --n) {
      const std::string_view tail = text.substr(text.size() - n);
      if (from_[0].starts_with(tail) || from_[1].starts_with(tail)) {
        keep = n;
        break;
      }
    }
  }
  out.append(text.substr(done, text.size() - done - keep));
  std::string rest(text.substr(text.size() - keep));
  held_ = std::move(rest);
}

}  // namespace zumik::epp

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

}  // namespace zumik::epp

// Dotted-path lookups in parsed JSON objects (see json_path.h).
#include "core/json_path.h"

namespace zumik {
namespace json = boost::json;

const json::value* FindPath(const json::object& object, std::string_view dotted) {
  const json::object* current = &object;
  while (true) {
    const size_t dot = dotted.find('.');
    const json::value* value = current->if_contains(json::string_view(dotted.substr(0, dot)));
    if (value == nullptr || dot == std::string_view::npos) return value;
    if (!value->is_object()) return nullptr;
    current = &value->get_object();
    dotted.remove_prefix(dot + 1);
  }
}

std::string StringAt(const json::object& object, std::string_view dotted) {
  const json::value* value = FindPath(object, dotted);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

}  // namespace zumik

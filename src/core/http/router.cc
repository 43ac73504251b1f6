// Exact and prefix routing with per-method handlers.
#include "core/http/router.h"

#include <algorithm>

namespace zumik::http {

Router& Router::Handle(Method method, std::string path, Handler handler) {
  auto [it, inserted] = exact_.try_emplace(path);
  if (inserted) it->second.pattern = std::move(path);
  AddMethod(it->second, method, std::move(handler));
  return *this;
}

Router& Router::HandlePrefix(Method method, std::string prefix, Handler handler) {
  auto it = std::find_if(prefixes_.begin(), prefixes_.end(),
                         [&](const Route& route) { return route.pattern == prefix; });
  if (it == prefixes_.end()) {
    prefixes_.push_back(Route{std::move(prefix), {}});
    it = std::prev(prefixes_.end());
  }
  AddMethod(*it, method, std::move(handler));
  std::stable_sort(prefixes_.begin(), prefixes_.end(), [](const Route& a, const Route& b) {
    return a.pattern.size() > b.pattern.size();
  });
  return *this;
}

Router& Router::SetFallback(Handler handler) {
  fallback_ = std::move(handler);
  return *this;
}

void Router::AddMethod(Route& route, Method method, Handler handler) {
  for (auto& [existing, existing_handler] : route.methods) {
    if (existing == method) {
      existing_handler = std::move(handler);
      return;
    }
  }
  route.methods.emplace_back(method, std::move(handler));
}

const Handler* Router::FindMethod(const Route& route, Method method) {
  for (const auto& [candidate, handler] : route.methods) {
    if (candidate == method) return &handler;
  }
  if (method == Method::head) return FindMethod(route, Method::get);
  return nullptr;
}

std::string Router::AllowList(const Route& route) {
  const bool explicit_head = std::any_of(route.methods.begin(), route.methods.end(),
                                         [](const auto& m) { return m.first == Method::head; });
  std::string allow;
  for (const auto& [method, handler] : route.methods) {
    if (!allow.empty()) allow += ", ";
    allow += MethodName(method);
    // A GET handler answers HEAD too (FindMethod), so HEAD is allowed there.
    if (method == Method::get && !explicit_head) allow += ", HEAD";
  }
  return allow;
}

Router::Match Router::Find(Method method, std::string_view path) const {
  const Route* route = nullptr;
  bool prefix = false;
  if (auto it = exact_.find(path); it != exact_.end()) {
    route = &it->second;
  } else {
    for (const Route& candidate : prefixes_) {
      if (path.substr(0, candidate.pattern.size()) == candidate.pattern) {
        route = &candidate;
        prefix = true;
        break;
      }
    }
  }
  Match match;
  if (route == nullptr) {
    if (fallback_) match.handler = &fallback_;
    return match;
  }
  match.route = route->pattern;
  match.prefix = prefix;
  match.handler = FindMethod(*route, method);
  if (match.handler == nullptr) match.allow = AllowList(*route);
  return match;
}

}  // namespace zumik::http

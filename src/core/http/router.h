// Request routing: exact paths and path prefixes, per method. Unknown paths get a JSON 404,
// a known path with another method a JSON 405 with an Allow header (the server does this).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/http/message.h"

namespace zumik::http {

class ResponseWriter;

// A handler runs as a coroutine on the connection's strand; see server.h for lifetime rules.
using Handler = std::function<boost::asio::awaitable<void>(Request&, ResponseWriter&)>;

class Router {
 public:
  struct Match {
    // Null when nothing matched: see `allow`.
    const Handler* handler = nullptr;
    // The pattern that matched (exact path or prefix).
    std::string_view route;
    bool prefix = false;
    // When the path is known but not for this method: the allowed methods ("GET, POST"),
    // so the answer is 405; empty means 404.
    std::string allow;
  };

  // Exact path, e.g. Handle(Method::get, "/v1/models", ...). Re-registering replaces.
  Router& Handle(Method method, std::string path, Handler handler);
  // Every path starting with `prefix`, e.g. "/v1/clusters/". The longest prefix wins;
  // exact routes win over prefixes.
  Router& HandlePrefix(Method method, std::string prefix, Handler handler);
  // Any method on any path no route knows (a reverse proxy's catch-all), instead of 404.
  Router& SetFallback(Handler handler);

  Router& Get(std::string path, Handler handler) {
    return Handle(Method::get, std::move(path), std::move(handler));
  }
  Router& Post(std::string path, Handler handler) {
    return Handle(Method::post, std::move(path), std::move(handler));
  }
  Router& Put(std::string path, Handler handler) {
    return Handle(Method::put, std::move(path), std::move(handler));
  }
  Router& Delete(std::string path, Handler handler) {
    return Handle(Method::delete_, std::move(path), std::move(handler));
  }
  Router& Patch(std::string path, Handler handler) {
    return Handle(Method::patch, std::move(path), std::move(handler));
  }

  // HEAD falls back to the GET handler (the server then sends headers only).
  Match Find(Method method, std::string_view path) const;

 private:
  struct Route {
    std::string pattern;
    std::vector<std::pair<Method, Handler>> methods;
  };

  static void AddMethod(Route& route, Method method, Handler handler);
  static const Handler* FindMethod(const Route& route, Method method);
  static std::string AllowList(const Route& route);

  std::map<std::string, Route, std::less<>> exact_;
  // Sorted longest prefix first.
  std::vector<Route> prefixes_;
  Handler fallback_;
};

}  // namespace zumik::http

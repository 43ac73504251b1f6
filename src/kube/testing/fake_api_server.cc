// The Kubernetes API test double: an in-memory object store behind list, watch and write
// endpoints, with injectable 410 Gone, bookmarks, disconnects and failures.
#include "kube/testing/fake_api_server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

#include "core/http/response_writer.h"
#include "core/http/server.h"
#include "core/json_path.h"
#include "core/status.h"

namespace zumik::kube::testing {
namespace asio = boost::asio;
namespace json = boost::json;

namespace {

std::string ResourceKey(const Resource& r) { return r.group + "/" + r.version + "/" + r.plural; }

std::string StatusBody(int code, std::string_view reason, std::string_view message) {
  json::object status;
  status["kind"] = "Status";
  status["apiVersion"] = "v1";
  status["status"] = "Failure";
  status["message"] = json::string_view(message.data(), message.size());
  status["reason"] = json::string_view(reason.data(), reason.size());
  status["code"] = code;
  return json::serialize(status);
}

struct Selector {
  struct Term {
    std::string key;
    std::string value;
    enum Op { kEq, kNe, kExists } op = kEq;
  };
  std::vector<Term> terms;

  static Selector Parse(std::string_view text) {
    Selector selector;
    while (!text.empty()) {
      const size_t comma = text.find(',');
      std::string_view part = text.substr(0, comma);
      text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
      if (part.empty()) continue;
      Term term;
      if (size_t ne = part.find("!="); ne != std::string_view::npos) {
        term.key = part.substr(0, ne);
        term.value = part.substr(ne + 2);
        term.op = Term::kNe;
      } else if (size_t eq = part.find('='); eq != std::string_view::npos) {
        term.key = part.substr(0, eq);
        std::string_view value = part.substr(eq + 1);
        if (!value.empty() && value.front() == '=') value.remove_prefix(1);
        term.value = value;
      } else {
        term.key = part;
        term.op = Term::kExists;
      }
      selector.terms.push_back(std::move(term));
    }
    return selector;
  }

  bool Matches(const std::map<std::string, std::string>& fields) const {
    for (const Term& term : terms) {
      auto it = fields.find(term.key);
      switch (term.op) {
        case Term::kEq:
          if (it == fields.end() || it->second != term.value) return false;
          break;
        case Term::kNe:
          if (it != fields.end() && it->second == term.value) return false;
          break;
        case Term::kExists:
          if (it == fields.end()) return false;
          break;
      }
    }
    return true;
  }
};

struct Watcher {
  std::string resource_key;
  std::string ns;
  Selector labels;
  Selector fields;
  bool bookmarks = false;
  std::string kind;
  std::string api_version;
  asio::any_io_executor executor;
  asio::steady_timer* timer = nullptr;  // set while the handler lives (under Impl::mu)
  std::deque<std::string> lines;
  bool closed = false;
};

std::map<std::string, std::string> FieldsOf(const json::object& object) {
  return {{"metadata.name", ObjectName(object)}, {"metadata.namespace", ObjectNamespace(object)}};
}

std::string KindOf(const Resource& r) {
  // "pods" -> "Pod", "inferencepools" -> "Inferencepool" (kind is informational here).
  std::string kind = r.plural;
  if (kind.size() > 3 && kind.ends_with("ies")) {
    kind = kind.substr(0, kind.size() - 3) + "y";
  } else if (kind.size() > 1 && kind.ends_with("s")) {
    kind.pop_back();
  }
  if (!kind.empty()) kind[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(kind[0])));
  return kind;
}

// RFC 7386 JSON merge patch.
void MergePatch(json::value& target, const json::value& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = json::object();
  json::object& t = target.get_object();
  for (const auto& [key, value] : patch.get_object()) {
    if (value.is_null()) {
      t.erase(key);
    } else {
      MergePatch(t[key], value);
    }
  }
}

struct Parsed {
  bool ok = false;
  std::string group;
  std::string version;
  std::string plural;
  std::string ns;
  std::string name;
  bool has_namespace = false;
};

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const size_t slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  }
  return parts;
}

}  // namespace

struct FakeApiServer::Impl : std::enable_shared_from_this<Impl> {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  std::thread thread;
  std::unique_ptr<http::Server> server;
  bool running = false;

  mutable std::mutex mu;
  std::string token;
  std::string git_version = "v1.30.2";
  std::map<std::string, Resource> resources;
  // resource key -> "ns/name" -> object
  std::map<std::string, std::map<std::string, json::object>> objects;
  int64_t rv = 100;
  int64_t expired_before = 0;  // watches from a version below this get 410
  struct Event {
    int64_t rv;
    std::string resource_key;
    std::string type;
    json::object object;
  };
  std::vector<Event> history;
  std::vector<std::shared_ptr<Watcher>> watchers;
  std::vector<RecordedWrite> writes;
  int fail_count = 0;
  int fail_status = 500;
  uint64_t lists = 0;
  uint64_t watches = 0;
  int uid_counter = 0;

  static std::string ObjectKey(const std::string& ns, const std::string& name) {
    return ns + "/" + name;
  }

  void Wake(const std::shared_ptr<Watcher>& w) {
    asio::post(w->executor, [self = shared_from_this(), w] {
      std::lock_guard lock(self->mu);
      if (w->timer != nullptr) w->timer->cancel();
    });
  }

  static std::string EventLine(std::string_view type, const json::object& object) {
    json::object event;
    event["type"] = json::string_view(type.data(), type.size());
    event["object"] = object;
    return json::serialize(event) + "\n";
  }

  bool WatcherMatches(const Watcher& w, const std::string& resource_key,
                      const json::object& o) const {
    if (w.resource_key != resource_key) return false;
    if (!w.ns.empty() && ObjectNamespace(o) != w.ns) return false;
    return w.labels.Matches(ObjectLabels(o)) && w.fields.Matches(FieldsOf(o));
  }

  // Under mu.
  void Emit(const std::string& resource_key, const std::string& type, const json::object& object) {
    history.push_back(Event{rv, resource_key, type, object});
    const std::string line = EventLine(type, object);
    for (const auto& w : watchers) {
      if (w->closed || !WatcherMatches(*w, resource_key, object)) continue;
      w->lines.push_back(line);
      Wake(w);
    }
  }

  // Under mu.
  json::object Store(const Resource& resource, json::object object, bool* created) {
    AddResourceLocked(resource);
    json::object& metadata = object["metadata"].is_object() ? object["metadata"].get_object()
                                                            : object["metadata"].emplace_object();
    std::string ns;
    if (resource.namespaced) {
      ns = ObjectNamespace(object);
      if (ns.empty()) ns = "default";
      metadata["namespace"] = ns;
    } else {
      metadata.erase("namespace");
    }
    const std::string name = ObjectName(object);
    const std::string key = ObjectKey(ns, name);
    auto& collection = objects[ResourceKey(resource)];
    auto it = collection.find(key);
    *created = it == collection.end();
    if (*created) {
      metadata["uid"] = fmt::format("uid-{:08d}-{}", ++uid_counter, name);
      metadata["creationTimestamp"] = "2026-01-01T00:00:00Z";
    } else {
      const json::object& old = it->second;
      if (const json::value* uid = FindPath(old, "metadata.uid")) metadata["uid"] = *uid;
      if (const json::value* ts = FindPath(old, "metadata.creationTimestamp")) {
        metadata["creationTimestamp"] = *ts;
      }
    }
    metadata["resourceVersion"] = std::to_string(++rv);
    if (!object.contains("kind")) object["kind"] = KindOf(resource);
    object["apiVersion"] = resource.ApiVersion();
    collection[key] = object;
    Emit(ResourceKey(resource), *created ? "ADDED" : "MODIFIED", object);
    return object;
  }

  // Under mu.
  bool Erase(const Resource& resource, const std::string& ns, const std::string& name,
             json::object* removed) {
    auto cit = objects.find(ResourceKey(resource));
    if (cit == objects.end()) return false;
    auto it = cit->second.find(ObjectKey(resource.namespaced ? ns : "", name));
    if (it == cit->second.end()) return false;
    json::object object = std::move(it->second);
    cit->second.erase(it);
    object["metadata"].as_object()["resourceVersion"] = std::to_string(++rv);
    Emit(ResourceKey(resource), "DELETED", object);
    if (removed) *removed = std::move(object);
    return true;
  }

  void AddResourceLocked(const Resource& resource) {
    resources.emplace(ResourceKey(resource), resource);
  }

  Parsed ParsePath(std::string_view path) const {
    Parsed p;
    std::vector<std::string> parts = SplitPath(path);
    size_t i = 0;
    if (parts.size() >= 2 && parts[0] == "api") {
      p.version = parts[1];
      i = 2;
    } else if (parts.size() >= 3 && parts[0] == "apis") {
      p.group = parts[1];
      p.version = parts[2];
      i = 3;
    } else {
      return p;
    }
    std::vector<std::string> rest(parts.begin() + static_cast<long>(i), parts.end());
    if (rest.size() >= 3 && rest[0] == "namespaces") {
      p.has_namespace = true;
      p.ns = rest[1];
      p.plural = rest[2];
      if (rest.size() == 4) p.name = rest[3];
      if (rest.size() > 4) return p;
    } else if (!rest.empty() && rest.size() <= 2) {
      p.plural = rest[0];
      if (rest.size() == 2) p.name = rest[1];
    } else {
      return p;
    }
    p.ok = true;
    return p;
  }
};

namespace {

struct Reply {
  int status = 200;
  std::string body;
};

Reply NotFound(std::string_view what) { return {404, StatusBody(404, "NotFound", what)}; }

// Discovery documents and /version. Under mu.
std::optional<Reply> Discovery(FakeApiServer::Impl& impl, std::string_view path) {
  std::vector<std::string> parts = SplitPath(path);
  if (parts.size() == 1 && parts[0] == "version") {
    json::object v;
    v["major"] = "1";
    v["minor"] = "30";
    v["gitVersion"] = impl.git_version;
    v["platform"] = "linux/amd64";
    return Reply{200, json::serialize(v)};
  }
  if (parts.size() == 1 && parts[0] == "api") {
    json::object v;
    v["kind"] = "APIVersions";
    json::array versions;
    versions.push_back("v1");
    v["versions"] = std::move(versions);
    return Reply{200, json::serialize(v)};
  }
  const bool core = parts.size() == 2 && parts[0] == "api";
  const bool group_only = parts.size() == 2 && parts[0] == "apis";
  const bool group_version = parts.size() == 3 && parts[0] == "apis";
  if (!core && !group_only && !group_version) return std::nullopt;
  json::array list;
  std::string preferred;
  for (const auto& [key, r] : impl.resources) {
    bool match = core ? (r.group.empty() && r.version == parts[1])
                      : (r.group == parts[1] && (group_only || r.version == parts[2]));
    if (!match) continue;
    json::object entry;
    entry["name"] = r.plural;
    entry["namespaced"] = r.namespaced;
    entry["kind"] = KindOf(r);
    entry["groupVersion"] = r.ApiVersion();
    list.push_back(std::move(entry));
    if (preferred.empty()) preferred = r.ApiVersion();
  }
  if (list.empty()) {
    return NotFound(fmt::format("the server could not find the requested resource ({})", path));
  }
  json::object doc;
  if (group_only) {
    doc["kind"] = "APIGroup";
    doc["name"] = parts[1];
    json::object pv;
    pv["groupVersion"] = preferred;
    doc["preferredVersion"] = std::move(pv);
  } else {
    doc["kind"] = "APIResourceList";
    doc["resources"] = std::move(list);
  }
  return Reply{200, json::serialize(doc)};
}

// Every non-watch request. Under mu.
Reply HandleLocked(FakeApiServer::Impl& impl, const http::Request& request) {
  if (auto reply = Discovery(impl, request.path());
      reply && request.method() == http::Method::get) {
    return *reply;
  }
  Parsed p = impl.ParsePath(request.path());
  if (!p.ok) return NotFound(fmt::format("unknown path {}", request.path()));
  const std::string key = p.group + "/" + p.version + "/" + p.plural;
  auto rit = impl.resources.find(key);
  if (rit == impl.resources.end()) {
    return NotFound(
        fmt::format("the server could not find the requested resource ({})", request.path()));
  }
  const Resource& resource = rit->second;
  std::string ns = resource.namespaced ? p.ns : "";
  auto& collection = impl.objects[key];
  const std::string object_key = FakeApiServer::Impl::ObjectKey(ns, p.name);

  switch (request.method()) {
    case http::Method::get: {
      if (!p.name.empty()) {
        auto it = collection.find(object_key);
        if (it == collection.end()) {
          return NotFound(fmt::format("{} \"{}\" not found", resource.plural, p.name));
        }
        return {200, json::serialize(it->second)};
      }
      ++impl.lists;
      Selector labels = Selector::Parse(request.QueryParam("labelSelector").value_or(""));
      Selector fields = Selector::Parse(request.QueryParam("fieldSelector").value_or(""));
      json::array items;
      for (const auto& [k, object] : collection) {
        if (resource.namespaced && !ns.empty() && ObjectNamespace(object) != ns) continue;
        if (!labels.Matches(ObjectLabels(object)) || !fields.Matches(FieldsOf(object))) continue;
        items.push_back(object);
      }
      json::object list;
      list["kind"] = KindOf(resource) + "List";
      list["apiVersion"] = resource.ApiVersion();
      json::object metadata;
      metadata["resourceVersion"] = std::to_string(impl.rv);
      list["metadata"] = std::move(metadata);
      list["items"] = std::move(items);
      return {200, json::serialize(list)};
    }
    case http::Method::post:
    case http::Method::put:
    case http::Method::patch: {
      impl.writes.push_back(RecordedWrite{std::string(request.method_name()),
                                          std::string(request.path()), request.body()});
      boost::system::error_code ec;
      json::value body = json::parse(request.body(), ec);
      if (ec || !body.is_object()) {
        return {400, StatusBody(400, "BadRequest", "the body is not a JSON object")};
      }
      if (request.method() == http::Method::post) {
        if (!p.name.empty()) return {405, StatusBody(405, "MethodNotAllowed", "POST to an object")};
        const std::string name = ObjectName(body.get_object());
        if (name.empty()) return {422, StatusBody(422, "Invalid", "metadata.name: Required value")};
        if (resource.namespaced) {
          body.get_object()["metadata"].as_object()["namespace"] = ns.empty() ? "default" : ns;
          ns = ObjectNamespace(body.get_object());
        }
        if (collection.contains(FakeApiServer::Impl::ObjectKey(ns, name))) {
          return {409, StatusBody(409, "AlreadyExists",
                                  fmt::format("{} \"{}\" already exists", resource.plural, name))};
        }
        bool created = false;
        json::object stored = impl.Store(resource, std::move(body.get_object()), &created);
        return {201, json::serialize(stored)};
      }
      auto it = collection.find(object_key);
      if (it == collection.end()) {
        return NotFound(fmt::format("{} \"{}\" not found", resource.plural, p.name));
      }
      json::value merged;
      if (request.method() == http::Method::put) {
        const std::string wanted = ObjectResourceVersion(body.get_object());
        if (!wanted.empty() && wanted != ObjectResourceVersion(it->second)) {
          return {409, StatusBody(409, "Conflict",
                                  "Operation cannot be fulfilled: the object has been modified; "
                                  "please apply your changes to the latest version and try again")};
        }
        merged = std::move(body);
        json::object& metadata = merged.get_object()["metadata"].is_object()
                                     ? merged.get_object()["metadata"].get_object()
                                     : merged.get_object()["metadata"].emplace_object();
        metadata["name"] = p.name;
        if (resource.namespaced) metadata["namespace"] = ns;
      } else {
        merged = it->second;
        MergePatch(merged, body);
      }
      bool created = false;
      json::object stored = impl.Store(resource, std::move(merged.get_object()), &created);
      return {200, json::serialize(stored)};
    }
    case http::Method::delete_: {
      impl.writes.push_back(RecordedWrite{"DELETE", std::string(request.path()), request.body()});
      json::object removed;
      if (p.name.empty() || !impl.Erase(resource, ns, p.name, &removed)) {
        return NotFound(fmt::format("{} \"{}\" not found", resource.plural, p.name));
      }
      return {200, json::serialize(removed)};
    }
    default:
      return {405, StatusBody(405, "MethodNotAllowed", "method not allowed")};
  }
}

struct WatchSetup {
  std::optional<Reply> reply;  // an immediate answer instead of a stream
  std::shared_ptr<Watcher> watcher;
  std::chrono::seconds timeout{300};
};

WatchSetup SetUpWatch(FakeApiServer::Impl& impl, const http::Request& request,
                      asio::any_io_executor executor) {
  WatchSetup setup;
  std::lock_guard lock(impl.mu);
  ++impl.watches;
  Parsed p = impl.ParsePath(request.path());
  const std::string key = p.group + "/" + p.version + "/" + p.plural;
  auto rit = impl.resources.find(key);
  if (!p.ok || !p.name.empty() || rit == impl.resources.end()) {
    setup.reply = NotFound(
        fmt::format("the server could not find the requested resource ({})", request.path()));
    return setup;
  }
  const Resource& resource = rit->second;
  auto w = std::make_shared<Watcher>();
  w->resource_key = key;
  w->ns = resource.namespaced ? p.ns : "";
  w->labels = Selector::Parse(request.QueryParam("labelSelector").value_or(""));
  w->fields = Selector::Parse(request.QueryParam("fieldSelector").value_or(""));
  w->bookmarks = request.QueryParam("allowWatchBookmarks").value_or("") == "true";
  w->kind = KindOf(resource);
  w->api_version = resource.ApiVersion();
  w->executor = std::move(executor);
  if (auto t = request.QueryParam("timeoutSeconds")) {
    try {
      setup.timeout = std::chrono::seconds(std::stoll(std::string(*t)));
    } catch (const std::exception&) {
    }
  }
  const std::string rv_text(request.QueryParam("resourceVersion").value_or(""));
  int64_t from = 0;
  if (!rv_text.empty()) {
    try {
      from = std::stoll(rv_text);
    } catch (const std::exception&) {
      setup.reply = Reply{400, StatusBody(400, "BadRequest", "bad resourceVersion")};
      return setup;
    }
  }
  if (from == 0) {
    for (const auto& [k, object] : impl.objects[key]) {
      if (impl.WatcherMatches(*w, key, object)) w->lines.push_back(impl.EventLine("ADDED", object));
    }
  } else if (from < impl.expired_before) {
    json::object status;
    status["kind"] = "Status";
    status["apiVersion"] = "v1";
    status["status"] = "Failure";
    status["message"] = fmt::format("too old resource version: {} ({})", from, impl.expired_before);
    status["reason"] = "Expired";
    status["code"] = 410;
    w->lines.push_back(impl.EventLine("ERROR", status));
    w->closed = true;
  } else {
    for (const auto& event : impl.history) {
      if (event.rv > from && impl.WatcherMatches(*w, event.resource_key, event.object)) {
        w->lines.push_back(impl.EventLine(event.type, event.object));
      }
    }
  }
  impl.watchers.push_back(w);
  setup.watcher = std::move(w);
  return setup;
}

// Removes the watcher when the handler ends, however it ends.
struct WatcherGuard {
  std::shared_ptr<FakeApiServer::Impl> impl;
  std::shared_ptr<Watcher> watcher;
  ~WatcherGuard() {
    std::lock_guard lock(impl->mu);
    watcher->timer = nullptr;
    std::erase(impl->watchers, watcher);
  }
};

asio::awaitable<void> ServeWatch(std::shared_ptr<FakeApiServer::Impl> impl, http::Request& request,
                                 http::ResponseWriter& writer) {
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  WatchSetup setup = SetUpWatch(*impl, request, executor);
  if (setup.reply) {
    std::string body = setup.reply->body;
    http::IgnoreClientGone(co_await writer.Respond(setup.reply->status, body));
    co_return;
  }
  std::shared_ptr<Watcher> w = setup.watcher;
  asio::steady_timer timer(executor);
  WatcherGuard guard{impl, w};
  {
    std::lock_guard lock(impl->mu);
    w->timer = &timer;
  }
  const auto deadline = std::chrono::steady_clock::now() + setup.timeout;
  absl::Status begun = co_await writer.BeginStream(200, http::kJsonContentType);
  if (!begun.ok()) co_return;
  while (true) {
    std::deque<std::string> lines;
    bool closed = false;
    {
      std::lock_guard lock(impl->mu);
      lines.swap(w->lines);
      closed = w->closed;
    }
    bool failed = false;
    for (const std::string& line : lines) {
      absl::Status written = co_await writer.WriteChunk(line);
      if (!written.ok()) {
        failed = true;
        break;
      }
    }
    if (failed || closed || writer.client_gone()) break;
    if (std::chrono::steady_clock::now() >= deadline) break;
    bool pending = false;
    {
      std::lock_guard lock(impl->mu);
      pending = !w->lines.empty() || w->closed;
    }
    if (pending) continue;
    boost::system::error_code ec;
    timer.expires_at(deadline);
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  writer.CloseConnection();
  http::IgnoreClientGone(co_await writer.Finish());
}

asio::awaitable<void> Serve(std::shared_ptr<FakeApiServer::Impl> impl, http::Request& request,
                            http::ResponseWriter& writer) {
  Reply reply;
  bool is_watch = false;
  {
    std::lock_guard lock(impl->mu);
    if (!impl->token.empty() && request.Header("Authorization") != "Bearer " + impl->token) {
      reply = Reply{401, StatusBody(401, "Unauthorized", "Unauthorized")};
    } else if (impl->fail_count > 0) {
      --impl->fail_count;
      reply = Reply{impl->fail_status,
                    StatusBody(impl->fail_status, "InternalError", "injected failure")};
    } else {
      const auto watch = request.QueryParam("watch");
      is_watch =
          request.method() == http::Method::get && watch && (*watch == "1" || *watch == "true");
      if (!is_watch) reply = HandleLocked(*impl, request);
    }
  }
  if (is_watch) {
    co_await ServeWatch(impl, request, writer);
    co_return;
  }
  http::IgnoreClientGone(co_await writer.Respond(reply.status, reply.body));
}

}  // namespace

FakeApiServer::FakeApiServer() : impl_(std::make_shared<Impl>()) {
  for (const Resource& r : {kPods, kNodes, kNamespaces, kConfigMaps, kSecrets, kDeployments}) {
    impl_->AddResourceLocked(r);
  }
  impl_->AddResourceLocked(Resource{"", "v1", "services", true});
  json::object ns;
  json::object metadata;
  metadata["name"] = "kube-system";
  ns["metadata"] = std::move(metadata);
  Upsert(kNamespaces, std::move(ns));
}

FakeApiServer::~FakeApiServer() { Stop(); }

absl::Status FakeApiServer::Start() {
  http::Router router;
  std::weak_ptr<Impl> weak = impl_;
  router.SetFallback(
      [weak](http::Request& request, http::ResponseWriter& writer) -> asio::awaitable<void> {
        auto impl = weak.lock();
        if (!impl) co_return;
        co_await Serve(impl, request, writer);
      });
  http::ServerOptions options;
  options.name = "fake-kube-api";
  impl_->server = std::make_unique<http::Server>(impl_->io, options, std::move(router));
  RETURN_IF_ERROR(impl_->server->Start());
  impl_->thread = std::thread([impl = impl_] { impl->io.run(); });
  impl_->running = true;
  return absl::OkStatus();
}

void FakeApiServer::Stop() {
  if (!impl_->running) return;
  impl_->running = false;
  DisconnectWatches();
  impl_->server->Stop(std::chrono::milliseconds(500));
  impl_->work.reset();
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_->server.reset();
}

uint16_t FakeApiServer::port() const { return impl_->server ? impl_->server->port() : 0; }
std::string FakeApiServer::url() const { return fmt::format("http://127.0.0.1:{}", port()); }

Config FakeApiServer::ClientConfig() const {
  Config config;
  config.server = url();
  std::lock_guard lock(impl_->mu);
  config.token = Secret(impl_->token);
  return config;
}

std::string FakeApiServer::KubeconfigYaml() const {
  std::lock_guard lock(impl_->mu);
  std::string yaml = fmt::format(
      "apiVersion: v1\nkind: Config\ncurrent-context: fake\n"
      "clusters:\n- name: fake\n  cluster:\n    server: {}\n"
      "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n"
      "users:\n- name: fake\n  user:\n",
      fmt::format("http://127.0.0.1:{}", impl_->server ? impl_->server->port() : 0));
  if (!impl_->token.empty()) {
    yaml += fmt::format("    token: {}\n", impl_->token);
  } else {
    yaml += "    {}\n";
  }
  return yaml;
}

void FakeApiServer::RequireToken(std::string token) {
  std::lock_guard lock(impl_->mu);
  impl_->token = std::move(token);
}

void FakeApiServer::AddResource(const Resource& resource) {
  std::lock_guard lock(impl_->mu);
  impl_->AddResourceLocked(resource);
}

void FakeApiServer::SetVersion(std::string git_version) {
  std::lock_guard lock(impl_->mu);
  impl_->git_version = std::move(git_version);
}

json::object FakeApiServer::Upsert(const Resource& resource, json::object object) {
  std::lock_guard lock(impl_->mu);
  bool created = false;
  return impl_->Store(resource, std::move(object), &created);
}

bool FakeApiServer::Remove(const Resource& resource, const std::string& ns,
                           const std::string& name) {
  std::lock_guard lock(impl_->mu);
  return impl_->Erase(resource, ns, name, nullptr);
}

std::optional<json::object> FakeApiServer::Find(const Resource& resource, const std::string& ns,
                                                const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  auto cit = impl_->objects.find(ResourceKey(resource));
  if (cit == impl_->objects.end()) return std::nullopt;
  auto it = cit->second.find(Impl::ObjectKey(resource.namespaced ? ns : "", name));
  if (it == cit->second.end()) return std::nullopt;
  return it->second;
}

std::vector<json::object> FakeApiServer::Objects(const Resource& resource,
                                                 const std::string& ns) const {
  std::lock_guard lock(impl_->mu);
  std::vector<json::object> out;
  auto cit = impl_->objects.find(ResourceKey(resource));
  if (cit == impl_->objects.end()) return out;
  for (const auto& [key, object] : cit->second) {
    if (!ns.empty() && ObjectNamespace(object) != ns) continue;
    out.push_back(object);
  }
  return out;
}

void FakeApiServer::ExpireWatches() {
  std::lock_guard lock(impl_->mu);
  impl_->history.clear();
  impl_->expired_before = impl_->rv + 1;
  json::object status;
  status["kind"] = "Status";
  status["apiVersion"] = "v1";
  status["status"] = "Failure";
  status["message"] = "too old resource version";
  status["reason"] = "Expired";
  status["code"] = 410;
  const std::string line = Impl::EventLine("ERROR", status);
  for (const auto& w : impl_->watchers) {
    if (w->closed) continue;
    w->lines.push_back(line);
    w->closed = true;
    impl_->Wake(w);
  }
}

void FakeApiServer::SendBookmarks() {
  std::lock_guard lock(impl_->mu);
  for (const auto& w : impl_->watchers) {
    if (w->closed || !w->bookmarks) continue;
    json::object object;
    object["kind"] = w->kind;
    object["apiVersion"] = w->api_version;
    json::object metadata;
    metadata["resourceVersion"] = std::to_string(impl_->rv);
    object["metadata"] = std::move(metadata);
    w->lines.push_back(Impl::EventLine("BOOKMARK", object));
    impl_->Wake(w);
  }
}

void FakeApiServer::DisconnectWatches() {
  std::lock_guard lock(impl_->mu);
  for (const auto& w : impl_->watchers) {
    w->closed = true;
    impl_->Wake(w);
  }
}

void FakeApiServer::FailNextRequests(int count, int http_status) {
  std::lock_guard lock(impl_->mu);
  impl_->fail_count = count;
  impl_->fail_status = http_status;
}

std::vector<RecordedWrite> FakeApiServer::writes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->writes;
}

int FakeApiServer::open_watches() const {
  std::lock_guard lock(impl_->mu);
  int n = 0;
  for (const auto& w : impl_->watchers) n += w->closed ? 0 : 1;
  return n;
}

uint64_t FakeApiServer::list_requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->lists;
}

uint64_t FakeApiServer::watch_requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->watches;
}

std::string FakeApiServer::resource_version() const {
  std::lock_guard lock(impl_->mu);
  return std::to_string(impl_->rv);
}

bool FakeApiServer::WaitFor(const std::function<bool()>& predicate,
                            std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace zumik::kube::testing

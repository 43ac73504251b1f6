// The registry's cluster views: the JSON of the API and the HTML cluster page.
#include <fmt/format.h>

#include <iterator>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/html.h"
#include "core/json_string.h"
#include "registry/service.h"

namespace zumik::registry {
namespace {

std::string GpuSummary(const std::optional<StatusSnapshot>& status) {
  if (!status || status->gpus.empty()) return "";
  std::string out;
  for (const GpuCount& gpu : status->gpus) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}\u00d7 {}", gpu.count, gpu.product);
  }
  return out;
}

std::string StackSummary(const Stack& stack) {
  std::string out;
  for (const auto& tag : kStackTags) {
    const std::string& value = stack.*tag.second;
    if (value.empty()) continue;
    if (!out.empty()) out += " \u00b7 ";
    out += value;
  }
  return out;
}

}  // namespace

std::string RegistryService::ClusterJson(const ClusterView& view) const {
  std::string out;
  AppendClusterJson(view, clock_.UnixSeconds(), out);
  return out;
}

// Written by hand rather than through boost::json objects: listing 10,000 clusters must stay
// well under 100 ms, and building a DOM per cluster costs several times the text itself.
void RegistryService::AppendClusterJson(const ClusterView& view, double now_unix,
                                        std::string& out) const {
  const ClusterRecord& r = view.record;
  auto field = [&out](std::string_view key, std::string_view value) {
    out += '"';
    out += key;
    out += "\":";
    AppendJsonString(value, &out);
    out += ',';
  };
  out += '{';
  field("id", r.id);
  field("name", r.name);
  field("profile", ProfileName(r.profile));
  out += "\"stack\":{";
  for (const auto& [key, member] : kStackTags) field(key, r.stack.*member);
  out.back() = '}';
  out += ',';
  field("fingerprint", r.fingerprint);
  field("kubernetes_version", r.kubernetes_version);
  field("chart_version", r.chart_version);
  field("status", LivenessName(view.liveness));
  field("registered_at", FormatUnixUtc(r.registered_unix));
  if (r.last_heartbeat_unix) {
    field("last_heartbeat_at", FormatUnixUtc(*r.last_heartbeat_unix));
    fmt::format_to(std::back_inserter(out), "\"last_heartbeat_age_s\":{:.3f},",
                   std::max(0.0, now_unix - *r.last_heartbeat_unix));
  } else {
    out += "\"last_heartbeat_at\":null,\"last_heartbeat_age_s\":null,";
  }
  out += "\"snapshot\":";
  if (r.status) {
    const StatusSnapshot& st = *r.status;
    out += "{\"gpus\":[";
    for (size_t i = 0; i < st.gpus.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"product\":";
      AppendJsonString(st.gpus[i].product, &out);
      fmt::format_to(std::back_inserter(out), ",\"count\":{}}}", st.gpus[i].count);
    }
    fmt::format_to(std::back_inserter(out),
                   "],\"nodes\":{},\"replicas\":{{\"ready\":{},\"desired\":{}}},\"model\":",
                   st.nodes, st.replicas_ready, st.replicas_desired);
    AppendJsonString(st.model, &out);
    fmt::format_to(std::back_inserter(out), ",\"tensor_parallel_size\":{},\"routes\":[",
                   st.tensor_parallel_size);
    for (size_t i = 0; i < st.routes.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"path\":";
      AppendJsonString(st.routes[i].path, &out);
      out += ",\"owner\":";
      AppendJsonString(st.routes[i].owner, &out);
      out += '}';
    }
    out += "]},";
  } else {
    out += "null,";
  }
  out += "\"route_conflicts\":[";
  for (size_t i = 0; i < view.conflicts.size(); ++i) {
    const RouteConflict& c = view.conflicts[i];
    if (i > 0) out += ',';
    out += '{';
    field("path", c.path);
    field("owner", c.owner);
    field("other_cluster_id", c.other_id);
    field("other_cluster_name", c.other_name);
    field("other_owner", c.other_owner);
    out.back() = '}';
  }
  out += "]}";
}

std::string RegistryService::ListJson(std::string_view org, const ListFilter& filter) const {
  const std::vector<ClusterView> views = ListClusters(org, filter);
  const RegistryHealth health = Health();
  const double now = clock_.UnixSeconds();
  std::string out = "{\"clusters\":[";
  out.reserve(views.size() * 700);
  for (size_t i = 0; i < views.size(); ++i) {
    if (i > 0) out += ',';
    AppendClusterJson(views[i], now, out);
  }
  out += fmt::format("],\"count\":{},\"registry\":{{\"suspect\":{},\"heartbeat_interval_s\":{}}}}}",
                     views.size(), health.suspect ? "true" : "false",
                     ToSeconds(options_.liveness.interval));
  return out;
}

std::string RegistryService::RenderPage(std::string_view org) const {
  RegistryHealth health;
  // "\x01" matches no org (Snapshot("") would mean every org).
  const std::vector<ClusterView> views = Snapshot(org.empty() ? "\x01" : org, &health);
  const double now = clock_.UnixSeconds();
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"{}\">"
      "<title>Zumik registry</title><style>"
      "body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}"
      "table{{border-collapse:collapse;width:100%}}"
      "th,td{{border-bottom:1px solid #ddd;padding:.4em .6em;text-align:left;font-size:14px}}"
      "th{{background:#f4f4f4}} code{{font-size:13px}}"
      ".healthy{{color:#0a7a2f;font-weight:600}} .unknown{{color:#b26a00;font-weight:600}}"
      ".offline{{color:#b00020;font-weight:600}} .pending{{color:#555;font-weight:600}}"
      ".banner{{background:#fff3cd;border:1px solid #e0c36a;padding:.6em;margin-bottom:1em}}"
      ".conflict{{color:#b00020}}"
      "</style></head><body>\n<h1>Zumik registry</h1>\n",
      options_.page_refresh_s);
  html += fmt::format(
      "<p id=\"summary\">Org <b id=\"org\">{}</b>: {} cluster(s). Heartbeat interval {} s; "
      "unknown after {} s without one, offline after {} s. Refreshes every {} s.</p>\n",
      HtmlEscape(org), views.size(), ToSeconds(options_.liveness.interval),
      ToSeconds(options_.liveness.UnknownAfter()), ToSeconds(options_.liveness.offline_after),
      options_.page_refresh_s);
  if (health.suspect) {
    // No fleet-wide counts here: they would tell one org about the others.
    html +=
        "<div class=\"banner\" id=\"suspect\">Registry suspect: most recently alive clusters "
        "stopped heartbeating at once. The registry's own network or clock is the likely fault, "
        "so their status is held at its last value.</div>\n";
  }
  html +=
      "<table id=\"clusters\"><thead><tr><th>Name</th><th>ID</th><th>Profile</th>"
      "<th>Stack</th><th>Status</th><th>Last heartbeat</th><th>GPUs</th><th>Model</th>"
      "<th>Routes</th></tr></thead><tbody>\n";
  for (const ClusterView& view : views) {
    const ClusterRecord& r = view.record;
    std::string heartbeat = "never";
    if (r.last_heartbeat_unix) {
      heartbeat = fmt::format("{} ({:.0f} s ago)", FormatUnixUtc(*r.last_heartbeat_unix),
                              std::max(0.0, now - *r.last_heartbeat_unix));
    }
    std::string routes;
    if (r.status) {
      for (const RouteClaim& route : r.status->routes) {
        if (!routes.empty()) routes += "<br>";
        routes += HtmlEscape(route.path) + " (" + HtmlEscape(route.owner) + ")";
      }
    }
    for (const RouteConflict& c : view.conflicts) {
      routes += fmt::format(
          "<br><span class=\"conflict\">conflict: {} also claimed by {} ({}, "
          "{})</span>",
          HtmlEscape(c.path), HtmlEscape(c.other_name), HtmlEscape(c.other_id),
          HtmlEscape(c.other_owner));
    }
    const std::string_view liveness = LivenessName(view.liveness);
    html += fmt::format(
        "<tr data-id=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>"
        "<td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        HtmlEscape(r.id), HtmlEscape(r.name), HtmlEscape(r.id), ProfileName(r.profile),
        HtmlEscape(StackSummary(r.stack)), liveness, liveness, HtmlEscape(heartbeat),
        HtmlEscape(GpuSummary(r.status)), HtmlEscape(r.status ? r.status->model : ""), routes);
  }
  html += "</tbody></table>\n</body></html>\n";
  return html;
}

}  // namespace zumik::registry

// Helpers shared by the EPP's process-level tests (tests/epp, tests/extproc): reading
// Prometheus text, loopback addresses other than 127.0.0.1, bounded polling.
#pragma once

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <thread>

namespace zumik::epp_testing {

// Sum of the samples of every series that starts with `series` (a metric name followed by
// `{` and optionally some of its labels, or a whole series) in Prometheus text.
inline double MetricSum(std::string_view exposition, std::string_view series) {
  double total = 0;
  size_t pos = 0;
  while ((pos = exposition.find(series, pos)) != std::string_view::npos) {
    bool line_start = pos == 0 || exposition[pos - 1] == '\n';
    size_t end = exposition.find('\n', pos);
    std::string_view line = exposition.substr(pos, end - pos);
    pos = end;
    if (line_start) total += std::stod(std::string(line.substr(line.rfind(' ') + 1)));
  }
  return total;
}

// The values of label `label` over the series of `metric` in Prometheus text.
inline std::set<std::string> LabelValues(std::string_view exposition, std::string_view metric,
                                         std::string_view label) {
  std::set<std::string> values;
  std::string series = std::string(metric) + "{";
  std::string key = std::string(label) + "=\"";
  size_t pos = 0;
  while ((pos = exposition.find(series, pos)) != std::string_view::npos) {
    size_t end = exposition.find('\n', pos);
    std::string_view line = exposition.substr(pos, end - pos);
    pos = end;
    size_t at = line.find(key);
    if (at == std::string_view::npos) continue;
    at += key.size();
    values.emplace(line.substr(at, line.find('"', at) - at));
  }
  return values;
}

// Polls `condition` every 10 ms until it holds or `timeout` passes; returns its last value.
template <typename F>
bool Eventually(F condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// Polls until a TCP connection to host:port succeeds (any loopback address, e.g. 127.0.0.2).
inline bool WaitForAddress(const std::string& host, int port,
                           std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  return Eventually(
      [&] {
        boost::asio::io_context io;
        boost::asio::ip::tcp::socket socket(io);
        boost::system::error_code ec;
        socket.connect({boost::asio::ip::make_address(host, ec), static_cast<uint16_t>(port)}, ec);
        return !ec;
      },
      timeout);
}

}  // namespace zumik::epp_testing

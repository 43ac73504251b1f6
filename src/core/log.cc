#include "core/log.h"

#include <mutex>

#include "spdlog/sinks/stdout_color_sinks.h"

namespace zumik {
namespace {
std::mutex& LoggersMutex() {
  static std::mutex mu;
  return mu;
}
}  // namespace

absl::Status InitLogging(std::string_view level) {
  const auto parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError("unknown log level '" + std::string(level) +
                                      "': use one of trace, debug, info, warn, error, off");
  }
  spdlog::set_level(parsed);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e level=%l component=%n %v");
  return absl::OkStatus();
}

std::shared_ptr<spdlog::logger> Logger(const std::string& component) {
  std::lock_guard lock(LoggersMutex());
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = spdlog::stderr_color_mt(component);
  logger->set_level(spdlog::get_level());
  return logger;
}

}  // namespace zumik

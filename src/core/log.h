// Logging: spdlog with one named logger per component, logfmt-style lines on stderr.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "spdlog/spdlog.h"

namespace zumik {

// Sets the level of every logger ("trace", "debug", "info", "warn", "error", "off").
absl::Status InitLogging(std::string_view level);

// The logger for a component ("sim", "epp.scrape", ...), created on first use.
std::shared_ptr<spdlog::logger> Logger(const std::string& component);

}  // namespace zumik

// Secrets (API keys, tokens) live in this type: formatting or streaming it prints "***",
// so a secret cannot reach a log line by accident. Read the value only where it is used.
#pragma once

#include <ostream>
#include <string>
#include <utility>

#include "fmt/format.h"

namespace zumik {

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  const std::string& Reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

 private:
  std::string value_;
};

inline std::ostream& operator<<(std::ostream& os, const Secret&) { return os << "***"; }

}  // namespace zumik

template <>
struct fmt::formatter<zumik::Secret> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const zumik::Secret&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("***", ctx);
  }
};

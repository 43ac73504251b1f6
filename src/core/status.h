// Error model: absl::Status / absl::StatusOr across module boundaries, plus the
// RETURN_IF_ERROR / ASSIGN_OR_RETURN macros that keep call sites short.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "fmt/format.h"

// Note: Debian's Abseil (20220623) has its own absl::string_view, distinct from
// std::string_view, so absl::StrCat and friends do not take std::string_view. Build messages
// with fmt::format (or the helpers below) and read messages with MessageOf().
namespace zumik {

// A status with a formatted message: Errorf(absl::StatusCode::kNotFound, "no model '{}'", m).
template <typename... Args>
absl::Status Errorf(absl::StatusCode code, fmt::format_string<Args...> format, Args&&... args) {
  return absl::Status(code, fmt::format(format, std::forward<Args>(args)...));
}

inline std::string_view MessageOf(const absl::Status& status) {
  const auto message = status.message();
  return std::string_view(message.data(), message.size());
}

}  // namespace zumik

#define ZUMIK_STATUS_CONCAT_INNER(a, b) a##b
#define ZUMIK_STATUS_CONCAT(a, b) ZUMIK_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` yields a non-OK status.
#define RETURN_IF_ERROR(expr)                      \
  do {                                             \
    ::absl::Status zumik_status_ = (expr);         \
    if (!zumik_status_.ok()) return zumik_status_; \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, MaybeX());` declares x from an OK StatusOr, else returns its status.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ZUMIK_ASSIGN_OR_RETURN_IMPL(ZUMIK_STATUS_CONCAT(zumik_statusor_, __LINE__), lhs, expr)
// NOLINTBEGIN(bugprone-macro-parentheses): `tmp` is a name being declared and `lhs` a
// declaration (`auto x`); neither can be parenthesised.
#define ZUMIK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)

// Low-level text helpers of the OpenAI layer: UTF-8 validation and JSON string escaping that
// append into a caller's buffer, so per-token streaming never builds a JSON DOM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zumik::sim {

// Offset of the first byte that does not start a well-formed UTF-8 sequence (RFC 3629:
// no overlong forms, no surrogates U+D800..U+DFFF, nothing above U+10FFFF, no truncated
// sequences), or nullopt when `text` is valid UTF-8.
std::optional<size_t> FindInvalidUtf8(std::string_view text);

// Appends `text` as a quoted JSON string. Escapes '"', '\\' and all control characters;
// passes valid non-ASCII UTF-8 through unchanged and replaces ill-formed bytes with U+FFFD,
// so the output is valid JSON whatever the input.
void AppendJsonString(std::string_view text, std::string* out);

// Appends a decimal integer (no allocation).
void AppendInt(int64_t value, std::string* out);

}  // namespace zumik::sim

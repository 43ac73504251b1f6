// Low-level text helpers of the OpenAI layer: UTF-8 validation and JSON string escaping that
// append into a caller's buffer, so per-token streaming never builds a JSON DOM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/utf8.h"

namespace zumik::sim {

using ::zumik::FindInvalidUtf8;  // core/utf8.h

// Appends `text` as a quoted JSON string. Escapes '"', '\\' and all control characters;
// passes valid non-ASCII UTF-8 through unchanged and replaces ill-formed bytes with U+FFFD,
// so the output is valid JSON whatever the input.
void AppendJsonString(std::string_view text, std::string* out);

// Appends a decimal integer (no allocation).
void AppendInt(int64_t value, std::string* out);

}  // namespace zumik::sim

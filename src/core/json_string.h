// JSON text written by hand: string escaping and integers appended into a caller's buffer, so
// hot paths (the simulator's per-token streaming, the registry's cluster list) never build a
// JSON DOM.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zumik {

// Appends `text` as a quoted JSON string. Escapes '"', '\\' and all control characters;
// passes valid non-ASCII UTF-8 through unchanged and replaces ill-formed bytes with U+FFFD,
// so the output is valid JSON whatever the input.
void AppendJsonString(std::string_view text, std::string* out);

// Appends a decimal integer (no allocation).
void AppendInt(int64_t value, std::string* out);

}  // namespace zumik

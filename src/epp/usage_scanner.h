// Token usage from one JSON document (a whole response body or one SSE event), two ways:
// ScanUsage walks the bytes without building a DOM or allocating; ParseUsage builds a
// boost::json DOM. ScanUsage answers only for documents it fully understands (valid JSON and
// UTF-8, no \u escapes, plain integers in the usage fields, no repeated keys that
// matter, nesting within the DOM parser's limit) and then agrees with ParseUsage; anything
// else is kUnsure and the caller falls back to ParseUsage.
#pragma once

#include <string_view>

#include "epp/usage_parser.h"

namespace zumik::epp {

// `found` fields are -1 when the document does not give them (as in Usage).
enum class ScanResult { kFound, kUnsure };
ScanResult ScanUsage(std::string_view json, Usage& found);

// The reference reading: `{"usage":{...}}` or the Responses API's
// `{"response":{"usage":{...}}}`; prompt_tokens|input_tokens, completion_tokens|output_tokens,
// (prompt|input)_tokens_details.cached_tokens. Invalid JSON gives nothing.
void ParseUsage(std::string_view json, Usage& found);

}  // namespace zumik::epp

// The generated text of each choice in one JSON document (a whole completion body or one SSE
// event): completions' `text`, chat's `delta.content` (streamed) or `message.content`. The
// prefix index learns it when a policy indexes responses (usage_parser.h collects it), one text
// per sample when the request asked for `n` > 1. Two readings, as for usage
// (usage_scanner.h): ScanChoiceTexts walks the bytes without a DOM and answers only for
// documents it fully understands, agreeing with ParseChoiceTexts, the boost::json reference;
// AppendChoiceTexts uses the scan and falls back to the DOM.
#pragma once

#include <boost/json/value.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "epp/usage_scanner.h"

namespace zumik::epp {

// Choice i's text is appended to (*texts)[i], for every i < texts->size(). Choice i is the
// first object in `choices` whose `index` is i (a missing index counts as 0: the only choice);
// others are ignored. Its text is `text` if the choice has that key, else `delta.content`,
// else `message.content`; appended only when it is a string. Invalid JSON appends nothing.
void ParseChoiceTexts(std::string_view json, std::vector<std::string>* texts);
// kFound: the texts (possibly none) are appended; kUnsure: nothing is, ask ParseChoiceTexts.
ScanResult ScanChoiceTexts(std::string_view json, std::vector<std::string>* texts);
void AppendChoiceTexts(std::string_view json, std::vector<std::string>* texts);

// The Responses API's generated text in one JSON document: a streamed
// `response.output_text.delta` event's `delta`, or, in a whole response (`"object":
// "response"`), the `text` of every `output_text` part of its `message` output items, in order.
// Other events (response.completed repeats the whole text) and items (reasoning, function
// calls) append nothing; so does invalid JSON. A DOM reading, only for documents that can hold
// text: delta events are small, and a whole response is read once.
void AppendResponsesText(std::string_view json, std::string* out);
// The same, from a document already parsed (a whole response the caller read for more).
void AppendResponsesText(const boost::json::value& root, std::string* out);

}  // namespace zumik::epp

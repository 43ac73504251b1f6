// libFuzzer target: the EPP body parser (and the usage parser) on arbitrary bytes for every
// API kind; the first byte picks the kind. Must never crash, leak or read out of bounds, and
// the body, usage and choice-text scans must agree with the DOM readings of the same bytes, and
// the response model-name restorer must give the same bytes however the response is chunked.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "epp/body_parser.h"
#include "epp/choice_text.h"
#include "epp/model_rewrite.h"
#include "epp/usage_parser.h"
#include "epp/usage_scanner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  auto kind = static_cast<zumik::epp::ApiKind>(data[0] % 4);
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto result = zumik::epp::ParseBody(kind, body);
  if (result.ok && result.body.model.empty()) __builtin_trap();
  // Borrowing the prompt changes where it is, never what it is; a borrowed one is in the body.
  auto borrowing = zumik::epp::ParseBody(kind, body, /*borrow_prompt=*/true);
  if (borrowing.ok != result.ok || borrowing.body.Prompt() != result.body.Prompt()) {
    __builtin_trap();
  }
  if (const std::string_view borrowed = borrowing.body.borrowed_prompt;
      borrowed.data() != nullptr &&
      (borrowed.data() < body.data() ||
       borrowed.data() + borrowed.size() > body.data() + body.size())) {
    __builtin_trap();
  }
  // The DOM-free body scan must agree with the DOM reading whenever it answers.
  zumik::epp::ParsedBody scanned_body;
  if (zumik::epp::ScanBody(kind, body, scanned_body)) {
    auto dom = zumik::epp::ParseBodyWithDom(kind, body);
    if (!dom.ok || dom.body.model != scanned_body.model ||
        dom.body.Prompt() != scanned_body.Prompt() || dom.body.stream != scanned_body.stream ||
        dom.body.include_usage != scanned_body.include_usage ||
        dom.body.cache_salt != scanned_body.cache_salt || dom.body.n != scanned_body.n ||
        dom.body.prompts != scanned_body.prompts ||
        dom.body.batch_bytes != scanned_body.batch_bytes) {
      __builtin_trap();
    }
  }
  zumik::epp::UsageParser usage;
  usage.set_streaming(data[0] & 0x80);
  usage.set_collect_text(data[0] & 0x40, zumik::epp::UsageParser::TextSource::kChoice,
                         1 + data[0] % 3);
  usage.Feed(body.substr(0, body.size() / 2));
  usage.Feed(body.substr(body.size() / 2));
  usage.Finish();
  // The DOM-free usage scan must agree with the DOM reading whenever it answers.
  zumik::epp::Usage scanned, parsed;
  if (zumik::epp::ScanUsage(body, scanned) == zumik::epp::ScanResult::kFound) {
    zumik::epp::ParseUsage(body, parsed);
    if (scanned.prompt_tokens != parsed.prompt_tokens ||
        scanned.completion_tokens != parsed.completion_tokens ||
        scanned.cached_tokens != parsed.cached_tokens) {
      __builtin_trap();
    }
  }
  // The DOM-free choice-text scan must agree with the DOM reading whenever it answers.
  std::vector<std::string> scanned_texts(3), parsed_texts(3);
  if (zumik::epp::ScanChoiceTexts(body, &scanned_texts) == zumik::epp::ScanResult::kFound) {
    zumik::epp::ParseChoiceTexts(body, &parsed_texts);
    if (scanned_texts != parsed_texts) __builtin_trap();
  } else if (scanned_texts != std::vector<std::string>(3)) {
    __builtin_trap();  // an unsure scan appends nothing
  }
  std::string responses_text;
  zumik::epp::AppendResponsesText(body, &responses_text);
  // A served name short enough for the input to contain it; chunk sizes taken from the input.
  const std::string_view served = body.substr(0, std::min<size_t>(body.size(), data[0] % 8));
  std::string whole, chunked;
  zumik::epp::ModelNameRestorer(served, "client").Feed(body, true, whole);
  zumik::epp::ModelNameRestorer restorer(served, "client");
  const size_t step = 1 + data[0] % 13;
  for (size_t at = 0; at < body.size(); at += step) {
    restorer.Feed(body.substr(at, step), false, chunked);
  }
  restorer.Feed({}, true, chunked);
  if (whole != chunked) __builtin_trap();
  return 0;
}

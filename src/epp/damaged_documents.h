// Test helper for the JSON scans (usage_scanner_test.cc, choice_text_test.cc): every truncation
// of a document and every single-byte change of it to one of a set of bytes, so a test can
// check that a scan never disagrees with the DOM reading on damaged input.
#pragma once

#include <string>
#include <string_view>

namespace zumik::epp {

// Bytes that change a JSON document's structure or validity: brackets, quotes, separators,
// number and literal characters, whitespace, escapes and invalid or partial UTF-8.
inline constexpr std::string_view kDamageBytes = "{}[]\":,0-9.eE \\tnu\x80\xbf\xc3\xe2\xed\xf0\xff";

template <typename Fn>
void ForEachDamaged(std::string_view doc, Fn&& fn) {
  for (size_t n = 0; n < doc.size(); ++n) fn(doc.substr(0, n));
  for (size_t i = 0; i < doc.size(); ++i) {
    for (char byte : kDamageBytes) {
      std::string changed(doc);
      changed[i] = byte;
      fn(std::string_view(changed));
    }
  }
}

}  // namespace zumik::epp

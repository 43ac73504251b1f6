// UTF-8 validation (RFC 3629: no overlong forms, no surrogates U+D800..U+DFFF, nothing above
// U+10FFFF, no truncated sequences), shared by the simulator's OpenAI layer and the EPP's
// JSON scans. Header-only: the scans call it per non-ASCII byte.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace zumik {

// Length of the well-formed UTF-8 sequence starting at text[i] (a byte >= 0x80), or 0.
inline size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const size_t left = text.size() - i;
  const unsigned char b0 = byte(i);
  const auto cont = [&](size_t k) { return (byte(i + k) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    return left >= 2 && cont(1) ? 2 : 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char b1 = byte(i + 1);
    // E0 needs A0..BF (no overlong); ED needs 80..9F (no surrogates).
    if (b0 == 0xE0 && b1 < 0xA0) return 0;
    if (b0 == 0xED && b1 > 0x9F) return 0;
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char b1 = byte(i + 1);
    // F0 needs 90..BF (no overlong); F4 needs 80..8F (nothing above U+10FFFF).
    if (b0 == 0xF0 && b1 < 0x90) return 0;
    if (b0 == 0xF4 && b1 > 0x8F) return 0;
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;  // 80..C1 (continuation or overlong lead) and F5..FF never start a sequence.
}

// Offset of the first byte that does not start a well-formed UTF-8 sequence, or nullopt when
// `text` is valid UTF-8. ASCII runs are skipped eight bytes at a time.
inline std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  constexpr uint64_t kHighBits = 0x8080808080808080ULL;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, text.data() + i, sizeof(word));
      if ((word & kHighBits) == 0) {
        i += 8;
        continue;
      }
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return i;
    i += length;
  }
  return std::nullopt;
}

inline bool IsUtf8(std::string_view text) { return !FindInvalidUtf8(text).has_value(); }

}  // namespace zumik

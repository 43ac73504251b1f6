// HTTP vocabulary: percent decoding, query parsing and the Request accessors.
#include "core/http/message.h"

#include <array>
#include <boost/beast/core/string.hpp>
#include <cctype>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace zumik::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether any byte of the eight in `word` is CR, LF or NUL (the classic zero-byte test, on the
// word and on it xor-ed with each of the other two bytes repeated).
bool WordHasUnsafeByte(uint64_t word) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHighs = 0x8080808080808080ULL;
  const auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHighs; };
  return (has_zero(word) | has_zero(word ^ (kOnes * '\r')) | has_zero(word ^ (kOnes * '\n'))) != 0;
}

uint64_t LoadWord(const char* p) {
  uint64_t word = 0;
  std::memcpy(&word, p, sizeof(word));
  return word;
}

}  // namespace

std::string_view MethodName(Method method) { return boost::beast::http::to_string(method); }

std::optional<std::string> PercentDecode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int hi = HexValue(text[i + 1]);
      const int lo = HexValue(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

QueryParams ParseQuery(std::string_view query) {
  QueryParams params;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    auto decoded_key = PercentDecode(key, true);
    auto decoded_value = PercentDecode(value, true);
    params.emplace_back(decoded_key ? std::move(*decoded_key) : std::string(key),
                        decoded_value ? std::move(*decoded_value) : std::string(value));
  }
  return params;
}

bool IsFramingHeader(std::string_view name) {
  // Every header of every request and response comes through here: compare only with the
  // names of the same length.
  switch (name.size()) {
    case 7:
      return boost::beast::iequals(name, "upgrade");
    case 10:
      return boost::beast::iequals(name, "connection") || boost::beast::iequals(name, "keep-alive");
    case 14:
      return boost::beast::iequals(name, "content-length");
    case 17:
      return boost::beast::iequals(name, "transfer-encoding");
    default:
      return false;
  }
}

bool IsUnsafeHeaderText(std::string_view text) {
  // Every header of every request and response goes through here. Texts of 16 bytes or more
  // are read sixteen bytes at a time where SSE2 is there (all x86-64 CPUs), the last block
  // overlapping the one before; 8 to 15 bytes as two overlapping words; shorter ones bytewise.
  const char* p = text.data();
  const size_t n = text.size();
#if defined(__SSE2__)
  if (n >= 16) {
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    const __m128i nul = _mm_setzero_si128();
    const auto unsafe = [&](const char* at) {
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
      const __m128i hits =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(block, cr), _mm_cmpeq_epi8(block, lf)),
                       _mm_cmpeq_epi8(block, nul));
      return _mm_movemask_epi8(hits) != 0;
    };
    for (size_t i = 0; i + 16 <= n; i += 16) {
      if (unsafe(p + i)) return true;
    }
    return n % 16 != 0 && unsafe(p + n - 16);
  }
#endif
  if (n >= 8) {
    for (size_t i = 0; i + 8 <= n; i += 8) {
      if (WordHasUnsafeByte(LoadWord(p + i))) return true;
    }
    return n % 8 != 0 && WordHasUnsafeByte(LoadWord(p + n - 8));
  }
  for (size_t i = 0; i < n; ++i) {
    const char c = p[i];
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

Request::Request(Message message, std::string remote_address)
    : message_(std::move(message)), remote_address_(std::move(remote_address)) {
  const std::string_view full = target();
  const size_t question = full.find('?');
  path_size_ = question == std::string_view::npos ? full.size() : question;
  if (question != std::string_view::npos) query_params_ = ParseQuery(full.substr(question + 1));
}

std::string_view Request::method_name() const { return message_.method_string(); }

std::string_view Request::target() const { return message_.target(); }

std::string_view Request::query_string() const {
  const std::string_view full = target();
  return path_size_ < full.size() ? full.substr(path_size_ + 1) : std::string_view();
}

std::optional<std::string_view> Request::QueryParam(std::string_view key) const {
  for (const auto& [name, value] : query_params_) {
    if (name == key) return std::string_view(value);
  }
  return std::nullopt;
}

std::string_view Request::Header(std::string_view name) const {
  const auto it = message_.find(name);
  if (it == message_.end()) return {};
  return it->value();
}

bool Request::HasHeader(std::string_view name) const {
  return message_.find(name) != message_.end();
}

std::string_view Request::path_suffix() const {
  const std::string_view full_path = path();
  if (!prefix_route_ || route_.size() > full_path.size()) return {};
  return full_path.substr(route_.size());
}

}  // namespace zumik::http

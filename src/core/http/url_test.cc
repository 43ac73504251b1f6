// URL parsing, resolution against a base URL (and the client's shortcut for known origins),
// percent decoding, query parsing and header text checks.
#include "core/http/url.h"

#include <boost/asio/io_context.hpp>

#include "core/http/client_connection.h"
#include "core/http/message.h"
#include "gtest/gtest.h"

namespace zumik::http {
namespace {

TEST(HostPort, BracketsAnIpv6Host) {
  EXPECT_EQ(HostPort("127.0.0.1", 8000), "127.0.0.1:8000");
  EXPECT_EQ(HostPort("localhost", 80), "localhost:80");
  EXPECT_EQ(HostPort("::1", 8000), "[::1]:8000");
  // What it writes parses back as the same host and port.
  absl::StatusOr<Url> url = ParseUrl("http://" + HostPort("::1", 8000) + "/v1/models");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8000);
}

TEST(ParseUrl, SplitsSchemeHostPortAndTarget) {
  absl::StatusOr<Url> url = ParseUrl("http://127.0.0.1:8000/v1/models?limit=2");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->scheme, "http");
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 8000);
  EXPECT_EQ(url->target, "/v1/models?limit=2");
  EXPECT_EQ(url->HostHeader(), "127.0.0.1:8000");
  EXPECT_EQ(url->Authority(), "127.0.0.1:8000");
}

TEST(ParseUrl, DefaultsPortAndPath) {
  absl::StatusOr<Url> url = ParseUrl("https://Example.com");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->tls());
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/");
  EXPECT_EQ(url->HostHeader(), "Example.com");
  EXPECT_EQ(url->Authority(), "Example.com:443");
}

TEST(ParseUrl, HandlesIpv6Literals) {
  absl::StatusOr<Url> url = ParseUrl("http://[::1]:9000/x");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->HostHeader(), "[::1]:9000");
}

TEST(ParseUrl, RejectsWhatTheClientCannotUse) {
  for (const char* bad : {"", "/relative", "ftp://host/", "http://", "http://user:pw@host/",
                          "http://host:99999/", "http://host:0/", "not a url"}) {
    absl::StatusOr<Url> url = ParseUrl(bad);
    EXPECT_EQ(url.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(ResolveUrl, JoinsPathsToTheBase) {
  absl::StatusOr<Url> url = ResolveUrl("/v1/models", "http://localhost:8080/api/");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(url->target, "/api/v1/models");
  EXPECT_EQ(url->port, 8080);
  EXPECT_EQ(ResolveUrl("/v1/models", "").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveUrl("/a b", "http://h/").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ResolveUrl("http://other:1/x", "http://h/")->host, "other");
}

TEST(PercentDecode, DecodesEscapesAndRejectsBadOnes) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(PercentDecode("a+b", /*plus_as_space=*/true), "a b");
  EXPECT_EQ(PercentDecode("a+b"), "a+b");
  EXPECT_EQ(PercentDecode("%2"), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
}

TEST(ParseQuery, DecodesPairsInOrder) {
  const QueryParams params = ParseQuery("a=1&b=x%20y&flag&&c=%zz&d=");
  const QueryParams expected = {{"a", "1"}, {"b", "x y"}, {"flag", ""}, {"c", "%zz"}, {"d", ""}};
  EXPECT_EQ(params, expected);
}

TEST(Request, ExposesPathQueryAndHeaders) {
  Request::Message message(Method::get, "/v1/clusters/byc_1?watch=true&x=%2F", 11);
  message.set("X-Custom", "yes");
  Request request(std::move(message), "127.0.0.1:5000");
  EXPECT_EQ(request.path(), "/v1/clusters/byc_1");
  EXPECT_EQ(request.query_string(), "watch=true&x=%2F");
  EXPECT_EQ(request.QueryParam("x"), "/");
  EXPECT_EQ(request.QueryParam("missing"), std::nullopt);
  EXPECT_EQ(request.Header("x-custom"), "yes");
  EXPECT_EQ(request.Header("absent"), "");
  EXPECT_EQ(request.remote_address(), "127.0.0.1:5000");
  EXPECT_EQ(request.method_name(), "GET");
}

TEST(ResolveRequestUrl, KnownOriginsGiveWhatTheFullParseGives) {
  boost::asio::io_context io;
  detail::ClientShared shared(io.get_executor(), ClientOptions());
  for (const char* text :
       {"http://127.0.0.1:8000/v1/completions", "http://127.0.0.1:8000/v1/models?x=1&y=/?z",
        "HTTPS://Example.com/a/b;c=d", "http://[::1]:9000/", "http://127.0.0.1:8000/a%20b",
        "http://127.0.0.1:8000/a#frag", "http://127.0.0.1:8000/a b", "http://127.0.0.1:0/x",
        "http://user@127.0.0.1:8000/x", "http://127.0.0.1:8000"}) {
    for (int round = 0; round < 2; ++round) {  // the second round finds the origin known
      const absl::StatusOr<Url> full = ParseUrl(text);
      const absl::StatusOr<Url> fast = detail::ResolveRequestUrl(shared, text);
      ASSERT_EQ(fast.ok(), full.ok()) << text;
      if (!full.ok()) continue;
      EXPECT_EQ(fast->scheme, full->scheme) << text;
      EXPECT_EQ(fast->host, full->host) << text;
      EXPECT_EQ(fast->port, full->port) << text;
      EXPECT_EQ(fast->target, full->target) << text;
    }
  }
  // A path is resolved against the base URL as before.
  EXPECT_EQ(detail::ResolveRequestUrl(shared, "/v1/models").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HeaderText, CarriageReturnLineFeedAndNulAreUnsafe) {
  EXPECT_FALSE(IsUnsafeHeaderText("application/json; charset=utf-8\t"));
  EXPECT_FALSE(IsUnsafeHeaderText(""));
  EXPECT_TRUE(IsUnsafeHeaderText("a\rb"));
  EXPECT_TRUE(IsUnsafeHeaderText("a\nb"));
  EXPECT_TRUE(IsUnsafeHeaderText(std::string_view("a\0b", 3)));
  EXPECT_FALSE(IsUnsafeHeaderText("\x0b\x0c\x01"));
  // Long texts are read sixteen bytes at a time: each unsafe byte is found at every position, and
  // the bytes beside it (tab, vertical tab, form feed, 0x0e, high bytes) are not unsafe.
  const std::string safe = "text/event-stream;\t\x0b\x0c\x0e\x80\xff and more";
  EXPECT_FALSE(IsUnsafeHeaderText(safe));
  for (size_t position = 0; position < safe.size(); ++position) {
    for (char unsafe : {'\r', '\n', '\0'}) {
      std::string text = safe;
      text[position] = unsafe;
      EXPECT_TRUE(IsUnsafeHeaderText(text)) << position << " " << int{unsafe};
    }
  }
}

// Texts of every length up to 40 (bytewise, one or two words, blocks with an overlapping last
// one): an unsafe byte is found at every position, and bytes that differ from one only in a
// high bit or by one are not unsafe.
TEST(HeaderText, EveryLengthAndPosition) {
  const std::string near_misses = "\x0b\x0c\x0e\x09\x8d\x8a\x80\x01\x20\xff";
  for (size_t length = 1; length <= 40; ++length) {
    std::string safe(length, 'v');
    for (size_t i = 0; i < length; ++i) safe[i] = near_misses[i % near_misses.size()];
    EXPECT_FALSE(IsUnsafeHeaderText(safe)) << length;
    for (size_t position = 0; position < length; ++position) {
      for (char unsafe : {'\r', '\n', '\0'}) {
        std::string text = safe;
        text[position] = unsafe;
        EXPECT_TRUE(IsUnsafeHeaderText(text)) << length << " " << position << " " << int{unsafe};
      }
    }
  }
}

TEST(HeaderText, FramingHeadersAreKnownInAnyCase) {
  for (std::string_view name : {"Content-Length", "content-length", "TRANSFER-ENCODING",
                                "Connection", "keep-alive", "Upgrade"}) {
    EXPECT_TRUE(IsFramingHeader(name)) << name;
  }
  // Names of the same lengths, and near misses.
  for (std::string_view name : {"Content-Type", "content-lengths", "x-forwarded-for", "Upgrades",
                                "connectiox", "keep-alivf", "transfer-encodinG1", "", "Host"}) {
    EXPECT_FALSE(IsFramingHeader(name)) << name;
  }
}

}  // namespace
}  // namespace zumik::http

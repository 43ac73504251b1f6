// Router: exact and prefix matches, 405 allow lists, HEAD falling back to GET, fallback.
#include "core/http/router.h"

#include "gtest/gtest.h"

namespace zumik::http {
namespace {

Handler Tagged(int* tag, int value) {
  return [tag, value](Request&, ResponseWriter&) -> boost::asio::awaitable<void> {
    *tag = value;
    co_return;
  };
}

TEST(Router, MatchesExactPathAndMethod) {
  Router router;
  router.Get("/v1/models",
             [](Request&, ResponseWriter&) -> boost::asio::awaitable<void> { co_return; });
  const Router::Match match = router.Find(Method::get, "/v1/models");
  ASSERT_NE(match.handler, nullptr);
  EXPECT_EQ(match.route, "/v1/models");
  EXPECT_FALSE(match.prefix);
}

TEST(Router, UnknownPathIsNotFound) {
  Router router;
  router.Get("/a", Tagged(nullptr, 1));
  const Router::Match match = router.Find(Method::get, "/b");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_TRUE(match.allow.empty());
}

TEST(Router, KnownPathWithOtherMethodListsAllowedMethods) {
  Router router;
  router.Get("/v1/clusters", Tagged(nullptr, 1));
  router.Post("/v1/clusters", Tagged(nullptr, 2));
  const Router::Match match = router.Find(Method::delete_, "/v1/clusters");
  EXPECT_EQ(match.handler, nullptr);
  EXPECT_EQ(match.allow, "GET, HEAD, POST");  // the GET handler answers HEAD
}

TEST(Router, LongestPrefixWinsAndExactBeatsPrefix) {
  Router router;
  router.HandlePrefix(Method::get, "/v1/", Tagged(nullptr, 1));
  router.HandlePrefix(Method::get, "/v1/clusters/", Tagged(nullptr, 2));
  router.Get("/v1/clusters/special", Tagged(nullptr, 3));
  EXPECT_EQ(router.Find(Method::get, "/v1/clusters/byc_1").route, "/v1/clusters/");
  EXPECT_TRUE(router.Find(Method::get, "/v1/clusters/byc_1").prefix);
  EXPECT_EQ(router.Find(Method::get, "/v1/other").route, "/v1/");
  EXPECT_EQ(router.Find(Method::get, "/v1/clusters/special").route, "/v1/clusters/special");
  EXPECT_EQ(router.Find(Method::get, "/v2").handler, nullptr);
}

TEST(Router, HeadFallsBackToGet) {
  Router router;
  router.Get("/health", Tagged(nullptr, 1));
  EXPECT_NE(router.Find(Method::head, "/health").handler, nullptr);
  EXPECT_EQ(router.Find(Method::post, "/health").allow, "GET, HEAD");
}

TEST(Router, FallbackTakesUnknownPathsButNotWrongMethods) {
  Router router;
  router.Get("/health", Tagged(nullptr, 1));
  router.SetFallback(Tagged(nullptr, 2));
  EXPECT_NE(router.Find(Method::post, "/v1/completions").handler, nullptr);
  EXPECT_EQ(router.Find(Method::post, "/health").handler, nullptr);
}

}  // namespace
}  // namespace zumik::http

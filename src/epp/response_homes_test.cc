// ResponseHomes: which endpoint stored each Responses API response, least recently used first
// out.
#include "epp/response_homes.h"

#include <gtest/gtest.h>

#include <string>

namespace zumik::epp {
namespace {

TEST(ResponseHomes, FindsTheEndpointThatAnswered) {
  ResponseHomes homes(4);
  homes.Remember("resp_1", "10.0.0.1:8000");
  homes.Remember("resp_2", "10.0.0.2:8000");
  EXPECT_EQ(homes.Find("resp_1"), "10.0.0.1:8000");
  EXPECT_EQ(homes.Find("resp_2"), "10.0.0.2:8000");
  EXPECT_EQ(homes.Find("resp_3"), std::nullopt);
  homes.Remember("resp_1", "10.0.0.3:8000");  // answered again elsewhere: the new home
  EXPECT_EQ(homes.Find("resp_1"), "10.0.0.3:8000");
  EXPECT_EQ(homes.size(), 2u);
}

TEST(ResponseHomes, ForgetsTheLeastRecentlyUsedIdPastItsCapacity) {
  ResponseHomes homes(2);
  homes.Remember("a", "e1");
  homes.Remember("b", "e2");
  EXPECT_TRUE(homes.Find("a"));  // a is now the most recently used
  homes.Remember("c", "e3");     // b goes
  EXPECT_EQ(homes.size(), 2u);
  EXPECT_EQ(homes.Find("b"), std::nullopt);
  EXPECT_EQ(homes.Find("a"), "e1");
  EXPECT_EQ(homes.Find("c"), "e3");
  for (int i = 0; i < 1000; ++i) homes.Remember("id" + std::to_string(i), "e");
  EXPECT_EQ(homes.size(), 2u);
  EXPECT_EQ(homes.Find("id999"), "e");
}

TEST(ResponseHomes, RemembersNothingWithoutCapacityOrId) {
  ResponseHomes none(0);
  none.Remember("a", "e1");
  EXPECT_EQ(none.size(), 0u);
  ResponseHomes homes(2);
  homes.Remember("", "e1");
  EXPECT_EQ(homes.size(), 0u);
}

}  // namespace
}  // namespace zumik::epp

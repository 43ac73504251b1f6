// The test-support helpers that every integration test leans on.
#include "support/process.h"

#include <gtest/gtest.h>

#include <set>

namespace zumik::testing {
namespace {

// Two servers of one test told the same port collide; the kernel may hand out one ephemeral
// port to two binds in a row, so the helper must not.
TEST(PickFreePort, NeverHandsOutAPortTwice) {
  std::set<int> ports;
  for (int i = 0; i < 300; ++i) {
    const int port = PickFreePort();
    ASSERT_GT(port, 0);
    EXPECT_TRUE(ports.insert(port).second) << "port " << port << " handed out twice";
  }
  const int base = PickFreePortRange(4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(ports.insert(base + i).second) << "port " << base + i << " handed out twice";
  }
  EXPECT_TRUE(ports.insert(PickFreePort()).second);
}

}  // namespace
}  // namespace zumik::testing

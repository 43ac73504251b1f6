#include "up/up.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

namespace zumik::up {
namespace {

using ::testing::HasSubstr;

TEST(PortPlan, GivesEveryComponentItsOwnPortFromTheBase) {
  const PortPlan p = PortPlan::From(9000, 4);
  std::set<int> ports = {p.epp_gateway, p.baseline_gateway, p.registry,
                         p.epp_metrics, p.baseline_metrics, p.prometheus};
  for (int i = 0; i < 4; ++i) {
    ports.insert(p.fleet_first + i);
    ports.insert(p.baseline_first + i);
  }
  EXPECT_EQ(ports.size(), 14u);
  EXPECT_EQ(p.epp_gateway, 9000);
  EXPECT_EQ(*ports.begin(), 9000);
  EXPECT_EQ(*ports.rbegin(), 9017);
}

TEST(UpWorkloadYaml, ScalesGroupsWithReplicasAndRunsForTheRequestedTime) {
  const std::string yaml = UpWorkloadYaml(20, 4, 3.0);
  EXPECT_THAT(yaml, HasSubstr("kind: shared-prefix"));
  EXPECT_THAT(yaml, HasSubstr("rate: 12, duration: 20s"));
  EXPECT_THAT(yaml, HasSubstr("cycle: true"));
}

}  // namespace
}  // namespace zumik::up

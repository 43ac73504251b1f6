// EppMetrics: the model label's bounds.
#include "epp/epp_metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace zumik::epp {
namespace {

TEST(EppMetrics, ModelLabelsAreBoundedInNumberAndLength) {
  auto metrics = EppMetrics::Create("pool");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EppMetrics& m = **metrics;
  const std::string longest(EppMetrics::kMaxModelNameBytes, 'x');
  const std::string too_long(EppMetrics::kMaxModelNameBytes + 1, 'x');
  EXPECT_EQ(m.BoundModel(too_long), "other");  // and it takes no place among the names
  EXPECT_EQ(m.BoundModel(longest), longest);
  for (size_t i = 1; i < EppMetrics::kMaxModelNames; ++i) {
    const std::string name = "model-" + std::to_string(i);
    EXPECT_EQ(m.BoundModel(name), name);
  }
  EXPECT_EQ(m.BoundModel("one-too-many"), "other");
  EXPECT_EQ(m.BoundModel("model-1"), "model-1");  // a name seen before keeps its label
  m.RequestStarted(m.BoundModel(too_long), m.BoundModel(too_long));
  const std::string exposed = m.registry().Expose();
  EXPECT_EQ(exposed.find(too_long), std::string::npos);
  EXPECT_NE(exposed.find(R"(model_name="other")"), std::string::npos) << exposed;
}

}  // namespace
}  // namespace zumik::epp

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
  EXPECT_EQ(m.BoundModel(""), "");             // bodiless requests: no place either
  m.ConfirmModel(longest);
  EXPECT_EQ(m.BoundModel(longest), longest);
  for (size_t i = 1; i < EppMetrics::kMaxModelNames; ++i) {
    const std::string name = "model-" + std::to_string(i);
    m.ConfirmModel(name);
    EXPECT_EQ(m.BoundModel(name), name);
  }
  m.ConfirmModel("one-too-many");
  EXPECT_EQ(m.BoundModel("one-too-many"), "other");
  EXPECT_EQ(m.BoundModel("model-1"), "model-1");  // a name seen before keeps its label
  m.RequestStarted(m.BoundModel(too_long), m.BoundModel(too_long));
  const std::string exposed = m.registry().Expose();
  EXPECT_EQ(exposed.find(too_long), std::string::npos);
  EXPECT_NE(exposed.find(R"(model_name="other")"), std::string::npos) << exposed;
}

TEST(EppMetrics, UnconfirmedNamesCannotTakeTheServedModelsLabels) {
  auto metrics = EppMetrics::Create("pool");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EppMetrics& m = **metrics;
  // A client sends made-up names: only kMaxUnconfirmedModelNames of them get a label.
  for (size_t i = 0; i < EppMetrics::kMaxUnconfirmedModelNames; ++i) {
    const std::string junk = "junk-" + std::to_string(i);
    EXPECT_EQ(m.BoundModel(junk), junk);
  }
  EXPECT_EQ(m.BoundModel("junk-more"), "other");
  EXPECT_EQ(m.BoundModel("junk-0"), "junk-0");  // still its own label once given

  // A served model seen only now: "other" until a model server answers it, then its own.
  EppMetrics::ModelSeries& first = m.Series("served", "");
  EXPECT_EQ(first.model, "other");
  m.RequestSucceeded(first, "served", "");
  EXPECT_FALSE(first.confirmed.load()) << "the shared other series is never marked confirmed";
  EppMetrics::ModelSeries& later = m.Series("served", "");
  EXPECT_EQ(later.model, "served");
  EXPECT_FALSE(later.confirmed.load());
  m.RequestSucceeded(later, "served", "");
  EXPECT_TRUE(later.confirmed.load());

  // Confirming a name that had an unconfirmed label frees its place for another name.
  EppMetrics::ModelSeries& junk0 = m.Series("junk-0", "");
  m.RequestSucceeded(junk0, "junk-0", "");
  EXPECT_TRUE(junk0.confirmed.load());
  EXPECT_EQ(m.BoundModel("junk-more"), "junk-more");
  EXPECT_EQ(m.BoundModel("junk-even-more"), "other");

  // A rewrite: both the client's name and the served target are confirmed by the success.
  EppMetrics::ModelSeries& rewritten = m.Series("alias", "target");
  EXPECT_EQ(rewritten.model, "other");
  m.RequestSucceeded(rewritten, "alias", "target");
  EXPECT_EQ(m.BoundModel("alias"), "alias");
  EXPECT_EQ(m.BoundModel("target"), "target");
}

}  // namespace
}  // namespace zumik::epp

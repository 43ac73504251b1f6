#include "core/json_path.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace zumik {
namespace {

boost::json::object Pool() {
  return boost::json::parse(
             R"({"metadata": {"name": "pool-a", "labels": {"app.kubernetes.io/name": "x"}},
                                "spec": {"poolRef": {"name": "p"}, "port": 8000, "rules": []}})")
      .as_object();
}

TEST(JsonPathTest, WalksNestedObjects) {
  const boost::json::object pool = Pool();
  ASSERT_NE(FindPath(pool, "spec.port"), nullptr);
  EXPECT_EQ(FindPath(pool, "spec.port")->as_int64(), 8000);
  EXPECT_TRUE(FindPath(pool, "spec.rules")->is_array());
  EXPECT_TRUE(FindPath(pool, "metadata")->is_object());
  EXPECT_EQ(StringAt(pool, "spec.poolRef.name"), "p");
}

TEST(JsonPathTest, MissingStepsAndNonObjectsGiveNothing) {
  const boost::json::object pool = Pool();
  EXPECT_EQ(FindPath(pool, "spec.missing"), nullptr);
  EXPECT_EQ(FindPath(pool, "status.podIP"), nullptr);
  // "spec.port" is a number, so it has no members to descend into.
  EXPECT_EQ(FindPath(pool, "spec.port.value"), nullptr);
  EXPECT_EQ(FindPath(pool, ""), nullptr);
  EXPECT_EQ(StringAt(pool, "spec.port"), "");  // not a string
  EXPECT_EQ(StringAt(pool, "metadata.uid"), "");
}

TEST(JsonPathTest, KeysAreWholeSegmentsBetweenDots) {
  // A label key with dots cannot be reached by a dotted path; its parent object can.
  const boost::json::object pool = Pool();
  EXPECT_EQ(FindPath(pool, "metadata.labels.app.kubernetes.io/name"), nullptr);
  const boost::json::value* labels = FindPath(pool, "metadata.labels");
  ASSERT_NE(labels, nullptr);
  EXPECT_EQ(labels->as_object().at("app.kubernetes.io/name").as_string(), "x");
}

}  // namespace
}  // namespace zumik

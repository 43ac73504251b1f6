// The Store contract on SQLite files (tests/registry runs it on PostgreSQL).
#include <atomic>

#include "core/testing/temp_dir.h"
#include "registry/store_test_suite.h"

namespace zumik::registry::testing {
namespace {

std::string FreshSqliteUrl() {
  static std::atomic<int> counter{0};
  static const std::string dir = ::zumik::testing::MakeTempDir("zumik-registry-store");
  return "sqlite:" + dir + "/store-" + std::to_string(counter++) + ".db";
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StoreContract,
                         ::testing::Values(StoreBackend{"sqlite", FreshSqliteUrl}), PrintBackend);

TEST(OpenStore, RejectsAnUnknownScheme) {
  EXPECT_EQ(OpenStore("mysql://x").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OpenStore, ReportsAnUnreachablePostgresAsUnavailable) {
  // Port 1 on loopback: nothing listens there.
  auto store = OpenStore("postgres://nobody@127.0.0.1:1/none?connect_timeout=2");
  EXPECT_EQ(store.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace zumik::registry::testing

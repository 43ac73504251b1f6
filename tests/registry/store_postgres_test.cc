// The Store contract (src/registry/store_test_suite.h) on a real PostgreSQL 15 server.
#include <atomic>

#include "postgres_instance.h"
#include "registry/store_test_suite.h"

namespace zumik::registry::testing {
namespace {

::zumik::testing::PostgresInstance* g_postgres = nullptr;

class PostgresEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    g_postgres = new ::zumik::testing::PostgresInstance();
    const std::string error = g_postgres->Start();
    ASSERT_EQ(error, "");
  }
  void TearDown() override {
    delete g_postgres;
    g_postgres = nullptr;
  }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

// Each test gets its own schema.
std::string FreshPostgresUrl() {
  static std::atomic<int> counter{0};
  std::string url = g_postgres->FreshSchemaUrl("store_" + std::to_string(counter++));
  EXPECT_NE(url, "");
  return url;
}

INSTANTIATE_TEST_SUITE_P(Postgres, StoreContract,
                         ::testing::Values(StoreBackend{"postgres", FreshPostgresUrl}),
                         PrintBackend);

}  // namespace
}  // namespace zumik::registry::testing

// The reflector against the API test double: list + watch, relist on 410 Gone, bookmarks,
// reconnects and backoff.
#include "kube/reflector.h"

#include <gtest/gtest.h>

#include <mutex>

#include "core/http/test_util.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"

namespace zumik::kube {
namespace {

using http::testing::IoThreads;
using testing::FakeApiServer;
using testing::MakePod;

// Records what the handler saw.
struct Recorder {
  std::mutex mu;
  std::vector<std::vector<std::string>> snapshots;  // keys per call

  Reflector::Handler Handler() {
    return [this](const Reflector::Store& store) {
      std::vector<std::string> keys;
      for (const auto& [key, object] : store) keys.push_back(key);
      std::lock_guard lock(mu);
      snapshots.push_back(std::move(keys));
    };
  }
  size_t calls() {
    std::lock_guard lock(mu);
    return snapshots.size();
  }
  std::vector<std::string> last() {
    std::lock_guard lock(mu);
    return snapshots.empty() ? std::vector<std::string>{} : snapshots.back();
  }
};

ReflectorOptions FastOptions() {
  ReflectorOptions options;
  options.backoff.initial = std::chrono::milliseconds(1);
  options.backoff.max = std::chrono::milliseconds(20);
  return options;
}

class ReflectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    client_ = std::make_unique<Client>(io_.io().get_executor(), api_.ClientConfig());
  }
  void TearDown() override {
    if (reflector_) reflector_->Stop();
    reflector_.reset();
    client_.reset();
    api_.Stop();
  }
  void StartReflector(ReflectorOptions options = FastOptions()) {
    reflector_ = std::make_unique<Reflector>(io_.io().get_executor(), *client_, kPods, "ns",
                                             ListOptions{}, options, recorder_.Handler());
    reflector_->Start();
  }
  bool WaitForKeys(const std::vector<std::string>& keys) {
    return FakeApiServer::WaitFor([&] { return recorder_.last() == keys; });
  }

  FakeApiServer api_;
  IoThreads io_{2};
  std::unique_ptr<Client> client_;
  Recorder recorder_;
  std::unique_ptr<Reflector> reflector_;
};

TEST_F(ReflectorTest, ListsThenAppliesWatchEvents) {
  api_.Upsert(kPods, MakePod("a", "ns", {}, "10.0.0.1", true));
  api_.Upsert(kPods, MakePod("x", "other", {}, "10.0.0.9", true));
  StartReflector();
  ASSERT_TRUE(WaitForKeys({"ns/a"}));
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 1; }));
  api_.Upsert(kPods, MakePod("b", "ns", {}, "10.0.0.2", true));
  ASSERT_TRUE(WaitForKeys({"ns/a", "ns/b"}));
  api_.Remove(kPods, "ns", "a");
  ASSERT_TRUE(WaitForKeys({"ns/b"}));
  const ReflectorStats stats = reflector_->stats();
  EXPECT_EQ(stats.lists, 1u);
  EXPECT_EQ(stats.events, 2u);
  EXPECT_EQ(stats.gone, 0u);
}

TEST_F(ReflectorTest, RelistsAfterGoneAndSeesChangesMadeMeanwhile) {
  api_.Upsert(kPods, MakePod("a", "ns", {}, "10.0.0.1", true));
  StartReflector();
  ASSERT_TRUE(WaitForKeys({"ns/a"}));
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 1; }));
  api_.ExpireWatches();
  api_.Upsert(kPods, MakePod("c", "ns", {}, "10.0.0.3", true));
  ASSERT_TRUE(WaitForKeys({"ns/a", "ns/c"}));
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return reflector_->stats().gone >= 1; }));
  EXPECT_GE(reflector_->stats().lists, 2u);
}

TEST_F(ReflectorTest, BookmarksAdvanceTheResourceVersionWithoutCallingTheHandler) {
  StartReflector();
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 1; }));
  // Changes in another namespace move the version without events for this reflector.
  api_.Upsert(kPods, MakePod("x", "other", {}, "10.0.0.9", true));
  const size_t calls = recorder_.calls();
  api_.SendBookmarks();
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return reflector_->stats().bookmarks == 1; }));
  EXPECT_EQ(reflector_->stats().resource_version, api_.resource_version());
  EXPECT_EQ(recorder_.calls(), calls);
}

TEST_F(ReflectorTest, RewatchesFromTheLastVersionAfterADisconnect) {
  StartReflector();
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 1; }));
  api_.DisconnectWatches();
  api_.Upsert(kPods, MakePod("late", "ns", {}, "10.0.0.4", true));
  ASSERT_TRUE(WaitForKeys({"ns/late"}));
  EXPECT_GE(reflector_->stats().watches, 2u);
  EXPECT_EQ(reflector_->stats().lists, 1u);  // a re-watch, not a relist
}

TEST_F(ReflectorTest, BacksOffAfterFailuresAndRecovers) {
  api_.Upsert(kPods, MakePod("a", "ns", {}, "10.0.0.1", true));
  api_.FailNextRequests(3, 503);
  StartReflector();
  ASSERT_TRUE(WaitForKeys({"ns/a"}));
  EXPECT_EQ(reflector_->stats().errors, 3u);
  EXPECT_EQ(reflector_->stats().lists, 1u);
}

TEST_F(ReflectorTest, StopEndsTheWatchAndNoHandlerRunsAfterwards) {
  StartReflector();
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 1; }));
  reflector_->Stop();
  const size_t calls = recorder_.calls();
  api_.Upsert(kPods, MakePod("after", "ns", {}, "10.0.0.5", true));
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 0; }));
  EXPECT_EQ(recorder_.calls(), calls);
}

TEST(Backoff, GrowsExponentiallyWithinJitterUpToTheCap) {
  Backoff backoff;
  backoff.initial = std::chrono::milliseconds(100);
  backoff.max = std::chrono::seconds(2);
  backoff.jitter = 0.2;
  Rng rng(7);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double expected = std::min(0.1 * std::pow(2.0, attempt), 2.0);
    for (int i = 0; i < 50; ++i) {
      const double got = ToSeconds(backoff.Delay(attempt, rng));
      EXPECT_GE(got, expected * 0.8 - 1e-9);
      EXPECT_LE(got, expected * 1.2 + 1e-9);
    }
  }
  // Jitter spreads clients apart: not every draw is the same.
  Rng a(1);
  EXPECT_NE(backoff.Delay(3, a), backoff.Delay(3, a));
}

}  // namespace
}  // namespace zumik::kube

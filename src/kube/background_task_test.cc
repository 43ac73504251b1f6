// The watchers' start/stop bookkeeping: one start, a Stop that cuts a sleep short and waits for
// the coroutine, idempotence, and a coroutine that throws.
#include "kube/background_task.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>

#include "core/http/test_util.h"

namespace zumik::kube {
namespace {

using http::testing::IoThreads;
using std::chrono::steady_clock;

// Sleeps an hour at a time until stopped; counts its wake-ups.
boost::asio::awaitable<void> SleepUntilStopped(BackgroundTask& task, std::atomic<int>& wakeups,
                                               std::atomic<bool>& ended) {
  while (!task.Stopping()) {
    co_await task.Sleep(std::chrono::hours(1));
    ++wakeups;
  }
  ended = true;
}

TEST(BackgroundTaskTest, StopCutsTheSleepShortAndWaitsForTheCoroutine) {
  IoThreads io;
  BackgroundTask task(io.io().get_executor());
  std::atomic<int> wakeups = 0;
  std::atomic<bool> ended = false;
  ASSERT_TRUE(task.Start(SleepUntilStopped(task, wakeups, ended), "sleeper"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(ended);

  const auto start = steady_clock::now();
  bool ran_under_lock = false;
  EXPECT_TRUE(task.Stop([&] {
    // mu() is held here: another thread cannot take it.
    std::thread probe([&] { ran_under_lock = !task.mu().try_lock(); });
    probe.join();
  }));
  EXPECT_TRUE(ran_under_lock);
  EXPECT_TRUE(ended);  // Stop returned only after the coroutine ended
  EXPECT_EQ(wakeups, 1);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_TRUE(task.Stopping());
}

TEST(BackgroundTaskTest, StartsOnceAndNotAfterStop) {
  IoThreads io;
  std::atomic<int> wakeups = 0;
  std::atomic<bool> ended = false;
  {
    BackgroundTask task(io.io().get_executor());
    ASSERT_TRUE(task.Start(SleepUntilStopped(task, wakeups, ended), "first"));
    EXPECT_FALSE(task.Start(SleepUntilStopped(task, wakeups, ended), "second"));
    EXPECT_TRUE(task.Stop());
    EXPECT_FALSE(task.Stop());  // idempotent
    EXPECT_TRUE(ended);         // the first coroutine ran and ended
  }
  EXPECT_LE(wakeups, 1);  // the second never ran

  BackgroundTask stopped(io.io().get_executor());
  EXPECT_TRUE(stopped.Stop());  // never started: nothing to wait for
  std::atomic<bool> never = false;
  EXPECT_FALSE(stopped.Start(SleepUntilStopped(stopped, wakeups, never), "late"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(never);
}

boost::asio::awaitable<void> Throw() {
  throw std::runtime_error("boom");
  co_return;
}

TEST(BackgroundTaskTest, ACoroutineThatThrowsEndsTheTaskAndStopStillReturns) {
  IoThreads io;
  BackgroundTask task(io.io().get_executor());
  ASSERT_TRUE(task.Start(Throw(), "thrower"));
  EXPECT_TRUE(task.Stop());
}

}  // namespace
}  // namespace zumik::kube

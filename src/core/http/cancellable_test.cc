// RunCancellable: the value of the work, or on_cancel()'s for an operation_aborted exception
// (what asio throws from a cancelled coroutine's next co_await); other exceptions propagate.
#include "core/http/cancellable.h"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>
#include <future>
#include <memory>
#include <stdexcept>

#include "core/http/test_util.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;

asio::awaitable<int> Returns(int value) { co_return value; }

asio::awaitable<int> Throws(boost::system::error_code code) {
  throw boost::system::system_error(code, "co_await");
  co_return 0;
}

asio::awaitable<int> Cancellable(asio::awaitable<int> work, bool* cleaned_up) {
  auto on_cancel = [cleaned_up] {
    *cleaned_up = true;
    return -1;
  };
  // Named first: GCC 12 may destroy a temporary inside a co_await expression twice.
  asio::awaitable<int> run =
      RunCancellable(co_await asio::this_coro::executor, std::move(work), on_cancel);
  co_return co_await std::move(run);
}

TEST(RunCancellable, ReturnsTheWorksValue) {
  testing::IoThreads io(1);
  bool cleaned_up = false;
  EXPECT_EQ(testing::RunOn(io.io(), Cancellable(Returns(7), &cleaned_up)), 7);
  EXPECT_FALSE(cleaned_up);
}

TEST(RunCancellable, TurnsTheCancellationExceptionIntoOnCancel) {
  testing::IoThreads io(1);
  bool cleaned_up = false;
  EXPECT_EQ(
      testing::RunOn(io.io(), Cancellable(Throws(asio::error::operation_aborted), &cleaned_up)),
      -1);
  EXPECT_TRUE(cleaned_up);
}

TEST(RunCancellable, LetsOtherExceptionsThrough) {
  testing::IoThreads io(1);
  bool cleaned_up = false;
  EXPECT_THROW(
      testing::RunOn(io.io(), Cancellable(Throws(asio::error::connection_reset), &cleaned_up)),
      boost::system::system_error);
  EXPECT_FALSE(cleaned_up);
}

// What RunCancellable is for: a coroutine of its own (as the client runs a request on its
// connection) that its caller's cancellation reaches between two of its awaits.
class CancelledBetweenAwaits : public ::testing::Test {
 protected:
  asio::awaitable<int> Work() {
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    signal_.emit(asio::cancellation_type::terminal);  // as a server's, when its client leaves
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    co_return 7;
  }
  template <typename Awaitable>
  std::future<int> Spawn(Awaitable work) {
    auto result = std::make_shared<std::promise<int>>();
    asio::co_spawn(io_.io(), std::move(work),
                   asio::bind_cancellation_slot(
                       signal_.slot(), [result](const std::exception_ptr& error, int value) {
                         if (error) {
                           result->set_exception(error);
                         } else {
                           result->set_value(value);
                         }
                       }));
    return result->get_future();
  }

  asio::cancellation_signal signal_;  // declared first: it outlives the io thread
  testing::IoThreads io_{1};
};

TEST_F(CancelledBetweenAwaits, AsioThrowsFromTheNextAwaitOfAPlainCoSpawn) {
  auto plain = [this]() -> asio::awaitable<int> {
    asio::awaitable<int> spawned =
        asio::co_spawn(co_await asio::this_coro::executor, Work(), asio::use_awaitable);
    co_return co_await std::move(spawned);
  };
  EXPECT_THROW(Spawn(plain()).get(), boost::system::system_error);
}

TEST_F(CancelledBetweenAwaits, RunCancellableReturnsOnCancelInstead) {
  bool cleaned_up = false;
  EXPECT_EQ(Spawn(Cancellable(Work(), &cleaned_up)).get(), -1);
  EXPECT_TRUE(cleaned_up);
}

}  // namespace
}  // namespace zumik::http

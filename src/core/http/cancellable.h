// RunCancellable: runs a coroutine as its own asio "thread" on another executor (a client
// connection's strand), with the caller's cancellation forwarded to it as co_spawn does, and
// without the exception asio raises for a cancellation that arrives between two awaits.
//
// A coroutine started by co_spawn throws operation_aborted from its next co_await once its
// cancellation state is cancelled (this_coro::throw_if_cancelled defaults to true: asio
// impl/awaitable.hpp await_transform). An operation that is pending when the cancellation
// arrives completes with operation_aborted instead, which the client turns into a Status; one
// started just after it would throw out of the client into a caller that expects a Status (a
// server handler whose client left as its upstream request was connecting, say).
// RunCancellable catches that exception and returns `on_cancel()` instead.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>
#include <utility>

namespace zumik::http {

// `on_cancel()` runs on `executor` and returns the T a cancelled `work` stands for (and cleans
// up what `work` left half done). Any other exception propagates.
template <typename T, typename OnCancel>
boost::asio::awaitable<T> RunCancellable(boost::asio::any_io_executor executor,
                                         boost::asio::awaitable<T> work, OnCancel on_cancel) {
  auto body = [work = std::move(work),
               on_cancel = std::move(on_cancel)]() mutable -> boost::asio::awaitable<T> {
    try {
      co_return co_await std::move(work);
    } catch (const boost::system::system_error& e) {
      if (e.code() != boost::asio::error::operation_aborted) throw;
    }
    co_return on_cancel();
  };
  // Named first: GCC 12 may destroy a temporary inside a co_await expression twice.
  boost::asio::awaitable<T> spawned =
      boost::asio::co_spawn(std::move(executor), std::move(body), boost::asio::use_awaitable);
  co_return co_await std::move(spawned);
}

}  // namespace zumik::http

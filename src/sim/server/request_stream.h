// The handler's side of a replica's engine requests (replica.cc, responses_handler.cc): the
// per-step updates the engine driver posts, and the guard that aborts the requests of a
// handler that ends early.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <mutex>
#include <vector>

#include "core/http/server.h"
#include "sim/openai_error.h"
#include "sim/server/replica.h"

namespace zumik::sim {

namespace asio = boost::asio;

// The handler's side of one HTTP request: the latest cumulative update of each of its engine
// requests (its choices), the choices updated since the handler last looked (in the order the
// driver posted them), and the wake-up of a handler waiting in Next. The driver (on its own
// strand) and the handler (on its connection's strand) share the updates under a mutex; the
// wake-up is a one-slot concurrent channel, so each step costs one hand-off to the handler's
// strand (the receive's completion), however many choices it updated. A waiting receive is
// cancelled per operation when the client goes, and the channel's service destroys one still
// waiting at io_context shutdown, so nothing is left holding the handler's coroutine.
class RequestStream {
 public:
  RequestStream(const asio::any_io_executor& executor, size_t num_choices)
      : latest_(num_choices), unread_(num_choices, false), wake_(executor, 1) {}

  // Driver side, any thread: hands `update` to the handler (coalescing with one of the same
  // choice it has not read yet).
  void Post(const StreamUpdate& update) {
    {
      std::lock_guard lock(mu_);
      StreamUpdate& latest = latest_[update.choice];
      const int cached = std::max(latest.cached_tokens, update.cached_tokens);
      const int prompt = std::max(latest.prompt_tokens, update.prompt_tokens);
      latest = update;
      latest.cached_tokens = cached;
      latest.prompt_tokens = prompt;
      if (!unread_[update.choice]) {
        unread_[update.choice] = true;
        order_.push_back(update.choice);
      }
    }
    // Fails only while a wake-up is already pending, which then covers this update too.
    wake_.try_send(boost::system::error_code());
  }

  // Handler side: replaces *updates with the choices' updates since the last call (at least
  // one); false once the client has gone.
  asio::awaitable<bool> Next(const http::ResponseWriter& writer,
                             std::vector<StreamUpdate>* updates) {
    for (;;) {
      if (Take(updates)) co_return true;
      if (writer.client_gone()) co_return false;
      // A wake-up left from an update already taken just comes round this loop again.
      boost::system::error_code ec;
      co_await wake_.async_receive(asio::redirect_error(asio::use_awaitable, ec));
      const auto cancelled = (co_await asio::this_coro::cancellation_state).cancelled();
      if (cancelled != asio::cancellation_type::none) co_return false;
    }
  }

 private:
  bool Take(std::vector<StreamUpdate>* updates) {
    updates->clear();
    std::lock_guard lock(mu_);
    for (const int choice : order_) {
      updates->push_back(latest_[choice]);
      unread_[choice] = false;
    }
    order_.clear();
    return !updates->empty();
  }

  std::mutex mu_;
  std::vector<StreamUpdate> latest_;  // guarded by mu_
  std::vector<bool> unread_;          // guarded by mu_
  std::vector<int> order_;            // guarded by mu_: the unread choices, in posting order
  asio::experimental::concurrent_channel<void(boost::system::error_code)> wake_;
};

// However the handler ends (client gone, write error, server stop), the engine forgets all of
// its requests unless `done` was set (Replica::Launch also aborts them when the client goes).
struct InFlightRequests {
  std::weak_ptr<Replica> replica;
  std::shared_ptr<const std::vector<RequestId>> ids;
  std::shared_ptr<RequestStream> stream;  // where their updates go
  bool done = false;

  InFlightRequests() = default;
  InFlightRequests(const InFlightRequests&) = delete;
  InFlightRequests& operator=(const InFlightRequests&) = delete;
  ~InFlightRequests() {
    if (auto r = replica.lock(); r && !done) r->Abort(*ids);
  }
};

// GCC 12 mishandles temporaries inside co_await expressions (double destruction), so bodies are
// built into named values before they are awaited.
inline asio::awaitable<void> RespondOwned(http::ResponseWriter& writer, int status,
                                          std::string body, std::string_view content_type) {
  http::IgnoreClientGone(co_await writer.Respond(status, body, content_type));
}

inline asio::awaitable<void> RespondApiError(http::ResponseWriter& writer, ApiError error) {
  const std::string body = error.ToJson();
  http::IgnoreClientGone(co_await writer.Respond(error.http_status, body));
}

}  // namespace zumik::sim

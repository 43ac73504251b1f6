// The operator's synchronous window onto the Kubernetes client.
#include "operator/kube_session.h"

namespace zumik::op {

KubeSession::KubeSession(kube::Config config)
    : work_(boost::asio::make_work_guard(io_)),
      client_(std::make_unique<kube::Client>(io_.get_executor(), std::move(config))),
      thread_([this] { io_.run(); }) {}

KubeSession::~KubeSession() {
  client_.reset();
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace zumik::op

// HttpControlPlane against a stand-in registry on loopback: the heartbeat interval the replies
// carry, in every form JSON may write it.
#include "operator/control_plane.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/http/response_writer.h"
#include "core/http/router.h"
#include "core/http/server.h"
#include "core/http/test_util.h"

namespace zumik::op {
namespace {

class ControlPlaneTest : public ::testing::Test {
 protected:
  // Serves `register_reply` to registration and `heartbeat_reply` to every heartbeat.
  void Serve(const std::string& register_reply, const std::string& heartbeat_reply) {
    http::Router router;
    router.Post(
        "/v1/clusters",
        [register_reply](http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
          http::IgnoreClientGone(co_await w.Respond(201, register_reply, "application/json"));
        });
    router.HandlePrefix(
        http::Method::post, "/v1/clusters/",
        [heartbeat_reply](http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
          http::IgnoreClientGone(co_await w.Respond(200, heartbeat_reply, "application/json"));
        });
    server_ = std::make_unique<http::Server>(io_.io(), http::ServerOptions{}, std::move(router));
    ASSERT_TRUE(server_->Start().ok());
    plane_ = std::make_unique<HttpControlPlane>("http://" + server_->address());
  }
  double Registered() {
    auto registration = plane_->Register(Secret("zk_live_test"), RegisterRequest{});
    EXPECT_TRUE(registration.ok()) << registration.status();
    return registration.ok() ? registration->heartbeat_interval_s : -1;
  }
  double Beat() {
    auto interval = plane_->Heartbeat("byc_1", Secret("zkc_1"), std::nullopt);
    EXPECT_TRUE(interval.ok()) << interval.status();
    return interval.ok() ? *interval : -1;
  }

  http::testing::IoThreads io_{1};
  std::unique_ptr<http::Server> server_;
  std::unique_ptr<HttpControlPlane> plane_;
};

constexpr const char* kReply = R"({"id":"byc_1","cluster_token":"zkc_1","heartbeat_interval_s":)";

TEST_F(ControlPlaneTest, AnyPositiveNumberOfSecondsIsTheInterval) {
  Serve(std::string(kReply) + "2.5}", R"({"heartbeat_interval_s":2.5})");
  EXPECT_EQ(Registered(), 2.5);
  EXPECT_EQ(Beat(), 2.5);
}

TEST_F(ControlPlaneTest, AWholeNumberWrittenAsADoubleIsTheInterval) {
  Serve(std::string(kReply) + "1.5E1}", R"({"heartbeat_interval_s":30})");
  EXPECT_EQ(Registered(), 15);
  EXPECT_EQ(Beat(), 30);
}

TEST_F(ControlPlaneTest, AnIntervalOutOfRangeOrNotANumberIsIgnored) {
  for (const char* bad : {"0", "-5", "0.01", "1e9", "\"15\"", "null"}) {
    SCOPED_TRACE(bad);
    Serve(std::string(kReply) + bad + "}", std::string(R"({"heartbeat_interval_s":)") + bad + "}");
    EXPECT_EQ(Registered(), 0);  // not said: the operator keeps its --heartbeat-interval
    EXPECT_EQ(Beat(), 0);
  }
}

}  // namespace
}  // namespace zumik::op

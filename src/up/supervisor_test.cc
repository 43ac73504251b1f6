#include "up/supervisor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>

#include "core/testing/temp_dir.h"

namespace zumik::up {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::string TempDir() { return ::zumik::testing::MakeTempDir("zumik-up-test"); }

TEST(Supervisor, ReportsAComponentThatExitsDuringStartWithItsLogTail) {
  const std::string dir = TempDir();
  Supervisor supervisor;
  absl::Status status =
      supervisor.Start(ComponentSpec{"doomed",
                                     {"/bin/sh", "-c", "echo 'bind: address in use'; exit 3"},
                                     dir + "/doomed.log",
                                     {"tcp://127.0.0.1:1"}},
                       milliseconds(5000));
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  EXPECT_THAT(message, HasSubstr("doomed failed to start"));
  EXPECT_THAT(message, HasSubstr("exited with code 3"));
  EXPECT_THAT(message, HasSubstr(dir + "/doomed.log"));
  EXPECT_THAT(message, HasSubstr("bind: address in use"));
  EXPECT_EQ(supervisor.size(), 0u);
}

TEST(Supervisor, StopsRunningComponentsAndNoticesOnesThatDie) {
  const std::string dir = TempDir();
  Supervisor supervisor;
  ASSERT_TRUE(
      supervisor
          .Start(ComponentSpec{"sleeper", {"sleep", "60"}, dir + "/s.log", {}}, milliseconds(1000))
          .ok());
  ASSERT_TRUE(
      supervisor
          .Start(ComponentSpec{"short", {"/bin/sh", "-c", "exit 0"}, dir + "/short.log", {}},
                 milliseconds(1000))
          .ok());
  std::optional<std::string> exited;
  for (int i = 0; i < 200 && !exited; ++i) {
    exited = supervisor.FirstExited();
    if (!exited) usleep(10000);
  }
  ASSERT_TRUE(exited.has_value());
  EXPECT_THAT(*exited, HasSubstr("short exited with code 0"));
  supervisor.StopAll(milliseconds(2000));
  EXPECT_EQ(supervisor.size(), 0u);
}

TEST(RunToCompletion, ReturnsOutputOrNamesTheFailure) {
  const std::string dir = TempDir();
  auto out = RunToCompletion("echo", {"/bin/sh", "-c", "echo zk_live_abc"}, dir + "/e.log",
                             milliseconds(5000));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, HasSubstr("zk_live_abc"));
  auto failed = RunToCompletion("key creation", {"/bin/sh", "-c", "echo nope >&2; exit 2"},
                                dir + "/f.log", milliseconds(5000));
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.status().message()),
              HasSubstr("key creation failed (exit code 2)"));
  EXPECT_THAT(std::string(failed.status().message()), HasSubstr("nope"));
}

TEST(CheckPortFree, NamesThePortAndComponentWhenTaken) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);
  absl::Status status = CheckPortFree(port, "registry");
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("port " + std::to_string(port) + " (for the registry) is not free"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("--port-base"));
  close(fd);
  EXPECT_TRUE(CheckPortFree(port, "registry").ok());
}

}  // namespace
}  // namespace zumik::up

// Test support: runs a child process (usually build/bin/zumik), captures its output to a log
// file, and kills it (SIGTERM, then SIGKILL) when the handle goes away, so a failing test never
// leaves a server behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/testing/temp_dir.h"  // MakeTempDir, for the tests that include this header

namespace zumik::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with the given arguments; stdout and stderr go to `log_path`.
  ChildProcess(std::vector<std::string> argv, std::string log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends SIGTERM and waits up to `grace` for exit; then SIGKILL. Returns the exit status
  // as from waitpid (or -1 when it had to be killed).
  int Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  // Waits for the process to exit by itself; returns its exit code, or -1 on timeout/signal.
  int Wait(std::chrono::milliseconds timeout);
  std::string ReadLog() const;

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string log_path_;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, close), and
// that this process has not handed out before.
int PickFreePort();
// `count` consecutive free ports starting at the returned one, none handed out before.
int PickFreePortRange(int count);

// Polls until a TCP connection to 127.0.0.1:port succeeds or `timeout` passes.
bool WaitForPort(int port, std::chrono::milliseconds timeout);

// Path of the zumik binary under test (from the ZUMIK_BIN environment variable set by CMake).
std::string ZumikBinary();

}  // namespace zumik::testing

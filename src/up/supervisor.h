// Starts and stops the local stack's processes for `zumik up`: each component is a child
// process with its own log file and process group (so Ctrl-C reaches only `zumik up`, which
// then stops them in reverse order), killed by the kernel if `zumik up` itself dies.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace zumik::up {

struct ComponentSpec {
  std::string name;               // "registry", "fleet", ... (used in messages)
  std::vector<std::string> argv;  // argv[0] is a path
  std::string log_path;
  // Readiness: every one of these URLs answers 2xx (HTTP GET), or, for a URL without a path
  // ("tcp://127.0.0.1:8000"), accepts a TCP connection.
  std::vector<std::string> ready_urls;
};

class Supervisor {
 public:
  Supervisor() = default;
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Starts the component and waits until it is ready. A component that exits or is not ready
  // in time is an error naming it, its exit status and its log file (with the log's last
  // lines); it is stopped before returning.
  absl::Status Start(const ComponentSpec& spec, std::chrono::milliseconds ready_timeout);

  // The first component that has exited on its own since it started, with how it ended.
  std::optional<std::string> FirstExited();

  // SIGTERM to every component in reverse start order, SIGKILL after `grace`; waits for all.
  void StopAll(std::chrono::milliseconds grace);

  size_t size() const { return children_.size(); }

 private:
  struct Child {
    std::string name;
    std::string log_path;
    pid_t pid = -1;
    bool exited = false;
    int status = 0;
  };
  bool Reap(Child& child);
  void Stop(Child& child, std::chrono::milliseconds grace);

  std::vector<Child> children_;
};

// Runs a command to completion (stdout+stderr to log_path) and returns its stdout text (read
// back from the log). Non-zero exit or timeout is an error naming `name` and the log.
absl::StatusOr<std::string> RunToCompletion(const std::string& name,
                                            const std::vector<std::string>& argv,
                                            const std::string& log_path,
                                            std::chrono::milliseconds timeout);

// Spawns a command whose completion the caller awaits with WaitChild (for work that runs
// while the caller shows progress).
absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path);
// Non-blocking: nullopt while running, else the exit code (-1 when killed by a signal).
std::optional<int> PollChild(pid_t pid);
void KillChild(pid_t pid);

// An error naming the component when 127.0.0.1:port is already in use.
absl::Status CheckPortFree(int port, const std::string& component);

// The last `lines` lines of a file, for error messages.
std::string LogTail(const std::string& path, int lines);

}  // namespace zumik::up

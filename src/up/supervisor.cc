#include "up/supervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <thread>

#include "core/http/client.h"
#include "core/status.h"

namespace zumik::up {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string DescribeStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exited with code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("was killed by signal {}", WTERMSIG(status));
  return "stopped";
}

// fork + exec with stdout/stderr to the log, default signal mask (the parent blocks SIGINT
// and SIGTERM for sigwait; children must still die on SIGTERM), its own process group, and
// SIGKILL when the parent dies.
absl::StatusOr<pid_t> ForkExec(const std::vector<std::string>& argv, const std::string& log_path) {
  if (argv.empty()) return Errorf(absl::StatusCode::kInvalidArgument, "empty command");
  const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Errorf(absl::StatusCode::kFailedPrecondition, "cannot create log file {}: {}", log_path,
                  std::strerror(errno));
  }
  std::vector<std::string> args = argv;
  std::vector<char*> cargs;
  cargs.reserve(args.size() + 1);
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    close(fd);
    return Errorf(absl::StatusCode::kInternal, "fork failed: {}", std::strerror(errno));
  }
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);  // the parent died before prctl
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execvp(cargs[0], cargs.data());
    std::fprintf(stderr, "cannot run %s: %s\n", cargs[0], std::strerror(errno));
    _exit(127);
  }
  close(fd);
  return pid;
}

bool TcpAccepts(const std::string& host, int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// "tcp://host:port" → TCP connect; anything else → HTTP GET answering 2xx.
bool Ready(const std::string& url) {
  constexpr std::string_view kTcp = "tcp://";
  if (url.starts_with(kTcp)) {
    const std::string rest = url.substr(kTcp.size());
    const size_t colon = rest.rfind(':');
    if (colon == std::string::npos) return false;
    return TcpAccepts(rest.substr(0, colon), std::atoi(rest.c_str() + colon + 1));
  }
  auto response = http::FetchBlocking(http::Method::get, url, {}, {}, milliseconds(1000));
  return response.ok() && response->status >= 200 && response->status < 300;
}

}  // namespace

std::string LogTail(const std::string& path, int lines) {
  std::ifstream in(path);
  std::deque<std::string> tail;
  std::string line;
  while (std::getline(in, line)) {
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) out += "    | " + l + "\n";
  return out;
}

Supervisor::~Supervisor() { StopAll(milliseconds(3000)); }

bool Supervisor::Reap(Child& child) {
  if (child.exited) return true;
  if (waitpid(child.pid, &child.status, WNOHANG) == child.pid) child.exited = true;
  return child.exited;
}

absl::Status Supervisor::Start(const ComponentSpec& spec, milliseconds ready_timeout) {
  ASSIGN_OR_RETURN(pid_t pid, ForkExec(spec.argv, spec.log_path));
  children_.push_back(Child{spec.name, spec.log_path, pid});
  const auto deadline = Clock::now() + ready_timeout;
  size_t next = 0;  // readiness URLs are checked in order; each stays ready once it was
  while (next < spec.ready_urls.size()) {
    Child& child = children_.back();
    if (Reap(child)) {
      const std::string why = DescribeStatus(child.status);
      children_.pop_back();
      return Errorf(absl::StatusCode::kUnavailable,
                    "{} failed to start: it {}. Its log is {}; last lines:\n{}", spec.name, why,
                    spec.log_path, LogTail(spec.log_path, 8));
    }
    if (Ready(spec.ready_urls[next])) {
      ++next;
      continue;
    }
    if (Clock::now() > deadline) {
      Stop(children_.back(), milliseconds(2000));
      children_.pop_back();
      return Errorf(absl::StatusCode::kDeadlineExceeded,
                    "{} did not become ready within {} s ({} never answered). Its log is {}; "
                    "last lines:\n{}",
                    spec.name, ready_timeout.count() / 1000, spec.ready_urls[next], spec.log_path,
                    LogTail(spec.log_path, 8));
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  return absl::OkStatus();
}

std::optional<std::string> Supervisor::FirstExited() {
  for (auto& child : children_) {
    if (Reap(child)) {
      return fmt::format("{} {} (log: {})", child.name, DescribeStatus(child.status),
                         child.log_path);
    }
  }
  return std::nullopt;
}

void Supervisor::Stop(Child& child, milliseconds grace) {
  if (Reap(child)) return;
  kill(child.pid, SIGTERM);
  const auto deadline = Clock::now() + grace;
  while (!Reap(child) && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
  if (!child.exited) {
    kill(-child.pid, SIGKILL);
    kill(child.pid, SIGKILL);
    waitpid(child.pid, &child.status, 0);
    child.exited = true;
  }
}

void Supervisor::StopAll(milliseconds grace) {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) Stop(*it, grace);
  children_.clear();
}

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  return ForkExec(argv, log_path);
}

std::optional<int> PollChild(pid_t pid) {
  int status = 0;
  const pid_t r = waitpid(pid, &status, WNOHANG);
  if (r == 0) return std::nullopt;
  if (r < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void KillChild(pid_t pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

absl::StatusOr<std::string> RunToCompletion(const std::string& name,
                                            const std::vector<std::string>& argv,
                                            const std::string& log_path, milliseconds timeout) {
  ASSIGN_OR_RETURN(pid_t pid, ForkExec(argv, log_path));
  const auto deadline = Clock::now() + timeout;
  std::optional<int> code;
  while (!(code = PollChild(pid))) {
    if (Clock::now() > deadline) {
      KillChild(pid);
      return Errorf(absl::StatusCode::kDeadlineExceeded, "{} did not finish within {} s (log: {})",
                    name, timeout.count() / 1000, log_path);
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  if (*code != 0) {
    return Errorf(absl::StatusCode::kInternal, "{} failed (exit code {}). Its log is {}:\n{}", name,
                  *code, log_path, LogTail(log_path, 8));
  }
  std::ifstream in(log_path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

absl::Status CheckPortFree(int port, const std::string& component) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errorf(absl::StatusCode::kInternal, "socket: {}", std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  const int err = errno;
  close(fd);
  if (ok) return absl::OkStatus();
  return Errorf(absl::StatusCode::kFailedPrecondition,
                "port {} (for the {}) is not free on 127.0.0.1: {}. Stop what holds it, or move "
                "every port with --port-base",
                port, component, std::strerror(err));
}

}  // namespace zumik::up

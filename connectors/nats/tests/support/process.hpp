// Test helpers: child processes (a nats-server, producer and consumer peers) started with
// posix_spawn, read through a pipe, waited for with a timeout and stopped by their PID.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace bp::test {

// A child process. Its stdout (and stderr, when `log_file` is empty) is captured; the
// destructor kills it (SIGKILL) if it is still running, so no test leaves one behind.
class child {
 public:
  explicit child(const std::vector<std::string>& argv, const std::string& log_file = {}) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    if (log_file.empty()) {
      posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
    } else {
      posix_spawn_file_actions_addopen(&fa, 2, log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                       0644);
    }
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    const int rc = ::posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
    }
    out_fd_ = fds[0];
    ::fcntl(out_fd_, F_SETFL, ::fcntl(out_fd_, F_GETFL) | O_NONBLOCK);
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() {
    if (running()) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
  }

  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

  [[nodiscard]] bool running() {
    if (exited_) return false;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      status_ = st;
    }
    return !exited_;
  }

  // Exit code once it ended within `limit` (-signal if killed by one), nullopt otherwise.
  std::optional<int> wait_for(std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (running()) {
      drain();
      if (std::chrono::steady_clock::now() > end) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    drain();
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : -WTERMSIG(status_);
  }

  // Sends `sig`; waits up to `limit`, then SIGKILL. Returns true if it ended on `sig` alone.
  bool stop(int sig = SIGTERM, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    if (!running()) return true;
    ::kill(pid_, sig);
    if (wait_for(limit)) return true;
    ::kill(pid_, SIGKILL);
    (void)wait_for(std::chrono::seconds(10));
    return false;
  }

  // Everything the child wrote so far.
  const std::string& output() {
    drain();
    return out_;
  }

  // Waits until the output contains `text` (or the child ends, or `limit` passes).
  bool wait_for_output(const std::string& text, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    for (;;) {
      if (output().find(text) != std::string::npos) return true;
      if (!running() || std::chrono::steady_clock::now() > end) {
        return output().find(text) != std::string::npos;
      }
      pollfd p{out_fd_, POLLIN, 0};
      ::poll(&p, 1, 10);
    }
  }

 private:
  void drain() {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(out_fd_, buf, sizeof buf);
      if (n <= 0) break;
      out_.append(buf, static_cast<std::size_t>(n));
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool exited_ = false;
  int status_ = 0;
  std::string out_;
};

}  // namespace bp::test

// Test fixture: a real `nats-server -js` on 127.0.0.1, a free client port and a free monitoring
// port, a temporary store directory. start() waits for GET /healthz to answer 200 (JetStream
// ready); stop() ends it by its PID; the destructor stops it and removes the store.
// The server binary comes from $BP_NATS_SERVER (set by CMake's find_program) or the PATH.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace bp::test {

// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("free_port: cannot bind 127.0.0.1:0");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// HTTP GET on 127.0.0.1:port; the whole answer, or "" when nothing answers within ~1 s.
inline std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {};
  timeval tv{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[2048];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

inline std::string nats_server_binary() {
  const char* env = std::getenv("BP_NATS_SERVER");
  if (env != nullptr && *env != '\0') return env;
#ifdef BP_NATS_SERVER_PATH
  return BP_NATS_SERVER_PATH;
#else
  return "nats-server";
#endif
}

class nats_server {
 public:
  struct config {
    std::vector<std::string> extra_args{};  // e.g. cluster routes
    std::string name{};
  };

  nats_server() : nats_server(config{}) {}
  explicit nats_server(config c)
      : cfg_(std::move(c)), port_(free_port()), monitor_port_(free_port()) {
    char tmpl[] = "/tmp/bp-nats-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
  }
  nats_server(const nats_server&) = delete;
  nats_server& operator=(const nats_server&) = delete;
  ~nats_server() {
    stop();
    std::error_code ec;
    if (std::getenv("BP_NATS_KEEP_STORE") == nullptr) std::filesystem::remove_all(dir_, ec);
  }

  // Starts the server (again, after stop(), on the same ports and store) and waits until
  // /healthz answers 200, at most `limit`; throws if it does not.
  void start(std::chrono::milliseconds limit = std::chrono::seconds(15)) {
    std::vector<std::string> argv{nats_server_binary(),
                                  "-js",
                                  "-a",
                                  "127.0.0.1",
                                  "-p",
                                  std::to_string(port_),
                                  "-m",
                                  std::to_string(monitor_port_),
                                  "-sd",
                                  (dir_ / "store").string()};
    if (!cfg_.name.empty()) argv.insert(argv.end(), {"-n", cfg_.name});
    argv.insert(argv.end(), cfg_.extra_args.begin(), cfg_.extra_args.end());
    proc_ = std::make_unique<child>(argv, (dir_ / "server.log").string());
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      if (!proc_->running())
        throw std::runtime_error("nats-server exited at start; see " +
                                 (dir_ / "server.log").string());
      const std::string r = http_get(monitor_port_, "/healthz");
      if (r.rfind("HTTP/1.", 0) == 0 && r.find(" 200 ") != std::string::npos) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("nats-server not healthy within the limit");
  }

  // Ends the server by its PID: SIGTERM (a clean shutdown, store flushed), or SIGKILL.
  void stop(int sig = SIGTERM) {
    if (proc_) proc_->stop(sig, std::chrono::seconds(10));
    proc_.reset();
  }

  [[nodiscard]] bool running() { return proc_ && proc_->running(); }
  // The server's process id while it runs (-1 otherwise).
  [[nodiscard]] pid_t pid() const noexcept { return proc_ ? proc_->pid() : -1; }

  // A stalled server: SIGSTOP, and wait (at most 2 s) until every thread is stopped, so that
  // no request sent afterwards is still answered. The TCP connections stay up; nothing
  // answers until resume() (SIGCONT). True once stopped.
  bool pause() {
    if (!proc_ || ::kill(proc_->pid(), SIGSTOP) != 0) return false;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (std::chrono::steady_clock::now() < end) {
      if (stopped_state()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  void resume() {
    if (proc_) ::kill(proc_->pid(), SIGCONT);
  }
  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] int monitor_port() const noexcept { return monitor_port_; }
  [[nodiscard]] std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  // Every thread of the process in state T (stopped), per /proc/<pid>/task/*/stat.
  bool stopped_state() const {
    std::error_code ec;
    const std::filesystem::path tasks = "/proc/" + std::to_string(proc_->pid()) + "/task";
    bool any = false;
    for (const auto& t : std::filesystem::directory_iterator(tasks, ec)) {
      std::ifstream in(t.path() / "stat");
      std::string line;
      std::getline(in, line);
      const auto close = line.rfind(')');
      if (close == std::string::npos || close + 2 >= line.size()) return false;
      if (line[close + 2] != 'T' && line[close + 2] != 't') return false;
      any = true;
    }
    return any;
  }

  config cfg_;
  int port_;
  int monitor_port_;
  std::filesystem::path dir_;
  std::unique_ptr<child> proc_;
};

}  // namespace bp::test

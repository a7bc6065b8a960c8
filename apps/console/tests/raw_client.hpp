// Helpers for tests that talk to a real bp-console process over raw loopback sockets: start the
// binary on a free port, read its resident memory, send bytes and read answers with deadlines.
// Every wait here is bounded.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace bp::test::raw {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// The bp-console binary on 127.0.0.1, any free port, with extra flags.
class console_process {
 public:
  console_process(const std::string& exe, const std::vector<std::string>& extra) {
    int out[2];
    if (pipe(out) != 0) return;
    std::vector<std::string> args{exe, "--bind", "127.0.0.1", "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    // fork + exec rather than posix_spawn, for PR_SET_PDEATHSIG: the server dies with the test,
    // even when a watchdog aborts it. Only async-signal-safe calls between fork and exec.
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    std::string line;  // "bp-console: serving on http://127.0.0.1:PORT/", within 10 s
    const auto end = clock::now() + 10s;
    while (pid_ > 0 && line.find('\n') == std::string::npos && clock::now() < end) {
      pollfd p{out[0], POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<std::size_t>(n));
    }
    close(out[0]);
    banner_ = line;
    const auto at = line.find("127.0.0.1:");
    if (at != std::string::npos) port_ = std::atoi(line.c_str() + at + 10);
  }

  ~console_process() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 100; ++i) {  // 10 s to stop cleanly, then SIGKILL
      if (waitpid(pid_, &status, WNOHANG) == pid_) return;
      std::this_thread::sleep_for(100ms);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, &status, 0);
  }
  console_process(const console_process&) = delete;
  console_process& operator=(const console_process&) = delete;

  // Stops the process with SIGTERM; answers whether it exited with status 0 within `limit`.
  bool terminate_and_wait(std::chrono::milliseconds limit) {
    return signal_and_wait(SIGTERM, limit);
  }

  // Sends `sig` (SIGINT: as Ctrl-C); answers whether the process exited with status 0 in time.
  bool signal_and_wait(int sig, std::chrono::milliseconds limit) {
    kill(pid_, sig);
    int status = 0;
    const auto end = clock::now() + limit;
    while (clock::now() < end) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] const std::string& banner() const { return banner_; }

  // VmRSS of the process in bytes (0 if unknown).
  [[nodiscard]] double rss_bytes() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string key;
    while (in >> key) {
      if (key == "VmRSS:") {
        double kib = 0;
        in >> kib;
        return kib * 1024;
      }
      in.ignore(1 << 20, '\n');
    }
    return 0;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::string banner_;
};

// A connected TCP socket to 127.0.0.1:port, or -1. rcvbuf > 0 shrinks the receive buffer first
// (a client that does not read then fills up quickly).
inline int connect_to(int port, int rcvbuf = 0) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  // Non-blocking, with a deadline: a server whose backlog is full must not hang the test.
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    pollfd p{fd, POLLOUT, 0};
    int err = errno == EINPROGRESS ? 0 : errno;
    socklen_t len = sizeof err;
    if (err == 0 && poll(&p, 1, 2000) == 1)
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    else if (err == 0)
      err = ETIMEDOUT;
    if (err != 0) {
      close(fd);
      return -1;
    }
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// Sends all of `data` before `deadline`; false on error or timeout.
inline bool send_all(int fd, std::string_view data, clock::time_point deadline) {
  while (!data.empty()) {
    const ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, static_cast<int>(left.count()));
  }
  return true;
}

struct response {
  int status = 0;  // 0: no complete answer
  std::string head;
  std::string body;
  bool closed = false;  // the server closed the connection after the answer (EOF or reset)
};

// Lower-case copy.
inline std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The value of header `name` in `head` (lower-case name), or "".
inline std::string header_value(const std::string& head, const std::string& name) {
  const std::string l = lower(head);
  const auto at = l.find("\r\n" + name + ":");
  if (at == std::string::npos) return {};
  auto v = at + 3 + name.size();
  while (v < head.size() && head[v] == ' ') ++v;
  return head.substr(v, head.find("\r\n", v) - v);
}

// Reads one answer (with Content-Length, or up to EOF) before `deadline`; with wait_close,
// also waits for the server to close the connection.
inline response read_response(int fd, clock::time_point deadline, bool wait_close = false) {
  response r;
  std::string buf;
  std::size_t need = std::string::npos;  // total bytes of head + body once known
  char chunk[65536];
  for (;;) {
    if (need != std::string::npos && buf.size() >= need && !wait_close) break;
    const ssize_t n = recv(fd, chunk, sizeof chunk, 0);
    if (n > 0) {
      buf.append(chunk, static_cast<std::size_t>(n));
      if (need == std::string::npos) {
        const auto end = buf.find("\r\n\r\n");
        if (end != std::string::npos) {
          r.head = buf.substr(0, end + 2);
          r.status = std::atoi(r.head.c_str() + 9);
          const std::string cl = header_value(r.head, "content-length");
          if (!cl.empty()) need = end + 4 + std::stoul(cl);
        }
      }
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
      r.closed = true;
      break;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    poll(&p, 1, static_cast<int>(left.count()));
  }
  const auto end = buf.find("\r\n\r\n");
  if (end == std::string::npos) {
    r.status = 0;
    return r;
  }
  r.body = buf.substr(end + 4, need == std::string::npos ? std::string::npos : need - end - 4);
  if (need != std::string::npos && buf.size() < need) r.status = 0;  // cut short
  return r;
}

// One GET on a fresh connection; the answer and how long it took.
struct timed_response {
  response r;
  double ms = 0;
};
inline timed_response get(int port, const std::string& path, std::chrono::milliseconds limit) {
  const auto t0 = clock::now();
  timed_response out;
  const int fd = connect_to(port);
  if (fd >= 0) {
    const std::string req =
        "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (send_all(fd, req, t0 + limit)) out.r = read_response(fd, t0 + limit);
    close(fd);
  }
  out.ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
  return out;
}

// Whether the peer has closed or reset the connection (without reading any data).
inline bool peer_gone(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
}

}  // namespace bp::test::raw

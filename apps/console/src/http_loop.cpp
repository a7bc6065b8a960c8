#include "http_loop.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

namespace bp::console {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", u);
      out += esc;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

char lower_char(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

bool less_ci(const std::string& a, const std::string& b) {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(),
                                      [](char x, char y) { return lower_char(x) < lower_char(y); });
}

constexpr std::string_view ping_chunk = "8\r\n: ping\n\n\r\n";
constexpr std::size_t large_answer = 64 * 1024;
constexpr std::size_t read_chunk = 16 * 1024;
constexpr auto linger_time = 1s;               // reading what a refused client still sends
constexpr std::size_t linger_bytes = 1 << 20;  // ... at most this much, then reset

}  // namespace

http_response json_error(int status, std::string_view why) {
  http_response r;
  r.status = status;
  r.body = "{\"error\":" + json_quote(why) + "}";
  return r;
}

std::string http_chunk(std::string_view payload) {
  char size[24];
  std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
  std::string out = size;
  out.append(payload);
  out += "\r\n";
  return out;
}

struct http_loop::impl {
  // A piece of output: bytes that stay alive while queued (`keep`), or static bytes.
  struct segment {
    std::shared_ptr<const std::string> keep;
    std::string_view data;
  };

  enum class mode { http, stream, lingering };

  struct conn {
    int fd = -1;
    mode m = mode::http;
    http_parser parser;
    std::string pending_in;  // bytes after a complete request (pipelining), served next
    std::deque<segment> out;
    std::size_t out_bytes = 0;
    std::size_t out_owned_large = 0;  // bytes of large answers counted in unsent_large_
    bool close_after_write = false;
    int requests = 0;
    clock_type::time_point idle_since, request_started, last_progress, linger_until;
    std::size_t lingered = 0;
    std::uint32_t events = 0;  // the epoll interest set now
    // Stream clients.
    std::uint64_t seq = 0, cursor = 0;
    bool tick_waiting = false;  // a tick came while the queue was full

    explicit conn(const http_limits& l) : parser(l) {}
  };

  http_loop_options opt;
  handler h;
  int listen_fd = -1, epoll_fd = -1, wake_fd = -1;
  int bound_port = -1;
  bool listening_paused = false;
  clock_type::time_point resume_listening;
  std::atomic<bool> stopping{false};
  std::unordered_map<int, std::unique_ptr<conn>> conns;
  std::size_t stream_count = 0;
  std::atomic<std::size_t> stream_count_public{0};
  std::size_t unsent_large = 0;
  std::mutex tick_m;
  std::shared_ptr<const stream_tick> incoming_tick;  // guarded by tick_m
  std::shared_ptr<const stream_tick> latest_data;    // the last tick with data (loop thread)
  char buf[read_chunk];

  impl(http_loop_options o, handler hh) : opt(std::move(o)), h(std::move(hh)) {}

  ~impl() {
    for (auto& [fd, c] : conns) ::close(fd);
    if (listen_fd >= 0) ::close(listen_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
    if (wake_fd >= 0) ::close(wake_fd);
  }

  void bind() {
    listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd < 0) throw std::runtime_error("cannot create a socket");
    const int one = 1;
    ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(opt.port));
    const auto fail = [&] {
      ::close(listen_fd);
      listen_fd = -1;
      throw std::runtime_error("cannot listen on " + opt.bind + ":" + std::to_string(opt.port) +
                               " (in use, or not a local address?)");
    };
    if (::inet_pton(AF_INET, opt.bind.c_str(), &a.sin_addr) != 1) fail();
    if (::bind(listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail();
    if (::listen(listen_fd, 512) != 0) fail();
    socklen_t len = sizeof a;
    ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&a), &len);
    // Keep the connection cap under the descriptor limit (with room for the engine's files).
    rlimit fds{};
    if (::getrlimit(RLIMIT_NOFILE, &fds) == 0 && fds.rlim_cur != RLIM_INFINITY && fds.rlim_cur > 64)
      opt.max_connections = std::min<std::size_t>(opt.max_connections, fds.rlim_cur - 48);
    bound_port = ntohs(a.sin_port);

    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd < 0 || wake_fd < 0) throw std::runtime_error("cannot create the event loop");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = listen_fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
    ev.data.fd = wake_fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, wake_fd, &ev);
  }

  void wake() const {
    const std::uint64_t one = 1;
    if (wake_fd >= 0) (void)!::write(wake_fd, &one, sizeof one);
  }

  // --- the loop --------------------------------------------------------------------------------

  void run() {
    if (epoll_fd < 0) throw std::runtime_error("http_loop::run() before bind()");
    epoll_event events[64];
    auto next_sweep = clock_type::now();
    while (!stopping) {
      const int n = ::epoll_wait(epoll_fd, events, 64, 100);
      const auto now = clock_type::now();
      for (int i = 0; i < n && !stopping; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd) {
          accept_all(now);
        } else if (fd == wake_fd) {
          std::uint64_t v;
          (void)!::read(wake_fd, &v, sizeof v);
          take_tick(now);
        } else {
          on_event(fd, events[i].events, now);
        }
      }
      if (now >= next_sweep) {
        sweep(now);
        next_sweep = now + 100ms;
      }
    }
    for (auto& [fd, c] : conns) ::close(fd);
    conns.clear();
    stream_count = 0;
    stream_count_public = 0;
  }

  void accept_all(clock_type::time_point now) {
    for (int i = 0; i < 64; ++i) {
      const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: stop accepting for a moment rather than spin on the listener.
          ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, listen_fd, nullptr);
          listening_paused = true;
          resume_listening = now + 100ms;
        }
        return;
      }
      if (conns.size() >= opt.max_connections && !close_oldest_idle()) {
        ::close(fd);  // full of busy connections: refuse this one
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto c = std::make_unique<conn>(opt.limits);
      c->fd = fd;
      c->idle_since = c->last_progress = now;
      epoll_event ev{};
      ev.events = c->events = EPOLLIN | EPOLLRDHUP;
      ev.data.fd = fd;
      if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        continue;
      }
      conns.emplace(fd, std::move(c));
    }
  }

  // Makes room for a new connection: closes the connection that has been idle longest, else
  // the one whose request has been arriving longest or whose answer has been unread longest
  // (a legitimate request takes milliseconds, so the victim is a slow or stuck client). False
  // when there is nothing to close.
  bool close_oldest_idle() {
    conn* idle = nullptr;
    conn* stuck = nullptr;
    clock_type::time_point stuck_since{};
    for (auto& [fd, cp] : conns) {
      conn& c = *cp;
      if (c.m == mode::http && !c.parser.started() && c.out.empty() && c.pending_in.empty()) {
        if (!idle || c.idle_since < idle->idle_since) idle = &c;
        continue;
      }
      const auto since = !c.out.empty()           ? c.last_progress
                         : c.m == mode::lingering ? c.linger_until - linger_time
                         : c.m == mode::http      ? c.request_started
                                                  : clock_type::time_point::max();
      if (since != clock_type::time_point::max() && (!stuck || since < stuck_since)) {
        stuck = &c;
        stuck_since = since;
      }
    }
    conn* victim = idle ? idle : stuck;
    if (!victim) return false;
    close_conn(*victim, victim != idle);
    return true;
  }

  void on_event(int fd, std::uint32_t ev, clock_type::time_point now) {
    auto it = conns.find(fd);
    if (it == conns.end()) return;
    conn& c = *it->second;
    if (ev & (EPOLLERR | EPOLLHUP)) return close_conn(c, false);
    if ((ev & EPOLLOUT) && !progress(c, now)) return;  // closed
    if ((ev & (EPOLLIN | EPOLLRDHUP)) && !read_some(c, now)) return;
    update_interest(c);
  }

  // Reads what the socket has; false when the connection was closed.
  bool read_some(conn& c, clock_type::time_point now) {
    if (c.m == mode::http && (!c.out.empty() || c.close_after_write)) return true;  // not yet
    const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      close_conn(c, false);
      return false;
    }
    if (n < 0) return true;
    const std::string_view data(buf, static_cast<std::size_t>(n));
    if (c.m == mode::stream) return true;  // a stream client has nothing more to say
    if (c.m == mode::lingering) {
      c.lingered += data.size();
      if (c.lingered <= linger_bytes) return true;
      close_conn(c, true);
      return false;
    }
    serve_bytes(c, data, now);
    return progress(c, now);
  }

  // Feeds request bytes to the parser and answers a complete request; the bytes after it wait
  // in pending_in until its answer has been sent (progress() serves them then).
  void serve_bytes(conn& c, std::string_view data, clock_type::time_point now) {
    while (!data.empty()) {
      const bool was_started = c.parser.started();
      data.remove_prefix(c.parser.feed(data));
      if (!was_started && c.parser.started()) c.request_started = now;
      switch (c.parser.current()) {
        case http_parser::state::need_more:
          break;
        case http_parser::state::failed:
          c.pending_in.clear();
          return answer(c, json_error(c.parser.error_status(), c.parser.error()), false, false,
                        now);
        case http_parser::state::done:
          dispatch(c, now);
          c.parser.reset();
          if (!c.out.empty() || c.close_after_write || c.m != mode::http) {
            if (c.m == mode::http) c.pending_in.assign(data);
            return;
          }
          break;
      }
    }
  }

  // Sends what can be sent and serves pipelined requests in turn; false when the connection was
  // closed.
  bool progress(conn& c, clock_type::time_point now) {
    for (;;) {
      if (!flush(c, now)) return false;
      if (!c.out.empty() || c.m != mode::http || c.close_after_write || c.pending_in.empty())
        return true;
      const std::string next = std::move(c.pending_in);
      c.pending_in.clear();
      serve_bytes(c, next, now);
    }
  }

  void dispatch(conn& c, clock_type::time_point now) {
    http_request& req = c.parser.request();
    const bool head = req.method == "HEAD";
    if (head) req.method = "GET";
    ++c.requests;
    const bool keep = req.keep_alive && c.requests < opt.keep_alive_max;
    http_response r;
    try {
      r = h(req);
    } catch (...) {
      r = json_error(500, "internal error");
    }
    if (r.stream && !head) {
      if (stream_count >= opt.max_streams && !evict_stuck_stream())
        return answer(c, json_error(503, "too many open streams"), keep, false, now);
      return start_stream(c, r, now);
    }
    if (!r.stream && r.static_body.empty() && r.body.size() > large_answer &&
        unsent_large + r.body.size() > opt.max_unsent_bytes)
      r = json_error(503, "server busy: too many large answers not yet read; try again");
    answer(c, std::move(r), keep, head, now);
  }

  // Queues an answer. Without keep, the connection closes once it is sent.
  void answer(conn& c, http_response r, bool keep, bool head, clock_type::time_point now) {
    std::vector<std::pair<std::string, std::string>> hs = std::move(r.headers);
    const std::string_view body = r.static_body.empty() ? std::string_view(r.body) : r.static_body;
    if (r.stream) {
      hs.emplace_back("Transfer-Encoding", "chunked");
    } else {
      hs.emplace_back("Content-Length", std::to_string(body.size()));
    }
    hs.emplace_back("Content-Type", r.content_type);
    if (keep)
      hs.emplace_back("Keep-Alive", "timeout=" + std::to_string(opt.idle_timeout.count() / 1000) +
                                        ", max=" + std::to_string(opt.keep_alive_max));
    else
      hs.emplace_back("Connection", "close");
    std::stable_sort(hs.begin(), hs.end(),
                     [](const auto& a, const auto& b) { return less_ci(a.first, b.first); });
    auto text = std::make_shared<std::string>();
    *text = "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
    for (const auto& [k, v] : hs) *text += k + ": " + v + "\r\n";
    *text += "\r\n";
    const bool inline_body = !head && !r.stream && r.static_body.empty() && body.size() <= 4096;
    if (inline_body) *text += body;
    enqueue(c, std::move(text));
    if (!head && !r.stream && !inline_body && !body.empty()) {
      if (!r.static_body.empty()) {
        enqueue_view(c, r.static_body);
      } else {
        const std::size_t size = r.body.size();
        enqueue(c, std::make_shared<const std::string>(std::move(r.body)));
        if (size > large_answer) {
          c.out_owned_large += size;
          unsent_large += size;
        }
      }
    }
    if (!keep) c.close_after_write = true;
    c.idle_since = now;
  }

  void enqueue(conn& c, std::shared_ptr<const std::string> s) {
    if (s->empty()) return;
    const std::string_view d(*s);
    c.out_bytes += d.size();
    c.out.push_back({std::move(s), d});
  }
  void enqueue_view(conn& c, std::string_view v) {
    c.out_bytes += v.size();
    c.out.push_back({nullptr, v});
  }

  // Writes what the socket takes; false when the connection was closed.
  bool flush(conn& c, clock_type::time_point now) {
    while (!c.out.empty()) {
      iovec iov[16];
      int n = 0;
      for (auto it = c.out.begin(); it != c.out.end() && n < 16; ++it, ++n)
        iov[n] = {const_cast<char*>(it->data.data()), it->data.size()};
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<std::size_t>(n);
      const ssize_t w = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
        close_conn(c, false);
        return false;
      }
      c.last_progress = now;
      auto left = static_cast<std::size_t>(w);
      c.out_bytes -= left;
      while (left > 0) {
        segment& s = c.out.front();
        if (left < s.data.size()) {
          s.data.remove_prefix(left);
          break;
        }
        left -= s.data.size();
        release_large(c, s);
        c.out.pop_front();
      }
    }
    if (!c.out.empty()) return true;
    c.last_progress = now;
    if (c.close_after_write && c.m == mode::http) {
      // Answered and closing: stop sending, but read (and drop) what the client still sends a
      // moment, so that the answer is not lost to a reset.
      ::shutdown(c.fd, SHUT_WR);
      c.m = mode::lingering;
      c.linger_until = now + linger_time;
    } else if (c.m == mode::stream && c.tick_waiting && latest_data) {
      c.tick_waiting = false;
      send_tick(c, *latest_data);
      if (!c.out.empty()) return flush(c, now);
    } else if (c.m == mode::http) {
      c.idle_since = now;
    }
    return true;
  }

  void release_large(conn& c, const segment& s) {
    if (!s.keep || s.keep->size() <= large_answer || c.out_owned_large == 0) return;
    c.out_owned_large -= s.keep->size();
    unsent_large -= s.keep->size();
  }

  void update_interest(conn& c) {
    std::uint32_t want = 0;
    const bool reading = c.m != mode::http || (c.out.empty() && !c.close_after_write);
    if (reading) want |= EPOLLIN | EPOLLRDHUP;
    if (!c.out.empty()) want |= EPOLLOUT;
    if (want == c.events) return;
    epoll_event ev{};
    ev.events = c.events = want;
    ev.data.fd = c.fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void close_conn(conn& c, bool reset) {
    if (reset) {
      const linger l{1, 0};  // an abortive close: the kernel drops what is unsent, at once
      ::setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    if (c.m == mode::stream) {
      --stream_count;
      stream_count_public = stream_count;
    }
    unsent_large -= c.out_owned_large;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    conns.erase(c.fd);  // destroys c
  }

  // --- deadlines ---------------------------------------------------------------------------------

  void sweep(clock_type::time_point now) {
    if (listening_paused && now >= resume_listening) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = listen_fd;
      ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
      listening_paused = false;
    }
    std::vector<conn*> expired_idle, stalled, late, done_lingering;
    for (auto& [fd, cp] : conns) {
      conn& c = *cp;
      if (c.m == mode::lingering) {
        if (now >= c.linger_until) done_lingering.push_back(&c);
      } else if (!c.out.empty()) {
        if (now - c.last_progress > opt.stall_timeout) stalled.push_back(&c);
      } else if (c.m == mode::http && !c.close_after_write) {
        if (c.parser.started()) {
          if (now - c.request_started > opt.request_timeout) late.push_back(&c);
        } else if (now - c.idle_since > opt.idle_timeout && c.pending_in.empty()) {
          expired_idle.push_back(&c);
        }
      }
    }
    for (conn* c : done_lingering) close_conn(*c, true);
    for (conn* c : stalled) close_conn(*c, true);
    for (conn* c : expired_idle) close_conn(*c, false);
    for (conn* c : late) {
      c->pending_in.clear();
      const auto secs = std::chrono::duration<double>(opt.request_timeout).count();
      char why[96];
      std::snprintf(why, sizeof why, "request timeout: the request did not arrive within %g s",
                    secs);
      answer(*c, json_error(408, why), false, false, now);
      if (progress(*c, now)) update_interest(*c);
    }
  }

  // --- event streams -----------------------------------------------------------------------------

  void start_stream(conn& c, http_response& r, clock_type::time_point now) {
    c.cursor = r.stream_cursor;
    r.body.clear();
    r.static_body = {};
    answer(c, std::move(r), true, false, now);
    c.m = mode::stream;
    c.pending_in.clear();
    ++stream_count;
    stream_count_public = stream_count;
    // A small kernel buffer (frames are ~1 KiB, 15 a second): a client that does not read is
    // noticed within seconds, and costs the kernel little meanwhile.
    const int sndbuf = static_cast<int>(opt.stream_socket_buffer);
    ::setsockopt(c.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (latest_data) send_tick(c, *latest_data);
  }

  // At the stream cap: drops the stream that has been stuck longest, if any is stuck.
  bool evict_stuck_stream() {
    conn* worst = nullptr;
    for (auto& [fd, c] : conns)
      if (c->m == mode::stream && !c->out.empty() &&
          (!worst || c->last_progress < worst->last_progress))
        worst = c.get();
    if (!worst) return false;
    close_conn(*worst, true);
    return true;
  }

  void send_tick(conn& c, const stream_tick& t) {
    if (c.seq >= t.seq) return;
    if (c.out_bytes >= opt.stream_buffer_bytes) {
      c.tick_waiting = true;  // the latest wins when the client catches up
      return;
    }
    c.seq = t.seq;
    enqueue(c, t.frame(c.cursor));
  }

  void take_tick(clock_type::time_point now) {
    std::shared_ptr<const stream_tick> t;
    {
      std::lock_guard lock(tick_m);
      t = std::move(incoming_tick);
    }
    if (!t) return;
    if (t->seq > 0) latest_data = t;
    std::vector<conn*> streams;
    streams.reserve(stream_count);
    for (auto& [fd, c] : conns)
      if (c->m == mode::stream) streams.push_back(c.get());
    for (conn* c : streams) {
      if (t->seq == 0) {
        if (c->out.empty()) enqueue_view(*c, ping_chunk);
      } else {
        send_tick(*c, *t);
      }
      if (!c->out.empty() && progress(*c, now)) update_interest(*c);
    }
  }
};

http_loop::http_loop(http_loop_options opt, handler h)
    : p_(std::make_unique<impl>(std::move(opt), std::move(h))) {}

http_loop::~http_loop() = default;

void http_loop::bind() {
  p_->bind();
}

int http_loop::port() const noexcept {
  return p_->bound_port;
}

void http_loop::run() {
  p_->run();
}

void http_loop::stop() {
  p_->stopping = true;
  p_->wake();
}

void http_loop::publish(std::shared_ptr<const stream_tick> tick) {
  {
    std::lock_guard lock(p_->tick_m);
    p_->incoming_tick = std::move(tick);
  }
  p_->wake();
}

std::size_t http_loop::streams() const noexcept {
  return p_->stream_count_public;
}

}  // namespace bp::console

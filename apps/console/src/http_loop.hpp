// http_loop.hpp: a small event-driven HTTP/1.1 server: one thread, Linux epoll, non-blocking
// sockets. It serves many slow or idle connections with bounded memory, which a
// thread-per-connection server cannot: a client that sends its headers slowly, or never reads
// a stream, costs a few hundred bytes here instead of a whole thread.
//
// Every connection has limits and deadlines:
//   - the request (head and body) must arrive within request_timeout of its first byte
//     (408 and closed otherwise, however the bytes are paced);
//   - the request's size limits are http_limits (414, 431, 413; bad syntax 400);
//   - an idle keep-alive connection is closed after idle_timeout;
//   - an answer or stream that the client does not read is dropped after stall_timeout;
//   - at most max_connections at once: beyond, the oldest idle one is closed, or the new one;
//   - large answers (over 64 KiB) wait in memory for at most max_unsent_bytes in all, beyond
//     which they are answered 503.
// Handlers run on the loop thread: they must be quick (the console's call the engine, which
// answers in microseconds).
//
// Event streams (Server-Sent Events): a handler answers `stream`, and from then on the
// connection receives the frames handed to publish(), from any thread. Each client has a
// bounded queue: a client that does not keep up skips frames (the latest wins, computed from
// its own cursor, so it still gets every event the frame format carries), and one that stays
// stuck past stall_timeout is disconnected. This is backpressure applied to our own feed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http_parser.hpp"

namespace bp::console {

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Cache-Control
  std::string body;
  std::string_view static_body;  // used instead of body when set; must outlive the server
  // Turns the connection into an event stream (chunked, text/event-stream) whose frames come
  // from publish(); stream_cursor is the client's first cursor (see stream_tick).
  bool stream = false;
  std::uint64_t stream_cursor = 0;
};

// The error answer every limit and handler failure uses: {"error": why}.
http_response json_error(int status, std::string_view why);
// One chunk of a chunked body.
std::string http_chunk(std::string_view payload);

// One tick of the event stream, fanned out to every stream client by the loop thread.
struct stream_tick {
  // 0: no new data, a keep-alive ping goes to the clients that are not behind; else the number
  // of the data, and a client that has not had it gets frame(cursor).
  std::uint64_t seq = 0;
  // The bytes (whole chunks) to send to a client at `cursor`; advances `cursor`. Called on the
  // loop thread only, so it may cache the frames it builds (clients at the same cursor share
  // one frame).
  std::function<std::shared_ptr<const std::string>(std::uint64_t& cursor)> frame;
};

struct http_loop_options {
  std::string bind = "127.0.0.1";
  int port = 8080;
  http_limits limits;
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds idle_timeout{5'000};
  std::chrono::milliseconds stall_timeout{10'000};
  std::size_t max_connections = 1024;
  std::size_t max_streams = 256;
  std::size_t stream_buffer_bytes = 64 * 1024;   // a stream client's queue before frames skip
  std::size_t stream_socket_buffer = 16 * 1024;  // SO_SNDBUF of a stream connection
  std::size_t max_unsent_bytes = 32 << 20;       // all large answers waiting to be sent
  int keep_alive_max = 100;                      // requests on one connection
};

class http_loop {
 public:
  using handler = std::function<http_response(const http_request&)>;

  http_loop(http_loop_options opt, handler h);
  ~http_loop();
  http_loop(const http_loop&) = delete;
  http_loop& operator=(const http_loop&) = delete;

  // Binds and listens; throws std::runtime_error when it cannot.
  void bind();
  [[nodiscard]] int port() const noexcept;
  // Serves until stop(); closes every connection then.
  void run();
  // Thread-safe; run() returns promptly.
  void stop();
  // Thread-safe: the latest tick of the event stream (an older one not yet sent is replaced).
  void publish(std::shared_ptr<const stream_tick> tick);
  // Stream clients connected now (any thread; approximate).
  [[nodiscard]] std::size_t streams() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace bp::console

// server.hpp: the HTTP face of the engine: the single-page UI (embedded assets), the JSON
// control API and the Server-Sent Events stream of snapshots. A thin layer: every verb maps to
// one engine member; validation is settings_from_json / validate. The connections are served by
// http_loop (one event-loop thread, limits and deadlines on every connection; see
// http_loop.hpp and docs/console.md, "Limits and abuse").
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "engine.hpp"

namespace bp::console {

struct server_options {
  std::string bind = "127.0.0.1";
  int port = 8080;  // 0: any free port (see http_server::port())
  // Unused since the server is event-driven (one thread serves every connection); kept so that
  // code setting them still builds.
  int workers = 12;
  std::size_t queued_connections = 64;
  std::size_t max_body_bytes = 16 * 1024;
  int max_streams = 256;  // concurrent /api/stream clients; beyond, 503 (or a stuck one is dropped)
  std::size_t max_connections = 1024;  // beyond, the oldest idle connection is closed
  // The whole request (head and body) must arrive within this of its first byte (408).
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds idle_timeout{5'000};  // an idle keep-alive connection is closed
  // An answer or stream the client does not read for this long: the connection is dropped.
  std::chrono::milliseconds stall_timeout{10'000};
};

class http_server {
 public:
  http_server(engine& eng, server_options opt);
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds; throws std::runtime_error when the address or port cannot be bound.
  void bind();
  [[nodiscard]] int port() const noexcept;
  // Serves until stop(); returns then.
  void run();
  // Thread-safe; ends open streams at once (run() returns within ~0.3 s).
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace bp::console

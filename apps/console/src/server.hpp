// server.hpp: the HTTP face of the engine: the single-page UI (embedded assets), the JSON
// control API and the Server-Sent Events stream of snapshots. A thin layer: every verb maps to
// one engine member; validation is settings_from_json / validate.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "engine.hpp"

namespace bp::console {

struct server_options {
  std::string bind = "127.0.0.1";
  int port = 8080;                      // 0: any free port (see http_server::port())
  int workers = 12;                     // request threads; the accept loop waits when all busy
  std::size_t queued_connections = 64;  // accepted connections waiting for a worker
  std::size_t max_body_bytes = 16 * 1024;
  int max_streams = 4;  // concurrent /api/stream clients (each holds a worker)
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
  // Thread-safe; ends open streams within ~0.3 s.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> p_;
};

}  // namespace bp::console

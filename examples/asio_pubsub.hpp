// A TCP pub/sub server on asio whose connections cannot slow each other down: every
// connection has its own bounded outbox, a bp::channel<std::string> with overflow::drop_oldest,
// and a writer coroutine that drains it into the socket. Publishing offers a line to every
// outbox and never waits; a reader that falls behind loses its oldest lines (counted in its
// outbox's stats().evicted) instead of growing the server's memory or holding up the others.
// Used by examples/asio_pubsub.cpp and tests/asio_test.cpp.
#pragma once

#include <asio.hpp>
#include <bp/asio.hpp>
#include <bp/channel.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace pubsub {

namespace bpa = bp::asio_interop;
using asio::ip::tcp;

class session;

struct options {
  std::size_t outbox_capacity = 256;  // lines queued per connection before the oldest go
  int send_buffer = 0;                // SO_SNDBUF of each connection; 0 leaves the system's
  std::function<void(session&)> on_accept = {};  // called on the server's executor
};

// One subscriber: a socket and the outbox its writer drains.
class session {
 public:
  session(tcp::socket socket, std::size_t capacity)
      : socket_(std::move(socket)), outbox_(capacity, bp::overflow::drop_oldest) {}

  // The outbox (thread-safe): its stats() show what this subscriber lost.
  bp::channel<std::string>& outbox() noexcept { return outbox_; }

  // Sends the outbox's lines in order until it is closed or the peer goes away. The only
  // place a line waits is here, in this connection's own outbox.
  asio::awaitable<void> write_loop() {
    for (;;) {
      auto [st, line] = co_await bpa::async_recv(outbox_, asio::use_awaitable);
      if (st != bp::status::ok) break;  // closed: the server stops
      asio::error_code ec;
      co_await asio::async_write(socket_, asio::buffer(line),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;  // the subscriber left
    }
    outbox_.close();  // publish() forgets a closed outbox
    asio::error_code ignored;
    socket_.close(ignored);
  }

 private:
  tcp::socket socket_;
  bp::channel<std::string> outbox_;
};

class server {
 public:
  // Listens on 127.0.0.1:port (0: an ephemeral port, see port()).
  server(asio::any_io_executor ex, unsigned short port, options opt = {})
      : ex_(std::move(ex)),
        acceptor_(ex_, tcp::endpoint(asio::ip::address_v4::loopback(), port)),
        opt_(opt) {}

  [[nodiscard]] unsigned short port() const { return acceptor_.local_endpoint().port(); }

  // Starts accepting, on the server's executor.
  void start() { asio::co_spawn(ex_, accept_loop(), asio::detached); }

  // Offers `line` to every subscriber. Never waits (drop_oldest evicts instead); callable from
  // any thread.
  void publish(const std::string& line) {
    std::lock_guard lock(m_);
    std::erase_if(sessions_, [&](const std::shared_ptr<session>& s) {
      return s->outbox().send(std::string(line)) == bp::status::closed;
    });
  }

  // The subscribers connected now (for statistics).
  [[nodiscard]] std::vector<std::shared_ptr<session>> sessions() const {
    std::lock_guard lock(m_);
    return sessions_;
  }

  // Stops accepting and ends every writer once it has sent what its outbox holds. Call on the
  // server's executor (it closes the acceptor).
  void stop() {
    asio::error_code ignored;
    acceptor_.close(ignored);
    std::lock_guard lock(m_);
    for (auto& s : sessions_) s->outbox().close();
    sessions_.clear();
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      asio::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;  // stopped
      if (opt_.send_buffer > 0) {
        socket.set_option(asio::socket_base::send_buffer_size(opt_.send_buffer), ec);
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto s = std::make_shared<session>(std::move(socket), opt_.outbox_capacity);
      {
        std::lock_guard lock(m_);
        sessions_.push_back(s);
      }
      if (opt_.on_accept) opt_.on_accept(*s);
      // The coroutine keeps its session alive until the writer ends.
      asio::co_spawn(
          ex_, [s]() { return s->write_loop(); }, asio::detached);
    }
  }

  asio::any_io_executor ex_;
  tcp::acceptor acceptor_;
  options opt_;
  mutable std::mutex m_;
  std::vector<std::shared_ptr<session>> sessions_;
};

}  // namespace pubsub

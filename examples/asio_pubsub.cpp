// A TCP pub/sub server (examples/asio_pubsub.hpp) on one asio io_context: every connection has
// its own bounded outbox, so a slow subscriber loses its oldest lines instead of slowing the
// others or growing the server's memory.
//
//   asio_pubsub [port]   serve on 127.0.0.1:port (0 or nothing: an ephemeral port, printed);
//                        a timer publishes "tick N" every 100 ms; try `nc 127.0.0.1 <port>`.
//                        Ctrl-C stops it.
//   asio_pubsub --quick  a self-contained run: one subscriber that reads everything and one
//                        that never reads; prints what each outbox lost.
#include <asio.hpp>
#include <bp/asio.hpp>
#include <bp/semaphore.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "asio_pubsub.hpp"

namespace {

namespace bpa = bp::asio_interop;
using asio::ip::tcp;
using namespace std::chrono_literals;

asio::awaitable<void> tick(pubsub::server& srv) {
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (long n = 0;; ++n) {
    srv.publish("tick " + std::to_string(n) + "\n");
    timer.expires_after(100ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
}

int serve(unsigned short port) {
  asio::io_context io;
  pubsub::server srv(io.get_executor(), port);
  srv.start();
  std::printf("asio_pubsub: listening on 127.0.0.1:%u\n", static_cast<unsigned>(srv.port()));
  std::fflush(stdout);
  asio::co_spawn(io, tick(srv), asio::detached);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const asio::error_code&, int) {
    srv.stop();
    io.stop();
  });
  io.run();
  return 0;
}

// A subscriber that reads every line, releasing one permit of `got` per line.
asio::awaitable<void> read_lines(tcp::socket& s, bp::semaphore& got) {
  std::string buf;
  for (;;) {
    asio::error_code ec;
    const std::size_t n = co_await asio::async_read_until(
        s, asio::dynamic_buffer(buf), '\n', asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    buf.erase(0, n);
    got.release(1);
  }
}

constexpr int lines = 5000, batch = 50;

// Publishes `lines` lines of 200 bytes in batches, each after the reading subscriber has read
// the one before: the fast subscriber paces the publisher, the slow one cannot.
asio::awaitable<void> publish(pubsub::server& srv, bp::semaphore& connected, bp::semaphore& got) {
  co_await bpa::async_acquire(connected, 2, asio::use_awaitable);  // both subscribers are in
  const std::string pad(190, '.');
  for (int i = 0; i < lines; i += batch) {
    for (int j = i; j < i + batch; ++j) srv.publish(std::to_string(j) + pad + "\n");
    if (co_await bpa::async_acquire(got, batch, asio::use_awaitable) != bp::status::ok) co_return;
  }
}

int quick() {
  asio::io_context io;
  bp::semaphore connected(0), got(0);
  pubsub::server srv(io.get_executor(), 0,
                     {.outbox_capacity = 64,
                      .send_buffer = 4096,
                      .on_accept = [&](pubsub::session&) { connected.release(1); }});
  srv.start();
  const tcp::endpoint at(asio::ip::address_v4::loopback(), srv.port());

  tcp::socket fast(io), slow(io);
  fast.connect(at);
  slow.open(tcp::v4());
  slow.set_option(asio::socket_base::receive_buffer_size(1024));
  slow.connect(at);  // and never read from

  asio::co_spawn(io, read_lines(fast, got), asio::detached);
  int failures = 0;
  asio::co_spawn(io, publish(srv, connected, got), [&](std::exception_ptr) {
    const auto subscribers = srv.sessions();
    for (std::size_t i = 0; i < subscribers.size(); ++i) {
      const auto st = subscribers[i]->outbox().stats();
      std::printf("subscriber %zu: sent %llu, evicted %llu, queued %zu\n", i,
                  static_cast<unsigned long long>(st.sent),
                  static_cast<unsigned long long>(st.evicted), subscribers[i]->outbox().size());
      // The first accepted is the reading one: it lost nothing; the silent one lost lines.
      if ((i == 0) != (st.evicted == 0)) ++failures;
    }
    if (subscribers.size() != 2) ++failures;
    std::printf("%s\n", failures == 0 ? "ok: the slow subscriber lost its oldest lines, the fast "
                                        "one none"
                                      : "FAILED");
    srv.stop();
    io.stop();  // the silent subscriber's writer would wait for it forever
  });
  io.run();
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view arg = argc > 1 ? argv[1] : "0";
  if (arg == "--quick") return quick();
  return serve(static_cast<unsigned short>(std::strtoul(std::string(arg).c_str(), nullptr, 10)));
}

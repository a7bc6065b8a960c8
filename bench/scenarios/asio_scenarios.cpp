// scn_asio: asio::experimental::concurrent_channel<void(error_code, u64)>, used the way it is
// meant to be: producers and consumers are asynchronous loops (not threads) on an
// asio::thread_pool with one thread per core. Each loop first tries the synchronous
// try_send / try_receive and falls back to async_send / async_receive (a completion handler
// queued on the pool) only when the channel is full / empty.
//
// Same method and CSV line as driver.hpp. Asio 1.22's close() discards buffered values, so
// consumers end on poison values, sent by the main thread once every producer is done.
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/post.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_future.hpp>

#include <algorithm>
#include <memory>

#include "driver.hpp"

namespace {

using bench::u64;
using channel_t = asio::experimental::concurrent_channel<void(asio::error_code, u64)>;

unsigned pool_threads() {
  return std::max(2u, std::thread::hardware_concurrency());
}

struct producer {
  channel_t& ch;
  std::atomic<bool>& stop;
  std::latch& done;
  u64 v;
  bench::tally t{};

  void step() {
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 256; ++k) {
        ++v;
        if (ch.try_send(asio::error_code{}, v)) {
          t.sum += v;
          ++t.count;
          continue;
        }
        ch.async_send(asio::error_code{}, v, [this](asio::error_code ec) {
          if (ec) bench::fail("asio", "send", "async_send error", 0, u64(ec.value()));
          t.sum += v;
          ++t.count;
          step();
        });
        return;
      }
    }
    done.count_down();
  }
};

struct consumer {
  channel_t& ch;
  std::latch& done;
  bench::tally t{};
  bool finished = false;

  void on_item(asio::error_code ec, u64 v) {
    if (ec || v == bench::poison) {
      finished = true;
      return;
    }
    t.sum += v;
    ++t.count;
  }
  void step() {
    while (ch.try_receive([this](asio::error_code ec, u64 v) { on_item(ec, v); }))
      if (finished) return done.count_down();
    ch.async_receive([this](asio::error_code ec, u64 v) {
      on_item(ec, v);
      if (finished) return done.count_down();
      step();
    });
  }
};

void send_blocking(channel_t& ch, u64 v) {
  ch.async_send(asio::error_code{}, v, asio::use_future).get();
}

int throughput(const bench::options& o, int producers, int consumers) {
  asio::thread_pool pool(pool_threads());
  channel_t ch(pool.get_executor(), o.capacity);
  std::atomic<bool> stop{false};
  std::latch producers_done(producers), consumers_done(consumers);
  std::vector<std::unique_ptr<producer>> ps;
  std::vector<std::unique_ptr<consumer>> cs;
  for (int p = 0; p < producers; ++p)
    ps.push_back(
        std::make_unique<producer>(producer{ch, stop, producers_done, static_cast<u64>(p) << 40}));
  for (int c = 0; c < consumers; ++c)
    cs.push_back(std::make_unique<consumer>(consumer{ch, consumers_done}));
  const auto t0 = bench::clock::now();
  for (auto& c : cs) asio::post(pool, [c = c.get()] { c->step(); });
  for (auto& p : ps) asio::post(pool, [p = p.get()] { p->step(); });
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop.store(true);
  producers_done.wait();
  for (int c = 0; c < consumers; ++c) send_blocking(ch, bench::poison);
  consumers_done.wait();
  const double elapsed = bench::seconds_since(t0);
  pool.join();
  bench::tally s, r;
  for (auto& p : ps) s.count += p->t.count, s.sum += p->t.sum;
  for (auto& c : cs) r.count += c->t.count, r.sum += c->t.sum;
  if (r.count != s.count) bench::fail("asio", o.scenario, "items received", s.count, r.count);
  if (r.sum != s.sum) bench::fail("asio", o.scenario, "sum received", s.sum, r.sum);
  bench::print_result("asio", o.scenario, static_cast<double>(r.count) / elapsed, "items_per_s",
                      r.count, 0, elapsed);
  return 0;
}

// One async loop sends n on `ping` and waits for it on `pong`; an echo loop answers.
struct pinger {
  channel_t& ping;
  channel_t& pong;
  bench::clock::time_point deadline;
  std::latch& done;
  u64 trips = 0, sum = 0, back = 0;

  void on_echo(asio::error_code ec, u64 v) {
    if (ec) bench::fail("asio", "pingpong", "echo error", 0, u64(ec.value()));
    back += v;
  }
  // True when the echo was already there; else the async receive continues with run().
  bool await_echo() {
    if (pong.try_receive([this](asio::error_code ec, u64 v) { on_echo(ec, v); })) return true;
    pong.async_receive([this](asio::error_code ec, u64 v) {
      on_echo(ec, v);
      run();
    });
    return false;
  }
  // A loop, not recursion: a trip that completes synchronously goes round again here.
  void run() {
    for (;;) {
      if ((trips & 63) == 0 && bench::clock::now() >= deadline) return done.count_down();
      ++trips;
      sum += trips;
      if (!ping.try_send(asio::error_code{}, trips)) {
        ping.async_send(asio::error_code{}, trips, [this](asio::error_code) {
          if (await_echo()) run();
        });
        return;
      }
      if (!await_echo()) return;
    }
  }
};

struct echoer {
  channel_t& ping;
  channel_t& pong;
  void step() {
    ping.async_receive([this](asio::error_code ec, u64 v) {
      if (ec || v == bench::poison) return;
      if (pong.try_send(asio::error_code{}, v)) return step();
      pong.async_send(asio::error_code{}, v, [this](asio::error_code) { step(); });
    });
  }
};

int ping_pong(const bench::options& o) {
  asio::thread_pool pool(pool_threads());
  channel_t ping(pool.get_executor(), 1), pong(pool.get_executor(), 1);
  std::latch done(1);
  const auto t0 = bench::clock::now();
  pinger p{ping, pong,
           t0 + std::chrono::duration_cast<bench::clock::duration>(
                    std::chrono::duration<double>(o.seconds)),
           done};
  echoer e{ping, pong};
  asio::post(pool, [&] { e.step(); });
  asio::post(pool, [&] { p.run(); });
  done.wait();
  const double elapsed = bench::seconds_since(t0);
  send_blocking(ping, bench::poison);
  pool.join();
  if (p.back != p.sum) bench::fail("asio", "pingpong", "sum echoed", p.sum, p.back);
  bench::print_result("asio", "pingpong", elapsed * 1e9 / static_cast<double>(p.trips),
                      "ns_per_trip", p.trips, 0, elapsed);
  return 0;
}

int blocked(const bench::options& o) {
  asio::thread_pool pool(pool_threads());
  channel_t ch(pool.get_executor(), o.capacity);
  std::atomic<u64> received{0};
  std::latch done(1);
  ch.async_receive([&](asio::error_code, u64 v) {
    received.store(v);
    done.count_down();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const bench::usage before = bench::now_usage();
  const auto t0 = bench::clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const bench::usage after = bench::now_usage();
  const double wall = bench::seconds_since(t0);
  send_blocking(ch, 42);
  done.wait();
  pool.join();
  if (received.load() != 42) bench::fail("asio", "blocked", "value received", 42, received.load());
  const double cpu = (after.user_s - before.user_s) + (after.sys_s - before.sys_s);
  bench::print_result("asio", "blocked", cpu, "cpu_s", 1, 0, wall);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::options o = bench::parse(argc, argv);
  if (o.scenario == "spsc") return throughput(o, 1, 1);
  if (o.scenario == "mpmc2x2") return throughput(o, 2, 2);
  if (o.scenario == "mpmc8x8") return throughput(o, 8, 8);
  if (o.scenario == "pingpong") return ping_pong(o);
  if (o.scenario == "blocked") return blocked(o);
  std::fprintf(stderr, "asio: unknown scenario %s\n", o.scenario.c_str());
  return 64;
}

// The coroutine verbs of bp::channel (async_send, async_recv) beside asio's
// experimental::concurrent_channel awaited from asio::awaitable coroutines (built when asio's
// headers are found). The Go peer runs the same scenarios (bench/go/scenarios.go); the three are
// compared by bench/async_compare.sh and docs/async.md, section "Numbers".
//
//   PingPong_OneThread    two coroutines on one thread, round trips through two capacity-1
//                         channels; one iteration is one round trip. bp: both coroutines under
//                         sync_wait(when_all(...)), resumed inline (the default). asio: both
//                         co_spawned on an io_context run by one thread.
//   PingPong_TwoThreads   the same with each coroutine on a thread of its own. bp: two
//                         thread_pools of one thread, each coroutine awaiting with
//                         bp::resume_on(its own pool), so it always continues on its thread.
//                         asio: two io_contexts, each run by one thread.
//   Mpmc/N                N producer and N consumer coroutines on a pool of 2 threads, one
//                         channel of capacity 1024, 2^18 items per iteration; items/s. bp: spawned
//                         into an async_scope on a bp::thread_pool(2), resumed inline (Arg 0) or
//                         posted back to the pool with bp::resume_on (Arg 1). asio: co_spawned
//                         on an asio::thread_pool(2).
//
//   cmake --preset release && cmake --build --preset release --target async_benchmark
#include <bp/channel.hpp>
#include <bp/executor.hpp>
#include <bp/task.hpp>

#include <atomic>
#include <cstdint>
#include <latch>
#include <thread>
#include <utility>

#include <benchmark/benchmark.h>

#if BP_BENCH_HAVE_ASIO
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/concurrent_channel.hpp>
#include <asio/io_context.hpp>
#include <asio/redirect_error.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#endif

namespace {

using u64 = std::uint64_t;
constexpr std::size_t mpmc_capacity = 1024;
constexpr u64 mpmc_items = u64{1} << 18;  // per iteration, over all producers

// --- bp --------------------------------------------------------------------------------------

void BM_Bp_PingPong_OneThread(benchmark::State& state) {
  bp::channel<u64> ping(1), pong(1);
  auto echo = [&]() -> bp::task<void> {
    while (auto v = co_await ping.async_recv()) (void)co_await pong.async_send(std::move(*v));
  };
  auto driver = [&]() -> bp::task<void> {
    u64 i = 0, sum = 0, back = 0;
    for (auto _ : state) {
      sum += i;
      (void)co_await ping.async_send(u64{i++});
      back += *co_await pong.async_recv();
    }
    ping.close();
    if (back != sum) state.SkipWithError("echoed values lost or changed");
  };
  bp::sync_wait(bp::when_all(echo(), driver()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Bp_PingPong_OneThread);

void BM_Bp_PingPong_TwoThreads(benchmark::State& state) {
  bp::channel<u64> ping(1), pong(1);
  bp::thread_pool a(1), b(1);
  auto echo = [&]() -> bp::task<void> {
    const auto home = b.get_executor();
    co_await bp::schedule(home);
    while (auto v = co_await ping.async_recv(bp::resume_on(home)))
      (void)co_await pong.async_send(std::move(*v), bp::resume_on(home));
  };
  auto driver = [&]() -> bp::task<void> {
    const auto home = a.get_executor();
    co_await bp::schedule(home);
    u64 i = 0, sum = 0, back = 0;
    for (auto _ : state) {
      sum += i;
      (void)co_await ping.async_send(u64{i++}, bp::resume_on(home));
      back += *co_await pong.async_recv(bp::resume_on(home));
    }
    ping.close();
    if (back != sum) state.SkipWithError("echoed values lost or changed");
  };
  bp::sync_wait(bp::when_all(echo(), driver()));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Bp_PingPong_TwoThreads)->UseRealTime();

void BM_Bp_Mpmc(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const bool posted = state.range(1) != 0;
  const u64 per = mpmc_items / static_cast<u64>(n);
  bp::thread_pool pool(2);
  const auto ex = pool.get_executor();
  const bp::async_options on = posted ? bp::async_options(bp::resume_on(ex)) : bp::async_options();
  for (auto _ : state) {
    bp::channel<u64> ch(mpmc_capacity);
    std::atomic<int> producers_left{n};
    std::atomic<u64> received{0}, sum{0};
    auto producer = [&]() -> bp::task<void> {
      for (u64 j = 1; j <= per; ++j) (void)co_await ch.async_send(u64{j}, on);
      if (producers_left.fetch_sub(1) == 1) ch.close();
    };
    auto consumer = [&]() -> bp::task<void> {
      u64 count = 0, local = 0;
      while (auto v = co_await ch.async_recv(on)) {
        local += *v;
        ++count;
      }
      received += count;
      sum += local;
    };
    bp::async_scope scope;
    for (int k = 0; k < n; ++k) {
      scope.spawn(ex, consumer());
      scope.spawn(ex, producer());
    }
    scope.join();
    if (received != per * static_cast<u64>(n) || sum != static_cast<u64>(n) * (per * (per + 1) / 2))
      state.SkipWithError("lost or duplicated items");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per * n));
}
BENCHMARK(BM_Bp_Mpmc)
    ->ArgNames({"n", "posted"})
    ->Args({2, 0})
    ->Args({8, 0})
    ->Args({2, 1})
    ->Args({8, 1})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// --- asio ------------------------------------------------------------------------------------
#if BP_BENCH_HAVE_ASIO

using asio_channel = asio::experimental::concurrent_channel<void(asio::error_code, u64)>;

// The echo side of both ping-pongs: until `ping` is closed.
asio::awaitable<void> asio_echo(asio_channel& ping, asio_channel& pong) {
  for (;;) {
    asio::error_code ec;
    const u64 v = co_await ping.async_receive(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    co_await pong.async_send(asio::error_code{}, v, asio::use_awaitable);
  }
}

asio::awaitable<void> asio_driver(benchmark::State& state, asio_channel& ping, asio_channel& pong) {
  u64 i = 0, sum = 0, back = 0;
  for (auto _ : state) {
    sum += i;
    co_await ping.async_send(asio::error_code{}, i++, asio::use_awaitable);
    back += co_await pong.async_receive(asio::use_awaitable);
  }
  ping.close();
  if (back != sum) state.SkipWithError("echoed values lost or changed");
}

void BM_Asio_PingPong_OneThread(benchmark::State& state) {
  asio::io_context ctx(1);
  asio_channel ping(ctx, 1), pong(ctx, 1);
  asio::co_spawn(ctx, asio_echo(ping, pong), asio::detached);
  asio::co_spawn(ctx, asio_driver(state, ping, pong), asio::detached);
  ctx.run();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Asio_PingPong_OneThread);

void BM_Asio_PingPong_TwoThreads(benchmark::State& state) {
  asio::io_context a(1), b(1);
  asio_channel ping(a, 1), pong(b, 1);
  asio::co_spawn(b, asio_echo(ping, pong), asio::detached);
  asio::co_spawn(a, asio_driver(state, ping, pong), asio::detached);
  std::thread tb([&] { b.run(); });
  a.run();
  tb.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Asio_PingPong_TwoThreads)->UseRealTime();

// asio 1.22's close() discards buffered values, so each consumer takes exactly its share.
void BM_Asio_Mpmc(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const u64 per = mpmc_items / static_cast<u64>(n);
  asio::thread_pool pool(2);
  for (auto _ : state) {
    asio_channel ch(pool, mpmc_capacity);
    std::atomic<u64> sum{0};
    std::latch done(2 * n);
    auto producer = [&]() -> asio::awaitable<void> {
      for (u64 j = 1; j <= per; ++j)
        co_await ch.async_send(asio::error_code{}, j, asio::use_awaitable);
    };
    auto consumer = [&]() -> asio::awaitable<void> {
      u64 local = 0;
      for (u64 j = 0; j < per; ++j) local += co_await ch.async_receive(asio::use_awaitable);
      sum += local;
    };
    auto finished = [&](const std::exception_ptr&) { done.count_down(); };
    for (int k = 0; k < n; ++k) {
      asio::co_spawn(pool, consumer(), finished);
      asio::co_spawn(pool, producer(), finished);
    }
    done.wait();
    if (sum != static_cast<u64>(n) * (per * (per + 1) / 2))
      state.SkipWithError("lost or duplicated items");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per * n));
}
BENCHMARK(BM_Asio_Mpmc)->ArgName("n")->Arg(2)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);

#endif  // BP_BENCH_HAVE_ASIO

}  // namespace

BENCHMARK_MAIN();

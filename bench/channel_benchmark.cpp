// Micro-benchmarks of bp::channel: uncontended try operations for every policy, and a blocking
// SPSC stream. The peer comparison scenarios live in bench/scenarios/ (scripts/bench).
#include <bp/channel.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>
#include <vector>

namespace {

void BM_TrySendTryRecv(benchmark::State& state) {
  const auto policy = static_cast<bp::overflow>(state.range(0));
  bp::channel<std::uint64_t> ch(1024, policy);
  std::uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ch.try_send(i++));
    benchmark::DoNotOptimize(ch.try_recv());
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(std::string(bp::to_string(policy)));
}
BENCHMARK(BM_TrySendTryRecv)->DenseRange(0, 3);

// The floor under any operation that claims a ticket with a compare-and-swap: a relaxed load
// and a `lock cmpxchg` on an uncontended line of this thread's own, nothing else. Every
// bp::channel send and receive does exactly this once (scripts/bench reports it beside the
// try ops, so the single-digit-ns target can be read against what this CPU allows).
void BM_CasFloor(benchmark::State& state) {
  alignas(64) std::atomic<std::uint64_t> word{0};
  for (auto _ : state) {
    std::uint64_t seen = word.load(std::memory_order_relaxed);
    benchmark::DoNotOptimize(word.compare_exchange_weak(seen, seen + 1));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CasFloor);

void BM_SpscBlocking(benchmark::State& state) {
  const auto capacity = static_cast<std::size_t>(state.range(0));
  constexpr std::uint64_t n = 1 << 20;
  for (auto _ : state) {
    bp::channel<std::uint64_t> ch(capacity);
    std::thread producer([&] {
      for (std::uint64_t i = 0; i < n; ++i) (void)ch.send(i);
      ch.close();
    });
    std::uint64_t sum = 0;
    while (auto v = ch.recv()) sum += *v;
    producer.join();
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_SpscBlocking)
    ->Arg(1)
    ->Arg(64)
    ->Arg(1024)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// SPSC with batches of state.range(0) values each way.
void BM_SpscBatched(benchmark::State& state) {
  const auto batch = static_cast<std::size_t>(state.range(0));
  constexpr std::uint64_t n = 1 << 22;
  for (auto _ : state) {
    bp::channel<std::uint64_t> ch(1024);
    std::thread producer([&] {
      std::vector<std::uint64_t> buf(batch);
      for (std::uint64_t i = 0; i < n; i += batch) {
        for (std::size_t j = 0; j < batch; ++j) buf[j] = i + j;
        (void)ch.send_n(buf);
      }
      ch.close();
    });
    std::vector<std::uint64_t> out;
    out.reserve(batch);
    std::uint64_t sum = 0;
    for (;;) {
      out.clear();
      if (ch.recv_many(out, batch) == 0) break;
      for (auto v : out) sum += v;
    }
    producer.join();
    if (sum != n * (n - 1) / 2) state.SkipWithError("lost or duplicated items");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}
BENCHMARK(BM_SpscBatched)->Arg(16)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);

// Round trip through two capacity-1 channels (ping and pong).
void BM_PingPong(benchmark::State& state) {
  bp::channel<std::uint64_t> ping(1), pong(1);
  std::thread echo([&] {
    while (auto v = ping.recv()) (void)pong.send(*v);
  });
  std::uint64_t i = 0;
  for (auto _ : state) {
    (void)ping.send(i++);
    benchmark::DoNotOptimize(pong.recv());
  }
  ping.close();
  echo.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PingPong)->UseRealTime();

// P producers x P consumers through capacity 1024.
void BM_Mpmc(benchmark::State& state) {
  const int p = static_cast<int>(state.range(0));
  constexpr std::uint64_t per = 1 << 18;
  for (auto _ : state) {
    bp::channel<std::uint64_t> ch(1024);
    std::vector<std::thread> ts;
    std::atomic<std::uint64_t> sum{0};
    std::atomic<int> producers_left{p};
    for (int i = 0; i < p; ++i)
      ts.emplace_back([&] {
        for (std::uint64_t j = 0; j < per; ++j) (void)ch.send(j);
        if (--producers_left == 0) ch.close();
      });
    for (int i = 0; i < p; ++i)
      ts.emplace_back([&] {
        std::uint64_t local = 0;
        while (auto v = ch.recv()) local += *v;
        sum += local;
      });
    for (auto& t : ts) t.join();
    if (sum != p * (per * (per - 1) / 2)) state.SkipWithError("lost or duplicated items");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * per * p));
}
BENCHMARK(BM_Mpmc)->Arg(1)->Arg(2)->Arg(8)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

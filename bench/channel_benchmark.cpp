// Micro-benchmarks of bp::channel: uncontended try operations for every policy, and a blocking
// SPSC stream. The peer comparison scenarios live in bench/scenarios/ (scripts/bench).
#include <bp/channel.hpp>

#include <benchmark/benchmark.h>

#include <thread>

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

}  // namespace

BENCHMARK_MAIN();

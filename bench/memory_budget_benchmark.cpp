// Benchmarks of bp::memory_budget and the memory budget scenario (tests/support/q2_scenario.hpp,
// namespace q2, hence BM_Q2*):
//   BM_TryReserveRelease   cost of one grant + give-back, uncontended (ns)
//   BM_ReserveContended    the same from 1..4 threads on their own streams of one budget
//   BM_Q2                  500 streams x 1 MiB high watermark, without (arg 0) and with a
//                          budget of arg MiB: throughput (bytes/s), peak buffered bytes
//   BM_Q2Ratio             both runs back to back per iteration: budgeted / unbudgeted
//                          throughput (examples/memory_budget fails below 0.8)
// Build: cmake --preset release && cmake --build --preset release --target memory_budget_benchmark
#include <bp/memory_budget.hpp>

#include <benchmark/benchmark.h>

#include <thread>

#include "q2_scenario.hpp"

namespace {

void BM_TryReserveRelease(benchmark::State& state) {
  bp::memory_budget budget(std::size_t{64} << 20);
  auto s = budget.open_stream();
  for (auto _ : state) {
    auto r = s.try_reserve(4096);
    benchmark::DoNotOptimize(r.bytes());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TryReserveRelease);

bp::memory_budget shared_budget(std::size_t{64} << 20);

void BM_ReserveContended(benchmark::State& state) {
  auto s = shared_budget.open_stream();
  for (auto _ : state) {
    auto r = s.reserve(4096);
    benchmark::DoNotOptimize(r.bytes());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReserveContended)->ThreadRange(1, 4)->UseRealTime();

q2::config q2_config(std::size_t budget_mib) {
  q2::config cfg;
  cfg.budget = budget_mib << 20;
  cfg.chunks_per_stream = 256;  // 4 MiB per stream, 2 GiB in all: the start-up fill is amortised
  return cfg;
}

void BM_Q2(benchmark::State& state) {
  const auto cfg = q2_config(static_cast<std::size_t>(state.range(0)));
  std::size_t peak = 0;
  std::uint64_t bytes = 0;
  std::uint64_t waits = 0;
  for (auto _ : state) {
    const auto r = q2::run(cfg);
    if (!r.ok) {
      state.SkipWithError(r.error.c_str());
      return;
    }
    peak = std::max(peak, cfg.budget ? r.budget_peak : r.peak_buffered);
    bytes += r.bytes;
    waits += r.budget.waits;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["peak_MiB"] = static_cast<double>(peak) / (1 << 20);
  state.counters["budget_MiB"] = static_cast<double>(cfg.budget >> 20);
  state.counters["budget_waits"] =
      benchmark::Counter(static_cast<double>(waits), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_Q2)->Arg(0)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_Q2Ratio(benchmark::State& state) {
  const auto budgeted_cfg = q2_config(64);
  const auto unbudgeted_cfg = q2_config(0);
  double ratio_sum = 0;
  double worst = 1e9;
  std::size_t peak = 0;
  for (auto _ : state) {
    const auto u = q2::run(unbudgeted_cfg);
    const auto b = q2::run(budgeted_cfg);
    if (!u.ok || !b.ok) {
      state.SkipWithError("scenario failed");
      return;
    }
    const double ratio = b.bytes_per_second() / u.bytes_per_second();
    ratio_sum += ratio;
    worst = std::min(worst, ratio);
    peak = std::max(peak, b.budget_peak);
  }
  state.counters["ratio"] = ratio_sum / static_cast<double>(state.iterations());
  state.counters["worst_ratio"] = worst;
  state.counters["budgeted_peak_MiB"] = static_cast<double>(peak) / (1 << 20);
}
BENCHMARK(BM_Q2Ratio)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(5);

}  // namespace

BENCHMARK_MAIN();

// What the statistics cost. The hot path (operations that complete at once) registered in a
// bp::metrics::registry and not; the slow path (a capacity-1 channel whose every operation may
// wait, so the wait timers run); recording into a wait histogram; and a snapshot of a registry
// of eight primitives. Built with -DBP_BENCH_BASELINE against the headers of a commit without
// statistics, the same hot-path benchmarks give the "before" column of docs/metrics.md.
#include <bp/channel.hpp>
#include <bp/semaphore.hpp>
#include <bp/token_bucket.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <thread>

#ifndef BP_BENCH_BASELINE
#include <bp/metrics.hpp>

#include "all_primitives.hpp"
#endif

namespace {

#ifndef BP_BENCH_BASELINE
// range(0) == 1: the primitive is registered (and a snapshot taken once) while it runs.
template <class P>
std::optional<bp::metrics::registration> maybe_register(bp::metrics::registry& reg,
                                                        const benchmark::State& state, const P& p) {
  if (state.range(0) == 0) return std::nullopt;
  auto r = reg.add("bench", p);
  benchmark::DoNotOptimize(reg.snapshot());
  return r;
}
// One registry for the program, as an application would have.
bp::metrics::registry& bench_registry() {
  static bp::metrics::registry reg;
  return reg;
}
#define BP_MAYBE_REGISTER(p)    \
  benchmark::DoNotOptimize(&p); \
  const auto registration = maybe_register(bench_registry(), state, p)
#define BP_REGISTERED_ARGS ->Arg(0)->Arg(1)
#else
// The same escape of the primitive's address as registering makes: both builds give the
// compiler the same freedom.
#define BP_MAYBE_REGISTER(p) benchmark::DoNotOptimize(&p)
#define BP_REGISTERED_ARGS ->Arg(0)
#endif

void BM_ChannelTrySendTryRecv(benchmark::State& state) {
  bp::channel<std::uint64_t> ch(1024);
  BP_MAYBE_REGISTER(ch);
  std::uint64_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ch.try_send(i++));
    benchmark::DoNotOptimize(ch.try_recv());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ChannelTrySendTryRecv) BP_REGISTERED_ARGS;

void BM_SemaphoreTryAcquireRelease(benchmark::State& state) {
  bp::semaphore sem(4);
  BP_MAYBE_REGISTER(sem);
  for (auto _ : state) {
    benchmark::DoNotOptimize(sem.try_acquire());
    sem.release();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SemaphoreTryAcquireRelease) BP_REGISTERED_ARGS;

void BM_TokenBucketAcquire(benchmark::State& state) {
  bp::token_bucket bucket(1e9, 1 << 20);  // never empty: every acquire is granted at once
  BP_MAYBE_REGISTER(bucket);
  for (auto _ : state) benchmark::DoNotOptimize(bucket.acquire());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenBucketAcquire) BP_REGISTERED_ARGS;

// Capacity 1, one producer, one consumer: most operations find the channel full or empty and
// go through the wait loop, so the wait timers (two clock reads per wait) are on this path.
void BM_ChannelSpscCapacity1(benchmark::State& state) {
  constexpr std::uint64_t n = 1 << 16;
  for (auto _ : state) {
    bp::channel<std::uint64_t> ch(1);
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
BENCHMARK(BM_ChannelSpscCapacity1)->UseRealTime()->Unit(benchmark::kMillisecond);

#ifndef BP_BENCH_BASELINE
void BM_WaitHistogramRecord(benchmark::State& state) {
  bp::wait_histogram h;
  std::uint64_t ns = 1;
  for (auto _ : state) {
    h.record_ns(ns);
    ns = (ns * 7 + 13) % 20'000'000'000ULL;  // spread over the buckets
  }
  benchmark::DoNotOptimize(h.snapshot());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WaitHistogramRecord);

void BM_RegistrySnapshot(benchmark::State& state) {
  const bp::test::all_primitives all;
  bp::metrics::registry reg;
  const auto regs = all.register_all(reg, "a");
  for (auto _ : state) benchmark::DoNotOptimize(reg.snapshot());
}
BENCHMARK(BM_RegistrySnapshot)->Unit(benchmark::kMicrosecond);
#endif

}  // namespace

BENCHMARK_MAIN();

// bp::rs throughput: range -> map -> filter -> subscriber, with the subscriber requesting in
// batches of 1, 32, 256 or unbounded; the same pipeline crossing a thread (observe_on); and the
// same work through a bp::channel (a producer thread doing map+filter, a consumer receiving).
// Allocations are counted with a replaced global operator new: `allocs/elem` is what one
// element costs in steady state (per-subscription setup amortised over 1M elements).
#include <bp/streams.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "counting_allocator.hpp"

namespace {

using i64 = std::int64_t;
constexpr i64 kElements = 1 << 20;

bp::rs::request_strategy strategy_of(i64 batch) {
  return batch == 0 ? bp::rs::request_strategy::unbounded()
                    : bp::rs::request_strategy::batch(batch);
}

auto pipeline(i64 n) {
  using namespace bp::rs;
  return range(0, n) | map([](i64 v) { return v * 3; }) | filter([](i64 v) { return v & 1; });
}

void report(benchmark::State& state, std::uint64_t allocs) {
  const auto elems = static_cast<double>(state.iterations()) * static_cast<double>(kElements);
  state.SetItemsProcessed(static_cast<std::int64_t>(elems));
  state.counters["allocs/elem"] = static_cast<double>(allocs) / elems;
}

// Arg: request batch (0 = unbounded).
void BM_RangeMapFilter(benchmark::State& state) {
  const auto st = strategy_of(state.range(0));
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    i64 sum = 0;
    const auto before = bp::test::allocations();
    auto h = bp::rs::subscribe(pipeline(kElements), [&sum](i64 v) { sum += v; }, {.strategy = st});
    allocs += bp::test::allocations() - before;
    if (!h.done()) state.SkipWithError("pipeline did not complete synchronously");
    benchmark::DoNotOptimize(sum);
  }
  report(state, allocs);
  state.SetLabel(state.range(0) == 0 ? "unbounded" : "batch " + std::to_string(state.range(0)));
}
BENCHMARK(BM_RangeMapFilter)->Arg(1)->Arg(32)->Arg(256)->Arg(0)->Unit(benchmark::kMillisecond);

// Steady-state allocations only: one subscription set up outside the measurement, then demand
// for 1M elements at a time.
void BM_SteadyStateAllocations(benchmark::State& state) {
  auto p = std::make_shared<std::pair<std::shared_ptr<bp::rs::subscription>, i64>>();
  struct sink : bp::rs::subscriber<i64> {
    std::shared_ptr<std::pair<std::shared_ptr<bp::rs::subscription>, i64>> p;
    void on_subscribe(std::shared_ptr<bp::rs::subscription> s) override { p->first = std::move(s); }
    void on_next(i64 v) override { p->second += v; }
    void on_error(std::exception_ptr) override {}
    void on_complete() override {}
  };
  auto s = std::make_shared<sink>();
  s->p = p;
  pipeline(bp::rs::unbounded)->subscribe(s);
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    const auto before = bp::test::allocations();
    for (i64 i = 0; i < kElements / 256; ++i) p->first->request(256 / 2);  // filter keeps 1/2
    allocs += bp::test::allocations() - before;
  }
  p->first->cancel();
  report(state, allocs);
}
BENCHMARK(BM_SteadyStateAllocations)->Unit(benchmark::kMillisecond);

// Crossing to another thread: observe_on(worker, prefetch) before the subscriber.
void BM_RangeMapFilterObserveOn(benchmark::State& state) {
  bp::rs::worker w;
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    std::atomic<i64> sum{0};
    const auto before = bp::test::allocations();
    auto h =
        bp::rs::subscribe(pipeline(kElements) | bp::rs::observe_on(w.executor(), state.range(0)),
                          [&sum](i64 v) { sum.fetch_add(v, std::memory_order_relaxed); },
                          {.strategy = bp::rs::request_strategy::batch(state.range(0))});
    h.wait_for(std::chrono::seconds(60));
    allocs += bp::test::allocations() - before;
    benchmark::DoNotOptimize(sum.load());
  }
  report(state, allocs);
}
BENCHMARK(BM_RangeMapFilterObserveOn)
    ->Arg(32)
    ->Arg(256)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The same work through bp::channel: the producer thread maps and filters, the consumer sums.
void BM_ChannelMapFilter(benchmark::State& state) {
  const auto capacity = static_cast<std::size_t>(state.range(0));
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    const auto before = bp::test::allocations();
    bp::channel<i64> ch(capacity);
    std::thread producer([&] {
      for (i64 i = 0; i < kElements; ++i) {
        const i64 v = i * 3;
        if (v & 1) (void)ch.send(v);
      }
      ch.close();
    });
    i64 sum = 0;
    while (auto v = ch.recv()) sum += *v;
    producer.join();
    allocs += bp::test::allocations() - before;
    benchmark::DoNotOptimize(sum);
  }
  report(state, allocs);
}
BENCHMARK(BM_ChannelMapFilter)->Arg(32)->Arg(256)->UseRealTime()->Unit(benchmark::kMillisecond);

// The channel's single-threaded lower bound: try_send then try_recv on one thread.
void BM_ChannelMapFilterSameThread(benchmark::State& state) {
  std::uint64_t allocs = 0;
  for (auto _ : state) {
    const auto before = bp::test::allocations();
    bp::channel<i64> ch(256);
    i64 sum = 0;
    for (i64 i = 0; i < kElements; ++i) {
      const i64 v = i * 3;
      if (v & 1) {
        (void)ch.try_send(v);
        sum += *ch.try_recv();
      }
    }
    allocs += bp::test::allocations() - before;
    benchmark::DoNotOptimize(sum);
  }
  report(state, allocs);
}
BENCHMARK(BM_ChannelMapFilterSameThread)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

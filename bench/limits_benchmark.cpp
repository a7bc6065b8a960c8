// Micro-benchmarks of bp::semaphore and bp::concurrency_limiter: the overhead per request
// (admit + complete) for each limit algorithm, uncontended and with 2 threads, and the
// semaphore's try_acquire/release pair. The limiter numbers are the cost a service pays per
// request on top of its own work.
//
//   cmake --preset release && cmake --build --preset release --target limits_benchmark
#include <bp/concurrency_limiter.hpp>
#include <bp/semaphore.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>

namespace {

using namespace std::chrono_literals;

void BM_Semaphore_TryAcquireRelease(benchmark::State& state) {
  static bp::semaphore* s = nullptr;
  if (state.thread_index() == 0) s = new bp::semaphore(1000);
  for (auto _ : state) {
    if (s->try_acquire()) s->release();
  }
  if (state.thread_index() == 0) {
    delete s;
    s = nullptr;
  }
}
BENCHMARK(BM_Semaphore_TryAcquireRelease)->Threads(1)->Threads(2)->UseRealTime();

void BM_Semaphore_Permit(benchmark::State& state) {
  bp::semaphore s(1000);
  for (auto _ : state) {
    auto p = s.acquire_permit();
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_Semaphore_Permit);

bp::limit_algorithm algorithm(std::int64_t i) {
  switch (i) {
    case 0:
      return bp::fixed_limit{1000};
    case 1:
      return bp::aimd_limit({.initial_limit = 1000, .max_limit = 2000});
    case 2:
      return bp::vegas_limit({.initial_limit = 1000, .max_limit = 2000});
    default:
      return bp::gradient2_limit({.initial_limit = 1000, .max_limit = 2000});
  }
}
const char* const names[] = {"fixed", "aimd", "vegas", "gradient2"};

// One request: admit, then complete with a latency (given: no clock read) or measured.
void BM_Limiter_Request(benchmark::State& state) {
  static std::unique_ptr<bp::concurrency_limiter> lim;
  if (state.thread_index() == 0)
    lim = std::make_unique<bp::concurrency_limiter>(algorithm(state.range(0)));
  const bool measured = state.range(1) != 0;
  for (auto _ : state) {
    auto t = lim->try_acquire();
    if (measured) {
      t.on_success();
    } else {
      t.on_success(10ms);
    }
  }
  if (state.thread_index() == 0) lim.reset();
  state.SetLabel(std::string(names[state.range(0)]) + (measured ? " measured" : " given"));
}
BENCHMARK(BM_Limiter_Request)->ArgsProduct({{0, 1, 2, 3}, {0, 1}})->Threads(1)->UseRealTime();
BENCHMARK(BM_Limiter_Request)->ArgsProduct({{0, 3}, {1}})->Threads(2)->UseRealTime();

void BM_Limiter_RejectWhenFull(benchmark::State& state) {
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto held = lim.try_acquire();
  for (auto _ : state) benchmark::DoNotOptimize(lim.try_acquire());
}
BENCHMARK(BM_Limiter_RejectWhenFull);

}  // namespace

BENCHMARK_MAIN();

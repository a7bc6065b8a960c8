// Micro-benchmarks of bp/rate.hpp: the cost of try_acquire (steady clock and manual clock,
// uncontended and contended), a mutex-and-double token bucket as the baseline, and the rate
// accuracy over 10 s of (manual-clock) time, reported as counters.
//
//   cmake --preset release && cmake --build --preset release --target rate_benchmark
//   ./build/release/bench/rate_benchmark
#include <bp/rate.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <mutex>

namespace {

using namespace std::chrono_literals;

// The textbook token bucket: a mutex, a double of tokens, refill on every call. What most
// hand-written limiters look like; also what drifts (floating accumulation).
class mutex_token_bucket {
 public:
  mutex_token_bucket(double rate, double burst) : rate_(rate), burst_(burst), tokens_(burst) {}
  bool try_acquire() {
    std::lock_guard lock(m_);
    const auto now = std::chrono::steady_clock::now();
    tokens_ =
        std::min(burst_, tokens_ + rate_ * std::chrono::duration<double>(now - last_).count());
    last_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  std::mutex m_;
  double rate_, burst_, tokens_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

// A bucket that always has tokens (granted path) or never (refused path).
template <class Bucket>
void try_acquire_loop(benchmark::State& state, Bucket& b) {
  std::int64_t granted = 0;
  for (auto _ : state) granted += b.try_acquire() ? 1 : 0;
  state.counters["granted%"] = benchmark::Counter(
      100.0 * static_cast<double>(granted) / static_cast<double>(state.iterations()),
      benchmark::Counter::kAvgThreads);
}

void BM_TokenBucket_TryAcquire(benchmark::State& state) {
  static bp::token_bucket* b = nullptr;
  if (state.thread_index() == 0) b = new bp::token_bucket(state.range(0) ? 1e9 : 1e-3, 1 << 30);
  if (state.range(0) == 0 && state.thread_index() == 0) {
    while (b->try_acquire(1 << 20)) {
    }
    while (b->try_acquire()) {
    }
  }
  try_acquire_loop(state, *b);
  if (state.thread_index() == 0) {
    delete b;
    b = nullptr;
  }
  state.SetLabel(state.range(0) ? "granted" : "refused");
}
BENCHMARK(BM_TokenBucket_TryAcquire)->Arg(1)->Arg(0)->Threads(1)->Threads(2)->UseRealTime();

void BM_TokenBucket_TryAcquire_ManualClock(benchmark::State& state) {
  bp::manual_clock clock;
  bp::token_bucket b(1e9, 1 << 30, clock);
  std::int64_t n = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(b.try_acquire());
    if ((++n & 0xfffff) == 0) clock.advance(1ms);  // keep it refilled: the granted path
  }
}
BENCHMARK(BM_TokenBucket_TryAcquire_ManualClock);

void BM_LeakyBucket_TryAcquire(benchmark::State& state) {
  bp::leaky_bucket b(1e9, 1 << 20);
  try_acquire_loop(state, b);
}
BENCHMARK(BM_LeakyBucket_TryAcquire);

void BM_MutexBaseline_TryAcquire(benchmark::State& state) {
  static mutex_token_bucket* b = nullptr;
  if (state.thread_index() == 0) b = new mutex_token_bucket(1e9, 1 << 30);
  try_acquire_loop(state, *b);
  if (state.thread_index() == 0) {
    delete b;
    b = nullptr;
  }
}
BENCHMARK(BM_MutexBaseline_TryAcquire)->Threads(1)->Threads(2)->UseRealTime();

void BM_SteadyClockNow(benchmark::State& state) {  // the floor under every real-clock call
  for (auto _ : state) benchmark::DoNotOptimize(std::chrono::steady_clock::now());
}
BENCHMARK(BM_SteadyClockNow);

// Rate accuracy: 10 s of manual-clock time, drained every `step`; counters report granted
// and its relative error against rate * 10 s + burst in parts per million.
void BM_Accuracy10s(benchmark::State& state) {
  const double rate = static_cast<double>(state.range(0)) / 10.0;
  const std::size_t burst = static_cast<std::size_t>(state.range(1));
  double error_ppm = 0, granted = 0;
  for (auto _ : state) {
    bp::manual_clock clock;
    bp::token_bucket b(rate, burst, clock);
    const auto step = std::chrono::nanoseconds(
        static_cast<std::int64_t>(std::max(1.0, 0.5e9 * static_cast<double>(burst) / rate)));
    std::int64_t g = 0;
    for (auto elapsed = 0ns;; elapsed = clock.now()) {
      while (b.try_acquire(burst)) g += static_cast<std::int64_t>(burst);
      while (b.try_acquire()) ++g;
      if (elapsed >= 10s) break;
      clock.advance(std::min<std::chrono::nanoseconds>(step, 10s - elapsed));
    }
    granted = static_cast<double>(g);
    const double ideal = rate * 10.0 + static_cast<double>(burst);
    error_ppm = 1e6 * (granted - ideal) / ideal;
  }
  state.counters["granted"] = granted;
  state.counters["error_ppm"] = error_ppm;
}
BENCHMARK(BM_Accuracy10s)
    ->Args({1000, 1})         // 100/s
    ->Args({3333, 7})         // 333.3/s
    ->Args({30000000, 1000})  // 3e6/s: 333.33 ns interval, where a ns GCRA drifts 0.1%
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();

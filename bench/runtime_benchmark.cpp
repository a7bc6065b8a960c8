// Micro-benchmarks of the coroutine runtime (bp/task.hpp, bp/executor.hpp): what a task costs
// next to a plain function call, what sync_wait adds, and one post + resume through a
// thread_pool and a run_loop (a coroutine hopping onto the executor once per iteration).
//
//   cmake --preset release && cmake --build --preset release --target runtime_benchmark
#include <bp/executor.hpp>
#include <bp/task.hpp>

#include <benchmark/benchmark.h>

namespace {

[[gnu::noinline]] long plain_square(long x) {
  return x * x;
}

bp::task<long> task_square(long x) {
  co_return (x * x);
}

void BM_PlainFunctionCall(benchmark::State& state) {
  long x = 3;
  for (auto _ : state) {
    benchmark::DoNotOptimize(x);
    benchmark::DoNotOptimize(plain_square(x));
  }
}
BENCHMARK(BM_PlainFunctionCall);

// Create a task, await it, get its value: one frame allocation, two hand-overs.
void BM_TaskAwait(benchmark::State& state) {
  auto body = [&]() -> bp::task<void> {
    long x = 3;
    for (auto _ : state) {
      benchmark::DoNotOptimize(x);
      benchmark::DoNotOptimize(co_await task_square(x));
    }
  };
  bp::sync_wait(body());
}
BENCHMARK(BM_TaskAwait);

// sync_wait from ordinary code on a task that completes at once.
void BM_SyncWait(benchmark::State& state) {
  long x = 3;
  for (auto _ : state) {
    benchmark::DoNotOptimize(x);
    benchmark::DoNotOptimize(bp::sync_wait(task_square(x)));
  }
}
BENCHMARK(BM_SyncWait);

// One coroutine hopping onto the pool every iteration: post + dequeue + resume. The thread
// posting is a pool thread, which usually picks its own post up again (no wake-up).
void BM_ThreadPool_PostResume(benchmark::State& state) {
  bp::thread_pool pool(static_cast<std::size_t>(state.range(0)));
  auto ex = pool.get_executor();
  auto body = [&]() -> bp::task<void> {
    for (auto _ : state) co_await bp::schedule(ex);
  };
  bp::sync_wait(body());
}
BENCHMARK(BM_ThreadPool_PostResume)->Arg(1)->Arg(2)->UseRealTime();

// Ping-pong between two pools of one thread: every post wakes a parked thread.
void BM_ThreadPool_PingPong(benchmark::State& state) {
  bp::thread_pool a(1), b(1);
  auto body = [&]() -> bp::task<void> {
    bool to_a = true;
    for (auto _ : state) {
      if (to_a) {
        co_await bp::schedule(a.get_executor());
      } else {
        co_await bp::schedule(b.get_executor());
      }
      to_a = !to_a;
    }
  };
  bp::sync_wait(body());
}
BENCHMARK(BM_ThreadPool_PingPong)->UseRealTime();

// The same hop through a run_loop run by the benchmark's thread.
void BM_RunLoop_PostResume(benchmark::State& state) {
  bp::run_loop loop;
  auto ex = loop.get_executor();
  auto body = [&]() -> bp::task<void> {
    for (auto _ : state) co_await bp::schedule(ex);
  };
  bp::sync_wait(loop, body());
}
BENCHMARK(BM_RunLoop_PostResume);

}  // namespace

BENCHMARK_MAIN();

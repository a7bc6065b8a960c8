// The async runtime in one file: tasks, sync_wait, when_all, a thread pool, a run loop and an
// async_scope. Everything here is what bp's examples and tests use to run coroutines; nothing
// else is needed.
#include <bp/executor.hpp>
#include <bp/task.hpp>

#include <atomic>
#include <cstdio>
#include <vector>

// A task is lazy: calling square() creates it, co_await (or sync_wait) runs it.
bp::task<long> square(long x) {
  co_return (x * x);
}

// Awaiting a task that completes at once: no stack growth, no allocation beyond its frame.
bp::task<long> sum_of_squares(long from, long to) {
  long sum = 0;
  for (long i = from; i < to; ++i) sum += co_await square(i);
  co_return sum;
}

// co_await bp::schedule(ex) moves the rest of the coroutine onto the pool.
bp::task<long> on_pool(bp::thread_pool::executor_type ex, long from, long to) {
  co_await bp::schedule(ex);  // from here on, on one of the pool's threads
  co_return co_await sum_of_squares(from, to);
}

int main() {
  bp::thread_pool pool(2);
  auto ex = pool.get_executor();

  // Two halves in parallel on the pool; when_all gives both results, in argument order.
  auto both = [&]() -> bp::task<long> {
    auto [a, b] = co_await bp::when_all(on_pool(ex, 0, 500), on_pool(ex, 500, 1000));
    co_return a + b;
  };
  const long total = bp::sync_wait(both());  // blocks main (parked) until done

  // Many halves: the vector form.
  std::vector<bp::task<long>> parts;
  for (long i = 0; i < 10; ++i) parts.push_back(on_pool(ex, i * 100, (i + 1) * 100));
  long total_again = 0;
  for (long v : bp::sync_wait(bp::when_all(std::move(parts)))) total_again += v;

  // A single-threaded program: work posted to a run_loop runs on the thread running it.
  bp::run_loop loop;
  auto on_loop = [&]() -> bp::task<bool> {
    co_await bp::schedule(loop.get_executor());
    co_return true;
  };
  const bool ran_on_loop = bp::sync_wait(loop, on_loop());  // runs the loop until done

  // Fire-and-forget, but owned: join() waits for everything spawned.
  bp::async_scope scope;
  std::atomic<int> pings{0};
  auto ping = [&]() -> bp::task<void> {
    pings.fetch_add(1);
    co_return;
  };
  for (int i = 0; i < 100; ++i) scope.spawn(ex, ping());
  scope.join();

  std::printf("sum of squares below 1000: %ld (again: %ld), run_loop: %s, pings: %d\n", total,
              total_again, ran_on_loop ? "yes" : "no", pings.load());
  return total == 332'833'500 && total_again == total && ran_on_loop && pings == 100 ? 0 : 1;
}

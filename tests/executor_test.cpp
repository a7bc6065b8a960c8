// bp::inline_executor, bp::thread_pool and bp::run_loop: every posted handle resumed exactly
// once (conservation), FIFO per poster, destructors that drain, no allocation per posted
// coroutine handle, and idle threads that cost no CPU. Every test runs under a watchdog.
#include <bp/executor.hpp>

#include <gtest/gtest.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <ctime>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "counting_allocator.hpp"
#include "cpu_time.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

static_assert(bp::executor<bp::inline_executor>);
static_assert(bp::executor<bp::thread_pool::executor_type>);
static_assert(bp::executor<bp::run_loop::executor_type>);
static_assert(!bp::executor<int>);

class executor_test : public ::testing::Test {
  bp::test::watchdog watchdog_{90s, "executor_test"};
};

// A bare coroutine for posting: starts suspended, runs `body` when resumed, frees itself.
struct job {
  struct promise_type {
    job get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
  std::coroutine_handle<promise_type> handle;
};

// Resumes `rounds` times through `ex` (a fresh post each round), counting every resumption.
template <class E>
job hop(E ex, int rounds, std::atomic<long>& resumed, std::atomic<int>& finished) {
  for (int i = 0; i < rounds; ++i) {
    co_await bp::schedule(ex);
    resumed.fetch_add(1, std::memory_order_relaxed);
  }
  finished.fetch_add(1, std::memory_order_release);
}

TEST_F(executor_test, InlineRunsAtOnce) {
  bp::inline_executor ex;
  EXPECT_EQ(ex, bp::inline_executor{});
  int n = 0;
  ex.post([&] { ++n; });
  EXPECT_EQ(n, 1);
  std::atomic<long> resumed{0};
  std::atomic<int> finished{0};
  ex.post(hop(ex, 3, resumed, finished).handle);
  EXPECT_EQ(resumed.load(), 3);
  EXPECT_EQ(finished.load(), 1);
}

TEST_F(executor_test, ExecutorsCompareByPool) {
  bp::thread_pool a(1), b(1);
  EXPECT_EQ(a.get_executor(), a.get_executor());
  EXPECT_NE(a.get_executor(), b.get_executor());
  bp::run_loop l, m;
  EXPECT_EQ(l.get_executor(), l.get_executor());
  EXPECT_NE(l.get_executor(), m.get_executor());
  EXPECT_EQ(a.size(), 1u);
  bp::thread_pool wide;  // 0: one thread per hardware thread
  EXPECT_GE(wide.size(), 1u);
}

// A million posted handles, each resumed exactly once, spread over the pool's threads.
TEST_F(executor_test, ThreadPoolConservesAMillionHandles) {
  constexpr int coroutines = 1000, rounds = 1000;
  std::atomic<long> resumed{0};
  std::atomic<int> finished{0};
  std::mutex m;
  std::set<std::thread::id> threads;
  {
    bp::thread_pool pool(4);
    auto ex = pool.get_executor();
    for (int c = 0; c < coroutines; ++c) ex.post(hop(ex, rounds, resumed, finished).handle);
    for (int i = 0; i < 64; ++i) {
      ex.post([&] {
        std::this_thread::sleep_for(1ms);  // lets every thread take one of these
        std::lock_guard lock(m);
        threads.insert(std::this_thread::get_id());
      });
    }
    ASSERT_TRUE(bp::test::eventually([&] { return finished.load() == coroutines; }, 60s));
  }
  EXPECT_EQ(resumed.load(), long{coroutines} * rounds);
  EXPECT_GE(threads.size(), 2u);
}

TEST_F(executor_test, ScheduleMovesToThePool) {
  bp::thread_pool pool(2);
  std::atomic<bool> on_pool{false};
  std::atomic<int> finished{0};
  auto probe = [&]() -> job {
    co_await pool.get_executor().schedule();
    on_pool = pool.running_in_this_thread();
    finished.fetch_add(1);
  };
  probe().handle.resume();
  ASSERT_TRUE(bp::test::eventually([&] { return finished.load() == 1; }));
  EXPECT_TRUE(on_pool.load());
  EXPECT_FALSE(pool.running_in_this_thread());
}

TEST_F(executor_test, ThreadPoolDestructorDrains) {
  std::atomic<int> ran{0};
  {
    bp::thread_pool pool(1);
    auto ex = pool.get_executor();
    ex.post([] { std::this_thread::sleep_for(50ms); });  // the rest queue up behind it
    for (int i = 0; i < 1000; ++i) {
      ex.post([&ran, ex] {
        ran.fetch_add(1);
        ex.post([&ran] { ran.fetch_add(1); });  // posted by queued work while draining
      });
    }
  }
  EXPECT_EQ(ran.load(), 2000);
}

TEST_F(executor_test, RunLoopFromSeveralPostingThreads) {
  constexpr int posters = 4, per_poster = 100'000;
  bp::run_loop loop;
  std::vector<int> last(posters, -1);
  bool in_order = true;
  long ran = 0;
  std::vector<std::thread> threads;
  for (int p = 0; p < posters; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_poster; ++i) {
        loop.get_executor().post([&, p, i] {  // runs on the loop's thread only: no locks
          in_order = in_order && last[static_cast<std::size_t>(p)] == i - 1;
          last[static_cast<std::size_t>(p)] = i;
          ++ran;
        });
      }
    });
  }
  std::thread finisher([&] {
    for (auto& t : threads) t.join();
    loop.finish();
  });
  loop.run();  // returns once finished and empty
  finisher.join();
  EXPECT_EQ(ran, long{posters} * per_poster);
  EXPECT_TRUE(in_order);  // FIFO per poster
}

// Coroutine handles posted from several threads while the loop runs; the last coroutine to
// finish ends the loop from inside it.
TEST_F(executor_test, RunLoopResumesHandlesPostedFromSeveralThreads) {
  constexpr int posters = 4, per_poster = 250, rounds = 100;
  bp::run_loop loop;
  auto ex = loop.get_executor();
  std::atomic<long> resumed{0};
  std::atomic<int> finished{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < posters; ++p) {
    threads.emplace_back([&] {
      for (int i = 0; i < per_poster; ++i) ex.post(hop(ex, rounds, resumed, finished).handle);
    });
  }
  std::thread finisher([&] {
    for (auto& t : threads) t.join();
    ex.post([&] {
      // Every coroutine was posted before this callable; each re-posts itself until done, so
      // the loop drains them all after finish().
      loop.finish();
    });
  });
  loop.run();
  finisher.join();
  EXPECT_EQ(finished.load(), posters * per_poster);
  EXPECT_EQ(resumed.load(), long{posters} * per_poster * rounds);
}

TEST_F(executor_test, RunLoopRunOncePollAndRearm) {
  bp::run_loop loop;
  auto ex = loop.get_executor();
  int n = 0;
  EXPECT_EQ(loop.poll(), 0u);
  EXPECT_FALSE(ex.running_in_this_thread());
  ex.post([&] { EXPECT_TRUE(ex.running_in_this_thread()); });
  EXPECT_EQ(loop.poll(), 1u);
  ex.post([&] { ++n; });
  ex.post([&] { ++n; });
  EXPECT_TRUE(loop.run_once());
  EXPECT_EQ(n, 1);
  EXPECT_EQ(loop.poll(), 1u);
  loop.finish();
  EXPECT_FALSE(loop.run_once());  // finished and empty: returns without waiting, re-arms

  ex.post([&] {
    ++n;
    loop.finish();  // finish() from work on the loop
  });
  loop.run();
  EXPECT_EQ(n, 3);

  std::atomic<long> resumed{0};
  std::atomic<int> finished{0};
  ex.post(hop(ex, 10, resumed, finished).handle);
  ex.post([&] { loop.finish(); });
  loop.run();  // the coroutine's later posts queue behind finish(): run drains them
  EXPECT_EQ(finished.load(), 1);
  EXPECT_EQ(resumed.load(), 10);
}

TEST_F(executor_test, RunLoopWaitsForWorkFromAnotherThread) {
  bp::run_loop loop;
  std::atomic<int> got{0};
  std::thread poster([&] {
    std::this_thread::sleep_for(50ms);
    loop.get_executor().post([&] { got = 1; });
  });
  EXPECT_TRUE(loop.run_once());  // parks until the post
  EXPECT_EQ(got.load(), 1);
  poster.join();
}

TEST_F(executor_test, RunLoopDestructorDrains) {
  int ran = 0;
  {
    bp::run_loop loop;
    for (int i = 0; i < 10; ++i) loop.get_executor().post([&] { ++ran; });
  }
  EXPECT_EQ(ran, 10);
}

// Posts `coroutines` hopping coroutines (`rounds` posts each) to `ex`, lets `drive` run them to
// the end; returns the allocations made from the first post on (the frames exist before).
template <class E, class Drive>
long allocations_for(E ex, int coroutines, int rounds, Drive drive) {
  std::atomic<long> resumed{0};
  std::atomic<int> finished{0};
  std::vector<std::coroutine_handle<>> hs;
  hs.reserve(static_cast<std::size_t>(coroutines));
  for (int c = 0; c < coroutines; ++c) hs.push_back(hop(ex, rounds, resumed, finished).handle);
  const long before = bp::test::allocations();
  for (auto h : hs) ex.post(h);
  drive(finished);
  EXPECT_EQ(finished.load(), coroutines);
  EXPECT_EQ(resumed.load(), long{coroutines} * rounds);
  return bp::test::allocations() - before;
}

// A backlog within the queue's capacity: 100 000 posts (each of 100 coroutines re-posting
// itself 1000 times, so at most 100 handles are queued at once) allocate nothing.
TEST_F(executor_test, PostingHandlesDoesNotAllocate) {
  constexpr int coroutines = 100, rounds = 1000;
  bp::run_loop loop(coroutines);
  EXPECT_EQ(allocations_for(loop.get_executor(), coroutines, rounds,
                            [&](auto&) {
                              while (loop.poll() != 0) {
                              }
                            }),
            0);
  bp::thread_pool pool(2, coroutines);
  EXPECT_EQ(allocations_for(pool.get_executor(), coroutines, rounds,
                            [&](std::atomic<int>& finished) {
                              EXPECT_TRUE(bp::test::eventually(
                                  [&] { return finished.load() == coroutines; }, 30s));
                            }),
            0);
}

// A backlog beyond the capacity grows the ring once per doubling, and the grown ring stays.
TEST_F(executor_test, QueueGrowsByDoublingAndStays) {
  bp::run_loop loop(16);
  auto drain = [&](auto&) {
    while (loop.poll() != 0) {
    }
  };
  EXPECT_LE(allocations_for(loop.get_executor(), 1000, 1, drain), 6);  // 16 -> 1024
  EXPECT_EQ(allocations_for(loop.get_executor(), 1000, 1, drain), 0);
}

clockid_t cpu_clock_of(pthread_t thread) {
  clockid_t c{};
  EXPECT_EQ(pthread_getcpuclockid(thread, &c), 0);
  return c;
}

// The CPU time of the executors' own threads only (not the test's, a sanitizer's or the
// watchdog's) while they have nothing to do.
TEST_F(executor_test, IdleExecutorsUseNoCpu) {
  constexpr int threads = 4;
  bp::thread_pool pool(threads);
  bp::run_loop loop;
  std::thread loop_thread([&] { loop.run(); });
  std::mutex m;
  std::vector<clockid_t> clocks{cpu_clock_of(loop_thread.native_handle())};
  std::atomic<int> arrived{0};
  for (int i = 0; i < threads; ++i) {
    pool.get_executor().post([&] {
      {
        std::lock_guard lock(m);
        clocks.push_back(cpu_clock_of(pthread_self()));
      }
      arrived.fetch_add(1);
      // Holds this thread until every pool thread has taken one: one clock per thread.
      EXPECT_TRUE(bp::test::eventually([&] { return arrived.load() == threads; }));
    });
  }
  ASSERT_TRUE(bp::test::eventually([&] {
    std::lock_guard lock(m);
    return clocks.size() == threads + 1;
  }));
  std::this_thread::sleep_for(20ms);  // let the threads park
  auto total = [&] {
    double sum = 0;
    for (clockid_t c : clocks) sum += bp::test::cpu_seconds(c);
    return sum;
  };
  const double t0 = total();
  std::this_thread::sleep_for(300ms);
  const double used = total() - t0;
  loop.finish();
  loop_thread.join();
  // Five idle threads for 300 ms: one spinning thread alone would burn most of 300 ms.
  EXPECT_LT(used, 0.01) << used * 1000 << " ms of CPU";
}

}  // namespace

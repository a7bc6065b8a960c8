// bp-test-timeout: 60
// Waiting means parking: a thread blocked in a bucket, the semaphore or the limiter for 300 ms
// of real time uses (almost) no CPU, and close() ends the wait.
#include <bp/concurrency_limiter.hpp>
#include <bp/rate.hpp>
#include <bp/semaphore.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <thread>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::watchdog;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Runs `wait` on a thread for 300 ms (then `wake` ends it); returns that thread's CPU seconds.
template <class Wait, class Wake>
double cpu_while_blocked(Wait wait, Wake wake) {
  double cpu = -1;
  std::thread t([&] {
    const double t0 = thread_cpu_seconds();
    wait();
    cpu = thread_cpu_seconds() - t0;
  });
  std::this_thread::sleep_for(300ms);
  wake();
  t.join();
  return cpu;
}

TEST(BlockingCpu, TokenBucketAcquireParks) {
  watchdog dog(30s);
  bp::token_bucket b(0.001, 1);  // the next token is 1000 s away
  ASSERT_TRUE(b.try_acquire());
  const double cpu = cpu_while_blocked([&] { EXPECT_FALSE(b.acquire()); }, [&] { b.close(); });
  EXPECT_LT(cpu, 0.03);
}

TEST(BlockingCpu, TokenBucketPacedAcquireParks) {
  watchdog dog(30s);
  bp::token_bucket b(20.0, 1);  // one token per 50 ms: the waiter sleeps between grants
  std::atomic<bool> stop{false};
  int granted = 0;
  const double cpu = cpu_while_blocked(
      [&] {
        while (!stop && b.acquire()) ++granted;
      },
      [&] {
        stop = true;
        b.close();
      });
  EXPECT_LT(cpu, 0.03);
  EXPECT_GE(granted, 3);
}

TEST(BlockingCpu, LeakyBucketAcquireParks) {
  watchdog dog(30s);
  bp::leaky_bucket b(0.001, 1);
  ASSERT_TRUE(b.try_acquire());
  const double cpu = cpu_while_blocked([&] { EXPECT_FALSE(b.acquire()); }, [&] { b.close(); });
  EXPECT_LT(cpu, 0.03);
}

TEST(BlockingCpu, SemaphoreAcquireParks) {
  watchdog dog(30s);
  bp::semaphore s(0);
  const double cpu = cpu_while_blocked([&] { EXPECT_TRUE(s.acquire()); }, [&] { s.release(); });
  EXPECT_LT(cpu, 0.03);
}

TEST(BlockingCpu, LimiterAcquireParks) {
  watchdog dog(30s);
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto held = lim.try_acquire();
  const double cpu =
      cpu_while_blocked([&] { EXPECT_TRUE(lim.acquire()); }, [&] { held.on_success(); });
  EXPECT_LT(cpu, 0.03);
}

}  // namespace

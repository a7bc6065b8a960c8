// bp-test-timeout: 180
#include <bp/semaphore.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::watchdog;

// Many threads take and give back 1..3 permits, with and without timeouts: never more permits
// held than exist, and every permit is back at the end.
TEST(SemaphoreStress, PermitsAreConserved) {
  watchdog dog(150s);
  constexpr std::int64_t total = 5;
  constexpr int threads = 8;
  const int rounds = bp::detail::tsan ? 2000 : 20000;
  bp::semaphore s(total);
  std::atomic<std::int64_t> held{0};
  std::atomic<std::int64_t> max_held{0};
  std::atomic<long> timeouts{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        const std::size_t n = 1 + static_cast<std::size_t>((i + t) % 3);
        bool got = false;
        switch (i % 3) {
          case 0:
            got = s.acquire(n);
            break;
          case 1:
            got = s.acquire_for(n, 1ms);
            break;
          default:
            got = s.try_acquire(n);
        }
        if (!got) {
          ++timeouts;
          continue;
        }
        const auto now =
            held.fetch_add(static_cast<std::int64_t>(n)) + static_cast<std::int64_t>(n);
        auto seen = max_held.load();
        while (now > seen && !max_held.compare_exchange_weak(seen, now)) {
        }
        EXPECT_LE(now, total);
        held.fetch_sub(static_cast<std::int64_t>(n));
        s.release(n);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(held.load(), 0);
  EXPECT_LE(max_held.load(), total);
  EXPECT_EQ(s.available(), static_cast<std::size_t>(total));
  EXPECT_EQ(s.waiting(), 0u);
}

// Waiters blocked while another thread closes: every one answers, none hangs.
TEST(SemaphoreStress, CloseWhileContended) {
  watchdog dog(150s);
  for (int round = 0; round < (bp::detail::tsan ? 20 : 200); ++round) {
    bp::semaphore s(1);
    std::atomic<int> answered{0};
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t) {
      ts.emplace_back([&] {
        for (int i = 0; i < 50; ++i) {
          if (!s.acquire(1)) break;
          s.release(1);
        }
        ++answered;
      });
    }
    std::this_thread::yield();
    s.close();
    for (auto& t : ts) t.join();
    EXPECT_EQ(answered.load(), 4);
  }
}

}  // namespace

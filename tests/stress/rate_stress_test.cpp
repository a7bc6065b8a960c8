// bp-test-timeout: 120
#include <bp/rate.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::watchdog;

// Real time, many threads: try_acquire, acquire and reservations together never grant more
// than rate * elapsed + burst, and waiting threads keep the rate close to the limit.
template <class Bucket>
void hammer(double rate, std::size_t burst, double slack_tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  Bucket b(rate, burst);
  std::atomic<std::int64_t> granted{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t) {
    ts.emplace_back([&, t] {
      while (!stop.load(std::memory_order_relaxed)) {
        bool got = false;
        switch (t % 3) {
          case 0:
            got = b.try_acquire();
            if (!got) std::this_thread::sleep_for(50us);
            break;
          case 1:
            got = b.acquire_for(1, 5ms);
            break;
          default:
            got = b.acquire();
        }
        if (got) granted.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(400ms);
  stop = true;
  b.close();  // wakes the acquire() threads
  for (auto& t : ts) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto g = static_cast<double>(granted.load());
  EXPECT_LE(g, rate * elapsed + static_cast<double>(burst));
  EXPECT_GE(g, rate * 0.4 * 0.5 - slack_tokens) << "waiters should get most of the rate";
}

TEST(RateStress, TokenBucketUnderContention) {
  watchdog dog(60s);
  hammer<bp::token_bucket>(2000.0, 50, 0.0);
}

TEST(RateStress, LeakyBucketUnderContention) {
  watchdog dog(60s);
  hammer<bp::leaky_bucket>(2000.0, 50, 0.0);
}

}  // namespace

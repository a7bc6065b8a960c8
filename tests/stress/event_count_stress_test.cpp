// bp-test-timeout: 300
// Lost wake-up hunt for bp::detail::event_count, the parking primitive under every blocking call.
// Consumers take tokens (a seq_cst CAS, else prepare_wait / re-check / wait); a producer adds
// tokens with a seq_cst RMW and wake_if_waiting(1), as the channel does. Each round ends with
// `done` + notify_all. A consumer whose park times out while tokens are there or the round is
// over was never woken: a lost wake-up. (A race of this kind, a key read after registering,
// once left a signal counted for a sleeping waiter; this test catches it within a few rounds.)
#include <bp/detail/event_count.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int rounds = 6, tokens = 4000;
#else
constexpr int rounds = 30, tokens = 20000;
#endif

TEST(EventCountStress, NoLostWakeUps) {
  bp::test::watchdog dog(280s, "event count stress");
  constexpr int consumers = 6;
  std::atomic<long> lost{0};
  for (int r = 0; r < rounds; ++r) {
    bp::detail::event_count ec;
    std::atomic<long> avail{0}, taken{0};
    std::atomic<bool> done{false};
    auto try_take = [&] {
      long a = avail.load(std::memory_order_seq_cst);
      while (a > 0)
        if (avail.compare_exchange_weak(a, a - 1, std::memory_order_seq_cst)) return true;
      return false;
    };
    std::vector<std::thread> ts;
    for (int c = 0; c < consumers; ++c)
      ts.emplace_back([&] {
        for (;;) {
          if (try_take()) {
            ++taken;
            continue;
          }
          if (done.load()) return;
          const auto key = ec.prepare_wait();
          if (try_take()) {
            ec.cancel_wait();
            ++taken;
            continue;
          }
          if (done.load()) {
            ec.cancel_wait();
            return;
          }
          if (!ec.wait(key, std::chrono::steady_clock::now() + 3s) &&
              (done.load() || avail.load() > 0))
            ++lost;  // slept through a wake-up that was due
        }
      });
    for (int i = 0; i < tokens; ++i) {
      avail.fetch_add(1, std::memory_order_seq_cst);
      ec.wake_if_waiting(1);
      if ((i & 15) == 0) std::this_thread::yield();
    }
    while (avail.load() > 0) std::this_thread::yield();
    done.store(true);
    ec.notify_all();
    for (auto& t : ts) t.join();
    ASSERT_EQ(taken.load(), tokens);
    ASSERT_EQ(lost.load(), 0) << "round " << r;
    EXPECT_EQ(ec.waiters(), 0u);
  }
}

}  // namespace

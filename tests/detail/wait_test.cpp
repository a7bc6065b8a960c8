// The one wait loop every primitive waits in (bp/detail/wait.hpp).
#include <bp/detail/wait.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "test_util.hpp"

using namespace std::chrono_literals;

TEST(WaitLoop, ADoneAttemptReturnsAtOnceAndAPastDeadlineTriesOnce) {
  bp::detail::event_count ec;
  int calls = 0;
  EXPECT_TRUE(bp::detail::wait_until(ec, bp::detail::forever(), [&] { return ++calls > 0; }));
  EXPECT_EQ(ec.waiters(), 0u);
  calls = 0;
  const auto past = bp::detail::clock::now() - 1ms;
  EXPECT_FALSE(bp::detail::wait_until(ec, past, [&] { return ++calls < 0; }));
  EXPECT_GE(calls, 1);  // a zero timeout still means "try"
  EXPECT_EQ(ec.waiters(), 0u);
}

TEST(WaitLoop, TimesOutAfterTheDeadlineWithoutANotify) {
  bp::detail::event_count ec;
  const auto start = bp::detail::clock::now();
  EXPECT_FALSE(bp::detail::wait_until(ec, bp::detail::deadline_after(30ms), [] { return false; }));
  EXPECT_GE(bp::detail::clock::now() - start, 30ms);
  EXPECT_EQ(ec.waiters(), 0u);
}

TEST(WaitLoop, AParkedWaiterWakesOnNotifyAndSeesTheCredit) {
  bp::test::watchdog dog(std::chrono::seconds(30));
  bp::detail::event_count ec;
  std::atomic<bool> credit{false};
  std::thread waiter([&] {
    EXPECT_TRUE(bp::detail::wait_until(ec, bp::detail::deadline_after(20s),
                                       [&] { return credit.load(std::memory_order_seq_cst); }));
  });
  ASSERT_TRUE(bp::test::eventually([&] { return ec.waiters() == 1; }));  // parked, spin over
  credit.store(true, std::memory_order_seq_cst);
  ec.notify_one();
  waiter.join();
  EXPECT_EQ(ec.waiters(), 0u);
}

TEST(WaitLoop, AnUnsettledChangeIsWaitedForByYieldingNotParking) {
  bp::test::watchdog dog(std::chrono::seconds(30));
  bp::detail::event_count ec;
  std::atomic<int> settled_calls{0};
  std::atomic<bool> credit{false};
  std::thread waiter([&] {
    // No notify ever comes: only the yield-and-retry path can see the credit.
    EXPECT_TRUE(bp::detail::wait_loop(
        ec, bp::detail::deadline_after(20s), [&] { return credit.load(); }, bp::detail::no_spin,
        [&] {
          settled_calls.fetch_add(1);
          return false;
        }));
  });
  ASSERT_TRUE(bp::test::eventually([&] { return settled_calls.load() > 10; }));
  credit.store(true);
  waiter.join();
}

TEST(WaitLoop, TheProbeIsWhatTheSpinRetries) {
  bp::detail::event_count ec;
  int probes = 0;
  // The probe succeeds during the spin: the attempt (the full check) never runs.
  EXPECT_TRUE(bp::detail::wait_loop(
      ec, bp::detail::forever(), [] { return false; }, [&] { return ++probes == 3; },
      bp::detail::always_settled{}));
  EXPECT_EQ(probes, 3);
}

// The spin budget adapts per event count: a spin that ends in a park halves it (down to the
// floor), one that catches its credit grows it back (up to the full budget). A wait that
// parks because its own deadline is near does not count against spinning.
TEST(WaitLoop, TheSpinBudgetShrinksWhenSpinsDoNotPayAndGrowsWhenTheyDo) {
  if constexpr (!bp::detail::spin_adaptive) GTEST_SKIP() << "built with BP_SPIN_ADAPTIVE=0";
  bp::detail::event_count ec;
  EXPECT_EQ(ec.spin_budget(), bp::detail::spin_budget_ns);
  // Nothing ever comes: each wait spins out its budget, then parks until its deadline.
  std::int64_t last = ec.spin_budget();
  for (int i = 0; i < 64 && ec.spin_budget() > bp::detail::spin_floor_ns; ++i) {
    EXPECT_FALSE(bp::detail::wait_until(ec, bp::detail::deadline_after(1ms), [] { return false; }));
    EXPECT_LE(ec.spin_budget(), last);
    last = ec.spin_budget();
  }
  EXPECT_EQ(ec.spin_budget(), bp::detail::spin_floor_ns);
  // Credit that comes within the spin (the third try): the budget grows back to the full one.
  for (int i = 0; i < 64 && ec.spin_budget() < bp::detail::spin_budget_ns; ++i) {
    int tries = 0;
    EXPECT_TRUE(
        bp::detail::wait_until(ec, bp::detail::deadline_after(20s), [&] { return ++tries >= 3; }));
    EXPECT_GE(ec.spin_budget(), last);
    last = ec.spin_budget();
  }
  EXPECT_EQ(ec.spin_budget(), bp::detail::spin_budget_ns);
  // A past deadline ends the spin, not the budget: nothing is learnt from it.
  EXPECT_FALSE(bp::detail::wait_until(ec, bp::detail::clock::now(), [] { return false; }));
  EXPECT_EQ(ec.spin_budget(), bp::detail::spin_budget_ns);
}

// The one wait loop every primitive waits in (bp/detail/wait.hpp).
#include <bp/detail/wait.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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

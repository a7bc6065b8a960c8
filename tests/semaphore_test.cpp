#include <bp/semaphore.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::eventually;
using bp::test::watchdog;

TEST(Semaphore, CountsPermits) {
  bp::semaphore s(3);
  EXPECT_EQ(s.available(), 3u);
  EXPECT_TRUE(s.try_acquire(2));
  EXPECT_FALSE(s.try_acquire(2));
  EXPECT_TRUE(s.try_acquire(1));
  EXPECT_FALSE(s.try_acquire());
  s.release(3);
  EXPECT_EQ(s.available(), 3u);
  EXPECT_TRUE(s.try_acquire(0));
}

TEST(Semaphore, HugeCountNamesTheArgument) {
  try {
    bp::semaphore s(bp::semaphore::max_count + 1);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("initial"), std::string::npos) << e.what();
  }
  bp::semaphore s(1);
  EXPECT_THROW((void)s.try_acquire(bp::semaphore::max_count + 1), std::invalid_argument);
}

TEST(Semaphore, AcquireForTimesOut) {
  watchdog dog(20s);
  bp::semaphore s(0);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(s.acquire_for(1, 30ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 29ms);
  EXPECT_FALSE(s.acquire_until(1, std::chrono::steady_clock::now() + 10ms));
  EXPECT_FALSE(s.acquire_until(1, std::chrono::system_clock::now() + 10ms));
  EXPECT_FALSE(s.acquire_for(1, 0ms));
  EXPECT_EQ(s.waiting(), 0u);
}

TEST(Semaphore, ReleaseWakesAWaiter) {
  watchdog dog(20s);
  bp::semaphore s(0);
  std::atomic<bool> got{false};
  std::thread t([&] {
    EXPECT_TRUE(s.acquire());
    got = true;
  });
  ASSERT_TRUE(eventually([&] { return s.waiting() == 1; }));
  EXPECT_FALSE(got);
  s.release();
  EXPECT_TRUE(eventually([&] { return got.load(); }));
  t.join();
  EXPECT_EQ(s.available(), 0u);
}

TEST(Semaphore, FirstComeFirstServedAndNoBarging) {
  watchdog dog(20s);
  bp::semaphore s(0);
  std::atomic<bool> done[3] = {false, false, false};
  std::vector<std::thread> ts;
  // Queue a waiter for 3 permits, then two waiters for 1: the big one must be served first.
  const std::size_t wants[] = {3, 1, 1};
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&, i] {
      EXPECT_TRUE(s.acquire_for(wants[i], 10s));
      done[i] = true;
    });
    ASSERT_TRUE(eventually([&] { return s.waiting() == static_cast<std::size_t>(i + 1); }));
  }
  s.release(2);
  EXPECT_FALSE(s.try_acquire(1));  // waiters queue ahead: no barging
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(s.waiting(), 3u);  // the head wants 3: nobody overtakes it
  s.release(1);                // 3 free: the head only
  EXPECT_TRUE(eventually([&] { return done[0].load(); }));
  EXPECT_EQ(s.waiting(), 2u);
  EXPECT_FALSE(done[1] || done[2]);
  s.release(1);
  EXPECT_TRUE(eventually([&] { return done[1].load(); }));
  EXPECT_FALSE(done[2]);
  s.release(1);
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.available(), 0u);
}

TEST(Semaphore, TimedOutHeadLetsTheNextOnesIn) {
  watchdog dog(20s);
  bp::semaphore s(1);
  std::atomic<bool> small_done{false};
  std::thread big([&] { EXPECT_FALSE(s.acquire_for(5, 50ms)); });
  ASSERT_TRUE(eventually([&] { return s.waiting() == 1; }));
  std::thread small([&] {
    EXPECT_TRUE(s.acquire_for(1, 10s));
    small_done = true;
  });
  big.join();  // its timeout hands the free permit to the one behind it
  small.join();
  EXPECT_TRUE(small_done);
}

TEST(Semaphore, CloseWakesEveryWaiter) {
  watchdog dog(20s);
  bp::semaphore s(0);
  std::atomic<int> falses{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i) {
    ts.emplace_back([&] {
      if (!s.acquire()) ++falses;
    });
  }
  ASSERT_TRUE(eventually([&] { return s.waiting() == 5; }));
  s.close();
  for (auto& t : ts) t.join();
  EXPECT_EQ(falses, 5);
  EXPECT_TRUE(s.is_closed());
  s.release(2);
  EXPECT_FALSE(s.try_acquire());
  EXPECT_FALSE(s.acquire());
  EXPECT_FALSE(s.acquire_permit());
  s.close();
}

TEST(Permit, GivesPermitsBackOnDestruction) {
  bp::semaphore s(2);
  {
    bp::permit p = s.acquire_permit(2);
    ASSERT_TRUE(p);
    EXPECT_EQ(p.count(), 2u);
    EXPECT_EQ(s.available(), 0u);
    bp::permit q = std::move(p);
    EXPECT_FALSE(p);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(s.available(), 0u);
    EXPECT_FALSE(s.try_acquire_permit());
  }
  EXPECT_EQ(s.available(), 2u);
  {
    auto p = s.try_acquire_permit();
    p.release();
    EXPECT_FALSE(p);
    EXPECT_EQ(s.available(), 2u);
    auto d = s.acquire_permit_for(1, 1s);
    EXPECT_EQ(d.detach(), 1u);
  }
  EXPECT_EQ(s.available(), 1u);
  s.release();
  {
    bp::permit a = s.acquire_permit(1);
    bp::permit b = s.acquire_permit(1);
    a = std::move(b);  // a's old permit goes back, b's moves in
    EXPECT_EQ(s.available(), 1u);
  }
  EXPECT_EQ(s.available(), 2u);
}

TEST(Permit, UntilVariant) {
  bp::semaphore s(1);
  auto p = s.acquire_permit_until(1, std::chrono::steady_clock::now() + 1s);
  EXPECT_TRUE(p);
  EXPECT_FALSE(s.acquire_permit_until(1, std::chrono::steady_clock::now() + 1ms));
}

TEST(SemaphoreAnswers, TellFullTimeoutAndClosedApart) {
  bp::semaphore s(1);
  EXPECT_EQ(s.try_acquire(), bp::status::ok);
  EXPECT_EQ(s.try_acquire(), bp::status::full);
  EXPECT_EQ(s.acquire_for(1, 5ms), bp::status::timeout);
  auto p = s.try_acquire_permit();
  EXPECT_FALSE(p);
  EXPECT_EQ(p.answer(), bp::status::full);
  auto q = s.acquire_permit_for(1, 5ms);
  EXPECT_EQ(q.answer(), bp::status::timeout);
  s.close();
  EXPECT_EQ(s.try_acquire(), bp::status::closed);
  EXPECT_EQ(s.acquire(), bp::status::closed);
  EXPECT_EQ(s.acquire_for(1, 5ms), bp::status::closed);
  EXPECT_EQ(s.acquire_permit().answer(), bp::status::closed);
}

TEST(SemaphoreAnswers, AWaiterClosedOutAnswersClosedNotTimeout) {
  watchdog dog(30s);
  bp::semaphore s(0);
  bp::status got = bp::status::ok;
  std::thread t([&] { got = s.acquire_for(1, 20s); });
  ASSERT_TRUE(eventually([&] { return s.waiting() == 1; }));
  s.close();
  t.join();
  EXPECT_EQ(got, bp::status::closed);
}

}  // namespace

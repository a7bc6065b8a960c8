#include <bp/memory_budget.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::memory_budget;
using bp::status;
using bp::test::eventually;
using bp::test::watchdog;

using bp::test::invalid_argument_message;

// ---- construction and arguments ------------------------------------------------------------

TEST(MemoryBudgetConstruct, InvalidCapacityNamesTheArgument) {
  EXPECT_NE(invalid_argument_message([] { memory_budget b(0); }).find("capacity"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([] {
              memory_budget b(memory_budget::max_capacity + 1);
            }).find("capacity"),
            std::string::npos);
  memory_budget b(memory_budget::max_capacity);
  EXPECT_EQ(b.capacity(), memory_budget::max_capacity);
}

TEST(MemoryBudgetConstruct, MoreThanTheBudgetThrowsNamingBytes) {
  memory_budget b(100);
  auto s = b.open_stream();
  for (auto f : {+[](memory_budget::stream& s) { (void)s.try_reserve(101); },
                 +[](memory_budget::stream& s) { (void)s.reserve(101); },
                 +[](memory_budget::stream& s) { (void)s.reserve_for(101, 1ms); }}) {
    EXPECT_NE(invalid_argument_message([&] { f(s); }).find("bytes"), std::string::npos);
  }
  EXPECT_NE(invalid_argument_message([&] { (void)b.try_reserve(1000); }).find("bytes"),
            std::string::npos);
  EXPECT_EQ(b.in_use(), 0u);
}

// ---- reservations ----------------------------------------------------------------------------

TEST(MemoryBudgetReserve, TryReserveGrantsUntilFull) {
  memory_budget b(100);
  auto r1 = b.try_reserve(60);
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1.status(), status::ok);
  EXPECT_EQ(r1.bytes(), 60u);
  auto r2 = b.try_reserve(41);
  EXPECT_FALSE(r2);
  EXPECT_EQ(r2.status(), status::full);
  EXPECT_EQ(r2.bytes(), 0u);
  auto r3 = b.try_reserve(40);
  ASSERT_TRUE(r3);
  EXPECT_EQ(b.in_use(), 100u);
  EXPECT_EQ(b.available(), 0u);
  EXPECT_EQ(b.stats().refused, 1u);
  EXPECT_EQ(b.stats().granted, 2u);
}

TEST(MemoryBudgetReserve, DestructionGivesBytesBack) {
  memory_budget b(100);
  {
    auto r = b.try_reserve(70);
    EXPECT_EQ(b.in_use(), 70u);
  }
  EXPECT_EQ(b.in_use(), 0u);
  EXPECT_EQ(b.peak(), 70u);
}

TEST(MemoryBudgetReserve, MoveTransfersOwnership) {
  memory_budget b(100);
  auto r = b.try_reserve(30);
  memory_budget::reservation moved(std::move(r));
  EXPECT_EQ(r.bytes(), 0u);  // NOLINT(bugprone-use-after-move): moved-from holds nothing
  EXPECT_EQ(moved.bytes(), 30u);
  auto other = b.try_reserve(20);
  other = std::move(moved);  // the 20 bytes of `other` go back, it takes the 30
  EXPECT_EQ(other.bytes(), 30u);
  EXPECT_EQ(b.in_use(), 30u);
  other.release();
  other.release();  // idempotent
  EXPECT_EQ(b.in_use(), 0u);
}

TEST(MemoryBudgetReserve, PartialReleaseShrinkAndSplit) {
  memory_budget b(100);
  auto r = b.try_reserve(80);
  r.release(30);
  EXPECT_EQ(r.bytes(), 50u);
  EXPECT_EQ(b.in_use(), 50u);
  r.shrink_to(60);  // more than held: nothing happens
  EXPECT_EQ(r.bytes(), 50u);
  r.shrink_to(20);
  EXPECT_EQ(r.bytes(), 20u);
  EXPECT_EQ(b.in_use(), 20u);
  auto part = r.split(15);
  EXPECT_EQ(part.bytes(), 15u);
  EXPECT_EQ(r.bytes(), 5u);
  EXPECT_EQ(b.in_use(), 20u);  // splitting moves no bytes
  EXPECT_NE(invalid_argument_message([&] { r.release(6); }).find("bytes"), std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { (void)r.split(6); }).find("bytes"), std::string::npos);
  part = {};
  EXPECT_EQ(b.in_use(), 5u);
}

TEST(MemoryBudgetReserve, ZeroBytesIsGrantedAtOnce) {
  memory_budget b(1);
  auto full = b.try_reserve(1);
  auto r = b.try_reserve(0);
  EXPECT_TRUE(r);
  EXPECT_EQ(r.bytes(), 0u);
  EXPECT_EQ(b.reserve_for(0, 0ms).status(), status::ok);
}

TEST(MemoryBudgetReserve, ReserveForTimesOutWhenNothingComesBack) {
  watchdog dog(30s);
  memory_budget b(100);
  auto hold = b.try_reserve(100);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = b.reserve_for(1, 30ms);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
  EXPECT_EQ(r.status(), status::timeout);
  EXPECT_EQ(r.bytes(), 0u);
  EXPECT_EQ(b.reserve_for(1, 0ms).status(), status::timeout);  // zero timeout tries once
  EXPECT_EQ(b.reserve_until(1, std::chrono::system_clock::now() + 10ms).status(), status::timeout);
  const auto s = b.stats();
  EXPECT_EQ(s.waits, 3u);
  EXPECT_EQ(s.timeouts, 3u);
  EXPECT_EQ(s.in_use, 100u);
}

TEST(MemoryBudgetReserve, WaiterIsWokenWhenBytesComeBack) {
  watchdog dog(30s);
  memory_budget b(100);
  auto hold = b.try_reserve(90);
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    auto r = b.reserve_for(50, 10s);
    EXPECT_EQ(r.status(), status::ok);
    EXPECT_EQ(r.bytes(), 50u);
    done = true;
  });
  ASSERT_TRUE(eventually([&] { return b.stats().waits == 1; }));
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(done);
  hold.release(40);  // 50 in use: the waiter fits now
  waiter.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(b.in_use(), 50u);
  EXPECT_EQ(b.peak(), 100u);
}

TEST(MemoryBudgetReserve, ReserveWithoutTimeoutWaitsUntilRoom) {
  watchdog dog(30s);
  memory_budget b(10);
  auto hold = b.try_reserve(10);
  std::thread waiter([&] { EXPECT_EQ(b.reserve(10).status(), status::ok); });
  ASSERT_TRUE(eventually([&] { return b.stats().waits == 1; }));
  hold = {};
  waiter.join();
  EXPECT_EQ(b.in_use(), 0u);
}

// ---- closing -------------------------------------------------------------------------------

TEST(MemoryBudgetClose, CloseWakesEveryWaiterAndKeepsGrants) {
  watchdog dog(30s);
  memory_budget b(100);
  auto s = b.open_stream();
  auto hold = s.try_reserve(100);
  std::vector<std::thread> waiters;
  std::atomic<int> closed{0};
  for (int i = 0; i < 4; ++i)
    waiters.emplace_back([&, i] {
      auto r = i % 2 ? b.reserve(10) : s.reserve_for(10, 20s);
      if (r.status() == status::closed) ++closed;
    });
  ASSERT_TRUE(eventually([&] { return b.stats().waits == 4; }));
  b.close();
  b.close();  // idempotent
  for (auto& t : waiters) t.join();
  EXPECT_EQ(closed, 4);
  EXPECT_TRUE(b.is_closed());
  EXPECT_EQ(b.try_reserve(1).status(), status::closed);
  EXPECT_EQ(s.reserve_for(1, 1s).status(), status::closed);
  EXPECT_EQ(hold.bytes(), 100u);  // granted bytes stay valid
  hold.release();
  EXPECT_EQ(b.in_use(), 0u);
}

TEST(MemoryBudgetClose, StreamCloseWakesOnlyThatStream) {
  watchdog dog(30s);
  memory_budget b(100);
  auto a = b.open_stream();
  auto c = b.open_stream();
  auto hold = b.try_reserve(100);
  std::thread wa([&] { EXPECT_EQ(a.reserve_for(10, 20s).status(), status::closed); });
  ASSERT_TRUE(eventually([&] { return b.stats().waits == 1; }));
  a.close();
  wa.join();
  EXPECT_TRUE(a.is_closed());
  EXPECT_FALSE(c.is_closed());
  hold = {};
  EXPECT_EQ(c.try_reserve(10).status(), status::ok);
  EXPECT_EQ(a.try_reserve(10).status(), status::closed);
}

TEST(MemoryBudgetClose, EmptyStreamAnswersClosed) {
  memory_budget::stream s;
  EXPECT_FALSE(s);
  EXPECT_TRUE(s.is_closed());
  EXPECT_EQ(s.try_reserve(1).status(), status::closed);
  EXPECT_EQ(s.reserve(1).status(), status::closed);
  EXPECT_EQ(s.reserve_for(1, 1ms).status(), status::closed);
}

// ---- streams and fairness ------------------------------------------------------------------

TEST(MemoryBudgetStreams, ReservationOutlivesItsStream) {
  memory_budget b(100);
  memory_budget::reservation r;
  {
    auto s = b.open_stream();
    r = s.try_reserve(40);
    EXPECT_EQ(s.in_use(), 40u);
    EXPECT_EQ(b.stats().streams, 1u);
  }
  EXPECT_EQ(b.stats().streams, 0u);
  EXPECT_EQ(b.in_use(), 40u);
  r.release();  // frees the detached stream state (ASan checks it is not leaked)
  EXPECT_EQ(b.in_use(), 0u);
  EXPECT_EQ(b.stats().active_streams, 0u);
}

TEST(MemoryBudgetStreams, MovedStreamKeepsItsBytes) {
  memory_budget b(100);
  std::vector<memory_budget::stream> streams;
  for (int i = 0; i < 3; ++i) streams.push_back(b.open_stream());
  auto r = streams[0].try_reserve(10);
  for (int i = 0; i < 50; ++i) streams.push_back(b.open_stream());  // reallocates: moves
  EXPECT_EQ(streams[0].in_use(), 10u);
  EXPECT_EQ(b.stats().streams, 53u);
  streams.clear();
  EXPECT_EQ(b.stats().streams, 0u);
  EXPECT_EQ(b.in_use(), 10u);
}

TEST(MemoryBudgetFairness, ShareFollowsTheActiveStreams) {
  memory_budget b(1200);
  auto s1 = b.open_stream();
  auto s2 = b.open_stream();
  auto s3 = b.open_stream();
  EXPECT_EQ(b.fair_share(), 1200u);  // nobody active: the whole budget
  auto r1 = s1.try_reserve(10);
  EXPECT_EQ(b.active_streams(), 1u);
  EXPECT_EQ(s1.fair_share(), 1200u);
  auto r2 = s2.try_reserve(10);
  auto r3 = s3.try_reserve(10);
  EXPECT_EQ(b.active_streams(), 3u);
  EXPECT_EQ(b.fair_share(), 400u);
  r3 = {};
  EXPECT_EQ(b.fair_share(), 600u);
  r1 = {};
  r2 = {};
  EXPECT_EQ(b.stats().active_streams, 0u);
}

TEST(MemoryBudgetFairness, AloneAStreamMayTakeEverything) {
  memory_budget b(1000);
  auto hot = b.open_stream();
  auto idle = b.open_stream();
  std::vector<memory_budget::reservation> held;
  for (int i = 0; i < 10; ++i) held.push_back(hot.try_reserve(100));
  for (auto& r : held) EXPECT_TRUE(r);
  EXPECT_EQ(hot.in_use(), 1000u);
}

// The hot stream holds the whole budget and keeps asking. A second stream arrives and waits:
// it is under its fair share, so bytes the hot stream gives back go to it, not back to the hot
// stream, and the hot stream is held to its share until the waiter is served.
TEST(MemoryBudgetFairness, WaiterUnderItsShareIsServedFirst) {
  watchdog dog(30s);
  memory_budget b(1000);
  auto hot = b.open_stream();
  auto cold = b.open_stream();
  std::vector<memory_budget::reservation> held;
  for (int i = 0; i < 10; ++i) held.push_back(hot.try_reserve(100));

  std::atomic<bool> served{false};
  std::thread waiter([&] {
    auto r = cold.reserve_for(300, 20s);
    EXPECT_EQ(r.status(), status::ok);
    served = true;
    std::this_thread::sleep_for(20ms);
  });
  ASSERT_TRUE(eventually([&] { return b.active_streams() == 2; }));
  EXPECT_EQ(b.fair_share(), 500u);

  // The hot stream gives back 100 and asks again, repeatedly. While the waiter is not served it
  // may not regrow past its share of 500.
  while (!served) {
    held.erase(held.begin());
    auto again = hot.try_reserve(100);
    if (again) {
      EXPECT_LE(hot.in_use(), 500u) << "the hot stream grew past its share while one waited";
      held.push_back(std::move(again));
    }
    ASSERT_FALSE(held.empty() && !served) << "hot stream drained completely, waiter not served";
    std::this_thread::sleep_for(1ms);
  }
  waiter.join();
  EXPECT_LE(b.peak(), 1000u);
}

// The same with many streams: once 4 cold streams wait, the hot stream's share is 1/5.
TEST(MemoryBudgetFairness, ManyWaitersShrinkTheHotShare) {
  watchdog dog(30s);
  memory_budget b(1000);
  auto hot = b.open_stream();
  std::vector<memory_budget::reservation> held;
  for (int i = 0; i < 50; ++i) held.push_back(hot.try_reserve(20));
  std::vector<memory_budget::stream> cold;
  for (int i = 0; i < 4; ++i) cold.push_back(b.open_stream());
  std::atomic<int> served{0};
  std::vector<std::thread> waiters;
  for (auto& c : cold)
    waiters.emplace_back([&] {
      auto r = c.reserve_for(150, 20s);
      EXPECT_EQ(r.status(), status::ok);
      ++served;
      while (served < 4) std::this_thread::sleep_for(1ms);  // hold until all are served
    });
  ASSERT_TRUE(eventually([&] { return b.active_streams() == 5; }));
  EXPECT_EQ(b.fair_share(), 200u);
  while (served < 4) {
    if (!held.empty()) held.erase(held.begin());
    if (auto r = hot.try_reserve(20)) {
      EXPECT_LE(hot.in_use(), 1000u);
      held.push_back(std::move(r));
    }
    std::this_thread::sleep_for(500us);
  }
  for (auto& t : waiters) t.join();
  EXPECT_EQ(served, 4);
}

TEST(MemoryBudgetFairness, TryReserveBeyondShareIsRefusedWhileSomeoneNeedsBytes) {
  watchdog dog(30s);
  memory_budget b(1000);
  auto hot = b.open_stream();
  auto cold = b.open_stream();
  auto big = hot.try_reserve(900);
  std::thread waiter([&] { EXPECT_EQ(cold.reserve_for(200, 20s).status(), status::ok); });
  ASSERT_TRUE(eventually([&] { return b.active_streams() == 2; }));
  big.shrink_to(700);  // 300 free: the waiter takes 200, leaving 100
  waiter.join();
  // Nobody waits now: the hot stream may exceed its share again.
  EXPECT_TRUE(hot.try_reserve(100));
}

TEST(MemoryPermit, IsAGrantAndTheFormerNameStillSpellsIt) {
  static_assert(std::is_same_v<bp::memory_budget::reservation, bp::memory_permit>);
  static_assert(std::is_same_v<bp::memory_budget::permit, bp::memory_permit>);
  bp::memory_budget budget(100);
  bp::memory_permit p = budget.try_reserve(60);
  EXPECT_TRUE(p);
  EXPECT_EQ(p.answer(), bp::status::ok);
  EXPECT_EQ(p.status(), bp::status::ok);
  bp::memory_permit refused = budget.try_reserve(60);
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.answer(), bp::status::full);
  bp::memory_permit moved = std::move(p);
  EXPECT_EQ(moved.bytes(), 60u);
  EXPECT_EQ(budget.in_use(), 60u);
  moved = bp::memory_permit();  // the 60 bytes go back
  EXPECT_EQ(budget.in_use(), 0u);
}

}  // namespace

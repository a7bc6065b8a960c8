// The pump threads of bp::rs::from_channel and bp::rs::into_channel belong to their
// subscription: a cancel wakes a pump blocked in its receive or send at once, the thread ends,
// and no pump thread outlives the objects it serves (the last reference joins it, or, when the
// pump itself holds that reference, the pump ends right after).
#include <bp/rs/publishers.hpp>

#include <gtest/gtest.h>
#include <bp/rs/operators.hpp>
#include <bp/rs/subscribers.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using i64 = std::int64_t;

// Threads of this process now (the kernel's count: a thread that has returned is gone from it).
int live_threads() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "Threads:") {
      int n = 0;
      status >> n;
      return n;
    }
    std::getline(status, key);
  }
  return -1;
}

// Keeps its subscription (or not), requests `initial` on subscribe, counts what it gets.
class counting_subscriber final : public bp::rs::subscriber<i64> {
 public:
  counting_subscriber(std::int64_t initial, bool keep) : initial_(initial), keep_(keep) {}

  void on_subscribe(std::shared_ptr<bp::rs::subscription> s) override {
    if (initial_ > 0) s->request(initial_);
    if (keep_) {
      std::lock_guard lock(m_);
      sub_ = std::move(s);
    }
  }
  void on_next(i64) override { next.fetch_add(1); }
  void on_error(std::exception_ptr) override { ended = true; }
  void on_complete() override { ended = true; }

  void cancel() {
    std::shared_ptr<bp::rs::subscription> s;
    {
      std::lock_guard lock(m_);
      s = sub_;
    }
    if (s) s->cancel();
  }
  void drop_subscription() {
    std::shared_ptr<bp::rs::subscription> s;
    {
      std::lock_guard lock(m_);
      s = std::move(sub_);
    }
    s.reset();  // may join the pump: outside the lock, as any caller may do it
  }

  std::atomic<std::int64_t> next{0};
  std::atomic<bool> ended{false};

 private:
  const std::int64_t initial_;
  const bool keep_;
  std::mutex m_;
  std::shared_ptr<bp::rs::subscription> sub_;
};

class rs_pump_threads_test : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_GT(live_threads(), 0) << "/proc/self/status has no Threads: line";
    baseline_ = live_threads();
  }
  bool back_to_baseline(std::chrono::milliseconds limit) const {
    return bp::test::eventually([&] { return live_threads() == baseline_; }, limit);
  }
  bp::test::watchdog watchdog_{60s, "rs_pump_threads_test"};
  int baseline_ = 0;
};

// A pump parked in the channel's receive (demand outstanding, channel empty) leaves it at once
// on cancel, and its thread is gone.
TEST_F(rs_pump_threads_test, CancelWakesAPumpBlockedInReceive) {
  auto ch = std::make_shared<bp::channel<i64>>(4);
  auto sub = std::make_shared<counting_subscriber>(8, true);
  std::weak_ptr<counting_subscriber> watch = sub;
  bp::rs::from_channel(ch)->subscribe(sub);
  EXPECT_EQ(live_threads(), baseline_ + 1) << "one pump thread per subscription";
  std::this_thread::sleep_for(20ms);  // the pump is parked in recv by now
  const auto t0 = std::chrono::steady_clock::now();
  sub->cancel();
  EXPECT_TRUE(back_to_baseline(100ms)) << "the pump thread did not end within 100 ms of cancel";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_FALSE(sub->ended.load()) << "a cancelled stream gets no terminal signal";
  sub->drop_subscription();
  sub.reset();
  EXPECT_TRUE(watch.expired()) << "the subscriber is released (rule 3.13)";
  EXPECT_EQ(live_threads(), baseline_);
  EXPECT_EQ(ch->send(1), bp::status::ok) << "cancelling the stream leaves the channel open";
}

// A pump waiting for demand (none requested) leaves at once on cancel too.
TEST_F(rs_pump_threads_test, CancelWakesAPumpWaitingForDemand) {
  auto ch = std::make_shared<bp::channel<i64>>(4);
  ASSERT_EQ(ch->send(1), bp::status::ok);
  auto sub = std::make_shared<counting_subscriber>(0, true);
  bp::rs::from_channel(ch)->subscribe(sub);
  std::this_thread::sleep_for(20ms);
  sub->cancel();
  EXPECT_TRUE(back_to_baseline(100ms));
  EXPECT_EQ(sub->next.load(), 0);
  sub->drop_subscription();
}

// Dropping the last reference from outside, after the stream completed, joins the (finished)
// pump: nothing is left running once the subscription is gone.
TEST_F(rs_pump_threads_test, LastReferenceJoinsTheFinishedPump) {
  auto ch = std::make_shared<bp::channel<i64>>(4);
  for (i64 i = 0; i < 3; ++i) ASSERT_EQ(ch->send(i), bp::status::ok);
  ch->close();
  auto sub = std::make_shared<counting_subscriber>(bp::rs::unbounded, true);
  bp::rs::from_channel(ch)->subscribe(sub);
  ASSERT_TRUE(bp::test::eventually([&] { return sub->ended.load(); }, 5s));
  EXPECT_EQ(sub->next.load(), 3);
  sub->drop_subscription();  // joins here unless the pump already let go and ended
  EXPECT_TRUE(back_to_baseline(100ms));
}

// A subscriber that keeps no reference to its subscription still gets what it requested; the
// pump then holds the last reference and ends on its own (the one case where it detaches
// itself, as it cannot join itself).
TEST_F(rs_pump_threads_test, PumpHoldingTheLastReferenceEndsOnItsOwn) {
  auto ch = std::make_shared<bp::channel<i64>>(16);
  auto sub = std::make_shared<counting_subscriber>(bp::rs::unbounded, false);
  bp::rs::from_channel(ch)->subscribe(sub);
  for (i64 i = 0; i < 10; ++i) ASSERT_EQ(ch->send(i), bp::status::ok);
  ch->close();
  ASSERT_TRUE(bp::test::eventually([&] { return sub->ended.load(); }, 5s));
  EXPECT_EQ(sub->next.load(), 10);
  EXPECT_TRUE(back_to_baseline(1s));
}

// Many subscriptions made and cancelled leave no thread behind.
TEST_F(rs_pump_threads_test, NoPumpThreadAccumulates) {
  auto ch = std::make_shared<bp::channel<i64>>(4);
  for (int round = 0; round < 50; ++round) {
    auto sub = std::make_shared<counting_subscriber>(1, true);
    bp::rs::from_channel(ch)->subscribe(sub);
    sub->cancel();
    sub->drop_subscription();
  }
  EXPECT_TRUE(back_to_baseline(1s));
}

// into_channel: a pump blocked sending into a full target leaves at once on cancel, the handle
// reports done, and the thread is gone once the handle is.
TEST_F(rs_pump_threads_test, CancelWakesAFeederBlockedOnAFullTarget) {
  auto target = std::make_shared<bp::channel<i64>>(1);
  {
    auto h = bp::rs::into_channel(bp::rs::range(0, 1000), target, 4);
    ASSERT_TRUE(bp::test::eventually([&] { return target->size() == 1; }, 5s));
    std::this_thread::sleep_for(20ms);  // the pump is parked in send by now
    EXPECT_EQ(live_threads(), baseline_ + 1);
    const auto t0 = std::chrono::steady_clock::now();
    h.cancel();
    EXPECT_TRUE(h.wait_for(100ms)) << "the feeder did not end within 100 ms of cancel";
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
    EXPECT_TRUE(back_to_baseline(100ms));
  }
  EXPECT_EQ(live_threads(), baseline_);
  EXPECT_EQ(target->recv(), 0) << "what was delivered stays delivered";
}

// A feeder chained to from_channel: two pumps, both gone after cancel.
TEST_F(rs_pump_threads_test, ChainedPumpsBothEndOnCancel) {
  auto source = std::make_shared<bp::channel<i64>>(4);
  auto target = std::make_shared<bp::channel<i64>>(4);
  {
    auto h = bp::rs::into_channel(bp::rs::from_channel(source), target, 4);
    EXPECT_EQ(live_threads(), baseline_ + 2);
    std::this_thread::sleep_for(20ms);  // the source's pump is parked in recv
    h.cancel();
    EXPECT_TRUE(h.wait_for(100ms));
    EXPECT_TRUE(back_to_baseline(100ms));
  }
  EXPECT_EQ(live_threads(), baseline_);
}

// batch(n, max_wait)'s timer thread belongs to the operator: it ends when the subscription is
// cancelled and is gone once the subscription is.
TEST_F(rs_pump_threads_test, BatchTimerThreadEndsWithItsSubscription) {
  auto ch = std::make_shared<bp::channel<i64>>(4);
  {
    std::atomic<int> batches{0};
    auto h = bp::rs::subscribe(bp::rs::from_channel(ch) | bp::rs::batch(4, 5ms),
                               [&](std::vector<i64>) { batches.fetch_add(1); });
    EXPECT_EQ(live_threads(), baseline_ + 2) << "the channel's pump and the batch timer";
    ASSERT_EQ(ch->send(1), bp::status::ok);
    ASSERT_TRUE(bp::test::eventually([&] { return batches.load() == 1; }, 5s))
        << "the timer flushes a partial batch";
    h.cancel();
    EXPECT_TRUE(back_to_baseline(100ms));
  }
  EXPECT_EQ(live_threads(), baseline_);
}

}  // namespace

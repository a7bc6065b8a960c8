// Subscriber rules (after the TCK's SubscriberWhiteboxVerification / BlackboxVerification),
// run against the subscribers we ship: bp::rs::subscribe (each request strategy),
// to_channel and to_iterable. A manual publisher records what they request and cancel.
#include <bp/streams.hpp>

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "probe.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace bp::rs;
using bp::rs::test::manual_publisher;
using bp::rs::test::recording_subscription;
using i64 = std::int64_t;

// One subscriber under test, attached to a manual publisher.
struct attached {
  std::shared_ptr<manual_publisher<i64>> up = std::make_shared<manual_publisher<i64>>();
  std::function<void()> cancel;       // the subscriber's own way to give up
  std::function<bool()> terminated;   // it saw a terminal signal (or gave up)
  std::function<std::size_t()> seen;  // elements it consumed
};

struct subscriber_case {
  std::string name;
  std::function<attached()> attach;
};

attached lambda_with(request_strategy st) {
  attached a;
  auto count = std::make_shared<std::atomic<std::size_t>>(0);
  auto ended = std::make_shared<std::atomic<bool>>(false);
  auto h = subscribe(publisher_ptr<i64>(a.up), [count](i64) { ++*count; },
                     {.strategy = st,
                      .on_error = [ended](std::exception_ptr) { *ended = true; },
                      .on_complete = [ended] { *ended = true; }});
  a.cancel = [h] { h.cancel(); };
  a.terminated = [ended] { return ended->load(); };
  a.seen = [count] { return count->load(); };
  return a;
}

attached channel_with(std::size_t cap) {
  attached a;
  auto ch = std::make_shared<subscription_channel<i64>>(to_channel(publisher_ptr<i64>(a.up), cap));
  auto count = std::make_shared<std::atomic<std::size_t>>(0);
  a.cancel = [ch] { ch->cancel(); };
  a.terminated = [ch, count] {
    while (ch->try_recv()) ++*count;
    return ch->is_closed();
  };
  a.seen = [ch, count] {
    while (ch->try_recv()) ++*count;
    return count->load();
  };
  return a;
}

attached into_channel_with(std::size_t prefetch) {
  attached a;
  auto target = std::make_shared<bp::channel<i64>>(4);
  auto count = std::make_shared<std::atomic<std::size_t>>(0);
  auto h = into_channel(publisher_ptr<i64>(a.up), target, prefetch);
  a.cancel = [h] { h.cancel(); };
  a.terminated = [h, target, count] {
    while (target->try_recv()) ++*count;
    return h.done();
  };
  a.seen = [target, count] {
    while (auto v = target->recv_for(std::chrono::milliseconds(1))) ++*count;
    return count->load();
  };
  return a;
}

std::vector<subscriber_case> cases() {
  return {{"lambda_batch8", [] { return lambda_with(request_strategy::batch(8)); }},
          {"lambda_one_at_a_time", [] { return lambda_with(request_strategy::one_at_a_time()); }},
          {"lambda_unbounded", [] { return lambda_with(request_strategy::unbounded()); }},
          {"to_channel", [] { return channel_with(8); }},
          {"into_channel", [] { return into_channel_with(4); }}};
}

class SubscriberVerification : public ::testing::TestWithParam<subscriber_case> {
 protected:
  bp::test::watchdog dog_{std::chrono::seconds(60), "subscriber verification"};
  void SetUp() override {
    a_ = GetParam().attach();
    stage_ = a_.up->downstream();
    sub_ = a_.up->subscription();
    ASSERT_TRUE(stage_ && sub_);
  }
  void TearDown() override {
    a_.cancel();
    a_.up->release();
  }
  attached a_;
  std::shared_ptr<subscriber<i64>> stage_;
  std::shared_ptr<recording_subscription> sub_;
};

TEST_P(SubscriberVerification, Rule_2_1_SignalsDemandAfterOnSubscribe) {
  EXPECT_TRUE(sub_->await_total(1));
}

TEST_P(SubscriberVerification, Rule_2_1_KeepsDemandUpWhileConsuming) {
  for (i64 i = 0; i < 100; ++i) {
    ASSERT_TRUE(sub_->await_total(i + 1)) << "no demand for element " << i;
    stage_->on_next(i);
    (void)a_.seen();  // a channel consumer receives, freeing a slot
  }
  EXPECT_TRUE(bp::test::eventually([&] { return a_.seen() == 100; }));
}

TEST_P(SubscriberVerification, Rule_2_5_CancelsASecondSubscription) {
  auto second = std::make_shared<recording_subscription>();
  stage_->on_subscribe(second);
  EXPECT_EQ(second->cancels(), 1);
  EXPECT_EQ(sub_->cancels(), 0);
}

TEST_P(SubscriberVerification, Rule_2_6_CancelsWhenNoLongerInterested) {
  a_.cancel();
  EXPECT_TRUE(sub_->await_cancel());
}

TEST_P(SubscriberVerification, Rule_2_3_And_2_4_NoCallsToTheSubscriptionAfterTerminal) {
  ASSERT_TRUE(sub_->await_total(1));
  stage_->on_next(1);
  stage_->on_complete();
  EXPECT_TRUE(bp::test::eventually([&] { return a_.terminated(); }));
  const auto before = sub_->requests().size();
  stage_->on_next(2);  // a broken upstream: must neither crash nor trigger requests
  std::this_thread::sleep_for(2ms);
  EXPECT_EQ(sub_->requests().size(), before);
  EXPECT_EQ(sub_->cancels(), 0);
}

TEST_P(SubscriberVerification, Rule_2_8_AcceptsOnNextAfterCancel) {
  ASSERT_TRUE(sub_->await_total(1));
  a_.cancel();
  stage_->on_next(1);  // in flight when cancel happened
  SUCCEED();
}

TEST_P(SubscriberVerification, Rule_2_9_OnCompleteWithoutRequestFirst) {
  stage_->on_complete();
  EXPECT_TRUE(bp::test::eventually([&] { return a_.terminated(); }));
}

TEST_P(SubscriberVerification, Rule_2_10_OnErrorWithoutRequestFirst) {
  stage_->on_error(std::make_exception_ptr(std::runtime_error("x")));
  EXPECT_TRUE(bp::test::eventually([&] { return a_.terminated(); }));
}

TEST_P(SubscriberVerification, Rule_2_13_NullSubscriptionThrows) {
  EXPECT_THROW(stage_->on_subscribe(nullptr), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(All, SubscriberVerification, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// ---- request strategies: exactly the documented requests ---------------------------------------

std::vector<i64> requests_after(request_strategy st, int elements) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto h = subscribe(publisher_ptr<i64>(up), [](i64) {}, {.strategy = st});
  for (int i = 0; i < elements; ++i) up->downstream()->on_next(i);
  auto r = up->subscription()->requests();
  h.cancel();
  return r;
}

TEST(RequestStrategy, BatchRefillsAtLowTide) {
  EXPECT_EQ(requests_after(request_strategy::batch(8), 13), (std::vector<i64>{8, 6, 6}));
  EXPECT_EQ(requests_after(request_strategy::batch(100), 74), (std::vector<i64>{100}));
  EXPECT_EQ(requests_after(request_strategy::batch(100), 75), (std::vector<i64>{100, 75}));
}

TEST(RequestStrategy, OneAtATime) {
  EXPECT_EQ(requests_after(request_strategy::one_at_a_time(), 3), (std::vector<i64>{1, 1, 1, 1}));
}

TEST(RequestStrategy, UnboundedRequestsOnce) {
  EXPECT_EQ(requests_after(request_strategy::unbounded(), 50),
            (std::vector<i64>{bp::rs::unbounded}));
}

TEST(RequestStrategy, InvalidBatchThrows) {
  EXPECT_THROW((void)request_strategy::batch(0), std::invalid_argument);
}

TEST(LambdaSubscriber, Rule_2_13_ThrowingOnNextCancelsAndReportsOnError) {
  auto up = std::make_shared<manual_publisher<i64>>();
  std::exception_ptr got;
  auto h = subscribe(publisher_ptr<i64>(up), [](i64) { throw std::runtime_error("user"); },
                     {.on_error = [&](std::exception_ptr e) { got = e; }});
  up->downstream()->on_next(1);
  EXPECT_EQ(up->subscription()->cancels(), 1);
  EXPECT_TRUE(got);
  EXPECT_TRUE(h.done());
  up->downstream()->on_next(2);  // in flight: ignored
}

TEST(LambdaSubscriber, WaitForTimesOutThenCompletes) {
  auto up = std::make_shared<manual_publisher<i64>>();
  bool completed = false;
  auto h =
      subscribe(publisher_ptr<i64>(up), [](i64) {}, {.on_complete = [&] { completed = true; }});
  EXPECT_FALSE(h.wait_for(5ms));
  up->downstream()->on_complete();
  EXPECT_TRUE(h.wait_for(1s));
  EXPECT_TRUE(completed);
}

// ---- to_channel: requests only as slots free up -----------------------------------------------

TEST(ToChannel, NeverMoreThanCapacityOutstanding) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto ch = to_channel(publisher_ptr<i64>(up), 8);
  auto sub = up->subscription();
  EXPECT_EQ(sub->requests(), (std::vector<i64>{8}));
  for (i64 i = 0; i < 8; ++i) up->downstream()->on_next(i);
  EXPECT_EQ(ch.size(), 8u);
  for (i64 i = 0; i < 5; ++i) EXPECT_EQ(ch.recv(), i);
  EXPECT_EQ(sub->requests(), (std::vector<i64>{8})) << "5 freed: below the low tide of 6";
  EXPECT_EQ(ch.recv(), 5);
  EXPECT_EQ(sub->requests(), (std::vector<i64>{8, 6}));
  ch.cancel();
  EXPECT_EQ(sub->cancels(), 1);
  EXPECT_EQ(ch.recv(), 6);  // what was buffered is still delivered
  EXPECT_EQ(ch.recv(), 7);
  EXPECT_EQ(ch.recv(), std::nullopt);
}

TEST(ToChannel, UpstreamBreakingRule_1_1_IsCancelledAndReported) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto ch = to_channel(publisher_ptr<i64>(up), 2);
  for (i64 i = 0; i < 3; ++i) up->downstream()->on_next(i);
  EXPECT_EQ(up->subscription()->cancels(), 1);
  EXPECT_EQ(ch.recv(), 0);
  EXPECT_EQ(ch.recv(), 1);
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_TRUE(ch.error());
}

TEST(ToChannel, ErrorIsKept) {
  auto ch = to_channel(error<i64>(std::make_exception_ptr(std::runtime_error("e"))), 4);
  EXPECT_EQ(ch.recv_for(1s), std::nullopt);
  EXPECT_TRUE(ch.error());
}

TEST(ToChannel, DestroyingCancels) {
  auto up = std::make_shared<manual_publisher<i64>>();
  { auto ch = to_channel(publisher_ptr<i64>(up), 4); }
  EXPECT_EQ(up->subscription()->cancels(), 1);
}

// ---- to_iterable
// ----------------------------------------------------------------------------------

TEST(ToIterable, IteratesAll) {
  i64 sum = 0;
  for (i64 v : to_iterable(range(1, 100), 7)) sum += v;
  EXPECT_EQ(sum, 5050);
}

TEST(ToIterable, RethrowsTheStreamError) {
  auto pub = range(0, 5) | map([](i64 v) -> i64 {
               if (v == 3) throw std::logic_error("three");
               return v;
             });
  std::vector<i64> got;
  EXPECT_THROW(
      {
        for (i64 v : to_iterable(pub, 2)) got.push_back(v);
      },
      std::logic_error);
  EXPECT_EQ(got, (std::vector<i64>{0, 1, 2}));
}

TEST(ToIterable, TimeoutVariantThrowsTimeoutError) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto it = to_iterable(publisher_ptr<i64>(up), 4, 20ms);
  EXPECT_THROW((void)it.next(), timeout_error);
  EXPECT_EQ(up->subscription()->cancels(), 1);
}

TEST(ToIterable, BreakingOutCancels) {
  auto up = std::make_shared<manual_publisher<i64>>();
  {
    auto it = to_iterable(publisher_ptr<i64>(up), 4);
    up->downstream()->on_next(1);
    for (i64 v : it) {
      EXPECT_EQ(v, 1);
      break;
    }
  }
  EXPECT_EQ(up->subscription()->cancels(), 1);
}

}  // namespace

// Processor rules (after the TCK's IdentityProcessorVerification): every operator is put
// between a manual publisher (the test signals upstream by hand and sees every request/cancel)
// and a probe subscriber. Its publisher side is also covered by publisher_verification_test.
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
using bp::rs::test::probe;
using bp::rs::test::recording_subscription;
using i64 = std::int64_t;

bp::rs::worker& shared_worker() {
  static bp::rs::worker w;
  return w;
}

struct processor_case {
  std::string name;
  std::function<publisher_ptr<i64>(publisher_ptr<i64>)> apply;
  bool lossless = true;  // passes every element of an upstream that honours its demand
  bool async = false;
};

std::vector<processor_case> cases() {
  return {
      {"map", [](auto up) { return up | map([](i64 v) { return v; }); }},
      {"filter", [](auto up) { return up | filter([](i64) { return true; }); }},
      {"take", [](auto up) { return up | take(1000); }},
      {"limit_rate", [](auto up) { return up | limit_rate(4); }},
      {"observe_on", [](auto up) { return up | observe_on(shared_worker().executor(), 4); }, true,
       true},
      {"batch", [](auto up) { return up | batch(1) | map([](auto b) { return b.front(); }); }},
      {"on_backpressure_buffer_block",
       [](auto up) { return up | on_backpressure_buffer(8, bp::overflow::block); }},
      {"on_backpressure_buffer_reject",
       [](auto up) { return up | on_backpressure_buffer(64, bp::overflow::reject); }},
      {"on_backpressure_buffer_drop_oldest",
       [](auto up) { return up | on_backpressure_buffer(64, bp::overflow::drop_oldest); }},
      {"on_backpressure_buffer_drop_newest",
       [](auto up) { return up | on_backpressure_buffer(64, bp::overflow::drop_newest); }},
      {"on_backpressure_drop", [](auto up) { return up | on_backpressure_drop(); }, false},
      {"on_backpressure_latest", [](auto up) { return up | on_backpressure_latest(); }, false},
  };
}

class ProcessorVerification : public ::testing::TestWithParam<processor_case> {
 protected:
  bp::test::watchdog dog_{std::chrono::seconds(60), "processor verification"};

  void SetUp() override {
    up_ = std::make_shared<manual_publisher<i64>>();
    p_ = std::make_shared<probe<i64>>();
    GetParam().apply(up_)->subscribe(p_);
    ASSERT_TRUE(p_->await_subscribed());
    ASSERT_TRUE(up_->downstream());
    stage_ = up_->downstream();
    sub_ = up_->subscription();
  }
  void TearDown() override {
    p_->cancel();
    up_->release();
  }
  void settle() const { std::this_thread::sleep_for(GetParam().async ? 30ms : 1ms); }

  std::shared_ptr<manual_publisher<i64>> up_;
  std::shared_ptr<probe<i64>> p_;
  std::shared_ptr<subscriber<i64>> stage_;  // the operator, as upstream sees it
  std::shared_ptr<recording_subscription> sub_;
};

TEST_P(ProcessorVerification, Rule_2_1_SignalsDemandUpstream) {
  p_->request(5);
  EXPECT_TRUE(sub_->await_total(1));
}

TEST_P(ProcessorVerification, PassesElementsInOrderWithinDemand) {
  p_->request(10);
  ASSERT_TRUE(sub_->await_total(1));
  // Send exactly what the operator asked for, as a conforming publisher would (rule 1.1).
  i64 sent = 0;
  while (sent < 10) {
    ASSERT_TRUE(sub_->await_total(sent + 1));
    const i64 allowed = std::min<i64>(sub_->total(), 10);
    for (; sent < allowed; ++sent) stage_->on_next(sent);
  }
  stage_->on_complete();
  if (GetParam().lossless) {
    ASSERT_TRUE(p_->await_complete());
    std::vector<i64> want(10);
    for (i64 i = 0; i < 10; ++i) want[static_cast<std::size_t>(i)] = i;
    EXPECT_EQ(p_->items(), want);
  } else {
    ASSERT_TRUE(p_->await_complete());
  }
  EXPECT_EQ(p_->violations(), "");
}

TEST_P(ProcessorVerification, Rule_1_1_NeverMoreThanDownstreamRequested) {
  p_->request(3);
  ASSERT_TRUE(sub_->await_total(1));
  const i64 n = std::min<i64>(sub_->total(), 50);
  for (i64 i = 0; i < n; ++i) stage_->on_next(i);
  settle();
  EXPECT_LE(p_->count(), 3u);
  EXPECT_EQ(p_->violations(), "");  // the probe flags any on_next beyond its demand
}

TEST_P(ProcessorVerification, Rule_2_5_CancelsASecondSubscription) {
  auto second = std::make_shared<recording_subscription>();
  stage_->on_subscribe(second);
  EXPECT_EQ(second->cancels(), 1);
  EXPECT_EQ(sub_->cancels(), 0);
}

TEST_P(ProcessorVerification, Rule_2_8_ToleratesSignalsAfterCancel) {
  p_->request(5);
  ASSERT_TRUE(sub_->await_total(1));
  p_->cancel();
  EXPECT_TRUE(sub_->await_cancel()) << "cancel must reach upstream (rule 3.12)";
  stage_->on_next(1);
  stage_->on_next(2);
  stage_->on_complete();
  settle();
  EXPECT_EQ(p_->count(), 0u);
  EXPECT_EQ(p_->terminals(), 0);
}

TEST_P(ProcessorVerification, Rule_2_9_OnCompleteWithoutRequest) {
  stage_->on_complete();
  EXPECT_TRUE(p_->await_complete());
  EXPECT_EQ(p_->violations(), "");
}

TEST_P(ProcessorVerification, Rule_2_10_OnErrorWithoutRequest) {
  stage_->on_error(std::make_exception_ptr(std::runtime_error("up")));
  EXPECT_TRUE(p_->await_error_of<std::runtime_error>());
  EXPECT_EQ(p_->violations(), "");
}

TEST_P(ProcessorVerification, Rule_2_13_NullSubscriptionThrows) {
  EXPECT_THROW(stage_->on_subscribe(nullptr), std::invalid_argument);
}

TEST_P(ProcessorVerification, Rule_3_13_CancelReleasesTheSubscriberWhileUpstreamLives) {
  std::weak_ptr<probe<i64>> weak = p_;
  p_->request(2);
  p_->cancel();
  p_.reset();  // upstream (manual) still holds the operator; the operator must let go of us
  EXPECT_TRUE(bp::test::eventually([&] { return weak.expired(); }, 5000ms));
  p_ = std::make_shared<probe<i64>>();  // for TearDown
}

TEST_P(ProcessorVerification, Rule_1_7_NothingAfterUpstreamCompleted) {
  p_->request(5);
  ASSERT_TRUE(sub_->await_total(1));
  stage_->on_next(0);
  stage_->on_complete();
  ASSERT_TRUE(p_->await_terminal());
  stage_->on_next(1);  // an upstream breaking rule 1.7 is not passed on
  stage_->on_error(std::make_exception_ptr(std::runtime_error("late")));
  settle();
  EXPECT_EQ(p_->terminals(), 1);
  EXPECT_EQ(p_->violations(), "");
  EXPECT_EQ(sub_->cancels(), 0) << "rule 2.3: no call to a terminated subscription";
}

INSTANTIATE_TEST_SUITE_P(All, ProcessorVerification, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace

// Publisher rules (after the TCK's PublisherVerification), run against every publisher and
// every operator we ship, each wrapped as "a publisher of exactly n elements". Test names carry
// the rule they check: Rule_<section>_<rule>_<what>.
// bp-test-timeout: 240
#include <bp/streams.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "probe.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace bp::rs;
using bp::rs::test::probe;
using i64 = std::int64_t;

bp::rs::worker& shared_worker() {
  static bp::rs::worker w;
  return w;
}

struct publisher_case {
  std::string name;
  // A publisher of exactly n elements (the values 0..n-1 in order, unless `ordered` is false).
  std::function<publisher_ptr<i64>(i64 n)> make;
  i64 max_elements = 1 << 20;      // the largest n it can be asked for
  bool multi_subscribe = true;     // each subscriber gets the whole sequence (rule 1.11)
  bool completes_on_last = false;  // completes with the last element, without more demand
  bool async = false;              // signals from a thread of its own
};

std::ostream& operator<<(std::ostream& os, const publisher_case& c) {
  return os << c.name;
}

std::vector<i64> iota(i64 n) {
  std::vector<i64> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), i64{0});
  return v;
}

std::vector<publisher_case> cases() {
  std::vector<publisher_case> c;
  c.push_back({"range", [](i64 n) { return range(0, n); }, bp::rs::unbounded, true, true});
  c.push_back(
      {"from_container", [](i64 n) { return from_container(iota(n)); }, 1 << 16, true, true});
  c.push_back({"generate", [](i64 n) {
                 return generate([i = i64{0}, n]() mutable -> std::optional<i64> {
                   if (i < n) return i++;
                   return std::nullopt;
                 });
               }});
  c.push_back({"from_channel",
               [](i64 n) {
                 auto ch = std::make_shared<bp::channel<i64>>(static_cast<std::size_t>(n + 1));
                 for (i64 i = 0; i < n; ++i) EXPECT_EQ(ch->try_send(i), bp::status::ok);
                 ch->close();
                 return from_channel(ch);
               },
               1 << 12, false, false, true});
  c.push_back({"map", [](i64 n) { return range(-1, n) | map([](i64 v) { return v + 1; }); },
               bp::rs::unbounded - 1, true, true});
  c.push_back({"filter",
               [](i64 n) {
                 return range(0, 2 * n) | filter([](i64 v) { return v % 2 == 0; }) |
                        map([](i64 v) { return v / 2; });
               },
               1 << 20});
  c.push_back({"take", [](i64 n) { return range(0, n + 3) | take(n); }, 1 << 20, true, true});
  c.push_back({"take_of_infinite", [](i64 n) { return range(0, bp::rs::unbounded) | take(n); },
               1 << 20, true, true});
  c.push_back(
      {"limit_rate", [](i64 n) { return range(0, n) | limit_rate(3); }, 1 << 20, true, true});
  c.push_back({"on_backpressure_buffer_block",
               [](i64 n) { return range(0, n) | on_backpressure_buffer(4, bp::overflow::block); },
               1 << 20, true, true});
  c.push_back({"on_backpressure_buffer_reject",
               [](i64 n) {
                 return range(0, n) | on_backpressure_buffer(static_cast<std::size_t>(n + 1),
                                                             bp::overflow::reject);
               },
               1 << 16, true, true});
  c.push_back({"observe_on",
               [](i64 n) { return range(0, n) | observe_on(shared_worker().executor(), 4); },
               1 << 20, true, false, true});
  c.push_back({"batch",
               [](i64 n) {
                 return range(0, n) | batch(1) |
                        map([](const std::vector<i64>& b) { return b.front(); });
               },
               1 << 16, true, true});
  c.push_back({"batch_timed",
               [](i64 n) {
                 return range(0, n) | batch(1, 50ms) |
                        map([](const std::vector<i64>& b) { return b.front(); });
               },
               1 << 16, true, true});
  c.push_back({"from_channel_pipeline",
               [](i64 n) {
                 auto [tx, rx] = bp::make_channel<i64>(static_cast<std::size_t>(n + 1));
                 for (i64 i = 0; i < n; ++i) EXPECT_EQ(tx.try_send(i), bp::status::ok);
                 tx.reset();  // last sender gone: closed
                 return from_channel(std::move(rx)) | map([](i64 v) { return v; }) | limit_rate(2);
               },
               1 << 12, false, false, true});
  return c;
}

class PublisherVerification : public ::testing::TestWithParam<publisher_case> {
 protected:
  bp::test::watchdog dog_{std::chrono::seconds(60), "publisher verification"};

  // A subscription left running would keep its subscriber (and itself) alive: as in real
  // code, every stream must end or be cancelled. Cancelling an ended one is a no-op (rule 3.7).
  void TearDown() override {
    for (auto& p : probes_) p->cancel();
  }

  std::shared_ptr<probe<i64>> subscribe(i64 n, i64 initial = 0) {
    auto p = std::make_shared<probe<i64>>();
    probes_.push_back(p);
    p->initial_request = initial;
    GetParam().make(n)->subscribe(p);
    EXPECT_TRUE(p->await_subscribed());
    return p;
  }

  // Nothing further arrives for a while (enough for an async publisher to misbehave).
  static void settle() { std::this_thread::sleep_for(GetParam().async ? 30ms : 1ms); }

  static void no_violations(probe<i64>& p) { EXPECT_EQ(p.violations(), "") << GetParam().name; }

  std::vector<std::shared_ptr<probe<i64>>> probes_;
};

// TCK required_createPublisher1/3: a publisher of n produces exactly n elements, in order.
TEST_P(PublisherVerification, ProducesExactlyTheRequestedStream) {
  for (i64 n : {1, 3, 10}) {
    auto p = subscribe(n);
    p->request(n);
    ASSERT_TRUE(p->await_items(static_cast<std::size_t>(n)));
    p->request(1);
    ASSERT_TRUE(p->await_complete());
    EXPECT_EQ(p->items(), iota(n));
    no_violations(*p);
  }
}

TEST_P(PublisherVerification, Rule_1_1_OnNextNeverExceedsRequested) {
  auto p = subscribe(20);
  i64 total = 0;
  for (i64 k : {1, 2, 5}) {
    p->request(k);
    total += k;
    ASSERT_TRUE(p->await_items(static_cast<std::size_t>(total)));
    settle();
    EXPECT_EQ(p->count(), static_cast<std::size_t>(total));
  }
  p->cancel();
  no_violations(*p);  // the probe flags any on_next beyond demand
}

TEST_P(PublisherVerification, Rule_1_2_MaySignalFewerThanRequestedAndTerminate) {
  auto p = subscribe(3);
  p->request(10);
  ASSERT_TRUE(p->await_complete());
  EXPECT_EQ(p->items(), iota(3));
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_1_3_SignalsAreSerialUnderConcurrentRequests) {
  const i64 n = std::min<i64>(GetParam().max_elements, 4000);
  auto p = subscribe(n);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (i64 i = 0; i < n / 4 + 1; ++i) p->request(1);
    });
  for (auto& t : ts) t.join();
  ASSERT_TRUE(p->await_complete());
  EXPECT_EQ(p->items(), iota(n));
  EXPECT_EQ(p->max_depth(), 1) << "overlapping or nested signals";
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_1_5_FiniteStreamSignalsOnComplete) {
  auto p = subscribe(5);
  p->request(5);
  ASSERT_TRUE(p->await_items(5));
  if (GetParam().completes_on_last) {
    EXPECT_TRUE(p->await_complete()) << "should complete without further demand";
  } else {
    p->request(1);
    EXPECT_TRUE(p->await_complete());
  }
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_1_5_EmptyStreamSignalsOnComplete) {
  auto p = subscribe(0);
  if (!GetParam().completes_on_last) p->request(1);
  EXPECT_TRUE(p->await_complete());
  EXPECT_EQ(p->count(), 0u);
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_1_7_NoSignalAfterTerminal) {
  auto p = subscribe(3);
  p->request(10);
  ASSERT_TRUE(p->await_complete());
  p->request(10);
  p->request(-1);
  p->cancel();
  settle();
  EXPECT_EQ(p->terminals(), 1);
  EXPECT_EQ(p->count(), 3u);
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_1_9_SubscribeNullThrowsInvalidArgument) {
  auto pub = GetParam().make(3);
  EXPECT_THROW(pub->subscribe(nullptr), std::invalid_argument);
}

TEST_P(PublisherVerification, Rule_1_9_OnSubscribeComesFirst) {
  auto p = subscribe(3, 3);
  ASSERT_TRUE(p->await_items(3));
  no_violations(*p);  // the probe flags any signal before on_subscribe
}

TEST_P(PublisherVerification, Rule_1_11_EachSubscriberGetsItsOwnSequence) {
  if (!GetParam().multi_subscribe) GTEST_SKIP() << "subscribers share one channel";
  auto pub = GetParam().make(5);
  auto a = std::make_shared<probe<i64>>();
  auto b = std::make_shared<probe<i64>>();
  pub->subscribe(a);
  pub->subscribe(b);
  a->request(6);
  b->request(6);
  ASSERT_TRUE(a->await_complete());
  ASSERT_TRUE(b->await_complete());
  EXPECT_EQ(a->items(), iota(5));
  EXPECT_EQ(b->items(), iota(5));
}

TEST_P(PublisherVerification, Rule_3_2_RequestFromOnSubscribeAndOnNext) {
  auto p = std::make_shared<probe<i64>>();
  p->on_subscribe_hook = [](probe<i64>& self) { self.request(1); };
  p->on_next_hook = [](probe<i64>& self, const i64&) { self.request(1); };
  GetParam().make(10)->subscribe(p);
  ASSERT_TRUE(p->await_complete());
  EXPECT_EQ(p->items(), iota(10));
  EXPECT_LE(p->max_depth(), 2) << "one level: on_next inside on_subscribe's request (rule 3.10)";
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_3_3_RecursionThroughRequestIsBounded) {
  const i64 n = std::min<i64>(GetParam().max_elements, 20000);  // deep enough to blow a stack
  auto p = std::make_shared<probe<i64>>();
  p->on_next_hook = [](probe<i64>& self, const i64&) { self.request(1); };
  GetParam().make(n)->subscribe(p);
  ASSERT_TRUE(p->await_subscribed());
  p->request(1);  // from outside any signal: every on_next must then run at depth 1
  ASSERT_TRUE(p->await_complete(20s));
  EXPECT_EQ(p->count(), static_cast<std::size_t>(n));
  EXPECT_EQ(p->max_depth(), 1) << "on_next re-entered from request";
}

TEST_P(PublisherVerification, Rule_3_5_CancelIsIdempotentAndThreadSafe) {
  auto p = subscribe(1000);
  p->request(10);
  ASSERT_TRUE(p->await_items(10));
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 100; ++i) p->cancel();
    });
  for (auto& t : ts) t.join();
  settle();
  EXPECT_EQ(p->terminals(), 0);
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_3_6_RequestAfterCancelIsNoop) {
  auto p = subscribe(20);
  p->request(2);
  ASSERT_TRUE(p->await_items(2));
  p->cancel();
  p->request(5);
  p->request(0);  // no on_error either: the subscription is cancelled
  settle();
  EXPECT_EQ(p->count(), 2u);
  EXPECT_EQ(p->terminals(), 0);
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_3_7_CancelAfterCancelIsNoop) {
  auto p = subscribe(5);
  p->cancel();
  p->cancel();
  p->cancel();
  settle();
  EXPECT_EQ(p->terminals(), 0);
  EXPECT_EQ(p->count(), 0u);
}

TEST_P(PublisherVerification, Rule_3_9_NonPositiveRequestSignalsError) {
  for (i64 bad : {i64{0}, i64{-1}, std::numeric_limits<i64>::min()}) {
    auto p = subscribe(10);
    p->request(bad);
    ASSERT_TRUE(p->await_error_of<std::invalid_argument>()) << "request(" << bad << ")";
    p->request(5);
    settle();
    EXPECT_EQ(p->count(), 0u);
    EXPECT_EQ(p->terminals(), 1);
    no_violations(*p);
  }
}

TEST_P(PublisherVerification, Rule_3_9_NonPositiveRequestAfterElementsSignalsError) {
  auto p = subscribe(10);
  p->request(2);
  ASSERT_TRUE(p->await_items(2));
  p->request(-5);
  ASSERT_TRUE(p->await_error_of<std::invalid_argument>());
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_3_12_CancelMakesThePublisherStopSignalling) {
  const i64 n = std::min<i64>(GetParam().max_elements, 4000);
  auto p = std::make_shared<probe<i64>>();
  p->on_next_hook = [](probe<i64>& self, const i64& v) {
    if (v == 9) self.cancel();
  };
  GetParam().make(n)->subscribe(p);
  p->request(n);
  ASSERT_TRUE(p->await_items(10));
  settle();
  const auto seen = p->count();
  EXPECT_LT(seen, static_cast<std::size_t>(n));
  EXPECT_LE(seen, 10u + 8u);  // at most what was already in flight (prefetch)
  EXPECT_EQ(p->terminals(), 0);
}

TEST_P(PublisherVerification, Rule_3_13_CancelDropsTheReferenceToTheSubscriber) {
  std::weak_ptr<probe<i64>> weak;
  {
    auto p = subscribe(100);
    probes_.clear();
    p->request(3);
    ASSERT_TRUE(p->await_items(3));
    p->cancel();
    weak = p;
  }  // our reference is gone; the publisher must let go of its own
  EXPECT_TRUE(bp::test::eventually([&] { return weak.expired(); }, 5000ms));
}

TEST_P(PublisherVerification, Rule_3_13_TerminalDropsTheReferenceToTheSubscriber) {
  std::weak_ptr<probe<i64>> weak;
  {
    auto p = subscribe(2);
    probes_.clear();
    p->request(5);
    ASSERT_TRUE(p->await_complete());
    weak = p;
  }
  EXPECT_TRUE(bp::test::eventually([&] { return weak.expired(); }, 5000ms));
}

TEST_P(PublisherVerification, Rule_3_17_DemandUpToInt64MaxIsSupported) {
  auto p = subscribe(50);
  p->request(bp::rs::unbounded);
  ASSERT_TRUE(p->await_items(50));
  if (!GetParam().completes_on_last) p->request(1);
  ASSERT_TRUE(p->await_complete());
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_3_17_CumulativeDemandSaturatesWithoutError) {
  auto p = subscribe(50);
  p->request(bp::rs::unbounded - 1);
  p->request(bp::rs::unbounded - 1);
  p->request(bp::rs::unbounded);
  ASSERT_TRUE(p->await_items(50));
  if (!GetParam().completes_on_last) p->request(1);
  ASSERT_TRUE(p->await_complete()) << "saturating demand must not overflow into an error";
  no_violations(*p);
}

TEST_P(PublisherVerification, Rule_3_17_PendingDemandAboveMaxIsNotAnError) {
  auto p = subscribe(3);
  p->request(1);
  ASSERT_TRUE(p->await_items(1));
  p->request(bp::rs::unbounded);  // pending: INT64_MAX - 1 + INT64_MAX
  ASSERT_TRUE(p->await_items(3));
  if (!GetParam().completes_on_last) p->request(1);
  EXPECT_TRUE(p->await_complete());
}

INSTANTIATE_TEST_SUITE_P(All, PublisherVerification, ::testing::ValuesIn(cases()),
                         [](const auto& info) { return info.param.name; });

// ---- failing publishers (TCK createFailedPublisher) -----------------------------------------

struct failing_case {
  std::string name;
  std::function<publisher_ptr<i64>()> make;
  bool without_demand;  // signals on_error right after on_subscribe
};

std::vector<failing_case> failing_cases() {
  auto boom = [] { return std::make_exception_ptr(std::runtime_error("boom")); };
  std::vector<failing_case> c;
  c.push_back({"error", [=] { return error<i64>(boom()); }, true});
  c.push_back(
      {"error_map", [=] { return error<i64>(boom()) | map([](i64 v) { return v; }); }, true});
  c.push_back({"error_limit_rate", [=] { return error<i64>(boom()) | limit_rate(4); }, true});
  c.push_back({"error_observe_on",
               [=] { return error<i64>(boom()) | observe_on(shared_worker().executor(), 4); },
               true});
  c.push_back({"error_batch",
               [=] { return error<i64>(boom()) | batch(3) | map([](auto b) { return b[0]; }); },
               true});
  c.push_back({"map_throws",
               [] {
                 return range(0, 10) | map([](i64 v) -> i64 {
                          if (v == 2) throw std::runtime_error("boom");
                          return v;
                        });
               },
               false});
  c.push_back(
      {"generate_throws",
       [] { return generate([]() -> std::optional<i64> { throw std::runtime_error("boom"); }); },
       false});
  c.push_back(
      {"filter_throws",
       [] { return range(0, 10) | filter([](i64) -> bool { throw std::runtime_error("boom"); }); },
       false});
  return c;
}

class FailingPublisherVerification : public ::testing::TestWithParam<failing_case> {
 protected:
  bp::test::watchdog dog_{std::chrono::seconds(60), "failing publisher verification"};
};

TEST_P(FailingPublisherVerification, Rule_1_4_FailureSignalsOnError) {
  auto p = std::make_shared<probe<i64>>();
  GetParam().make()->subscribe(p);
  ASSERT_TRUE(p->await_subscribed());
  if (GetParam().without_demand) {
    EXPECT_TRUE(p->await_error_of<std::runtime_error>()) << "error right after on_subscribe";
  } else {
    p->request(10);
    EXPECT_TRUE(p->await_error_of<std::runtime_error>());
  }
  std::this_thread::sleep_for(5ms);
  EXPECT_EQ(p->terminals(), 1);
  EXPECT_EQ(p->violations(), "");
}

TEST_P(FailingPublisherVerification, Rule_1_9_OnSubscribeBeforeOnError) {
  auto p = std::make_shared<probe<i64>>();
  GetParam().make()->subscribe(p);
  p->request(10);
  ASSERT_TRUE(p->await_terminal());
  EXPECT_EQ(p->violations(), "");
}

INSTANTIATE_TEST_SUITE_P(All, FailingPublisherVerification, ::testing::ValuesIn(failing_cases()),
                         [](const auto& info) { return info.param.name; });

// ---- factory contracts (API.md §2) -----------------------------------------------------------

TEST(PublisherFactories, RangeRejectsNegativeCountAndOverflow) {
  EXPECT_THROW((void)range(0, -1), std::invalid_argument);
  EXPECT_THROW((void)range(bp::rs::unbounded, 2), std::invalid_argument);
  EXPECT_THROW((void)range(bp::rs::unbounded - 5, 7), std::invalid_argument);
  EXPECT_NO_THROW((void)range(bp::rs::unbounded - 5, 6));
  EXPECT_NO_THROW((void)range(bp::rs::unbounded, 1));
  EXPECT_NO_THROW((void)range(std::numeric_limits<i64>::min(), 0));
}

TEST(PublisherFactories, RangeEndingAtInt64MaxDeliversItsLastValue) {
  auto p = std::make_shared<probe<i64>>();
  range(bp::rs::unbounded - 2, 3)->subscribe(p);
  p->request(3);
  ASSERT_TRUE(p->await_complete());
  EXPECT_EQ(p->items(),
            (std::vector<i64>{bp::rs::unbounded - 2, bp::rs::unbounded - 1, bp::rs::unbounded}));
}

TEST(PublisherFactories, ErrorRejectsNull) {
  EXPECT_THROW((void)error<int>(nullptr), std::invalid_argument);
}

}  // namespace

// Behaviour of each bp::rs publisher, operator and subscriber beyond the protocol rules (those
// are in tests/rs/*_verification_test.cpp): what each one requests, drops, buffers and emits.
#include <bp/streams.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "rs/probe.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace bp::rs;
using bp::rs::test::manual_publisher;
using bp::rs::test::probe;
using bp::test::counted;
using bp::test::eventually;
using bp::test::watchdog;
using i64 = std::int64_t;

template <class T>
std::vector<T> collect(const publisher_ptr<T>& pub, std::size_t prefetch = 16) {
  std::vector<T> out;
  for (auto& v : to_iterable(pub, prefetch)) out.push_back(std::move(v));
  return out;
}

std::vector<i64> iota(i64 from, i64 n) {
  std::vector<i64> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), from);
  return v;
}

TEST(Streams, PipelineReadsInAFewLines) {
  watchdog dog(30s);
  auto pipeline = range(0, 1000) | map([](i64 v) { return v * v; }) |
                  filter([](i64 v) { return v % 2 == 0; }) | limit_rate(32);
  i64 sum = 0, n = 0;
  for (i64 v : to_iterable(pipeline, 64)) sum += v, ++n;
  EXPECT_EQ(n, 500);
  i64 want = 0;
  for (i64 i = 0; i < 1000; i += 2) want += i * i;
  EXPECT_EQ(sum, want);
}

TEST(Streams, MapChangesTheType) {
  auto strs = range(1, 3) | map([](i64 v) { return std::to_string(v) + "!"; });
  EXPECT_EQ(collect(strs), (std::vector<std::string>{"1!", "2!", "3!"}));
}

TEST(Streams, JustAndFromContainer) {
  EXPECT_EQ(collect(just(1, 2, 3)), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(collect(from_container(std::vector<std::string>{"a", "b"})),
            (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(collect(empty<int>()).empty());
}

TEST(Streams, GenerateIsCalledOnlyWithDemand) {
  std::atomic<int> calls{0};
  auto gen = generate([&calls, i = 0]() mutable -> std::optional<int> {
    ++calls;
    return i++;
  });
  auto p = std::make_shared<probe<int>>();
  gen->subscribe(p);
  std::this_thread::sleep_for(1ms);
  EXPECT_EQ(calls.load(), 0) << "no demand, no call";
  p->request(3);
  EXPECT_EQ(calls.load(), 3);
  p->request(2);
  EXPECT_EQ(calls.load(), 5);
  EXPECT_EQ(p->items(), (std::vector<int>{0, 1, 2, 3, 4}));
  p->cancel();
  p->request(10);
  EXPECT_EQ(calls.load(), 5);
}

TEST(Streams, ErrorSignalsWithoutDemand) {
  auto p = std::make_shared<probe<int>>();
  error<int>(std::make_exception_ptr(std::runtime_error("e")))->subscribe(p);
  EXPECT_TRUE(p->await_error_of<std::runtime_error>(0ms));
}

TEST(Streams, RangeCompletesWithTheLastElement) {
  auto p = std::make_shared<probe<i64>>();
  range(5, 3)->subscribe(p);
  p->request(3);
  EXPECT_TRUE(p->completed());  // synchronously, without a further request
  EXPECT_EQ(p->items(), (std::vector<i64>{5, 6, 7}));
}

TEST(Streams, TakeNeverRequestsMoreThanN) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | take(5))->subscribe(p);
  p->request(3);
  p->request(bp::rs::unbounded);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{3, 2}));
  for (i64 i = 0; i < 5; ++i) up->downstream()->on_next(i);
  EXPECT_TRUE(p->completed());
  EXPECT_EQ(up->subscription()->cancels(), 1);
}

TEST(Streams, TakeZeroCompletesAtOnce) {
  auto p = std::make_shared<probe<i64>>();
  (range(0, 10) | take(0))->subscribe(p);
  EXPECT_TRUE(p->completed());
  EXPECT_EQ(p->count(), 0u);
  EXPECT_THROW((void)take(-1), std::invalid_argument);
}

TEST(Streams, FilterReplacesRejectedElements) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | filter([](i64 v) { return v > 1; }))->subscribe(p);
  p->request(1);
  up->downstream()->on_next(0);
  up->downstream()->on_next(1);
  up->downstream()->on_next(2);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{1, 1, 1}));
  EXPECT_EQ(p->items(), (std::vector<i64>{2}));
  p->cancel();
}

TEST(Streams, LimitRateRequestsAtLowTide) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | limit_rate(8))->subscribe(p);
  p->request(bp::rs::unbounded);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{8}));
  for (i64 i = 0; i < 5; ++i) up->downstream()->on_next(i);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{8})) << "5 < low tide 6";
  up->downstream()->on_next(5);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{8, 6}));
  EXPECT_EQ(p->count(), 6u);
  p->cancel();
  EXPECT_THROW((void)limit_rate(0), std::invalid_argument);
}

TEST(Streams, LimitRateCapsUnboundedDemandFromRange) {
  // range sees at most 8 outstanding though downstream asked for everything.
  std::atomic<i64> max_outstanding{0}, requested{0}, delivered{0};
  auto counting = generate([&, i = i64{0}]() mutable -> std::optional<i64> {
    if (i == 1000) return std::nullopt;
    return i++;
  });
  auto h = subscribe(counting | limit_rate(8), [&](i64) { ++delivered; },
                     {.strategy = request_strategy::unbounded()});
  EXPECT_TRUE(h.wait_for(5s));
  EXPECT_EQ(delivered.load(), 1000);
  (void)max_outstanding;
  (void)requested;
}

TEST(Streams, BufferDropOldestKeepsTheNewest) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  std::vector<i64> dropped;
  (publisher_ptr<i64>(up) | on_backpressure_buffer(3, bp::overflow::drop_oldest, [&](i64&& v) {
     dropped.push_back(v);
   }))->subscribe(p);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{bp::rs::unbounded}));
  for (i64 i = 0; i < 6; ++i) up->downstream()->on_next(i);
  EXPECT_EQ(dropped, (std::vector<i64>{0, 1, 2}));
  p->request(10);
  EXPECT_EQ(p->items(), (std::vector<i64>{3, 4, 5}));
  p->cancel();
}

TEST(Streams, BufferDropNewestKeepsTheOldest) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  std::vector<i64> dropped;
  (publisher_ptr<i64>(up) | on_backpressure_buffer(3, bp::overflow::drop_newest, [&](i64&& v) {
     dropped.push_back(v);
   }))->subscribe(p);
  for (i64 i = 0; i < 6; ++i) up->downstream()->on_next(i);
  EXPECT_EQ(dropped, (std::vector<i64>{3, 4, 5}));
  p->request(10);
  EXPECT_EQ(p->items(), (std::vector<i64>{0, 1, 2}));
  p->cancel();
}

TEST(Streams, BufferRejectFailsWithOverflowErrorAndCancelsUpstream) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | on_backpressure_buffer(2, bp::overflow::reject))->subscribe(p);
  p->request(1);
  for (i64 i = 0; i < 4; ++i) up->downstream()->on_next(i);  // 0 delivered, 1 2 buffered, 3 over
  EXPECT_TRUE(p->await_error_of<overflow_error>(0ms));
  EXPECT_EQ(p->items(), (std::vector<i64>{0}));
  EXPECT_EQ(up->subscription()->cancels(), 1);
}

TEST(Streams, BufferBlockPropagatesBackpressureInstead) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | on_backpressure_buffer(4, bp::overflow::block))->subscribe(p);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{4}));
  for (i64 i = 0; i < 4; ++i) up->downstream()->on_next(i);
  p->request(3);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{4, 3}));
  p->cancel();
  EXPECT_THROW((void)on_backpressure_buffer(0), std::invalid_argument);
}

TEST(Streams, DropDiscardsWithoutDemand) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  std::vector<i64> dropped;
  (publisher_ptr<i64>(up) | on_backpressure_drop([&](i64&& v) {
     dropped.push_back(v);
   }))->subscribe(p);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{bp::rs::unbounded}));
  up->downstream()->on_next(0);
  p->request(2);
  up->downstream()->on_next(1);
  up->downstream()->on_next(2);
  up->downstream()->on_next(3);
  EXPECT_EQ(p->items(), (std::vector<i64>{1, 2}));
  EXPECT_EQ(dropped, (std::vector<i64>{0, 3}));
  p->cancel();
}

TEST(Streams, LatestKeepsOnlyTheNewest) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | on_backpressure_latest())->subscribe(p);
  for (i64 i = 0; i < 5; ++i) up->downstream()->on_next(i);
  p->request(1);
  EXPECT_EQ(p->items(), (std::vector<i64>{4}));
  up->downstream()->on_next(5);
  up->downstream()->on_next(6);
  up->downstream()->on_complete();
  p->request(5);
  EXPECT_EQ(p->items(), (std::vector<i64>{4, 6}));
  EXPECT_TRUE(p->completed());
}

TEST(Streams, ObserveOnDeliversOnTheExecutorThread) {
  watchdog dog(30s);
  worker w;
  std::atomic<bool> all_on_worker{true};
  std::atomic<i64> sum{0};
  auto h = subscribe(range(0, 10000) | observe_on(w.executor(), 16), [&](i64 v) {
    if (!w.on_worker_thread()) all_on_worker = false;
    sum += v;
  });
  ASSERT_TRUE(h.wait_for(10s));
  EXPECT_TRUE(all_on_worker.load());
  EXPECT_EQ(sum.load(), 9999 * 10000 / 2);
  EXPECT_THROW((void)observe_on(executor{}, 4), std::invalid_argument);
  EXPECT_THROW((void)observe_on(w.executor(), 0), std::invalid_argument);
}

TEST(Streams, ObserveOnRequestsUpstreamInPrefetchChunks) {
  watchdog dog(30s);
  worker w;
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | observe_on(w.executor(), 4))->subscribe(p);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{4}));
  p->request(100);
  for (i64 i = 0; i < 4; ++i) up->downstream()->on_next(i);
  ASSERT_TRUE(p->await_items(4));
  EXPECT_TRUE(eventually([&] { return up->subscription()->total() == 4 + 3; }));
  p->cancel();
}

TEST(Streams, BatchBySize) {
  auto batches = collect(range(0, 10) | batch(4));
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0], iota(0, 4));
  EXPECT_EQ(batches[1], iota(4, 4));
  EXPECT_EQ(batches[2], iota(8, 2));  // the partial one at completion
  EXPECT_THROW((void)batch(0), std::invalid_argument);
}

TEST(Streams, BatchRequestsNTimesDemand) {
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<std::vector<i64>>>();
  (publisher_ptr<i64>(up) | batch(5))->subscribe(p);
  p->request(2);
  EXPECT_EQ(up->subscription()->requests(), (std::vector<i64>{10}));
  p->cancel();
}

TEST(Streams, BatchFlushesAPartialBatchAfterMaxWait) {
  watchdog dog(30s);
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<std::vector<i64>>>();
  (publisher_ptr<i64>(up) | batch(100, 20ms))->subscribe(p);
  p->request(5);
  up->downstream()->on_next(1);
  up->downstream()->on_next(2);
  ASSERT_TRUE(p->await_items(1, 2000ms));
  EXPECT_EQ(p->items()[0], (std::vector<i64>{1, 2}));
  p->cancel();
}

TEST(Streams, FromChannelReceivesOnlyOnDemand) {
  watchdog dog(30s);
  auto ch = std::make_shared<bp::channel<i64>>(16);
  for (i64 i = 0; i < 10; ++i) ASSERT_EQ(ch->try_send(i), bp::status::ok);
  auto p = std::make_shared<probe<i64>>();
  from_channel(ch)->subscribe(p);
  p->request(3);
  ASSERT_TRUE(p->await_items(3));
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(p->count(), 3u);
  EXPECT_EQ(ch->size(), 7u) << "demand drives recv";
  p->request(7);
  ASSERT_TRUE(p->await_items(10));
  ch->close();
  p->request(1);
  EXPECT_TRUE(p->await_complete());
}

TEST(Streams, SignalIntoBlockAndBack) {
  // Signal -> Block -> Signal: a range into a channel (requests as slots free), read back as a
  // publisher by from_channel, consumed by to_iterable.
  watchdog dog(30s);
  auto [tx, rx] = bp::make_channel<i64>(4);
  std::thread producer([tx = std::move(tx)]() mutable {
    for (i64 v : to_iterable(range(0, 1000), 8))
      if (tx.send(v) != bp::status::ok) break;
  });
  i64 expected = 0;
  for (i64 v : to_iterable(from_channel(std::move(rx)), 8)) EXPECT_EQ(v, expected++);
  producer.join();
  EXPECT_EQ(expected, 1000);
}

TEST(Streams, IntoChannelRequestsOnlyAsTheChannelAccepts) {
  watchdog dog(30s);
  auto up = std::make_shared<manual_publisher<i64>>();
  auto target = std::make_shared<bp::channel<i64>>(2);
  auto h = into_channel(publisher_ptr<i64>(up), target, 4);
  auto sub = up->subscription();
  EXPECT_EQ(sub->requests(), (std::vector<i64>{4}));
  for (i64 i = 0; i < 4; ++i) up->downstream()->on_next(i);
  ASSERT_TRUE(eventually([&] { return target->size() == 2; }));
  std::this_thread::sleep_for(10ms);
  EXPECT_EQ(sub->requests(), (std::vector<i64>{4})) << "2 accepted: below the low tide of 3";
  EXPECT_EQ(target->recv(), 0);  // a slot frees: the pump sends 2, then requests 3
  EXPECT_TRUE(eventually([&] { return sub->requests().size() == 2; }));
  EXPECT_EQ(sub->requests(), (std::vector<i64>{4, 3}));
  up->downstream()->on_complete();
  EXPECT_EQ(target->recv(), 1);
  EXPECT_EQ(target->recv(), 2);
  EXPECT_EQ(target->recv(), 3);
  EXPECT_EQ(target->recv(), std::nullopt) << "closed at the end";
  EXPECT_TRUE(h.wait_for(5s));
}

TEST(Streams, IntoChannelThroughASenderEndToEnd) {
  watchdog dog(30s);
  auto [tx, rx] = bp::make_channel<i64>(4);
  auto h = into_channel(range(0, 1000) | map([](i64 v) { return v * 2; }), std::move(tx), 8);
  i64 expected = 0;
  for (i64 v : rx) {
    EXPECT_EQ(v, expected);
    expected += 2;
  }
  EXPECT_EQ(expected, 2000);
  EXPECT_TRUE(h.wait_for(5s));
}

TEST(Streams, IntoChannelCancelsWhenReceiversAreGone) {
  watchdog dog(30s);
  auto up = std::make_shared<manual_publisher<i64>>();
  auto target = std::make_shared<bp::channel<i64>>(1);
  auto h = into_channel(publisher_ptr<i64>(up), target, 4);
  up->downstream()->on_next(1);
  up->downstream()->on_next(2);
  target->close();
  EXPECT_TRUE(up->subscription()->await_cancel());
  EXPECT_TRUE(h.wait_for(5s));
}

TEST(Streams, FreeFunctionFormsAndDerivedPublisherPointers) {
  // A shared_ptr to a publisher's own class works wherever a publisher_ptr<T> does.
  struct three : publisher<int> {
    void subscribe(std::shared_ptr<subscriber<int>> s) override { just(1, 2, 3)->subscribe(s); }
  };
  auto mine = std::make_shared<three>();
  EXPECT_EQ(collect(map(filter(mine, [](int v) { return v != 2; }), [](int v) { return v * 10; })),
            (std::vector<int>{10, 30}));
  EXPECT_EQ(collect(mine | take(2)), (std::vector<int>{1, 2}));
  EXPECT_EQ(collect(limit_rate(take(mine, 1), 1)), (std::vector<int>{1}));
  int sum = 0;
  for (int v : to_iterable(mine, 2)) sum += v;
  EXPECT_EQ(sum, 6);
  auto h = subscribe(mine, [&](int v) { sum += v; });
  EXPECT_TRUE(h.wait_for(1s));
  EXPECT_EQ(sum, 12);
  EXPECT_EQ(collect(on_backpressure_buffer(mine, 4, bp::overflow::block)),
            (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(collect(batch(mine, 2)).size(), 2u);
  worker w;
  EXPECT_EQ(collect(observe_on(mine, w.executor(), 2)), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(collect(mine | observe_on(w, 2)), (std::vector<int>{1, 2, 3}));
  auto dropped = on_backpressure_drop(mine);
  auto latest = on_backpressure_latest(mine);
  EXPECT_TRUE(dropped && latest);
}

TEST(Streams, NoLeaksOrDoubleDestroys) {
  const long before = counted::live.load();
  {
    auto pub = range(0, 100) | map([](i64 v) { return counted(static_cast<int>(v)); }) |
               filter([](const counted& c) { return c.value % 2 == 0; }) | limit_rate(4) |
               on_backpressure_buffer(8, bp::overflow::block);
    long sum = 0;
    for (auto& c : to_iterable(pub, 4)) sum += c.value;
    EXPECT_EQ(sum, 2450);
    auto h = subscribe(pub | take(3), [](counted) {});
    EXPECT_TRUE(h.wait_for(1s));
  }
  EXPECT_EQ(counted::live.load(), before);
}

// --- no calls on a subscription after its terminal (rules 2.3, 2.4; found by tests/fuzz/rs) ---

// A synchronous source that emits its values as they are requested, completes right after the
// last one, answers request(n <= 0) with on_error at once, and counts every call it gets after
// its terminal signal.
class strict_source : public publisher<i64> {
 public:
  explicit strict_source(i64 count) : count_(count) {}
  int late_calls = 0;
  void subscribe(std::shared_ptr<subscriber<i64>> s) override {
    auto sub = std::make_shared<link>(*this, s);
    s->on_subscribe(sub);
  }

 private:
  struct link : subscription {
    link(strict_source& src, std::shared_ptr<subscriber<i64>> s) : src_(src), down_(std::move(s)) {}
    void request(i64 n) override {
      if (!down_) {
        ++src_.late_calls;
        return;
      }
      auto d = down_;
      if (n <= 0) {
        down_.reset();
        d->on_error(std::make_exception_ptr(std::invalid_argument("n <= 0")));
        return;
      }
      for (; n > 0 && next_ < src_.count_; --n) d->on_next(next_++);
      if (next_ == src_.count_) {
        down_.reset();
        d->on_complete();
      }
    }
    void cancel() override {
      if (!down_) ++src_.late_calls;
      down_.reset();
    }
    strict_source& src_;
    std::shared_ptr<subscriber<i64>> down_;
    i64 next_ = 0;
  };
  i64 count_;
};

TEST(Streams, PassThroughStageDoesNotStartAnUpstreamThatAlreadyFailed) {
  auto src = std::make_shared<strict_source>(5);
  auto p = std::make_shared<probe<i64>>();
  p->on_subscribe_hook = [](probe<i64>& self) { self.request(0); };  // upstream fails at once
  (publisher_ptr<i64>(src) | on_backpressure_drop())->subscribe(p);
  EXPECT_TRUE(p->await_error_of<std::invalid_argument>(0ms));
  EXPECT_EQ(src->late_calls, 0) << "on_backpressure_drop requested after upstream's on_error";
  EXPECT_EQ(p->violations(), "");
}

TEST(Streams, BatchDoesNotRequestFromACompletedUpstream) {
  auto src = std::make_shared<strict_source>(3);
  auto p = std::make_shared<probe<std::vector<i64>>>();
  p->on_next_hook = [](probe<std::vector<i64>>& self, const std::vector<i64>&) { self.request(1); };
  (publisher_ptr<i64>(src) | batch(2))->subscribe(p);
  p->request(1);
  ASSERT_TRUE(p->await_complete(0ms));
  EXPECT_EQ(p->items(), (std::vector<std::vector<i64>>{{0, 1}, {2}}));
  EXPECT_EQ(src->late_calls, 0) << "batch requested after upstream's on_complete";
  EXPECT_EQ(p->violations(), "");
}

TEST(Streams, LimitRateDoesNotRefillFromACompletedUpstream) {
  auto src = std::make_shared<strict_source>(4);
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(src) | limit_rate(4))->subscribe(p);  // 4 requested: all 4, completed
  p->request(3);  // the third delivery is limit_rate's low tide (4 - 4/4)
  EXPECT_EQ(p->items(), (std::vector<i64>{0, 1, 2}));
  p->request(1);
  ASSERT_TRUE(p->await_complete(0ms));
  EXPECT_EQ(src->late_calls, 0) << "limit_rate requested after upstream's on_complete";
  EXPECT_EQ(p->violations(), "");
}

}  // namespace

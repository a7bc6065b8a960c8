// bp-test-timeout: 180
#include <bp/concurrency_limiter.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "limiter_sim.hpp"

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::eventually;
using bp::test::watchdog;

using bp::test::invalid_argument_message;

bp::limit_sample sample(std::chrono::nanoseconds rtt, std::int64_t now_ns, std::size_t in_flight,
                        bool dropped = false) {
  return {rtt, now_ns, in_flight, dropped};
}

// ---- the limiter with a fixed limit ----------------------------------------------------------

TEST(ConcurrencyLimiter, AdmitsUpToTheLimit) {
  bp::concurrency_limiter lim(bp::fixed_limit{2});
  EXPECT_EQ(lim.limit(), 2u);
  auto a = lim.try_acquire();
  auto b = lim.try_acquire();
  auto c = lim.try_acquire();
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_FALSE(c);
  EXPECT_EQ(lim.in_flight(), 2u);
  EXPECT_EQ(b.in_flight_at_start(), 2u);
  a.on_success();
  EXPECT_EQ(lim.in_flight(), 1u);
  a.on_dropped();  // a token answers once; later answers are no-ops
  EXPECT_EQ(lim.in_flight(), 1u);
  {
    auto d = lim.try_acquire();
    EXPECT_TRUE(d);
  }  // destroyed unanswered: on_ignore
  EXPECT_EQ(lim.in_flight(), 1u);
  auto e = std::move(b);
  EXPECT_EQ(lim.in_flight(), 1u);
  e = lim.try_acquire();  // the old ticket is ignored, the new one takes its place
  EXPECT_EQ(lim.in_flight(), 1u);
}

TEST(ConcurrencyLimiter, InvalidOptionsNameTheOption) {
  EXPECT_NE(
      invalid_argument_message([] { bp::concurrency_limiter l(bp::fixed_limit{0}); }).find("limit"),
      std::string::npos);
  EXPECT_NE(invalid_argument_message([] {
              bp::aimd_limit a({.backoff_ratio = 1.5});
            }).find("backoff_ratio"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([] {
              bp::aimd_limit a({.initial_limit = 0});
            }).find("initial_limit"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([] { bp::vegas_limit v({.smoothing = 0}); }).find("smoothing"),
            std::string::npos);
  EXPECT_NE(
      invalid_argument_message([] { bp::gradient2_limit g({.tolerance = 0.5}); }).find("tolerance"),
      std::string::npos);
  EXPECT_NE(
      invalid_argument_message([] { bp::gradient2_limit g({.max_limit = 0.5}); }).find("max_limit"),
      std::string::npos);
}

TEST(ConcurrencyLimiter, AcquireWaitsForACompletion) {
  watchdog dog(20s);
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto first = lim.try_acquire();
  ASSERT_TRUE(first);
  std::atomic<bool> got{false};
  std::thread t([&] {
    auto tok = lim.acquire();
    EXPECT_TRUE(tok);
    got = true;
  });
  std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(got);
  first.on_success();
  EXPECT_TRUE(eventually([&] { return got.load(); }));
  t.join();
  EXPECT_EQ(lim.in_flight(), 0u);
}

TEST(ConcurrencyLimiter, AcquireForTimesOutAndCloseWakes) {
  watchdog dog(20s);
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto first = lim.try_acquire();
  EXPECT_FALSE(lim.acquire_for(20ms));
  std::thread t([&] { EXPECT_FALSE(lim.acquire()); });
  std::this_thread::sleep_for(10ms);
  lim.close();
  t.join();
  EXPECT_TRUE(lim.is_closed());
  first.on_success();
  EXPECT_FALSE(lim.try_acquire());
}

TEST(ConcurrencyLimiter, LatencyIsMeasuredOnTheLimitersClock) {
  bp::manual_clock clock;
  // AIMD with a 100 ms timeout: a 150 ms request counts as a drop and halves the limit.
  bp::concurrency_limiter lim(
      bp::aimd_limit({.initial_limit = 10, .backoff_ratio = 0.5, .timeout = 100ms}), clock);
  auto t = lim.try_acquire();
  clock.advance(150ms);
  t.on_success();
  EXPECT_EQ(lim.limit(), 5u);
  auto u = lim.try_acquire();
  u.on_ignore();  // no sample
  EXPECT_EQ(lim.limit(), 5u);
}

TEST(ConcurrencyLimiterStress, InFlightNeverExceedsTheLimit) {
  watchdog dog(60s);
  bp::concurrency_limiter lim(bp::fixed_limit{3});
  std::atomic<int> inside{0};
  std::atomic<int> worst{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 6; ++i) {
    ts.emplace_back([&] {
      for (int k = 0; k < (bp::detail::tsan ? 300 : 3000); ++k) {
        auto t = (k % 2) ? lim.acquire_for(10ms) : lim.acquire();
        if (!t) continue;
        const int now = ++inside;
        int seen = worst.load();
        while (now > seen && !worst.compare_exchange_weak(seen, now)) {
        }
        --inside;
        t.on_success();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_LE(worst.load(), 3);
  EXPECT_EQ(lim.in_flight(), 0u);
}

// ---- the algorithms, sample by sample ------------------------------------------------------

TEST(AimdLimit, GrowsPerRoundTripAndBacksOffOncePerWindow) {
  bp::aimd_limit a({.initial_limit = 10, .backoff_ratio = 0.5, .timeout = 1s});
  double limit = a.initial();
  std::int64_t now = 1'000'000'000;
  for (int i = 0; i < 10; ++i) limit = a.update(sample(10ms, now += 1'000'000, 10), limit);
  EXPECT_NEAR(limit, 11.0, 0.1);  // 10 samples of 1/limit: one per round trip
  limit = a.update(sample(10ms, now += 1'000'000, 5), limit);
  EXPECT_NEAR(limit, 11.0, 0.1);  // in flight below half the limit: no signal
  limit = a.update(sample(10ms, now += 1'000'000, 11, true), limit);
  EXPECT_NEAR(limit, 5.5, 0.1);
  // Requests of the same window (sent before the backoff) drop too: no second cut.
  limit = a.update(sample(10ms, now += 1'000'000, 11, true), limit);
  EXPECT_NEAR(limit, 5.5, 0.1);
  // A request sent after the cut that still drops: cut again.
  now += 100'000'000;
  limit = a.update(sample(10ms, now, 5, true), limit);
  EXPECT_NEAR(limit, 2.75, 0.1);
  for (int i = 0; i < 10; ++i) limit = a.update(sample(10ms, now += 1'000'000, 1, true), limit);
  EXPECT_GE(limit, 1.0);  // never below min_limit
}

TEST(VegasLimit, GrowsWithoutQueueAndShrinksWithOne) {
  bp::vegas_limit v({.initial_limit = 20, .window_samples = 1});
  double limit = v.initial();
  std::int64_t now = 0;
  auto feed = [&](std::chrono::nanoseconds rtt, int n) {
    for (int i = 0; i < n; ++i) limit = v.update(sample(rtt, now += 50'000'000, 1000), limit);
  };
  // Windows hold limit / 2 samples. The first sets rtt_noload, then no queue: +beta * log10
  // per window.
  feed(10ms, 100);
  EXPECT_GT(limit, 20.0);
  const double grown = limit;
  feed(30ms, 400);  // latency tripled: a queue of 2/3 of the limit, well above beta
  EXPECT_LT(limit, grown);
  EXPECT_GE(limit, 1.0);
}

TEST(Gradient2Limit, ShrinksWhenLatencyRisesAboveTheLongAverage) {
  bp::gradient2_limit g({.initial_limit = 50, .window_samples = 1});
  double limit = g.initial();
  std::int64_t now = 0;
  for (int i = 0; i < 2000; ++i) limit = g.update(sample(10ms, now += 200'000'000, 50), limit);
  const double steady = limit;
  EXPECT_GT(steady, 50.0);  // flat latency: grows by queue_size * smoothing per window
  for (int i = 0; i < 600; ++i) limit = g.update(sample(40ms, now += 200'000'000, 500), limit);
  EXPECT_LT(limit, steady * 0.5);
}

// ---- tracking a downstream whose capacity changes -------------------------------------------

struct contender {
  const char* name;
  bp::limit_algorithm algorithm;
};

// The settings of examples/concurrency_limits.cpp (and docs/limits.png).
std::vector<contender> contenders() {
  return {
      {"aimd", bp::aimd_limit({.initial_limit = 10, .backoff_ratio = 0.9, .timeout = 12500us})},
      {"vegas", bp::vegas_limit({.initial_limit = 10, .alpha = 2, .beta = 4})},
      {"gradient2", bp::gradient2_limit({.initial_limit = 10, .tolerance = 1.1, .queue_size = 2})},
  };
}

TEST(LimitTracking, EachAlgorithmSettlesNearTheCapacityAndKeepsLatencyLow) {
  watchdog dog(150s);
  const bp::detail::sim_options opts{.phases = {{10s, 50}, {10s, 20}, {10s, 80}}};
  double unloaded_p99 = 0;
  {
    bp::manual_clock clock;
    bp::concurrency_limiter lim(bp::fixed_limit{10}, clock);
    const auto r = bp::detail::simulate(lim, clock, opts);
    unloaded_p99 = r.p99_latency_ms;
    EXPECT_NEAR(unloaded_p99, 11.0, 0.5);  // 10 ms +-10% jitter, no queue
  }
  for (auto& c : contenders()) {
    SCOPED_TRACE(c.name);
    bp::manual_clock clock;
    bp::concurrency_limiter lim(std::move(c.algorithm), clock);
    const auto r = bp::detail::simulate(lim, clock, opts);
    ASSERT_EQ(r.phases.size(), 3u);
    for (const auto& p : r.phases) {
      const auto cap = static_cast<double>(p.capacity);
      EXPECT_GE(p.settled_mean_limit, 0.75 * cap) << "capacity " << p.capacity;
      EXPECT_LE(p.settled_mean_limit, 1.25 * cap) << "capacity " << p.capacity;
      EXPECT_GT(p.completed, 0u);
    }
    EXPECT_LE(r.p99_latency_ms, 2 * unloaded_p99);
    EXPECT_EQ(lim.in_flight(), 0u);  // every token answered
  }
}

TEST(LimitTracking, TheSimulationIsDeterministic) {
  const bp::detail::sim_options opts{.phases = {{2s, 30}, {2s, 60}}};
  auto run = [&] {
    bp::manual_clock clock;
    bp::concurrency_limiter lim(bp::vegas_limit({.initial_limit = 10}), clock);
    return bp::detail::simulate(lim, clock, opts);
  };
  const auto a = run(), b = run();
  ASSERT_EQ(a.trace.size(), b.trace.size());
  for (std::size_t i = 0; i < a.trace.size(); ++i) {
    EXPECT_EQ(a.trace[i].limit, b.trace[i].limit);
    EXPECT_EQ(a.trace[i].latency_ms, b.trace[i].latency_ms);
  }
}

TEST(LimiterPermit, AnEmptyPermitSaysWhyAndTheOldNamesStillSpellIt) {
  static_assert(std::is_same_v<bp::concurrency_limiter::token, bp::limiter_permit>);
  static_assert(std::is_same_v<bp::concurrency_limiter::permit, bp::limiter_permit>);
  bp::concurrency_limiter lim(bp::fixed_limit(1));
  bp::limiter_permit held = lim.try_acquire();
  ASSERT_TRUE(held);
  EXPECT_EQ(held.answer(), bp::status::ok);
  EXPECT_EQ(lim.try_acquire().answer(), bp::status::full);
  EXPECT_EQ(lim.acquire_for(5ms).answer(), bp::status::timeout);
  held.on_success();
  EXPECT_FALSE(held);
  EXPECT_EQ(lim.in_flight(), 0u);
  lim.close();
  EXPECT_EQ(lim.try_acquire().answer(), bp::status::closed);
  EXPECT_EQ(lim.acquire().answer(), bp::status::closed);
  EXPECT_EQ(lim.acquire_for(5ms).answer(), bp::status::closed);
}

}  // namespace

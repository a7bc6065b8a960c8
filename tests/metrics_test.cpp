#include <bp/metrics.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "all_primitives.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::eventually;
using bp::test::watchdog;

// --- the primitives' new statistics ----------------------------------------------------------

TEST(Metrics, ChannelCountsAndTimesOnlyTheWaits) {
  watchdog dog(60s);
  bp::channel<int> ch(1);
  EXPECT_EQ(ch.send(1), bp::status::ok);  // at once: no wait recorded
  EXPECT_EQ(ch.send_for(2, 2ms), bp::status::timeout);
  EXPECT_EQ(ch.recv(), 1);
  EXPECT_FALSE(ch.recv_for(2ms).has_value());
  const bp::channel_stats s = ch.stats();
  EXPECT_EQ(s.send_waits, 1u);
  EXPECT_EQ(s.recv_waits, 1u);
  EXPECT_EQ(s.timeouts, 2u);
  EXPECT_EQ(ch.send_wait_times().snapshot().count, 1u);
  EXPECT_EQ(ch.recv_wait_times().snapshot().count, 1u);
  EXPECT_GE(ch.send_wait_times().snapshot().sum_ns, 2'000'000u);
}

// Conservation: every wait the counters saw is in the histogram, once, with many threads on
// both sides.
TEST(Metrics, ChannelHistogramCountEqualsWaits) {
  watchdog dog(60s);
  for (std::size_t cap : {std::size_t{0}, std::size_t{2}}) {
    bp::channel<int> ch(cap);
    constexpr int producers = 3, per_producer = 2'000;
    std::vector<std::thread> ts;
    for (int p = 0; p < producers; ++p)
      ts.emplace_back([&] {
        for (int i = 0; i < per_producer; ++i) ASSERT_EQ(ch.send_for(i, 10s), bp::status::ok);
      });
    std::thread consumer([&] {
      for (int i = 0; i < producers * per_producer; ++i) ASSERT_TRUE(ch.recv_for(10s));
    });
    for (auto& t : ts) t.join();
    consumer.join();
    const bp::channel_stats s = ch.stats();
    EXPECT_EQ(ch.send_wait_times().snapshot().count, s.send_waits) << "capacity " << cap;
    EXPECT_EQ(ch.recv_wait_times().snapshot().count, s.recv_waits) << "capacity " << cap;
    EXPECT_EQ(s.timeouts, 0u);
    if (cap == 0) {
      EXPECT_GT(s.send_waits + s.recv_waits, 0u);  // a rendezvous always waits
    }
  }
}

TEST(Metrics, UnboundedChannelTimesReceives) {
  bp::unbounded_channel<int> ch;
  EXPECT_FALSE(ch.recv_for(1ms).has_value());
  (void)ch.send(1);
  EXPECT_EQ(ch.recv(), 1);
  EXPECT_EQ(ch.stats().recv_waits, 1u);
  EXPECT_EQ(ch.stats().timeouts, 1u);
  EXPECT_EQ(ch.recv_wait_times().snapshot().count, 1u);
}

TEST(Metrics, SemaphoreStats) {
  watchdog dog(60s);
  bp::semaphore sem(1);
  EXPECT_TRUE(sem.try_acquire());
  EXPECT_FALSE(sem.try_acquire());
  EXPECT_EQ(sem.acquire_for(1, 1ms), bp::status::timeout);
  std::thread t([&] {
    // Release only once the acquire below is queued, so that it surely waits.
    (void)bp::test::eventually([&] { return sem.waiting() == 1; }, 10'000ms);
    sem.release();
  });
  EXPECT_EQ(sem.acquire_for(1, 10s), bp::status::ok);
  t.join();
  const bp::semaphore_stats s = sem.stats();
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(s.waits, 2u);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(s.available, 0u);
  EXPECT_EQ(s.waiting, 0u);
  EXPECT_EQ(sem.wait_times().snapshot().count, 2u);
}

TEST(Metrics, TokenBucketStatsOnAManualClock) {
  bp::manual_clock clk;
  bp::token_bucket b(1000.0, 1, bp::clock_ref(clk));
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());                          // rejected
  EXPECT_EQ(b.acquire_for(1, 0ms), bp::status::timeout);  // a token is 1 ms away
  std::thread t([&] { EXPECT_EQ(b.acquire(), bp::status::ok); });
  ASSERT_TRUE(eventually([&] { return b.stats().waits == 1; }));
  clk.advance(1ms);
  t.join();
  const bp::token_bucket_stats s = b.stats();
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(s.waits, 1u);
  const auto w = b.wait_times().snapshot();
  EXPECT_EQ(w.count, 1u);
  EXPECT_EQ(w.sum_ns, 1'000'000u);  // on the bucket's clock
}

TEST(Metrics, LeakyBucketStats) {
  bp::manual_clock clk;
  bp::leaky_bucket b(1000.0, 1, bp::clock_ref(clk));
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());
  EXPECT_EQ(b.acquire_for(1, 0ms), bp::status::timeout);
  const bp::leaky_bucket_stats s = b.stats();
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(s.waits, 0u);
}

TEST(Metrics, ConcurrencyLimiterStats) {
  watchdog dog(60s);
  bp::concurrency_limiter l(bp::fixed_limit{1});
  auto p = l.try_acquire();
  ASSERT_TRUE(p);
  EXPECT_FALSE(l.try_acquire());
  EXPECT_FALSE(l.acquire_for(1ms));
  p.on_dropped();
  const bp::concurrency_limiter_stats s = l.stats();
  EXPECT_EQ(s.limit, 1u);
  EXPECT_EQ(s.in_flight, 0u);
  EXPECT_EQ(s.rejected, 1u);
  EXPECT_EQ(s.waits, 1u);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(s.dropped, 1u);
  EXPECT_EQ(l.wait_times().snapshot().count, 1u);
}

TEST(Metrics, MemoryBudgetTimesWaits) {
  bp::memory_budget b(10);
  auto r = b.try_reserve(10);
  ASSERT_TRUE(r);
  EXPECT_FALSE(b.reserve_for(5, 1ms));
  EXPECT_EQ(b.stats().waits, 1u);
  EXPECT_EQ(b.stats().timeouts, 1u);
  EXPECT_EQ(b.wait_times().snapshot().count, 1u);
}

TEST(Metrics, WatermarkBufferTimesReads) {
  bp::watermark_buffer<std::string> buf({.high_watermark = 8, .low_watermark = 2});
  EXPECT_FALSE(buf.read_for(1ms).has_value());
  const bp::watermark_buffer_stats s = buf.stats();
  EXPECT_EQ(s.read_waits, 1u);
  EXPECT_EQ(s.timeouts, 1u);
  EXPECT_EQ(buf.read_wait_times().snapshot().count, 1u);
  EXPECT_EQ(buf.drain_wait_times().snapshot().count, 0u);
}

// --- the registry ------------------------------------------------------------------------------

TEST(Metrics, SnapshotHasEveryPrimitive) {
  bp::test::all_primitives all;
  auto& ch = all.ch;
  bp::metrics::registry reg;
  const auto regs = all.register_all(reg, "x");
  EXPECT_EQ(reg.size(), 8u);
  (void)ch.send(1);
  (void)ch.send(2);
  const auto s = reg.snapshot();
  EXPECT_EQ(s.value("bp_channel_sent_total", "x"), 2.0);
  EXPECT_EQ(s.value("bp_channel_size", "x"), 2.0);
  EXPECT_EQ(s.value("bp_channel_capacity", "x"), 4.0);
  EXPECT_EQ(s.value("bp_semaphore_available", "x"), 2.0);
  EXPECT_EQ(s.value("bp_token_bucket_burst", "x"), 5.0);
  EXPECT_EQ(s.value("bp_memory_budget_capacity_bytes", "x"), 1024.0);
  for (const char* name :
       {"bp_channel_send_wait_seconds", "bp_unbounded_channel_recv_wait_seconds",
        "bp_semaphore_wait_seconds", "bp_token_bucket_wait_seconds", "bp_leaky_bucket_wait_seconds",
        "bp_concurrency_limiter_wait_seconds", "bp_memory_budget_wait_seconds",
        "bp_watermark_buffer_read_wait_seconds"}) {
    const auto* f = s.find(name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->type, bp::metrics::metric_type::histogram);
    ASSERT_EQ(f->samples.size(), 1u);
    EXPECT_EQ(f->samples[0].histogram.upper_bounds.size(),
              bp::wait_histogram_snapshot::bound_count);
  }
  const auto* sent = s.find("bp_channel_sent_total");
  ASSERT_NE(sent, nullptr);
  EXPECT_EQ(sent->type, bp::metrics::metric_type::counter);
  ASSERT_EQ(sent->samples[0].labels.size(), 1u);
  EXPECT_EQ(sent->samples[0].labels[0], (bp::metrics::label{"channel", "x"}));
  // Prometheus conventions: counters end in _total, nothing else does.
  for (const auto& f : s.families) {
    EXPECT_EQ(f.name.rfind("bp_", 0), 0u) << f.name;
    const bool total = f.name.size() > 6 && f.name.ends_with("_total");
    EXPECT_EQ(total, f.type == bp::metrics::metric_type::counter) << f.name;
  }
}

// A budgeted channel answers the channel's series, plus the bytes its values hold.
TEST(Metrics, BudgetedChannelIsAChannelWithBytes) {
  bp::memory_budget budget(1024);
  bp::budgeted_channel<std::string> ch(budget, 4);
  bp::metrics::registry reg;
  auto r = reg.add("frames", ch);
  ASSERT_EQ(ch.send(std::string(100, 'x')), bp::status::ok);
  EXPECT_FALSE(ch.recv_for(1ms).has_value() && ch.recv_for(1ms).has_value());
  const auto s = reg.snapshot();
  EXPECT_EQ(s.value("bp_channel_sent_total", "frames"), 1.0);
  EXPECT_EQ(s.value("bp_channel_recv_wait_seconds", "frames"), 1.0);  // the second receive
  EXPECT_EQ(s.value("bp_channel_budget_bytes", "frames"), 0.0);
  bp::channel<int> plain(1);
  EXPECT_THROW((void)reg.add("frames", plain), std::invalid_argument);  // the same label
}

TEST(Metrics, HistogramIsCumulativeInSeconds) {
  bp::channel<int> ch(1);
  bp::metrics::registry reg;
  auto r = reg.add("c", ch);
  (void)ch.recv_for(1ms);
  (void)ch.recv_for(1ms);
  const auto snap = reg.snapshot();
  const auto* smp = snap.find("bp_channel_recv_wait_seconds", "c");
  ASSERT_NE(smp, nullptr);
  const auto& h = smp->histogram;
  EXPECT_EQ(h.count, 2u);
  EXPECT_GE(h.sum, 0.002);
  EXPECT_DOUBLE_EQ(h.upper_bounds.front(), 1e-6);
  EXPECT_DOUBLE_EQ(h.upper_bounds.back(), 10.0);
  for (std::size_t i = 1; i < h.cumulative.size(); ++i)
    EXPECT_LE(h.cumulative[i - 1], h.cumulative[i]);
  EXPECT_LE(h.cumulative.back(), h.count);
}

TEST(Metrics, RegistrationEndsWithItsHandle) {
  bp::metrics::registry reg;
  {
    bp::semaphore sem(1);
    auto r = reg.add("a", sem);
    EXPECT_TRUE(r.active());
    EXPECT_NE(reg.snapshot().find("bp_semaphore_available", "a"), nullptr);
  }
  EXPECT_EQ(reg.size(), 0u);
  EXPECT_TRUE(reg.snapshot().families.empty());
  bp::semaphore sem(1);
  auto r = reg.add("a", sem);  // the name is free again
  auto moved = std::move(r);
  EXPECT_EQ(reg.size(), 1u);
  moved.reset();
  EXPECT_EQ(reg.size(), 0u);
}

TEST(Metrics, HandleMayOutliveTheRegistry) {
  bp::semaphore sem(1);
  bp::metrics::registration r;
  {
    bp::metrics::registry reg;
    r = reg.add("a", sem);
  }
  EXPECT_FALSE(r.active());
}

TEST(Metrics, SharedPrimitivesAreHeldWeakly) {
  bp::metrics::registry reg;
  auto ch = std::make_shared<bp::channel<int>>(2);
  auto r = reg.add("shared", ch);
  EXPECT_NE(reg.snapshot().find("bp_channel_sent_total", "shared"), nullptr);
  ch.reset();
  EXPECT_EQ(reg.snapshot().find("bp_channel_sent_total", "shared"), nullptr);
}

TEST(Metrics, BadNamesThrowNamingTheArgument) {
  bp::metrics::registry reg;
  bp::semaphore a(1), b(1);
  bp::channel<int> c(1);
  try {
    (void)reg.add("", a);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("name"), std::string::npos);
  }
  auto r = reg.add("x", a);
  EXPECT_THROW((void)reg.add("x", b), std::invalid_argument);
  auto rc = reg.add("x", c);  // another kind: another label, no clash
  const std::shared_ptr<bp::semaphore> none;
  EXPECT_THROW((void)reg.add("y", none), std::invalid_argument);
}

// Snapshots while the primitives run and registrations come and go (TSan-clean).
TEST(Metrics, ConcurrentSnapshotsAndRegistrations) {
  watchdog dog(60s);
  bp::metrics::registry reg;
  bp::channel<int> ch(2);
  auto r = reg.add("busy", ch);
  std::atomic<bool> stop{false};
  std::thread producer([&] {
    for (int i = 0; i < 20'000; ++i) ASSERT_EQ(ch.send_for(i, 10s), bp::status::ok);
    ch.close();
  });
  std::thread consumer([&] {
    while (ch.recv_for(10s)) {
    }
  });
  std::thread churn([&] {
    while (!stop.load()) {
      bp::semaphore sem(1);
      auto rr = reg.add("temp", sem);
    }
  });
  double last = 0;
  while (!ch.is_closed()) {
    const auto v = reg.snapshot().value("bp_channel_sent_total", "busy").value_or(0);
    EXPECT_GE(v, last);  // a counter never goes down
    last = v;
  }
  producer.join();
  consumer.join();
  stop = true;
  churn.join();
  EXPECT_EQ(reg.snapshot().value("bp_channel_received_total", "busy"), 20'000.0);
}

}  // namespace

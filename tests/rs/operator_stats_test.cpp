// bp::rs::operator_stats attached to the flow-control operators: what each counts.
#include <bp/rs/operator_stats.hpp>

#include <gtest/gtest.h>
#include <bp/metrics.hpp>
#include <bp/streams.hpp>

#include <memory>
#include <vector>

#include "probe.hpp"

namespace {

using namespace bp::rs;
using bp::rs::test::manual_publisher;
using bp::rs::test::probe;
using i64 = std::int64_t;

TEST(OperatorStats, BufferDropOldestCountsEvictions) {
  auto st = std::make_shared<operator_stats>();
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  std::vector<i64> victims;
  (publisher_ptr<i64>(up) |
   on_backpressure_buffer(3, bp::overflow::drop_oldest, [&](i64&& v) { victims.push_back(v); })
       .with_stats(st))
      ->subscribe(p);
  for (i64 i = 0; i < 6; ++i) up->downstream()->on_next(i);
  EXPECT_EQ(victims, (std::vector<i64>{0, 1, 2}));  // the handler still runs
  auto s = st->snapshot();
  EXPECT_EQ(s.received, 6u);
  EXPECT_EQ(s.evicted, 3u);
  EXPECT_EQ(s.buffered(), 3u);
  EXPECT_EQ(s.requested, 0u);  // an unbounded request counts nothing
  p->request(2);
  EXPECT_EQ(st->snapshot().delivered, 2u);
  p->cancel();
  s = st->snapshot();
  EXPECT_EQ(s.discarded, 1u);
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(OperatorStats, BufferDropNewestAndRejectAndLatest) {
  auto st = std::make_shared<operator_stats>();
  {
    auto up = std::make_shared<manual_publisher<i64>>();
    auto p = std::make_shared<probe<i64>>();
    (publisher_ptr<i64>(up) | on_backpressure_buffer(3, bp::overflow::drop_newest).with_stats(st))
        ->subscribe(p);
    for (i64 i = 0; i < 5; ++i) up->downstream()->on_next(i);
    EXPECT_EQ(st->snapshot().dropped, 2u);
    p->cancel();
  }
  auto rej = std::make_shared<operator_stats>();
  {
    auto up = std::make_shared<manual_publisher<i64>>();
    auto p = std::make_shared<probe<i64>>();
    (publisher_ptr<i64>(up) | on_backpressure_buffer(2, bp::overflow::reject).with_stats(rej))
        ->subscribe(p);
    for (i64 i = 0; i < 3; ++i) up->downstream()->on_next(i);
    EXPECT_EQ(rej->snapshot().rejected, 1u);
  }
  auto lat = std::make_shared<operator_stats>();
  {
    auto up = std::make_shared<manual_publisher<i64>>();
    auto p = std::make_shared<probe<i64>>();
    (publisher_ptr<i64>(up) | on_backpressure_latest().with_stats(lat))->subscribe(p);
    for (i64 i = 0; i < 5; ++i) up->downstream()->on_next(i);
    p->request(1);
    EXPECT_EQ(lat->snapshot().evicted, 4u);
    EXPECT_EQ(lat->snapshot().delivered, 1u);
    p->cancel();
  }
}

TEST(OperatorStats, LimitRateCountsWhatItRequests) {
  auto st = std::make_shared<operator_stats>();
  i64 n = 0;
  for (i64 v : to_iterable(range(0, 100) | limit_rate(8).with_stats(st), 16)) n += v >= 0;
  EXPECT_EQ(n, 100);
  const auto s = st->snapshot();
  EXPECT_EQ(s.received, 100u);
  EXPECT_EQ(s.delivered, 100u);
  EXPECT_GE(s.requested, 100u);
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(OperatorStats, DropWithoutDemand) {
  auto st = std::make_shared<operator_stats>();
  auto up = std::make_shared<manual_publisher<i64>>();
  auto p = std::make_shared<probe<i64>>();
  (publisher_ptr<i64>(up) | on_backpressure_drop().with_stats(st))->subscribe(p);
  up->downstream()->on_next(0);
  p->request(1);
  up->downstream()->on_next(1);
  up->downstream()->on_next(2);
  const auto s = st->snapshot();
  EXPECT_EQ(s.received, 3u);
  EXPECT_EQ(s.delivered, 1u);
  EXPECT_EQ(s.dropped, 2u);
  p->cancel();
}

TEST(OperatorStats, ReachTheSnapshot) {
  auto st = std::make_shared<operator_stats>();
  bp::metrics::registry reg;
  auto r = reg.add("ingest", st);
  st->add_received();
  st->add_dropped();
  const auto s = reg.snapshot();
  EXPECT_EQ(s.value("bp_rs_operator_received_total", "ingest"), 1.0);
  EXPECT_EQ(s.value("bp_rs_operator_dropped_total", "ingest"), 1.0);
  EXPECT_EQ(s.value("bp_rs_operator_buffered", "ingest"), 0.0);
}

}  // namespace

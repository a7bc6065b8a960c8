#include <bp/prometheus/exporter.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>

namespace {

using namespace std::chrono_literals;

bool has(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

TEST(PrometheusExporter, TextFollowsTheConventions) {
  bp::channel<int> orders(4);
  bp::semaphore db(3);
  bp::metrics::registry reg;
  auto r1 = reg.add("orders", orders);
  auto r2 = reg.add("db", db);
  (void)orders.send(1);
  (void)orders.send(2);
  (void)orders.recv();
  (void)db.acquire_for(4, 1ms);  // one timed-out wait
  const std::string text = bp::prometheus::to_text(reg.snapshot());
  EXPECT_TRUE(has(text, "# TYPE bp_channel_sent_total counter\n")) << text;
  EXPECT_TRUE(has(text, "bp_channel_sent_total{channel=\"orders\"} 2\n")) << text;
  EXPECT_TRUE(has(text, "bp_channel_size{channel=\"orders\"} 1\n")) << text;
  EXPECT_TRUE(has(text, "# TYPE bp_channel_send_wait_seconds histogram\n")) << text;
  EXPECT_TRUE(has(text, "bp_channel_send_wait_seconds_bucket{channel=\"orders\",le=\"1e-06\"} 0\n"))
      << text;
  EXPECT_TRUE(has(text, "bp_channel_send_wait_seconds_bucket{channel=\"orders\",le=\"+Inf\"} 0\n"))
      << text;
  EXPECT_TRUE(has(text, "bp_semaphore_wait_seconds_count{semaphore=\"db\"} 1\n")) << text;
  EXPECT_TRUE(has(text, "bp_semaphore_wait_seconds_bucket{semaphore=\"db\",le=\"+Inf\"} 1\n"))
      << text;
  EXPECT_TRUE(has(text, "bp_semaphore_timeouts_total{semaphore=\"db\"} 1\n")) << text;
}

TEST(PrometheusExporter, CollectableReadsAFreshSnapshot) {
  bp::channel<int> ch(2);
  bp::metrics::registry reg;
  auto r = reg.add("c", ch);
  const bp::prometheus::collectable coll(reg);
  auto find_sent = [&] {
    for (const auto& f : coll.Collect())
      if (f.name == "bp_channel_sent_total") return f.metric.at(0).counter.value;
    return -1.0;
  };
  EXPECT_EQ(find_sent(), 0.0);
  (void)ch.send(7);
  EXPECT_EQ(find_sent(), 1.0);
  for (const auto& f : coll.Collect()) {
    if (f.type != prometheus::MetricType::Histogram) continue;
    const auto& b = f.metric.at(0).histogram.bucket;
    ASSERT_EQ(b.size(), bp::wait_histogram_snapshot::bound_count + 1) << f.name;
  }
}

}  // namespace

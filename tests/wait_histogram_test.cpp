#include <bp/wait_histogram.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using snap = bp::wait_histogram_snapshot;

TEST(WaitHistogram, StartsEmpty) {
  bp::wait_histogram h;
  const snap s = h.snapshot();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.sum_ns, 0u);
  EXPECT_EQ(s.mean_seconds(), 0.0);
}

TEST(WaitHistogram, BoundsAreInclusiveAndIncreasing) {
  for (std::size_t i = 1; i < snap::bound_count; ++i)
    EXPECT_LT(snap::upper_bound_ns[i - 1], snap::upper_bound_ns[i]);
  EXPECT_EQ(snap::upper_bound_ns.front(), 1'000u);
  EXPECT_EQ(snap::upper_bound_ns.back(), 10'000'000'000u);
  bp::wait_histogram h;
  h.record_ns(0);      // bucket 0
  h.record_ns(1'000);  // bucket 0: bounds are "at most"
  h.record_ns(1'001);  // bucket 1
  h.record(3ms);       // 5 ms bucket
  h.record(11s);       // past the last bound
  h.record(-5ns);      // a clock that went back counts as no wait
  const snap s = h.snapshot();
  EXPECT_EQ(s.buckets[0], 3u);
  EXPECT_EQ(s.buckets[1], 1u);
  EXPECT_EQ(s.buckets[11], 1u);  // 5'000'000 ns
  EXPECT_EQ(s.buckets[snap::bound_count], 1u);
  EXPECT_EQ(s.count, 6u);
  EXPECT_EQ(s.sum_ns, 1'000u + 1'001u + 3'000'000u + 11'000'000'000u);
}

// Every record lands exactly once, whatever the interleaving (and the TSan build proves the
// recording race-free).
TEST(WaitHistogram, ConcurrentRecordsAreAllCounted) {
  bp::test::watchdog dog(60s);
  bp::wait_histogram h;
  constexpr int threads = 4, per_thread = 20'000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) h.record_ns(static_cast<std::uint64_t>(i * 997 + t));
    });
  for (int i = 0; i < 100; ++i) (void)h.snapshot();  // reading while others record
  for (auto& t : ts) t.join();
  const snap s = h.snapshot();
  EXPECT_EQ(s.count, std::uint64_t{threads} * per_thread);
  std::uint64_t sum = 0;
  for (int t = 0; t < threads; ++t)
    for (int i = 0; i < per_thread; ++i) sum += static_cast<std::uint64_t>(i * 997 + t);
  EXPECT_EQ(s.sum_ns, sum);
}

}  // namespace

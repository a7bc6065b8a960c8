// bp-test-timeout: 300
// The shared memory budget scenario (tests/support/q2_scenario.hpp): 500 streams with a 1 MiB high
// watermark each. Without a budget the buffered bytes climb towards 500 MiB; under a 64 MiB
// bp::memory_budget they never exceed 64 MiB, every chunk of every stream arrives exactly once and
// in order (every stream makes progress: none is starved). Throughput against the unbudgeted run is
// a speed, so it is measured in bench/memory_budget_benchmark.cpp and examples/memory_budget, not
// asserted here (a timed assertion on a shared CI machine is noise).
#include <gtest/gtest.h>

#include "q2_scenario.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif

// Past one high watermark's worth (64 chunks) under sanitizers; 4 MiB per stream otherwise, so
// that the start-up fill (the first streams take the budget while few are active) is amortised
// as in a long-running server.
q2::config scenario(std::size_t budget_mib) {
  q2::config cfg;
  cfg.budget = budget_mib << 20;
  cfg.chunks_per_stream = sanitized ? 72 : 256;
  return cfg;
}

constexpr std::size_t mib = std::size_t{1} << 20;

TEST(MemoryBudgetQ2, WithoutABudgetTheBuffersAddUpToStreamsTimesHighWatermark) {
  bp::test::watchdog dog(240s);
  // The spike: the consumers start once every stream has been written to its high watermark.
  // (How far the buffers climb while the consumers run alongside depends on scheduling: a
  // loaded TSan run once peaked at 206 MiB. Waiting for the spike makes the figure exact.)
  auto cfg = scenario(0);
  cfg.consumers_wait_for_spike = true;
  const auto r = q2::run(cfg);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.chunks, 500u * cfg.chunks_per_stream);
  EXPECT_EQ(r.peak_buffered, 500 * mib) << "the surprise: 500 streams x 1 MiB";
}

TEST(MemoryBudgetQ2, WaitingForTheSpikeUnderABudgetIsRefused) {
  auto cfg = scenario(64);
  cfg.consumers_wait_for_spike = true;
  const auto r = q2::run(cfg);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("consumers_wait_for_spike"), std::string::npos) << r.error;
}

TEST(MemoryBudgetQ2, UnderA64MiBBudgetThePeakStaysWithinIt) {
  bp::test::watchdog dog(240s);
  const auto r = q2::run(scenario(64));
  ASSERT_TRUE(r.ok) << r.error;  // nothing lost, duplicated or reordered; every stream finished
  EXPECT_EQ(r.chunks, 500u * scenario(64).chunks_per_stream);
  EXPECT_LE(r.budget_peak, 64 * mib);
  EXPECT_GT(r.budget_peak, 32 * mib) << "the budget should actually be used";
  EXPECT_EQ(r.budget.in_use, 0u);
  EXPECT_EQ(r.budget.timeouts, 0u);
  EXPECT_GT(r.pauses, 0u);
  EXPECT_EQ(r.pauses, r.drains) << "every false answer was followed by exactly one drain";
}

}  // namespace

// bp-test-timeout: 300
// Conservation stress for bp::pipeline: parallel ordered and unordered stages, small links,
// lossless and lossy, stopped at random moments by request_stop (drain or discard), by an
// exception (drain or discard), or run to the end. Every item the source produced ends in
// exactly one place: delivered to the sink (once), discarded by the stop, or lost to a lossy
// link (counted by that link). Nothing is delivered twice, nothing leaks, no thread is left.
#include <bp/pipeline.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::counted;

struct outcome {
  std::uint64_t produced = 0;
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;  // discarded by stages, dropped by links, failed items
};

enum class ending { complete, stop_drain, stop_discard, error_drain, error_discard };

outcome run_once(std::uint64_t seed, ending how) {
  std::mt19937_64 rng(seed);
  const int n = 2000 + static_cast<int>(rng() % 3000);
  const bool lossy = rng() % 4 == 0;
  const auto cap = [&] { return std::size_t{1} + rng() % 8; };
  const bool drain = how == ending::stop_drain || how == ending::error_drain;
  const int fail_at = (how == ending::error_drain || how == ending::error_discard)
                          ? static_cast<int>(rng() % static_cast<std::uint64_t>(n))
                          : -1;

  std::vector<std::atomic<int>> seen(static_cast<std::size_t>(n));
  std::atomic<std::uint64_t> delivered{0};
  int next = 0;
  const bp::pipeline_options po{.link = {.capacity = cap()},
                                .on_error = drain ? bp::in_flight::drain : bp::in_flight::discard,
                                .on_stop = drain ? bp::in_flight::drain : bp::in_flight::discard};
  auto p =
      bp::pipeline::from(
          [&]() -> std::optional<counted> {
            if (next == n) return std::nullopt;
            return counted(next++);
          },
          po)
          .map(
              [&](counted&& c) {
                if (c.value == fail_at) throw std::runtime_error("injected");
                return std::move(c);
              },
              {.parallelism = 1 + rng() % 4,
               .ordered = rng() % 2 == 0,
               .link = {.capacity = cap()}})
          .flat_map([](counted&& c) { return std::vector<counted>{std::move(c)}; },
                    {.parallelism = 1 + rng() % 3,
                     .ordered = true,
                     .window = rng() % 6,
                     .link = {.capacity = cap(),
                              .policy = lossy ? bp::overflow::drop_oldest : bp::overflow::block}})
          .sink(
              [&](counted&& c) {
                ASSERT_GE(c.value, 0);
                ASSERT_LT(c.value, n);
                ASSERT_EQ(seen[static_cast<std::size_t>(c.value)].fetch_add(1), 0)
                    << "item " << c.value << " delivered twice";
                ++delivered;
              },
              {.parallelism = 1 + rng() % 2});
  p.start();
  if (how == ending::stop_drain || how == ending::stop_discard) {
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
    p.request_stop();
  }
  bool threw = false;
  try {
    p.wait();
  } catch (const std::runtime_error&) {
    threw = true;
  }
  EXPECT_EQ(threw, fail_at >= 0);

  const auto r = p.report();
  outcome o;
  o.produced = r.stages[0].items_in;
  o.delivered = delivered.load();
  for (std::size_t i = 0; i < r.stages.size(); ++i) {
    const auto& s = r.stages[i];
    o.lost += s.discarded + s.errors;
    if (s.input) o.lost += s.input->dropped + s.input->evicted + s.input->rejected;
    // Every item a (one-to-one) stage took ended there: accepted by its output link, refused
    // by it (a lossy link counts those: a drop_oldest send that finds nothing to evict while
    // a receiver is half-way through its pop answers dropped), discarded or failed.
    if (s.kind == "map" || s.kind == "flat_map" || s.kind == "sink") {
      const std::uint64_t refused =
          i + 1 < r.stages.size() ? r.stages[i + 1].input->dropped + r.stages[i + 1].input->rejected
                                  : 0;
      EXPECT_EQ(s.items_in, s.items_out + refused + s.discarded + s.errors) << s.name;
    }
  }
  EXPECT_TRUE(r.finished);
  // Between two stages: what one sent, the next took (closed links are drained too).
  for (std::size_t i = 1; i < r.stages.size(); ++i)
    EXPECT_EQ(r.stages[i - 1].items_out - r.stages[i].input->evicted, r.stages[i].items_in) << r;
  if (drain && !lossy) {
    EXPECT_EQ(o.delivered + (fail_at >= 0 ? 1u : 0u), o.produced);  // drained: nothing lost
  }
  if (how == ending::complete && !lossy) {
    EXPECT_EQ(o.delivered, static_cast<std::uint64_t>(n));
  }
  return o;
}

TEST(PipelineStress, EveryItemEndsInExactlyOnePlace) {
  bp::test::watchdog dog(240s, "pipeline conservation");
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  std::uint64_t runs = 0;
  for (std::uint64_t seed = 1; std::chrono::steady_clock::now() < deadline && runs < 400;
       ++seed, ++runs) {
    const auto how = static_cast<ending>(seed % 5);
    {
      const outcome o = run_once(seed, how);
      ASSERT_EQ(o.delivered + o.lost, o.produced) << "seed " << seed;
    }
    ASSERT_EQ(counted::live.load(), 0) << "seed " << seed;
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "seed " << seed;
      return;
    }
  }
  EXPECT_GE(runs, 10u);
}

TEST(PipelineStress, DestroyWhileRunningAtRandomMoments) {
  bp::test::watchdog dog(120s, "pipeline destroy race");
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100; ++i) {
    {
      auto p = bp::pipeline::from([]() -> std::optional<counted> { return counted(1); },
                                  {.link = {.capacity = 1 + rng() % 4}})
                   .map([](counted&& c) { return std::move(c); },
                        {.parallelism = 1 + rng() % 4, .ordered = rng() % 2 == 0})
                   .batch(1 + rng() % 16, 1ms)
                   .unbatch({.parallelism = 2})
                   .sink([](counted&&) {}, {.parallelism = 1 + rng() % 2});
      p.start();
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
    }
    ASSERT_EQ(counted::live.load(), 0) << "iteration " << i;
  }
}

}  // namespace

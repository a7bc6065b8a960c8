#include <bp/pipeline.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <numeric>
#include <random>
#include <ranges>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::test::counted;
using bp::test::watchdog;

// Collects what a sink receives, from any number of sink workers.
template <class T>
struct collector {
  std::mutex m;
  std::vector<T> items;
  void add(T v) {
    std::lock_guard lock(m);
    items.push_back(std::move(v));
  }
  std::vector<T> take() {
    std::lock_guard lock(m);
    return std::move(items);
  }
};

const bp::stage_report& stage(const bp::pipeline_report& r, const std::string& name) {
  for (const auto& s : r.stages)
    if (s.name == name) return s;
  throw std::logic_error("no stage named " + name);
}

// ---- stage semantics ----------------------------------------------------------------------------

TEST(Pipeline, MapFilterFlatMapInOrder) {
  watchdog dog(60s);
  collector<int> got;
  auto p = bp::pipeline::from(std::views::iota(0, 1000))
               .map([](int x) { return x * 2; })
               .filter([](const int& x) { return x % 3 == 0; })
               .flat_map([](int x) {
                 return std::vector<int>{x, x + 1};
               })
               .sink([&](int x) { got.add(x); });
  p.run();
  std::vector<int> want;
  for (int i = 0; i < 1000; ++i)
    if (i * 2 % 3 == 0) want.insert(want.end(), {i * 2, i * 2 + 1});
  EXPECT_EQ(got.take(), want);

  const auto r = p.report();
  ASSERT_EQ(r.stages.size(), 5u);
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.stages[0].kind, "source");
  EXPECT_EQ(r.stages[0].items_out, 1000u);
  EXPECT_EQ(r.stages[1].name, "map#1");
  EXPECT_EQ(r.stages[1].items_in, 1000u);
  EXPECT_EQ(r.stages[2].items_in, 1000u);
  EXPECT_EQ(r.stages[2].items_out, want.size() / 2);
  EXPECT_EQ(r.stages[3].items_out, want.size());
  EXPECT_EQ(r.stages[4].kind, "sink");
  EXPECT_EQ(r.stages[4].items_out, want.size());
  for (std::size_t i = 1; i < r.stages.size(); ++i) {
    ASSERT_TRUE(r.stages[i].input);
    EXPECT_EQ(r.stages[i].input->capacity, 64u);
    EXPECT_LE(r.stages[i].input->high_watermark, 64u);
    EXPECT_EQ(r.stages[i].input->size, 0u);
  }
  EXPECT_GT(r.elapsed, 0ns);
  EXPECT_NE(r.to_string().find("map#1"), std::string::npos);
}

TEST(Pipeline, SourcesFromFunctionsAndOwnedRanges) {
  watchdog dog(60s);
  int n = 0;
  collector<int> a;
  bp::pipeline::from([&]() -> std::optional<int> {
    if (n == 5) return std::nullopt;
    return n++;
  }).sink([&](int x) {
      a.add(x);
    }).run();
  EXPECT_EQ(a.take(), (std::vector<int>{0, 1, 2, 3, 4}));

  collector<std::string> b;
  std::vector<std::string> words{"alpha", "beta", "gamma"};
  bp::pipeline::from(std::move(words)).sink([&](std::string&& s) { b.add(std::move(s)); }).run();
  EXPECT_EQ(b.take(), (std::vector<std::string>{"alpha", "beta", "gamma"}));

  const std::vector<int> kept{1, 2, 3};  // an lvalue range is read, not moved
  collector<int> c;
  bp::pipeline::from(kept)
      .map([](const int& x) { return x + 1; })
      .sink([&](int x) { c.add(x); })
      .run();
  EXPECT_EQ(c.take(), (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(kept.size(), 3u);
}

TEST(Pipeline, BatchGathersUpToNAndUnbatchRestores) {
  watchdog dog(60s);
  collector<std::size_t> sizes;
  collector<int> items;
  bp::pipeline::from(std::views::iota(0, 2500))
      .batch(1000, 10s, {.link = {.capacity = 2}})
      .map([&](std::vector<int>&& b) {
        sizes.add(b.size());
        return std::move(b);
      })
      .unbatch()
      .sink([&](int x) { items.add(x); })
      .run();
  // The input ends, so the last batch is what remained: no 10 s linger at the end.
  EXPECT_EQ(sizes.take(), (std::vector<std::size_t>{1000, 1000, 500}));
  std::vector<int> want(2500);
  std::iota(want.begin(), want.end(), 0);
  EXPECT_EQ(items.take(), want);
}

TEST(Pipeline, BatchLingerSendsAPartialBatch) {
  watchdog dog(60s);
  int n = 0;
  collector<std::size_t> sizes;
  bp::pipeline::from([&](const std::stop_token&) -> std::optional<int> {
    if (n == 10) return std::nullopt;
    if (n == 5) std::this_thread::sleep_for(400ms);  // a pause longer than the linger
    return n++;
  })
      .batch(100, 50ms)
      .sink([&](std::vector<int>&& b) { sizes.add(b.size()); })
      .run();
  EXPECT_EQ(sizes.take(), (std::vector<std::size_t>{5, 5}));
}

// ---- ordering ---------------------------------------------------------------------------------

TEST(Pipeline, OrderedParallelStageKeepsInputOrder) {
  watchdog dog(120s);
  for (std::size_t window : {std::size_t{0}, std::size_t{1}, std::size_t{5}}) {
    collector<int> got;
    auto p =
        bp::pipeline::from(std::views::iota(0, 2000))
            .map(
                [](int x) {
                  thread_local std::minstd_rand rng(std::random_device{}());
                  std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
                  return x;
                },
                {.parallelism = 4, .ordered = true, .window = window, .name = "jitter"})
            .filter([](const int& x) { return x % 10 != 3; }, {.parallelism = 3, .ordered = true})
            .sink([&](int x) { got.add(x); });
    p.run();
    std::vector<int> want;
    for (int i = 0; i < 2000; ++i)
      if (i % 10 != 3) want.push_back(i);
    EXPECT_EQ(got.take(), want) << "window " << window;
  }
}

TEST(Pipeline, UnorderedParallelStageKeepsTheMultiset) {
  watchdog dog(120s);
  collector<int> got;
  bp::pipeline::from(std::views::iota(0, 3000))
      .map(
          [](int x) {
            if (x % 7 == 0) std::this_thread::sleep_for(50us);
            return x;
          },
          {.parallelism = 4, .ordered = false})
      .flat_map([](int x) { return std::vector<int>(static_cast<std::size_t>(x % 3), x); },
                {.parallelism = 2, .ordered = false})
      .sink([&](int x) { got.add(x); }, {.parallelism = 2})
      .run();
  auto items = got.take();
  std::sort(items.begin(), items.end());
  std::vector<int> want;
  for (int i = 0; i < 3000; ++i) want.insert(want.end(), static_cast<std::size_t>(i % 3), i);
  EXPECT_EQ(items, want);
}

// ---- errors -----------------------------------------------------------------------------------

TEST(Pipeline, ErrorDiscardStopsAndRethrows) {
  watchdog dog(60s);
  {
    std::atomic<int> seen{0};
    auto p =
        bp::pipeline::from(std::views::iota(0, 1'000'000), {.on_error = bp::in_flight::discard})
            .map([](int x) {
              if (x == 500) throw std::runtime_error("bad record 500");
              return counted(x);
            })
            .sink([&](counted&&) { ++seen; });
    try {
      p.run();
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_STREQ(e.what(), "bad record 500");
    }
    const auto r = p.report();
    EXPECT_LT(seen.load(), 1'000'000);
    EXPECT_GE(seen.load(), 1);
    EXPECT_EQ(r.stages[1].errors, 1u);
    // Everything the source handed over was taken by the map (then processed or discarded).
    EXPECT_EQ(r.stages[0].items_out, r.stages[1].items_in);
    EXPECT_EQ(r.stages[1].items_in,
              r.stages[1].items_out + r.stages[1].errors + r.stages[1].discarded);
    EXPECT_EQ(r.stages[2].items_in, r.stages[2].items_out + r.stages[2].discarded);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Pipeline, ErrorDrainDeliversWhatIsInFlight) {
  watchdog dog(60s);
  std::atomic<int> seen{0};
  auto p = bp::pipeline::from(std::views::iota(0, 1'000'000), {.on_error = bp::in_flight::drain})
               .map([](int x) {
                 if (x == 500) throw std::invalid_argument("bad record 500");
                 return x;
               })
               .map([](int x) { return x; }, {.parallelism = 2})
               .sink([&](int) { ++seen; });
  EXPECT_THROW(p.run(), std::invalid_argument);
  const auto r = p.report();
  for (const auto& s : r.stages) EXPECT_EQ(s.discarded, 0u) << s.name;
  EXPECT_EQ(r.stages[1].items_in, r.stages[0].items_out);
  // Every item the source handed over reached the sink but the one that threw.
  EXPECT_EQ(static_cast<std::uint64_t>(seen.load()), r.stages[0].items_out - 1);
  EXPECT_GE(seen.load(), 500);
}

TEST(Pipeline, SourceAndSinkExceptionsAreRethrown) {
  watchdog dog(60s);
  int n = 0;
  auto p = bp::pipeline::from([&]() -> std::optional<int> {
             if (n == 10) throw std::runtime_error("source broke");
             return n++;
           }).sink([](int) {});
  EXPECT_THROW(p.run(), std::runtime_error);
  EXPECT_THROW(p.wait(), std::runtime_error);  // wait() keeps answering the same

  auto q = bp::pipeline::from(std::views::iota(0, 100)).sink([](int x) {
    if (x == 50) throw std::out_of_range("sink broke");
  });
  EXPECT_THROW(q.run(), std::out_of_range);
}

// ---- cancellation -----------------------------------------------------------------------------

TEST(Pipeline, StopTokenEndsAnEndlessPipelineCleanly) {
  watchdog dog(60s);
  collector<long> got;
  std::atomic<long> count{0};
  long next = 0;
  auto p = bp::pipeline::from([&]() -> std::optional<long> { return next++; })
               .map([](long x) { return x; }, {.parallelism = 3, .ordered = true})
               .sink([&](long x) {
                 got.add(x);
                 ++count;
               });
  std::stop_source stop;
  std::thread runner([&] { p.run(stop.get_token()); });
  ASSERT_TRUE(bp::test::eventually([&] { return count.load() >= 1000; }, 30s));
  stop.request_stop();
  runner.join();
  const auto items = got.take();
  // Drained (the default on_stop): every item the source handed over arrived, once, in order.
  const auto r = p.report();
  ASSERT_EQ(items.size(), r.stages[0].items_out);
  for (std::size_t i = 0; i < items.size(); ++i) ASSERT_EQ(items[i], static_cast<long>(i));
  EXPECT_TRUE(r.finished);
}

TEST(Pipeline, RequestStopDiscardLeavesNothingBehind) {
  watchdog dog(60s);
  {
    int next = 0;
    std::atomic<int> seen{0};
    auto p = bp::pipeline::from([&]() -> std::optional<counted> { return counted(next++); },
                                {.link = {.capacity = 16}, .on_stop = bp::in_flight::discard})
                 .map([](counted&& c) { return std::move(c); }, {.parallelism = 2})
                 .sink([&](counted&&) {
                   ++seen;
                   std::this_thread::sleep_for(1ms);
                 });
    p.start();
    ASSERT_TRUE(bp::test::eventually([&] { return seen.load() >= 10; }, 30s));
    p.request_stop();
    const auto t0 = std::chrono::steady_clock::now();
    p.wait();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // not a drain of the links
    const auto r = p.report();
    EXPECT_EQ(r.stages[0].items_out, r.stages[1].items_in);
    EXPECT_EQ(r.stages[1].items_in, r.stages[1].items_out + r.stages[1].discarded);
    EXPECT_EQ(r.stages[2].items_in, r.stages[2].items_out + r.stages[2].discarded);
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(Pipeline, DestructorStopsAndJoinsARunningPipeline) {
  watchdog dog(60s);
  {
    auto p = bp::pipeline::from([]() -> std::optional<counted> { return counted(1); })
                 .map([](counted&& c) { return std::move(c); }, {.parallelism = 4})
                 .sink([](counted&&) { std::this_thread::sleep_for(100us); });
    p.start();
    std::this_thread::sleep_for(20ms);
  }  // no wait(): the destructor discards and joins
  EXPECT_EQ(counted::live.load(), 0);
  {
    auto never = bp::pipeline::from(std::views::iota(0, 10)).sink([](int) {});
  }  // never started: nothing to join
  auto stopped = bp::pipeline::from(std::views::iota(0, 1'000'000)).sink([](int) {});
  stopped.request_stop();  // before start: the source ends at once
  stopped.run();
  EXPECT_LT(stopped.report().stages[0].items_out, 1'000'000u);
  EXPECT_THROW(stopped.start(), std::logic_error);
}

// ---- backpressure and memory ------------------------------------------------------------------

TEST(Pipeline, SlowSinkSlowsTheSourceAndLinksStayWithinCapacity) {
  watchdog dog(60s);
  std::atomic<long> produced{0}, consumed{0};
  std::atomic<bool> done{false};
  long next = 0;
  auto p = bp::pipeline::from(
               [&]() -> std::optional<long> {
                 if (next == 3000) return std::nullopt;
                 ++produced;
                 return next++;
               },
               {.link = {.capacity = 8}})
               .map([](long x) { return x; },
                    {.parallelism = 2, .ordered = false, .link = {.capacity = 4}})
               .sink([&](long) {
                 std::this_thread::sleep_for(100us);
                 ++consumed;
               });
  std::size_t worst_gap = 0, worst_link = 0;
  bool over = false;
  std::thread watcher([&] {
    while (!done.load()) {
      const long pr = produced.load();  // before consumed: the gap read is never too large
      const long c = consumed.load();
      worst_gap = std::max(worst_gap, static_cast<std::size_t>(pr - c));
      const auto r = p.report();
      for (const auto& s : r.stages) {
        if (!s.input) continue;
        worst_link = std::max(worst_link, s.input->size);
        if (s.input->size > s.input->capacity) over = true;
      }
      std::this_thread::sleep_for(200us);
    }
  });
  p.run();
  done = true;
  watcher.join();
  EXPECT_FALSE(over);
  EXPECT_LE(worst_link, 8u);
  // Links (8 + 4) plus the item each worker holds (source 1, map 2, sink 1): the source waited.
  EXPECT_LE(worst_gap, 8u + 4u + 1u + 2u + 1u);
  EXPECT_EQ(consumed.load(), 3000);
  const auto r = p.report();
  EXPECT_GT(r.stages[0].blocked, r.stages[0].busy);  // the source mostly waited for room
}

TEST(Pipeline, MemoryStaysFlatOverAHundredThousandItems) {
  watchdog dog(120s);
  constexpr int n = 100'000;
  counted::live = 0;
  std::atomic<long> peak{0};
  std::atomic<bool> done{false};
  long sum = 0;
  {
    int next = 0;
    auto p =
        bp::pipeline::from(
            [&]() -> std::optional<counted> {
              if (next == n) return std::nullopt;
              return counted(next++);
            },
            {.link = {.capacity = 32}})
            .map([](counted&& c) { return counted(c.value + 1); },
                 {.parallelism = 4, .ordered = true, .link = {.capacity = 16}})
            .filter([](const counted& c) { return c.value % 2 == 0; }, {.link = {.capacity = 8}})
            .sink([&](counted&& c) { sum += c.value; });
    std::thread watcher([&] {
      while (!done.load()) {
        peak = std::max(peak.load(), counted::live.load());
        std::this_thread::yield();
      }
    });
    p.run();
    done = true;
    watcher.join();
  }
  // The documented bound: links (32 + 16 + 8) + reorder window (2 x 4) + two items per worker
  // (its input and its result: source 1, map 4, filter 1, sink 1).
  constexpr long bound = 32 + 16 + 8 + 8 + 2 * (1 + 4 + 1 + 1);
  EXPECT_LE(peak.load(), bound);
  EXPECT_GT(peak.load(), 0);
  EXPECT_EQ(counted::live.load(), 0);
  long want = 0;
  for (long i = 1; i <= n; ++i)
    if (i % 2 == 0) want += i;
  EXPECT_EQ(sum, want);
}

// ---- bounds around a stage's function ---------------------------------------------------------

TEST(Pipeline, RateAndLimitBoundAStage) {
  watchdog dog(60s);
  bp::token_bucket rate(200.0, 1);
  bp::semaphore slots(2);
  bp::concurrency_limiter lim(bp::fixed_limit{.limit = 3});
  std::atomic<int> inside{0}, most{0};
  std::atomic<int> seen{0};
  const auto t0 = std::chrono::steady_clock::now();
  bp::pipeline::from(std::views::iota(0, 41))
      .map(
          [&](int x) {
            const int now = ++inside;
            int m = most.load();
            while (now > m && !most.compare_exchange_weak(m, now)) {
            }
            std::this_thread::sleep_for(1ms);
            --inside;
            return x;
          },
          {.parallelism = 4, .rate = &rate, .limit = &slots, .limiter = &lim})
      .sink([&](int) { ++seen; })
      .run();
  EXPECT_EQ(seen.load(), 41);
  EXPECT_LE(most.load(), 2);
  // 41 items at 200/s with a burst of 1: at least 40 intervals of 5 ms.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
  EXPECT_EQ(lim.in_flight(), 0u);
  EXPECT_EQ(slots.available(), 2u);
}

// ---- metrics ----------------------------------------------------------------------------------

TEST(Pipeline, ReportNamesTheSlowMiddleStageAsTheBottleneck) {
  watchdog dog(60s);
  auto p = bp::pipeline::from(std::views::iota(0, 300), {.link = {.capacity = 16}})
               .map([](int x) { return x + 1; }, {.link = {.capacity = 16}, .name = "parse"})
               .map(
                   [](int x) {
                     std::this_thread::sleep_for(1ms);
                     return x;
                   },
                   {.link = {.capacity = 16}, .name = "slow"})
               .map([](int x) { return x * 2; }, {.link = {.capacity = 16}, .name = "format"})
               .sink([](int) {});
  p.run();
  const auto r = p.report();
  ASSERT_NE(r.bottleneck_stage(), nullptr) << r;
  EXPECT_EQ(r.bottleneck_stage()->name, "slow") << r;
  const auto& slow = stage(r, "slow");
  EXPECT_GT(slow.busy_fraction(), 0.5) << r;
  EXPECT_GT(slow.input_fill(), 0.5) << r;
  EXPECT_GT(stage(r, "parse").blocked_fraction(), 0.25) << r;
  EXPECT_GT(stage(r, "format").idle_fraction(), 0.5) << r;
  EXPECT_GE(slow.busy, 300ms);
  EXPECT_GT(slow.items_per_second, 0.0);
}

TEST(Pipeline, LiveReportCountsAWaitInProgress) {
  watchdog dog(60s);
  std::atomic<bool> release{false};
  auto p = bp::pipeline::from([&]() -> std::optional<int> {
             while (!release.load()) std::this_thread::sleep_for(1ms);  // a slow input
             return std::nullopt;
           }).sink([](int) {});
  p.start();
  std::this_thread::sleep_for(200ms);
  const auto live = p.report();  // the sink has been parked on its empty link all along
  release = true;
  p.wait();
  EXPECT_FALSE(live.finished);
  EXPECT_GE(live.stages[1].idle, 100ms) << live;
  EXPECT_LT(live.stages[1].busy, 100ms) << live;
  EXPECT_GE(live.stages[0].busy, 100ms) << live;  // the source's own time, in its function
  ASSERT_TRUE(live.bottleneck) << live;           // a slow source is the bottleneck
  EXPECT_EQ(*live.bottleneck, 0u) << live;
  EXPECT_TRUE(p.report().finished);
}

TEST(Pipeline, TimingOffCountsItemsOnly) {
  watchdog dog(60s);
  auto p = bp::pipeline::from(std::views::iota(0, 100), {.timing = false}).sink([](int) {});
  p.run();
  const auto r = p.report();
  EXPECT_EQ(r.stages[1].items_out, 100u);
  EXPECT_EQ(r.stages[1].total(), 0ns);
  EXPECT_FALSE(r.bottleneck);
}

// ---- arguments --------------------------------------------------------------------------------

TEST(Pipeline, InvalidArgumentsAreNamed) {
  using bp::test::invalid_argument_message;
  auto src = [] { return bp::pipeline::from(std::views::iota(0, 3)); };
  EXPECT_NE(invalid_argument_message([&] {
              (void)src().map([](int x) { return x; }, {.parallelism = 0});
            }).find("parallelism"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { (void)src().batch(0, 1ms); }).find("n must"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] {
              (void)src().batch(4, 1ms, {.parallelism = 2});
            }).find("parallelism"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] { (void)src().batch(4, -1ms); }).find("linger"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] {
              (void)src().filter([](const int&) { return true; },
                                 {.link = {.capacity = 0, .policy = bp::overflow::reject}});
            }).find("link.capacity"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] {
              (void)bp::pipeline::from(
                  std::views::iota(0, 3),
                  {.link = {.capacity = 0, .policy = bp::overflow::drop_oldest}});
            }).find("link.capacity"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([&] {
              (void)src().sink([](int) {}, {.parallelism = 0});
            }).find("parallelism"),
            std::string::npos);
}

TEST(Pipeline, RendezvousAndLossyLinks) {
  watchdog dog(60s);
  std::atomic<int> seen{0};
  auto p = bp::pipeline::from(std::views::iota(0, 500), {.link = {.capacity = 0}})
               .map([](int x) { return x; },
                    {.link = {.capacity = 2, .policy = bp::overflow::drop_newest}})
               .sink([&](int) {
                 std::this_thread::sleep_for(20us);
                 ++seen;
               });
  p.run();
  const auto r = p.report();
  ASSERT_TRUE(r.stages[2].input);
  EXPECT_EQ(static_cast<std::uint64_t>(seen.load()) + r.stages[2].input->dropped, 500u);
  EXPECT_EQ(r.stages[1].items_in, 500u);
}

}  // namespace

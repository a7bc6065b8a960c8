// Unit tests of the console's scenario engine: rates, each strategy's counters, validation,
// presets, the event log and the headless report.
#include "engine.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stop_token>
#include <thread>

#include "json_io.hpp"
#include "report.hpp"
#include "test_util.hpp"

namespace bp::console {
namespace {

using namespace std::chrono_literals;

engine::options fast() {
  engine::options o;
  o.sample_period = 20ms;
  return o;
}

settings overload(strategy_kind k) {
  settings s;
  s.strategy = k;
  s.producer_rate = 400;
  s.consumer_rate = 40;
  s.capacity = 8;
  s.payload_bytes = 64;
  return s;
}

snapshot settle(engine& e) {
  e.stop_producer();
  e.stop_consumer();
  std::this_thread::sleep_for(150ms);  // the last item in a consumer's hand is counted
  const auto seq = e.latest().seq;
  return e.wait_next(seq, 1s);
}

void expect_accounting(const snapshot& s) {
  EXPECT_EQ(s.produced, s.accepted + s.dropped + s.rejected + s.capped);
  EXPECT_EQ(s.accepted, s.consumed + s.depth + s.evicted) << "at rest nothing is in a hand";
  EXPECT_LE(s.depth, s.capacity);
}

bool has_event(const engine& e, std::string_view needle) {
  for (const auto& ev : e.events_since(0, 1000))
    if (ev.text.find(needle) != std::string::npos) return true;
  return false;
}

TEST(Rates, ProducerHonouredWithinTenPercentAt1000PerSecond) {
  bp::test::watchdog dog(30s);
  settings s;
  s.producer_rate = 1000;
  s.consumer_rate = 5000;  // never the bottleneck
  s.capacity = 1000;
  s.payload_bytes = 64;
  engine e(s, fast());
  e.start_all();
  std::this_thread::sleep_for(200ms);  // warm-up
  const snapshot a = e.latest();
  std::this_thread::sleep_for(2s);
  const snapshot b = e.latest();
  const double rate = double(b.produced - a.produced) / (b.t - a.t);
  EXPECT_NEAR(rate, 1000, 100);
  const double consumed = double(b.consumed - a.consumed) / (b.t - a.t);
  EXPECT_NEAR(consumed, 1000, 100) << "the consumer keeps up with the producer";
  EXPECT_EQ(b.dropped + b.rejected + b.evicted, 0u);
}

TEST(Rates, ConsumerHonouredWithinTenPercentAt1000PerSecond) {
  bp::test::watchdog dog(30s);
  settings s;
  s.producer_rate = 3000;
  s.consumer_rate = 1000;
  s.capacity = 100;
  s.payload_bytes = 64;
  s.strategy = strategy_kind::drop_newest;  // the producer keeps the buffer full
  engine e(s, fast());
  e.start_all();
  std::this_thread::sleep_for(200ms);
  const snapshot a = e.latest();
  std::this_thread::sleep_for(2s);
  const snapshot b = e.latest();
  EXPECT_NEAR(double(b.consumed - a.consumed) / (b.t - a.t), 1000, 100);
  EXPECT_NEAR(double(b.produced - a.produced) / (b.t - a.t), 3000, 300);
  EXPECT_NEAR(b.consume_rate, 1000, 150) << "the snapshot's own measure";
}

TEST(Rates, SeveralThreadsShareTheRate) {
  bp::test::watchdog dog(30s);
  settings s;
  s.producer_rate = 1000;
  s.consumer_rate = 4000;
  s.producers = 4;
  s.consumers = 3;
  s.capacity = 200;
  s.payload_bytes = 0;
  engine e(s, fast());
  e.start_all();
  std::this_thread::sleep_for(200ms);
  const snapshot a = e.latest();
  std::this_thread::sleep_for(2s);
  const snapshot b = e.latest();
  EXPECT_NEAR(double(b.produced - a.produced) / (b.t - a.t), 1000, 100);
}

TEST(Strategy, BlockLosesNothingAndTheProducerWaits) {
  bp::test::watchdog dog(30s);
  engine e(overload(strategy_kind::block), fast());
  e.start_all();
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().producers_waiting > 0; }, 3s));
  std::this_thread::sleep_for(1s);
  const snapshot live = e.latest();
  EXPECT_GT(live.wait_share, 0.5) << "a 10:1 overload: the producer waits most of the time";
  EXPECT_EQ(live.depth, live.capacity);
  EXPECT_NEAR(live.produce_rate, 40, 12) << "slowed down to the consumer's pace";
  EXPECT_TRUE(has_event(e, "producer waits: buffer full"));
  EXPECT_TRUE(has_event(e, "high watermark"));
  const snapshot s = settle(e);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.evicted, 0u);
  EXPECT_EQ(s.rejected, 0u);
  EXPECT_GT(s.consumed, 20u);
  expect_accounting(s);
}

TEST(Strategy, DropNewestDiscardsNewItemsAndNeverWaits) {
  bp::test::watchdog dog(30s);
  engine e(overload(strategy_kind::drop_newest), fast());
  e.start_all();
  std::this_thread::sleep_for(1500ms);
  const snapshot s = settle(e);
  EXPECT_GT(s.dropped, 100u);
  EXPECT_EQ(s.evicted, 0u);
  EXPECT_EQ(s.rejected, 0u);
  EXPECT_EQ(s.wait_share_total, 0.0);
  EXPECT_NEAR(double(s.produced) / s.t, 400, 80) << "the producer keeps its own pace";
  EXPECT_TRUE(has_event(e, "dropped: drop-newest"));
  expect_accounting(s);
}

TEST(Strategy, DropOldestEvictsOldItemsAndNeverWaits) {
  bp::test::watchdog dog(30s);
  engine e(overload(strategy_kind::drop_oldest), fast());
  e.start_all();
  std::this_thread::sleep_for(1500ms);
  const snapshot s = settle(e);
  EXPECT_GT(s.evicted, 100u);
  // drop_oldest refuses a new item only while a receiver, descheduled half-way through taking
  // the oldest one, stays off the CPU for the sender's whole grace (a loaded machine, TSan).
  EXPECT_LE(s.dropped, s.evicted / 50) << "drop_oldest takes (nearly) every new item";
  EXPECT_EQ(s.rejected, 0u);
  EXPECT_EQ(s.wait_share_total, 0.0);
  EXPECT_EQ(s.accepted + s.dropped, s.produced);
  EXPECT_TRUE(has_event(e, "evicted: drop-oldest"));
  expect_accounting(s);
}

TEST(Strategy, RejectAnswersFullAndNeverWaits) {
  bp::test::watchdog dog(30s);
  engine e(overload(strategy_kind::reject), fast());
  e.start_all();
  std::this_thread::sleep_for(1500ms);
  const snapshot s = settle(e);
  EXPECT_GT(s.rejected, 100u);
  EXPECT_EQ(s.dropped, 0u);
  EXPECT_EQ(s.evicted, 0u);
  EXPECT_EQ(s.wait_share_total, 0.0);
  EXPECT_TRUE(has_event(e, "rejected: buffer full"));
  expect_accounting(s);
}

TEST(Strategy, UnboundedGrowsUntilTheSafetyCapStopsTheProducer) {
  bp::test::watchdog dog(30s);
  settings cfg = overload(strategy_kind::unbounded);
  cfg.payload_bytes = 64 * 1024;
  cfg.unbounded_cap_bytes = 4 << 20;  // 4 MiB: ~63 items of 64 KiB
  cfg.producer_rate = 2000;
  cfg.consumer_rate = 10;
  engine e(cfg, fast());
  e.start_all();
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().capped > 0; }, 5s));
  const snapshot s = e.latest();
  EXPECT_FALSE(s.producer_running) << "the cap stops the producers";
  EXPECT_GT(s.depth, 50u) << "no backpressure: the queue grew far beyond any 'capacity'";
  EXPECT_LE(s.buffered_bytes, cfg.unbounded_cap_bytes + cfg.payload_bytes + sizeof(item));
  EXPECT_EQ(s.dropped + s.evicted + s.rejected, 0u);
  EXPECT_TRUE(has_event(e, "safety cap reached"));
  expect_accounting(settle(e));
}

TEST(Strategy, SignalEmitsOnlyAgainstDemand) {
  if (!is_available(strategy_kind::signal)) GTEST_SKIP() << "signal: coming";
  bp::test::watchdog dog(30s);
  engine e(overload(strategy_kind::signal), fast());  // capacity 8: request(8), then refills
  e.start_all();
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().producers_waiting > 0; }, 3s));
  std::this_thread::sleep_for(1s);
  const snapshot live = e.latest();
  EXPECT_GT(live.wait_share, 0.5) << "a 10:1 overload: the producer waits for demand";
  EXPECT_LE(live.depth, live.capacity);
  EXPECT_NEAR(live.produce_rate, 40, 15) << "emits at the pace the consumer requests";
  EXPECT_TRUE(has_event(e, "producer waits: no demand"));
  EXPECT_TRUE(has_event(e, "request(8)")) << "the first request is the capacity";
  EXPECT_TRUE(has_event(e, "request(6)")) << "then refills of 75%";
  const snapshot s = settle(e);
  EXPECT_EQ(s.dropped + s.evicted + s.rejected, 0u);
  expect_accounting(s);
}

TEST(Strategy, ThrottleCapsTheProducerWithTokensAndLosesNothing) {
  if (!is_available(strategy_kind::throttle)) GTEST_SKIP() << "throttle: coming";
  bp::test::watchdog dog(30s);
  settings cfg = overload(strategy_kind::throttle);  // tokens at the consumer rate: 40/s
  engine e(cfg, fast());
  e.start_all();
  std::this_thread::sleep_for(300ms);
  const snapshot a = e.latest();
  std::this_thread::sleep_for(2s);
  const snapshot b = e.latest();
  EXPECT_NEAR(double(b.produced - a.produced) / (b.t - a.t), 40, 4) << "the bucket's rate";
  EXPECT_GT(b.wait_share, 0.5) << "the producer waits for tokens most of the time";
  EXPECT_TRUE(has_event(e, "producer waits: no token"));
  const snapshot s = settle(e);
  EXPECT_EQ(s.dropped + s.evicted + s.rejected, 0u);
  expect_accounting(s);
}

TEST(Strategy, ThrottleAboveTheConsumerRateStillFillsTheBuffer) {
  if (!is_available(strategy_kind::throttle)) GTEST_SKIP() << "throttle: coming";
  bp::test::watchdog dog(30s);
  settings cfg = overload(strategy_kind::throttle);
  cfg.throttle_rate = 200;  // a policy, not feedback: the consumer takes only 40/s
  engine e(cfg, fast());
  e.start_all();
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().depth == cfg.capacity; }, 3s));
  EXPECT_TRUE(
      bp::test::eventually([&] { return has_event(e, "producer waits: buffer full"); }, 3s));
  expect_accounting(settle(e));
}

TEST(Strategy, RendezvousHandsEachItemOver) {
  bp::test::watchdog dog(30s);
  settings cfg = overload(strategy_kind::block);
  cfg.capacity = 0;
  engine e(cfg, fast());
  e.start_all();
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().consumed > 10; }, 5s));
  const snapshot s = settle(e);
  EXPECT_EQ(s.depth, 0u);
  EXPECT_GT(s.wait_share_total, 0.3);
  expect_accounting(s);
}

TEST(Strategy, ComingStrategiesAreRefusedNotFaked) {
  for (strategy_kind k : all_strategies) {
    settings s;
    s.strategy = k;
    if (is_available(k)) {
      EXPECT_EQ(validate(s), "");
      EXPECT_NO_THROW((void)make_strategy(s));
    } else {
      EXPECT_NE(validate(s).find("coming"), std::string::npos);
      EXPECT_THROW((void)make_strategy(s), std::invalid_argument);
    }
  }
}

TEST(Control, StopWhileBlockedReturnsPromptlyAndRestartsKeepAccounts) {
  bp::test::watchdog dog(30s);
  engine e(overload(strategy_kind::block), fast());
  e.start_producer();  // no consumer: the producer blocks on the full buffer
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().producers_waiting == 1; }, 3s));
  const auto t0 = std::chrono::steady_clock::now();
  settings next = e.current();
  next.strategy = strategy_kind::drop_oldest;
  EXPECT_EQ(e.configure(next), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(e.current().strategy, strategy_kind::drop_oldest);
  ASSERT_TRUE(bp::test::eventually(
      [&] {
        const auto s = e.latest();
        return s.strategy == strategy_kind::drop_oldest && s.evicted > 0;
      },
      3s));
}

// A producer context whose stop token the test stops.
struct stoppable_producer final : producer_context {
  std::stop_source source;
  std::atomic<int> waits{0};
  std::stop_token stop_token() const noexcept override { return source.get_token(); }
  void begin_wait(wait_reason) noexcept override { waits.fetch_add(1); }
  void end_wait() noexcept override {}
  void evicted(item&&) noexcept override {}
};

item make_item(std::uint64_t seq) {
  item it;
  it.seq = seq;
  it.born = clock_type::now();
  it.payload.assign(16, 0);
  return it;
}

// Every strategy: a producer blocked in offer() (full buffer, no token, no demand, nobody at the
// rendezvous) and a consumer blocked in take() (empty buffer) return within 100 ms of the stop
// request, with no polling to wait out; the item not taken is not counted as taken.
TEST(Control, StopWhileBlockedReturnsPromptlyInEveryStrategy) {
  bp::test::watchdog dog(60s);
  struct variant {
    strategy_kind kind;
    std::size_t capacity;
  };
  const variant variants[] = {
      {strategy_kind::block, 2},       {strategy_kind::block, 0},  // rendezvous
      {strategy_kind::drop_newest, 2}, {strategy_kind::drop_oldest, 2},
      {strategy_kind::reject, 2},      {strategy_kind::unbounded, 2},
      {strategy_kind::signal, 2},      {strategy_kind::throttle, 2},
  };
  for (const variant& v : variants) {
    if (!is_available(v.kind)) continue;
    SCOPED_TRACE(std::string(to_string(v.kind)) + " capacity " + std::to_string(v.capacity));
    settings s;
    s.strategy = v.kind;
    s.capacity = v.capacity;
    s.throttle_rate = 1;  // one token a second: the second offer waits for a token
    s.throttle_burst = 1;
    auto strat = make_strategy(s);

    // Consumer side first, on the empty buffer.
    {
      std::stop_source consumer;
      std::atomic<bool> returned{false};
      std::thread t([&] {
        EXPECT_FALSE(strat->take(consumer.get_token()).has_value());
        returned = true;
      });
      std::this_thread::sleep_for(50ms);
      EXPECT_FALSE(returned.load()) << "take() waits while the buffer is empty";
      const auto t0 = std::chrono::steady_clock::now();
      consumer.request_stop();
      ASSERT_TRUE(bp::test::eventually([&] { return returned.load(); }, 2s));
      EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
      t.join();
    }

    // Producer side: fill until an offer would wait, then stop it while it waits.
    stoppable_producer ctx;
    std::atomic<bool> blocked_returned{false};
    offer_result last = offer_result::accepted;
    std::thread producer([&] {
      for (std::uint64_t seq = 1; seq <= 64 && !ctx.source.stop_requested(); ++seq)
        last = strat->offer(make_item(seq), ctx);
      blocked_returned = true;
    });
    const bool waits = v.kind == strategy_kind::block || v.kind == strategy_kind::signal ||
                       v.kind == strategy_kind::throttle;
    if (waits) {
      ASSERT_TRUE(bp::test::eventually([&] { return ctx.waits.load() > 0; }, 2s));
      std::this_thread::sleep_for(20ms);  // parked in the wait by now
      EXPECT_FALSE(blocked_returned.load());
    }
    const auto t0 = std::chrono::steady_clock::now();
    ctx.source.request_stop();
    ASSERT_TRUE(bp::test::eventually([&] { return blocked_returned.load(); }, 2s));
    if (waits) {
      EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
      EXPECT_EQ(last, offer_result::stopped);
    }
    producer.join();
    strat->close();
  }
}

// A pause stops the producers' running period: a producer blocked on the full buffer leaves
// its wait at once (not within a polling slice), and so does the whole scenario on reset.
TEST(Control, PauseAndResetWakeABlockedProducerAtOnce) {
  bp::test::watchdog dog(30s);
  for (strategy_kind k : {strategy_kind::block, strategy_kind::signal, strategy_kind::throttle}) {
    if (!is_available(k)) continue;
    SCOPED_TRACE(std::string(to_string(k)));
    settings cfg = overload(k);
    cfg.throttle_rate = 1;
    cfg.throttle_burst = 1;
    engine e(cfg, fast());
    e.start_producer();  // no consumer: the producer blocks
    ASSERT_TRUE(bp::test::eventually([&] { return e.latest().producers_waiting == 1; }, 3s));
    e.stop_producer();
    // The sampler samples every 20 ms; the producer itself leaves at once.
    ASSERT_TRUE(bp::test::eventually([&] { return e.latest().producers_waiting == 0; }, 3s));
    const snapshot paused = settle(e);
    expect_accounting(paused);
    e.start_producer();
    ASSERT_TRUE(bp::test::eventually([&] { return e.latest().producers_waiting == 1; }, 3s));
    const auto t0 = std::chrono::steady_clock::now();
    e.reset();  // joins the producer: it must not be stuck in a wait
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
  }
}

// A producer waiting for its next slot at a slow rate wakes on a rate change, not when the old
// interval ends.
TEST(Control, RateChangeWakesAProducerWaitingForItsSlot) {
  bp::test::watchdog dog(30s);
  settings cfg = overload(strategy_kind::block);
  cfg.producer_rate = 0.5;  // one item every 2 s
  cfg.consumer_rate = 1000;
  engine e(cfg, fast());
  e.start_all();
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().produced >= 1; }, 3s));
  std::this_thread::sleep_for(100ms);
  const auto before = e.latest().produced;
  settings faster = e.current();
  faster.producer_rate = 100;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(e.configure(faster), "");
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().produced > before; }, 3s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms)
      << "the producer slept through the rate change (its old slot was ~2 s away)";
}

TEST(Control, RatesChangeLiveWithoutRestart) {
  bp::test::watchdog dog(30s);
  settings cfg = overload(strategy_kind::block);
  cfg.producer_rate = 0.5;  // one item every 2 s
  engine e(cfg, fast());
  e.start_all();
  std::this_thread::sleep_for(100ms);
  settings faster = e.current();
  faster.producer_rate = 500;
  faster.consumer_rate = 1000;
  EXPECT_EQ(e.configure(faster), "");
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().produced > 100; }, 3s))
      << "the new rate applies at once, not after the old 2 s period";
}

TEST(Control, InvalidSettingsChangeNothing) {
  engine e(overload(strategy_kind::block), fast());
  const settings before = e.current();
  settings bad = before;
  bad.capacity = 10001;
  EXPECT_NE(e.configure(bad).find("capacity"), std::string::npos);
  bad = before;
  bad.producer_rate = 0.1;
  EXPECT_NE(e.configure(bad).find("producer_rate"), std::string::npos);
  bad = before;
  bad.consumers = 9;
  EXPECT_NE(e.configure(bad).find("consumers"), std::string::npos);
  bad = before;
  bad.capacity = 0;
  bad.strategy = strategy_kind::drop_newest;
  EXPECT_NE(e.configure(bad).find("rendezvous"), std::string::npos);
  EXPECT_EQ(e.current(), before);
  EXPECT_NE(e.apply_preset("nope").find("unknown preset"), std::string::npos);
  EXPECT_THROW(engine(bad, fast()), std::invalid_argument);
}

TEST(Control, BurstPresetRunsTheProducerAloneFirst) {
  bp::test::watchdog dog(30s);
  engine e(settings{}, fast());
  EXPECT_EQ(e.apply_preset("burst"), "");
  const settings s = e.current();
  EXPECT_EQ(s.producer_rate, 5);
  EXPECT_EQ(s.consumer_rate, 3);
  EXPECT_EQ(s.capacity, 12u);
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().produced >= 3; }, 3s));
  const snapshot early = e.latest();
  EXPECT_EQ(early.consumed, 0u) << "the consumer starts after 2 s";
  EXPECT_GT(early.consumer_starts_in, 0.5);
  ASSERT_TRUE(bp::test::eventually([&] { return e.latest().consumed > 0; }, 4s));
  EXPECT_TRUE(has_event(e, "preset Burst"));
}

TEST(Json, SettingsAreReadStrictly) {
  const settings base;
  settings out;
  EXPECT_EQ(settings_from_json(json{{"capacity", 100}, {"strategy", "reject"}}, base, out), "");
  EXPECT_EQ(out.capacity, 100u);
  EXPECT_EQ(out.strategy, strategy_kind::reject);
  settings untouched = out;
  EXPECT_NE(settings_from_json(json{{"capacity", -1}}, base, out).find("capacity"),
            std::string::npos);
  EXPECT_NE(settings_from_json(json{{"capacity", 1.5}}, base, out).find("whole"),
            std::string::npos);
  EXPECT_NE(settings_from_json(json{{"capacity", "12"}}, base, out).find("expected"),
            std::string::npos);
  EXPECT_NE(settings_from_json(json{{"producer_rate", 1e9}}, base, out).find("producer_rate"),
            std::string::npos);
  EXPECT_NE(settings_from_json(json{{"strategy", "yolo"}}, base, out).find("unknown strategy"),
            std::string::npos);
  EXPECT_NE(settings_from_json(json{{"bogus", 1}}, base, out).find("unknown field"),
            std::string::npos);
  EXPECT_NE(settings_from_json(json::array(), base, out).find("object"), std::string::npos);
  EXPECT_NE(settings_from_json(json{{"producers", 1e30}}, base, out).find("producers"),
            std::string::npos);
  EXPECT_EQ(out, untouched) << "a refused patch changes nothing";
}

// The reason quotes at most 64 bytes of an unknown name; the cut must not split a multi-byte
// character, or the {"error": reason} answer cannot be serialized (found by fuzzing).
TEST(Json, ReasonQuotingALongNameIsValidUtf8) {
  const settings base;
  settings out;
  const std::string name = std::string(63, 'k') + "\xf0\x9f\x98\x80";  // 4 bytes across the cut
  for (const json& patch : {json{{name, 1}}, json{{"strategy", name}}}) {
    const std::string why = settings_from_json(patch, base, out);
    ASSERT_FALSE(why.empty());
    const json answer{{"error", why}};
    EXPECT_NO_THROW((void)answer.dump()) << why;
    EXPECT_NE(why.find(std::string(63, 'k')), std::string::npos) << why;
  }
}

TEST(Latency, BucketsAreWithinOneEighth) {
  for (std::uint64_t us : {0ull, 1ull, 7ull, 8ull, 100ull, 1234ull, 999999ull, 123456789ull}) {
    const double v = latency_histogram::value_of(latency_histogram::bucket_of(us));
    EXPECT_NEAR(v, double(us), std::max(1.0, double(us) / 8)) << us;
  }
  EXPECT_LT(latency_histogram::bucket_of(~0ull), latency_histogram::buckets);
}

TEST(Latency, BlockLatencyIsTheTimeThroughAFullBuffer) {
  bp::test::watchdog dog(30s);
  settings cfg = overload(strategy_kind::block);
  cfg.consumer_rate = 100;
  cfg.capacity = 20;  // a full buffer drains in 200 ms
  engine e(cfg, fast());
  e.start_all();
  std::this_thread::sleep_for(1500ms);
  const snapshot s = e.latest();
  EXPECT_NEAR(s.latency_p50_ms, 200, 60);
}

TEST(Report, HeadlessRunAndCompareWriteSelfContainedFiles) {
  bp::test::watchdog dog(60s);
  const auto dir =
      std::filesystem::temp_directory_path() / ("bp-console-test-" + std::to_string(::getpid()));
  std::atomic<bool> interrupted{false};
  std::vector<run_result> runs;
  int progress_calls = 0;
  for (strategy_kind k :
       {strategy_kind::block, strategy_kind::drop_newest, strategy_kind::signal}) {
    settings s = overload(k);
    runs.push_back(run_scenario(
        s, 1.0, [&](double, const snapshot&) { ++progress_calls; }, interrupted));
  }
  EXPECT_GT(progress_calls, 5);
  write_run(dir / "run", runs[0]);
  write_compare(dir / "cmp", runs);
  for (const char* f : {"run/series.json", "run/series.csv", "run/events.txt", "run/report.html",
                        "cmp/compare.json", "cmp/compare.csv", "cmp/compare.html", "cmp/block.csv"})
    EXPECT_TRUE(std::filesystem::exists(dir / f)) << f;
  std::ifstream in(dir / "cmp/compare.html");
  std::stringstream html;
  html << in.rdbuf();
  EXPECT_EQ(html.str().find("src=\"http"), std::string::npos) << "nothing fetched";
  EXPECT_NE(html.str().find("uPlot"), std::string::npos) << "the chart library is inline";
  const json data = json::parse(std::ifstream(dir / "cmp/compare.json"));
  ASSERT_EQ(data["runs"].size(), 3u);
  EXPECT_GT(data["runs"][1]["summary"]["dropped"].get<double>(), 0);
  EXPECT_EQ(data["runs"][0]["summary"]["lost"].get<double>(), 0);
  EXPECT_EQ(data["runs"][2]["summary"]["available"].get<bool>(),
            is_available(strategy_kind::signal));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bp::console

namespace bp::console {
namespace {

// The registry behind GET /metrics follows the scenario: a restart replaces its series (same
// names or new ones), and the throttle's token bucket is there beside its channel.
TEST(Metrics, RegistryFollowsTheScenario) {
  bp::test::watchdog dog(30s);
  engine e(settings{}, fast());
  e.start_all();
  ASSERT_TRUE(bp::test::eventually(
      [&] {
        return e.metrics().snapshot().value("bp_channel_sent_total", "block").value_or(0) > 0;
      },
      5s));
  e.reset();  // same strategy, same names: registered again, counters from zero
  EXPECT_EQ(e.metrics().size(), 1u);
  settings t = e.current();
  t.strategy = strategy_kind::throttle;
  ASSERT_EQ(e.configure(t), "");
  const auto s = e.metrics().snapshot();
  EXPECT_EQ(e.metrics().size(), 2u);
  EXPECT_FALSE(s.value("bp_channel_sent_total", "block").has_value());
  EXPECT_TRUE(s.value("bp_channel_sent_total", "throttle").has_value());
  EXPECT_TRUE(s.value("bp_token_bucket_rate", "throttle").has_value());
  t.strategy = strategy_kind::unbounded;
  ASSERT_EQ(e.configure(t), "");
  EXPECT_TRUE(e.metrics().snapshot().value("bp_unbounded_channel_sent_total", "unbounded"));
  e.shutdown();
}

}  // namespace
}  // namespace bp::console

// Stress for bp::rs: several threads request concurrently while elements flow (each element
// exactly once, in order, signals never overlapping), and cancel racing with emission (no
// signal after, subscriber released). Run under TSan as the stand-in for a model checker.
// bp-test-timeout: 300
#include <bp/streams.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using namespace bp::rs;
using i64 = std::int64_t;

constexpr bool slow = bp::detail::tsan;  // TSan runs ~10x slower: smaller counts
const i64 kElements = slow ? 20'000 : 200'000;
const int kRounds = slow ? 30 : 200;

// Checks order and serial delivery without a lock on the hot path.
class checker : public subscriber<i64> {
 public:
  void on_subscribe(std::shared_ptr<subscription> s) override {
    sub_ = std::move(s);
    subscribed_.store(true, std::memory_order_release);
  }
  void on_next(i64 v) override {
    if (busy_.exchange(true, std::memory_order_acquire)) overlap_ = true;
    if (v != next_) disorder_ = true;
    next_ = v + 1;
    if (done_.load(std::memory_order_relaxed)) after_terminal_ = true;
    received_.fetch_add(1, std::memory_order_release);
    busy_.store(false, std::memory_order_release);
  }
  void on_error(std::exception_ptr) override {
    errors_.fetch_add(1);
    done_.store(true);
  }
  void on_complete() override {
    completes_.fetch_add(1);
    done_.store(true);
  }

  subscription& sub() { return *sub_; }
  std::shared_ptr<subscription> sub_;
  std::atomic<bool> subscribed_{false};
  std::atomic<bool> busy_{false};
  std::atomic<bool> overlap_{false}, disorder_{false}, after_terminal_{false};
  i64 next_ = 0;
  std::atomic<i64> received_{0};
  std::atomic<int> errors_{0}, completes_{0};
  std::atomic<bool> done_{false};
};

struct source {
  std::string name;
  std::function<publisher_ptr<i64>(i64 n)> make;
};

bp::rs::worker& shared_worker() {
  static bp::rs::worker w;
  return w;
}

std::vector<source> sources() {
  return {
      {"range", [](i64 n) { return range(0, n); }},
      {"map_filter",
       [](i64 n) {
         return range(0, 2 * n) | filter([](i64 v) { return v % 2 == 1; }) |
                map([](i64 v) { return v / 2; });
       }},
      {"generate",
       [](i64 n) {
         return generate([i = i64{0}, n]() mutable -> std::optional<i64> {
           if (i == n) return std::nullopt;
           return i++;
         });
       }},
      {"limit_rate", [](i64 n) { return range(0, n) | limit_rate(16); }},
      {"observe_on",
       [](i64 n) { return range(0, n) | observe_on(shared_worker().executor(), 32); }},
      {"buffer_block",
       [](i64 n) { return range(0, n) | on_backpressure_buffer(8, bp::overflow::block); }},
      {"take", [](i64 n) { return range(0, bp::rs::unbounded) | take(n); }},
      {"batch_timed",  // its timer thread runs beside upstream, the requesters and cancel
       [](i64 n) {
         return range(0, n) | batch(1, std::chrono::microseconds(50)) |
                map([](const std::vector<i64>& b) { return b.front(); });
       }},
  };
}

class StreamsStress : public ::testing::TestWithParam<source> {};

TEST_P(StreamsStress, ConcurrentRequestersEachElementExactlyOnceInOrder) {
  bp::test::watchdog dog(std::chrono::seconds(240), "concurrent requesters");
  const i64 n = kElements;
  auto c = std::make_shared<checker>();
  GetParam().make(n)->subscribe(c);
  ASSERT_TRUE(c->subscribed_.load());
  std::vector<std::thread> ts;
  std::atomic<i64> budget{n + 1};  // +1 so that sources needing one more request complete
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      for (;;) {
        const i64 k = 1 + static_cast<i64>(rng() % 7);
        const i64 left = budget.fetch_sub(k);
        if (left <= 0) break;
        c->sub().request(std::min(k, left));
      }
    });
  for (auto& t : ts) t.join();
  ASSERT_TRUE(bp::test::eventually([&] { return c->done_.load(); }, 60'000ms))
      << "received " << c->received_.load();
  EXPECT_EQ(c->received_.load(), n);
  EXPECT_EQ(c->completes_.load(), 1);
  EXPECT_EQ(c->errors_.load(), 0);
  EXPECT_FALSE(c->overlap_.load()) << "rule 1.3";
  EXPECT_FALSE(c->disorder_.load());
  EXPECT_FALSE(c->after_terminal_.load()) << "rule 1.7";
}

TEST_P(StreamsStress, CancelRacingWithEmission) {
  bp::test::watchdog dog(std::chrono::seconds(240), "cancel race");
  std::mt19937 rng(42);
  for (int round = 0; round < kRounds; ++round) {
    std::weak_ptr<checker> weak;
    {
      auto c = std::make_shared<checker>();
      weak = c;
      GetParam().make(bp::rs::unbounded / 4)->subscribe(c);
      const auto delay = std::chrono::microseconds(rng() % 200);
      std::thread requester([&] {
        for (int i = 0; i < 1000 && !c->done_.load(); ++i) c->sub().request(64);
      });
      std::thread canceller([&] {
        std::this_thread::sleep_for(delay);
        c->sub().cancel();
        c->sub().cancel();
      });
      requester.join();
      canceller.join();
      const i64 seen = c->received_.load();
      std::this_thread::sleep_for(1ms);
      // after cancel returned, at most what was already in flight may still arrive
      EXPECT_LE(c->received_.load() - seen, 64) << GetParam().name;
      EXPECT_EQ(c->completes_.load() + c->errors_.load(), 0);
      EXPECT_FALSE(c->overlap_.load());
      EXPECT_FALSE(c->disorder_.load());
      c->sub_.reset();  // as a subscriber does once it cancelled
    }
    ASSERT_TRUE(bp::test::eventually([&] { return weak.expired(); }, 5000ms))
        << "rule 3.13: subscriber still referenced after cancel, round " << round;
  }
}

INSTANTIATE_TEST_SUITE_P(All, StreamsStress, ::testing::ValuesIn(sources()),
                         [](const auto& info) { return info.param.name; });

TEST(StreamsStress, FromChannelWithManyProducersAndConcurrentRequests) {
  bp::test::watchdog dog(std::chrono::seconds(240), "from_channel");
  constexpr int producers = 3;
  const i64 per = kElements / 10;
  auto ch = std::make_shared<bp::channel<i64>>(64);
  std::vector<std::thread> ps;
  for (int p = 0; p < producers; ++p)
    ps.emplace_back([&, p] {
      for (i64 i = 0; i < per; ++i) (void)ch->send(p * per + i);
    });
  std::atomic<i64> sum{0}, count{0};
  auto h = subscribe(from_channel(ch), [&](i64 v) { sum += v, ++count; },
                     {.strategy = request_strategy::batch(16)});
  for (auto& t : ps) t.join();
  ch->close();
  ASSERT_TRUE(h.wait_for(60s));
  const i64 total = producers * per;
  EXPECT_EQ(count.load(), total);
  EXPECT_EQ(sum.load(), total * (total - 1) / 2);
}

}  // namespace

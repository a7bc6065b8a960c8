// bp-test-timeout: 300
// Conservation stress for bp::unbounded_channel: P producers x C consumers. Each item is
// (producer, sequence). At the end every item sent was received exactly once, per-producer order
// is kept at every consumer, the counters agree, the threshold callback never ran concurrently
// with itself and ran once per counted crossing. Then: once the buffer has grown to its
// working size, a producer/consumer pair allocates nothing per item.
#include <bp/unbounded_channel.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include "counting_allocator.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::status;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr std::uint32_t items_per_producer = 20000;  // sanitizers slow each op 5-20x
#else
constexpr std::uint32_t items_per_producer = 150000;
#endif
constexpr std::uint32_t producers = 4;
constexpr std::uint32_t consumers = 4;

struct item {
  std::uint32_t producer;
  std::uint32_t seq;
};

TEST(UnboundedChannelStress, ConservationAndOrderAcrossProducersAndConsumers) {
  bp::test::watchdog dog(240s);
  std::atomic<int> in_callback{0};
  std::atomic<bool> overlapped{false};
  std::atomic<std::uint64_t> callbacks{0};
  bp::unbounded_channel<item> ch({.warn_at = 64, .rearm_at = 8, .on_threshold = [&](const auto&) {
                                    if (in_callback.fetch_add(1) != 0) overlapped = true;
                                    ++callbacks;
                                    std::this_thread::yield();
                                    in_callback.fetch_sub(1);
                                  }});

  // received[p][seq]: how many times that item arrived (must end at exactly 1).
  std::vector<std::vector<std::atomic<std::uint8_t>>> received(producers);
  for (auto& r : received) r = std::vector<std::atomic<std::uint8_t>>(items_per_producer);
  std::atomic<bool> order_broken{false};

  std::vector<std::thread> threads;
  for (std::uint32_t c = 0; c < consumers; ++c)
    threads.emplace_back([&] {
      std::vector<std::int64_t> last(producers, -1);
      item it{};
      for (;;) {
        const status st = ch.recv_for(it, 30s);
        if (st == status::closed) return;
        ASSERT_EQ(st, status::ok) << "a receiver waited 30 s for a value";
        if (static_cast<std::int64_t>(it.seq) <= last[it.producer]) order_broken = true;
        last[it.producer] = it.seq;
        received[it.producer][it.seq].fetch_add(1, std::memory_order_relaxed);
      }
    });
  std::vector<std::thread> senders;
  for (std::uint32_t p = 0; p < producers; ++p)
    senders.emplace_back([&, p] {
      for (std::uint32_t i = 0; i < items_per_producer; ++i) {
        // Bursts let the size swing across the threshold and back below the re-arm mark.
        if (i % 4096 == 0) std::this_thread::sleep_for(200us);
        ASSERT_EQ(ch.send(item{p, i}), status::ok);
      }
    });
  for (auto& t : senders) t.join();
  ch.close();
  for (auto& t : threads) t.join();

  EXPECT_FALSE(order_broken.load());
  for (std::uint32_t p = 0; p < producers; ++p)
    for (std::uint32_t i = 0; i < items_per_producer; ++i)
      ASSERT_EQ(received[p][i].load(), 1) << "producer " << p << " item " << i;
  const auto s = ch.stats();
  EXPECT_EQ(s.sent, std::uint64_t{producers} * items_per_producer);
  EXPECT_EQ(s.received, s.sent);
  EXPECT_EQ(s.size, 0u);
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_FALSE(overlapped.load());
  EXPECT_EQ(callbacks.load(), s.threshold_crossings);
  EXPECT_GE(s.high_watermark, 1u);
  std::printf("high watermark %zu, threshold crossings %llu\n", s.high_watermark,
              static_cast<unsigned long long>(s.threshold_crossings));
}

TEST(UnboundedChannelStress, SteadyStateAllocatesNothingPerItem) {
  bp::test::watchdog dog(120s);
  constexpr std::size_t working_size = 1024;
  bp::unbounded_channel<std::uint64_t> ch(
      {.warn_at = working_size / 2, .on_threshold = [](const auto&) {}});
  // Grow the buffer to its working size once.
  for (std::uint64_t i = 0; i < working_size; ++i) ASSERT_EQ(ch.send(i), status::ok);
  while (ch.try_recv()) {
  }
  constexpr std::uint64_t n = 300000;
  std::atomic<bool> go{false};
  std::atomic<bool> ordered{true};
  std::thread producer([&] {
    while (!go) std::this_thread::yield();
    for (std::uint64_t i = 0; i < n; ++i) {
      while (ch.size() >= working_size - 1) std::this_thread::yield();  // stay in the buffer
      ASSERT_EQ(ch.send(i), status::ok);
    }
  });
  std::thread consumer([&] {
    while (!go) std::this_thread::yield();
    std::uint64_t v = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      ASSERT_EQ(ch.recv_for(v, 30s), status::ok);
      if (v != i) ordered = false;
    }
  });
  const long before = bp::test::allocations();
  go = true;
  producer.join();
  consumer.join();
  EXPECT_EQ(bp::test::allocations() - before, 0);
  EXPECT_TRUE(ordered.load());
  EXPECT_GE(ch.stats().threshold_crossings, 1u);  // the callback path allocates nothing either
}

}  // namespace

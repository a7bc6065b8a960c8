#include <bp/watermark_buffer.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::status;
using bp::test::counted;
using bp::test::eventually;
using bp::test::watchdog;

using bp::test::invalid_argument_message;

std::string bytes(std::size_t n, char c = 'x') {
  return std::string(n, c);
}

// ---- construction --------------------------------------------------------------------------

TEST(WatermarkBufferConstruct, InvalidArgumentsNameTheArgument) {
  using buf = bp::watermark_buffer<std::string>;
  EXPECT_NE(invalid_argument_message([] { buf b({.high_watermark = 0}); }).find("high_watermark"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([] {
              buf b({.high_watermark = 10, .low_watermark = 11});
            }).find("low_watermark"),
            std::string::npos);
  EXPECT_NE(invalid_argument_message([] { buf b({.size = {}}); }).find("size"), std::string::npos);
  EXPECT_NO_THROW(buf({.high_watermark = 10, .low_watermark = 10}));
}

TEST(WatermarkBufferConstruct, DefaultSizeCountsBytesOfContiguousRanges) {
  EXPECT_EQ(bp::default_item_size{}(std::string("abc")), 3u);
  EXPECT_EQ(bp::default_item_size{}(std::vector<std::uint32_t>(5)), 20u);
  EXPECT_EQ(bp::default_item_size{}(std::uint64_t{7}), 8u);
}

// ---- Node's write() / drain ----------------------------------------------------------------

TEST(WatermarkBufferNode, WriteAnswersFalseAtTheHighWatermarkAndStillBuffers) {
  bp::watermark_buffer<std::string> b({.high_watermark = 10});
  auto r = b.write(bytes(4));
  EXPECT_TRUE(r);
  EXPECT_EQ(r.status, status::ok);
  EXPECT_TRUE(b.write(bytes(5)));  // 9 < 10
  auto over = b.write(bytes(1));   // 10: reached
  EXPECT_EQ(over.status, status::ok);
  EXPECT_FALSE(over.keep_writing);
  EXPECT_FALSE(over);
  EXPECT_TRUE(b.need_drain());
  auto way_over = b.write(bytes(100));  // still buffered, as in Node
  EXPECT_EQ(way_over.status, status::ok);
  EXPECT_FALSE(way_over.keep_writing);
  EXPECT_EQ(b.buffered_bytes(), 110u);
  EXPECT_EQ(b.size(), 4u);
  const auto s = b.stats();
  EXPECT_EQ(s.writes, 4u);
  EXPECT_EQ(s.over_high, 2u);
  EXPECT_EQ(s.peak_bytes, 110u);
}

TEST(WatermarkBufferNode, DrainFiresOncePerCrossingAtTheLowWatermark) {
  int drains = 0;
  bp::watermark_buffer<std::string> b(
      {.high_watermark = 10, .low_watermark = 4, .on_drain = [&] { ++drains; }});
  for (int i = 0; i < 6; ++i) (void)b.write(bytes(2));  // 12 bytes, false from the 5th write
  EXPECT_TRUE(b.need_drain());
  EXPECT_EQ(b.read(), bytes(2));  // 10
  EXPECT_EQ(b.read(), bytes(2));  // 8
  EXPECT_EQ(b.read(), bytes(2));  // 6
  EXPECT_EQ(drains, 0);
  EXPECT_EQ(b.read(), bytes(2));  // 4: the low watermark
  EXPECT_EQ(drains, 1);
  EXPECT_FALSE(b.need_drain());
  EXPECT_EQ(b.read(), bytes(2));
  EXPECT_EQ(b.read(), bytes(2));
  EXPECT_EQ(drains, 1) << "once per crossing";
  // No false answer, no drain.
  (void)b.write(bytes(2));
  (void)b.read();
  EXPECT_EQ(drains, 1);
  // A second crossing fires again.
  for (int i = 0; i < 5; ++i) (void)b.write(bytes(2));
  while (b.try_read()) {
  }
  EXPECT_EQ(drains, 2);
  EXPECT_EQ(b.stats().drains, 2u);
}

TEST(WatermarkBufferNode, DefaultLowWatermarkDrainsWhenEmptyLikeNode) {
  int drains = 0;
  bp::watermark_buffer<std::string> b({.high_watermark = 4, .on_drain = [&] { ++drains; }});
  (void)b.write(bytes(3));
  EXPECT_FALSE(b.write(bytes(3)));
  (void)b.read();
  EXPECT_EQ(drains, 0);
  (void)b.read();
  EXPECT_EQ(drains, 1);
}

TEST(WatermarkBufferNode, DrainHandlerMayWriteAgain) {
  int rounds = 0;
  bp::watermark_buffer<std::string>* self = nullptr;
  bp::watermark_buffer<std::string> b({.high_watermark = 4, .on_drain = [&] {
                                         if (++rounds < 3) (void)self->write(bytes(5));
                                       }});
  self = &b;
  EXPECT_FALSE(b.write(bytes(5)));
  int reads = 0;
  while (b.try_read()) ++reads;
  EXPECT_EQ(reads, 3);
  EXPECT_EQ(rounds, 3);
}

TEST(WatermarkBufferNode, FifoAndNothingLeaks) {
  counted::live = 0;
  {
    bp::watermark_buffer<counted> b({.high_watermark = 1000});
    for (int i = 0; i < 100; ++i) (void)b.write(counted(i));  // grows the ring several times
    for (int i = 0; i < 50; ++i) ASSERT_EQ(b.read()->value, i);
    for (int i = 100; i < 150; ++i) (void)b.write(counted(i));  // wraps
    for (int i = 50; i < 120; ++i) ASSERT_EQ(b.read()->value, i);
    EXPECT_EQ(b.size(), 30u);
  }
  EXPECT_EQ(counted::live, 0) << "items left in a destroyed buffer are destroyed once";
}

// ---- waiting, timeouts, close ----------------------------------------------------------------

TEST(WatermarkBufferWait, ReadForTimesOutAndReadWakesOnWrite) {
  watchdog dog(30s);
  bp::watermark_buffer<std::string> b({.high_watermark = 10});
  EXPECT_EQ(b.try_read(), std::nullopt);
  EXPECT_EQ(b.read_for(20ms), std::nullopt);
  EXPECT_EQ(b.read_until(std::chrono::system_clock::now() + 5ms), std::nullopt);
  std::thread writer([&] {
    std::this_thread::sleep_for(10ms);
    (void)b.write(bytes(1, 'a'));
  });
  EXPECT_EQ(b.read_for(10s), "a");
  writer.join();
}

TEST(WatermarkBufferWait, WaitDrainReturnsWhenTheConsumerCatchesUp) {
  watchdog dog(30s);
  bp::watermark_buffer<std::string> b({.high_watermark = 4, .low_watermark = 2});
  EXPECT_EQ(b.wait_drain_for(0ms), status::ok);  // nothing pending
  (void)b.write(bytes(2));
  EXPECT_FALSE(b.write(bytes(2)));
  EXPECT_EQ(b.wait_drain_for(10ms), status::timeout);
  std::thread consumer([&] {
    std::this_thread::sleep_for(10ms);
    (void)b.read();
  });
  EXPECT_EQ(b.wait_drain_for(10s), status::ok);
  consumer.join();
}

TEST(WatermarkBufferWait, CloseWakesReadersAndDrainWaitersAndRefusesWrites) {
  watchdog dog(30s);
  bp::watermark_buffer<std::string> b({.high_watermark = 2});
  EXPECT_FALSE(b.write(bytes(3, 'z')));
  std::thread drain_waiter([&] { EXPECT_EQ(b.wait_drain(), status::closed); });
  ASSERT_TRUE(eventually([&] { return b.need_drain(); }));
  std::this_thread::sleep_for(5ms);
  b.close();
  b.close();
  drain_waiter.join();
  std::string kept = "mine";
  auto r = b.write(std::move(kept));
  EXPECT_EQ(r.status, status::closed);
  EXPECT_EQ(kept, "mine") << "a refused item stays with the caller";
  EXPECT_EQ(b.read(), bytes(3, 'z')) << "buffered items are still delivered";
  EXPECT_EQ(b.read(), std::nullopt);

  bp::watermark_buffer<std::string> empty({.high_watermark = 2});
  std::thread reader([&] { EXPECT_EQ(empty.read(), std::nullopt); });
  std::this_thread::sleep_for(5ms);
  empty.close();
  reader.join();
}

// ---- with a memory budget ------------------------------------------------------------------

TEST(WatermarkBufferBudget, ItemsHoldBudgetBytesUntilRead) {
  bp::memory_budget budget(100);
  bp::watermark_buffer<std::string> b({.high_watermark = 1000, .budget = &budget});
  EXPECT_TRUE(b.budget_stream());
  (void)b.write(bytes(30));
  (void)b.write(bytes(40));
  EXPECT_EQ(budget.in_use(), 70u);
  EXPECT_EQ(b.budget_stream().in_use(), 70u);
  (void)b.read();
  EXPECT_EQ(budget.in_use(), 40u);
  std::string big = bytes(61);
  auto r = b.try_write(std::move(big));
  EXPECT_EQ(r.status, status::full);
  EXPECT_FALSE(r);
  EXPECT_EQ(big.size(), 61u) << "the item stays with the caller";
  EXPECT_EQ(b.write_for(bytes(61), 10ms).status, status::timeout);
  EXPECT_EQ(b.stats().refused, 2u);
  EXPECT_NE(invalid_argument_message([&] { (void)b.write(bytes(101)); }).find("item"),
            std::string::npos);
}

// A budget's share lowers the high watermark in effect (here min(1000, 3/4 x 100) = 75); the
// drain of such a crossing fires when the buffer is empty, Node's drain, not at a mark scaled
// down from low_watermark: each pause moves a whole window of the share.
TEST(WatermarkBufferBudget, UnderAShareTheDrainFiresOnceTheBufferIsEmpty) {
  bp::memory_budget budget(100);
  int drains = 0;
  bp::watermark_buffer<std::string> b({.high_watermark = 1000,
                                       .low_watermark = 500,
                                       .on_drain = [&] { ++drains; },
                                       .budget = &budget});
  EXPECT_EQ(b.high_watermark_in_effect(), 75u);
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(b.write(bytes(10)));
  EXPECT_FALSE(b.write(bytes(10)));  // 80 bytes reach 75
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(b.try_read().has_value());
    EXPECT_EQ(drains, 0) << "10 bytes still buffered after read " << i + 1;
  }
  ASSERT_TRUE(b.try_read().has_value());
  EXPECT_EQ(drains, 1);
  EXPECT_EQ(b.stats().drains, 1u);
}

TEST(WatermarkBufferBudget, DestroyedBufferGivesItsBytesBack) {
  bp::memory_budget budget(100);
  {
    bp::watermark_buffer<std::string> b({.high_watermark = 1000, .budget = &budget});
    (void)b.write(bytes(50));
    EXPECT_EQ(budget.stats().streams, 1u);
  }
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_EQ(budget.stats().streams, 0u);
}

TEST(WatermarkBufferBudget, WriterWaitsForBudgetAndCloseWakesIt) {
  watchdog dog(30s);
  bp::memory_budget budget(100);
  bp::watermark_buffer<std::string> a({.high_watermark = 1000, .budget = &budget});
  bp::watermark_buffer<std::string> b({.high_watermark = 1000, .budget = &budget});
  (void)a.write(bytes(100));
  std::thread writer([&] { EXPECT_EQ(b.write(bytes(10)).status, status::ok); });
  ASSERT_TRUE(eventually([&] { return budget.stats().waits == 1; }));
  (void)a.read();  // bytes back: the writer goes on
  writer.join();
  EXPECT_EQ(budget.in_use(), 10u);

  (void)a.write(bytes(90));
  std::thread blocked([&] { EXPECT_EQ(b.write(bytes(50)).status, status::closed); });
  ASSERT_TRUE(eventually([&] { return budget.stats().waits == 2; }));
  b.close();
  blocked.join();
  EXPECT_EQ(a.write_for(bytes(1), 0ms).status, status::timeout);
}

}  // namespace

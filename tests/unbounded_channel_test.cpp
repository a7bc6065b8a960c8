#include <bp/unbounded_channel.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
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

TEST(UnboundedChannel, FifoAndNeverFull) {
  watchdog dog(30s);
  bp::unbounded_channel<int> ch;
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(ch.send(i), status::ok);
  EXPECT_EQ(ch.size(), 10000u);
  for (int i = 0; i < 10000; ++i) ASSERT_EQ(ch.try_recv(), i);
  EXPECT_EQ(ch.try_recv(), std::nullopt);
  EXPECT_EQ(ch.size(), 0u);
}

TEST(UnboundedChannel, AllSendVerbsAnswerOkThenClosed) {
  watchdog dog(30s);
  bp::unbounded_channel<int> ch;
  const int one = 1;
  EXPECT_EQ(ch.send(one), status::ok);
  EXPECT_EQ(ch.try_send(2), status::ok);
  EXPECT_EQ(ch.send_for(3, 0ms), status::ok);
  EXPECT_EQ(ch.send_until(4, std::chrono::steady_clock::now()), status::ok);
  ch.close();
  EXPECT_TRUE(ch.is_closed());
  EXPECT_EQ(ch.send(5), status::closed);
  EXPECT_EQ(ch.try_send(one), status::closed);
  EXPECT_EQ(ch.send_for(6, 1s), status::closed);
  EXPECT_EQ(ch.stats().sent, 4u);
}

TEST(UnboundedChannel, RefusedRvalueIsLeftUnmoved) {
  bp::unbounded_channel<std::unique_ptr<int>> ch;
  ch.close();
  auto p = std::make_unique<int>(7);
  EXPECT_EQ(ch.send(std::move(p)), status::closed);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
}

TEST(UnboundedChannel, StatusAnswersOfReceives) {
  watchdog dog(30s);
  bp::unbounded_channel<int> ch;
  int out = -1;
  EXPECT_EQ(ch.try_recv(out), status::full);
  EXPECT_EQ(out, -1);
  EXPECT_EQ(ch.recv_for(out, 5ms), status::timeout);
  EXPECT_EQ(ch.recv_until(out, std::chrono::steady_clock::now() + 5ms), status::timeout);
  EXPECT_EQ(ch.recv_for(10ms), std::nullopt);
  EXPECT_EQ(out, -1);
  ASSERT_EQ(ch.send(1), status::ok);
  ASSERT_EQ(ch.send(2), status::ok);
  ASSERT_EQ(ch.send(3), status::ok);
  EXPECT_EQ(ch.try_recv(out), status::ok);
  EXPECT_EQ(out, 1);
  EXPECT_EQ(ch.recv_for(out, 1s), status::ok);
  EXPECT_EQ(out, 2);
  ch.close();
  EXPECT_EQ(ch.recv(out), status::ok);  // buffered before close: still delivered
  EXPECT_EQ(out, 3);
  EXPECT_EQ(ch.recv(out), status::closed);
  EXPECT_EQ(ch.try_recv(out), status::closed);
  EXPECT_EQ(ch.recv_for(out, 1s), status::closed);
  EXPECT_EQ(ch.recv_until(out, std::chrono::system_clock::now() + 1s), status::closed);
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(out, 3);
}

TEST(UnboundedChannel, BlockedReceiverIsWokenBySendAndByClose) {
  watchdog dog(30s);
  bp::unbounded_channel<int> ch;
  std::optional<int> got;
  std::thread r([&] { got = ch.recv_for(20s); });
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(ch.send(42), status::ok);
  r.join();
  EXPECT_EQ(got, 42);

  status answer = status::ok;
  std::thread r2([&] {
    int v = 0;
    answer = ch.recv_for(v, 20s);
  });
  std::this_thread::sleep_for(20ms);
  ch.close();
  r2.join();
  EXPECT_EQ(answer, status::closed);
}

TEST(UnboundedChannel, RangeForDrainsThenEnds) {
  watchdog dog(30s);
  bp::unbounded_channel<int> ch;
  std::thread p([&] {
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(ch.send(i), status::ok);
    ch.close();
  });
  int expected = 0;
  for (int v : ch) EXPECT_EQ(v, expected++);
  p.join();
  EXPECT_EQ(expected, 1000);
}

TEST(UnboundedChannel, DestructionDestroysBufferedValues) {
  counted::live = 0;
  {
    bp::unbounded_channel<counted> ch;
    for (int i = 0; i < 100; ++i) ASSERT_EQ(ch.send(counted(i)), status::ok);
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(ch.try_recv());
  }
  EXPECT_EQ(counted::live.load(), 0);
}

TEST(UnboundedChannel, StatsCountAndWatermark) {
  bp::unbounded_channel<int> ch;
  for (int i = 0; i < 10; ++i) ASSERT_EQ(ch.send(i), status::ok);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ch.try_recv());
  for (int i = 0; i < 2; ++i) ASSERT_EQ(ch.send(i), status::ok);
  const auto s = ch.stats();
  EXPECT_EQ(s.sent, 12u);
  EXPECT_EQ(s.received, 4u);
  EXPECT_EQ(s.size, 8u);
  EXPECT_EQ(s.sent, s.received + s.size);
  EXPECT_EQ(s.high_watermark, 10u);
  EXPECT_EQ(s.threshold_crossings, 0u);
  EXPECT_EQ(s.bytes, 0u);
}

TEST(UnboundedChannel, ThresholdFiresOncePerCrossingWithHysteresis) {
  std::vector<std::size_t> fired;  // size seen by each callback
  bp::unbounded_channel<int> ch(
      {.warn_at = 10, .on_threshold = [&](const auto& s) { fired.push_back(s.size); }});
  for (int i = 0; i < 9; ++i) ASSERT_EQ(ch.send(i), status::ok);
  EXPECT_TRUE(fired.empty());
  ASSERT_EQ(ch.send(9), status::ok);  // reaches 10
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0], 10u);
  // Hovering around the threshold does not fire again: re-armed only at 5 (half) or below.
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(ch.try_recv());
    ASSERT_EQ(ch.send(0), status::ok);
  }
  for (int i = 0; i < 20; ++i) ASSERT_EQ(ch.send(i), status::ok);  // 30 buffered
  EXPECT_EQ(fired.size(), 1u);
  while (ch.size() > 6) ASSERT_TRUE(ch.try_recv());
  for (int i = 0; i < 10; ++i) ASSERT_EQ(ch.send(i), status::ok);  // 6 -> 16: still disarmed
  EXPECT_EQ(fired.size(), 1u);
  while (ch.size() > 5) ASSERT_TRUE(ch.try_recv());               // 5: re-armed
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ch.send(i), status::ok);  // 9: below the threshold
  EXPECT_EQ(fired.size(), 1u);
  ASSERT_EQ(ch.send(0), status::ok);  // 10: second crossing
  ASSERT_EQ(fired.size(), 2u);
  EXPECT_EQ(fired[1], 10u);
  EXPECT_EQ(ch.stats().threshold_crossings, 2u);
}

TEST(UnboundedChannel, ExplicitRearmMark) {
  int fired = 0;
  bp::unbounded_channel<int> ch(
      {.warn_at = 4, .rearm_at = 0, .on_threshold = [&](const auto&) { ++fired; }});
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ch.send(i), status::ok);
  EXPECT_EQ(fired, 1);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ch.try_recv());  // 1 left: not re-armed
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.send(i), status::ok);
  EXPECT_EQ(fired, 1);
  while (ch.try_recv()) {
  }
  for (int i = 0; i < 4; ++i) ASSERT_EQ(ch.send(i), status::ok);
  EXPECT_EQ(fired, 2);
}

TEST(UnboundedChannel, CrossingsCountedWithoutCallback) {
  bp::unbounded_channel<int> ch({.warn_at = 2});
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.send(i), status::ok);
  EXPECT_EQ(ch.stats().threshold_crossings, 1u);
}

TEST(UnboundedChannel, BytesThresholdAndCounters) {
  std::vector<bp::unbounded_channel_stats> fired;
  bp::unbounded_channel<std::string> ch(
      {.warn_at_bytes = 100,
       .size_of = [](const std::string& s) { return s.size(); },
       .on_threshold = [&](const auto& s) { fired.push_back(s); }});
  ASSERT_EQ(ch.send(std::string(60, 'a')), status::ok);
  ASSERT_EQ(ch.send(std::string(30, 'b')), status::ok);
  EXPECT_TRUE(fired.empty());
  ASSERT_EQ(ch.send(std::string(10, 'c')), status::ok);  // 100 bytes
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].bytes, 100u);
  EXPECT_EQ(fired[0].size, 3u);
  EXPECT_EQ(fired[0].threshold_crossings, 1u);
  ASSERT_TRUE(ch.try_recv());  // 40 bytes left: at most 50, re-armed
  EXPECT_EQ(ch.stats().bytes, 40u);
  ASSERT_EQ(ch.send(std::string(70, 'd')), status::ok);  // 110
  EXPECT_EQ(fired.size(), 2u);
  const auto s = ch.stats();
  EXPECT_EQ(s.bytes, 110u);
  EXPECT_EQ(s.high_watermark_bytes, 110u);
  EXPECT_EQ(s.threshold_crossings, 2u);
}

TEST(UnboundedChannel, ItemsOrBytesWhicheverComesFirst) {
  int fired = 0;
  bp::unbounded_channel<std::string> ch({.warn_at = 3,
                                         .warn_at_bytes = 1000,
                                         .size_of = [](const std::string& s) { return s.size(); },
                                         .on_threshold = [&](const auto&) { ++fired; }});
  ASSERT_EQ(ch.send(std::string(1000, 'x')), status::ok);  // bytes first
  EXPECT_EQ(fired, 1);
  ASSERT_TRUE(ch.try_recv());  // both at or below their re-arm marks
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.send(std::string("y")), status::ok);  // items
  EXPECT_EQ(fired, 2);
}

TEST(UnboundedChannel, CallbackRunsOnSendingThreadOutsideTheLock) {
  std::thread::id where;
  std::size_t seen = 0;
  bp::unbounded_channel<int>* self = nullptr;
  bp::unbounded_channel<int> ch({.warn_at = 1, .on_threshold = [&](const auto&) {
                                   where = std::this_thread::get_id();
                                   seen = self->stats().size;  // would deadlock under the lock
                                   (void)self->try_recv();
                                 }});
  self = &ch;
  ASSERT_EQ(ch.send(1), status::ok);
  EXPECT_EQ(where, std::this_thread::get_id());
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(ch.size(), 0u);
}

TEST(UnboundedChannel, InvalidOptionsNameTheOption) {
  using opts = bp::unbounded_channel_options<int>;
  const auto msg = [](opts o) {
    return bp::test::invalid_argument_message([&] { bp::unbounded_channel<int> ch(std::move(o)); });
  };
  EXPECT_NE(msg(opts{.warn_at = 10, .rearm_at = 10}).find("rearm_at"), std::string::npos);
  EXPECT_NE(msg(opts{.rearm_at = 1}).find("rearm_at"), std::string::npos);
  EXPECT_NE(msg(opts{.warn_at_bytes = 10}).find("size_of"), std::string::npos);
  EXPECT_NE(msg(opts{.warn_at_bytes = 10,
                     .rearm_at_bytes = 20,
                     .size_of = [](const int&) { return std::size_t{4}; }})
                .find("rearm_at_bytes"),
            std::string::npos);
  EXPECT_NE(msg(opts{.rearm_at_bytes = 1}).find("rearm_at_bytes"), std::string::npos);
  EXPECT_NE(msg(opts{.on_threshold = [](const auto&) {}}).find("on_threshold"), std::string::npos);
  EXPECT_EQ(msg(opts{.warn_at = 10, .rearm_at = 9}), "<nothing thrown>");
  EXPECT_EQ(msg(opts{.size_of = [](const int&) { return std::size_t{4}; }}), "<nothing thrown>");
}

TEST(UnboundedChannel, ManyReceiversAllWokenByClose) {
  watchdog dog(30s);
  bp::unbounded_channel<int> ch;
  std::atomic<int> ended{0};
  std::vector<std::thread> rs;
  for (int i = 0; i < 4; ++i)
    rs.emplace_back([&] {
      if (!ch.recv_for(20s)) ++ended;
    });
  std::this_thread::sleep_for(20ms);
  ch.close();
  for (auto& t : rs) t.join();
  EXPECT_EQ(ended.load(), 4);
  EXPECT_TRUE(eventually([&] { return ch.is_closed(); }));
}

}  // namespace

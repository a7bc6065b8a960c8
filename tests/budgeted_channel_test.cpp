#include <bp/budgeted_channel.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using bp::test::eventually;
using bp::test::watchdog;

using bp::test::invalid_argument_message;

std::string item(std::size_t n, char c = 'x') {
  return std::string(n, c);
}

template <class T>
void expect_invariants(const bp::budgeted_channel<T>& ch,
                       std::uint64_t sends_not_closed_or_timeout) {
  const auto s = ch.stats();
  EXPECT_EQ(s.sent, s.received + ch.size() + s.evicted);
  EXPECT_EQ(s.sent + s.dropped + s.rejected, sends_not_closed_or_timeout);
}

TEST(BudgetedChannelConstruct, InvalidArgumentsNameTheArgument) {
  bp::memory_budget budget(100);
  using ch = bp::budgeted_channel<std::string>;
  EXPECT_NE(invalid_argument_message([&] { ch c(budget, 0, overflow::reject); }).find("capacity"),
            std::string::npos);
  EXPECT_NE(
      invalid_argument_message([&] { ch c(budget, {.capacity = 4, .size = {}}); }).find("size"),
      std::string::npos);
  ch c(budget, 4);
  EXPECT_NE(invalid_argument_message([&] { (void)c.send(item(101)); }).find("item"),
            std::string::npos);
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_EQ(c.size(), 0u);
}

TEST(BudgetedChannelBlock, SendWaitsForBytesAndReceiveGivesThemBack) {
  watchdog dog(30s);
  bp::memory_budget budget(100);
  bp::budgeted_channel<std::string> ch(budget, 16);
  ASSERT_EQ(ch.send(item(40, 'a')), status::ok);
  ASSERT_EQ(ch.send(item(40, 'b')), status::ok);
  EXPECT_EQ(budget.in_use(), 80u);
  EXPECT_EQ(ch.bytes(), 80u);
  std::string v = item(40, 'c');
  EXPECT_EQ(ch.send_for(std::move(v), 20ms), status::timeout);
  EXPECT_EQ(v, item(40, 'c')) << "a value not taken stays with the caller";
  EXPECT_EQ(ch.try_send(std::move(v)), status::full);
  EXPECT_EQ(v, item(40, 'c'));
  EXPECT_EQ(budget.in_use(), 80u);

  std::thread sender([&] { EXPECT_EQ(ch.send(std::move(v)), status::ok); });
  ASSERT_TRUE(eventually([&] { return budget.stats().waits >= 2; }));
  EXPECT_EQ(ch.recv(), item(40, 'a'));  // 40 bytes back: the sender fits
  sender.join();
  EXPECT_EQ(ch.recv(), item(40, 'b'));
  EXPECT_EQ(ch.recv(), item(40, 'c'));
  EXPECT_EQ(budget.in_use(), 0u);
  expect_invariants(ch, 4);  // 3 ok + 1 full (the timeout does not count)
}

TEST(BudgetedChannelBlock, FullChannelTimesOutAndGivesTheBytesBack) {
  bp::memory_budget budget(1000);
  bp::budgeted_channel<std::string> ch(budget, 1);
  ASSERT_EQ(ch.send(item(10)), status::ok);
  EXPECT_EQ(ch.send_for(item(10), 10ms), status::timeout);
  EXPECT_EQ(ch.send_until(item(10), std::chrono::system_clock::now() + 5ms), status::timeout);
  const std::string lvalue = item(10);
  EXPECT_EQ(ch.send_until(lvalue, std::chrono::steady_clock::now() + 5ms), status::timeout);
  EXPECT_EQ(ch.send_for(lvalue, 1ms), status::timeout);
  EXPECT_EQ(ch.try_send(lvalue), status::full);
  EXPECT_EQ(budget.in_use(), 10u) << "the reservation of a value not taken is given back";
}

TEST(BudgetedChannelBlock, MaxBlockBoundsSend) {
  bp::memory_budget budget(10);
  bp::budgeted_channel<std::string> ch(budget, {.capacity = 8, .max_block = 15ms});
  ASSERT_EQ(ch.send(item(10)), status::ok);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.send(item(1)), status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 15ms);
}

TEST(BudgetedChannelBlock, CloseWakesASenderWaitingForBytes) {
  watchdog dog(30s);
  bp::memory_budget budget(10);
  bp::budgeted_channel<std::string> ch(budget, 8);
  ASSERT_EQ(ch.send(item(10)), status::ok);
  std::thread sender([&] { EXPECT_EQ(ch.send(item(5)), status::closed); });
  ASSERT_TRUE(eventually([&] { return budget.stats().waits == 1; }));
  ch.close();
  sender.join();
  EXPECT_EQ(ch.send(item(1)), status::closed);
  EXPECT_EQ(ch.recv(), item(10));  // still delivered
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(BudgetedChannelBlock, ClosedBudgetAnswersClosed) {
  bp::memory_budget budget(10);
  bp::budgeted_channel<std::string> ch(budget, 8);
  budget.close();
  EXPECT_EQ(ch.send(item(1)), status::closed);
}

TEST(BudgetedChannelPolicies, DropNewestAndRejectAnswerAtOnce) {
  bp::memory_budget budget(10);
  bp::budgeted_channel<std::string> dn(budget, 8, overflow::drop_newest);
  bp::budgeted_channel<std::string> rj(budget, 8, overflow::reject);
  ASSERT_EQ(dn.send(item(6)), status::ok);
  ASSERT_EQ(rj.send(item(4)), status::ok);
  std::string v = item(3);
  EXPECT_EQ(dn.send(std::move(v)), status::dropped);
  EXPECT_EQ(rj.send(std::move(v)), status::full);
  EXPECT_EQ(v, item(3));
  EXPECT_EQ(dn.stats().dropped, 1u);
  EXPECT_EQ(rj.stats().rejected, 1u);
  expect_invariants(dn, 2);
  expect_invariants(rj, 2);
}

TEST(BudgetedChannelPolicies, DropOldestEvictsItsOwnValuesForBytes) {
  bp::memory_budget budget(30);
  std::vector<std::string> undelivered;
  bp::budgeted_channel<std::string> ch(
      budget, {.capacity = 8,
               .policy = overflow::drop_oldest,
               .on_undelivered = [&](std::string&& s) { undelivered.push_back(std::move(s)); }});
  ASSERT_EQ(ch.send(item(10, 'a')), status::ok);
  ASSERT_EQ(ch.send(item(10, 'b')), status::ok);
  ASSERT_EQ(ch.send(item(10, 'c')), status::ok);
  ASSERT_EQ(ch.send(item(15, 'd')), status::ok);  // evicts a and b
  EXPECT_EQ(undelivered, (std::vector<std::string>{item(10, 'a'), item(10, 'b')}));
  EXPECT_EQ(budget.in_use(), 25u);
  EXPECT_EQ(ch.stats().evicted, 2u);
  expect_invariants(ch, 4);

  // Bytes held by someone else cannot be evicted: the value is dropped.
  auto other = budget.try_reserve(5);
  bp::budgeted_channel<std::string> empty(budget, 8, overflow::drop_oldest);
  std::string v = item(3);
  EXPECT_EQ(empty.send(std::move(v)), status::dropped);
  EXPECT_EQ(v, item(3));
  EXPECT_EQ(ch.recv(), item(10, 'c'));
  EXPECT_EQ(ch.recv(), item(15, 'd'));
  expect_invariants(ch, 4);
}

TEST(BudgetedChannelLifetime, DestroyedChannelGivesBytesBackAndHandsOverValues) {
  bp::memory_budget budget(100);
  int handed = 0;
  {
    bp::budgeted_channel<std::string> ch(budget,
                                         {.capacity = 8, .on_undelivered = [&](std::string&&) {
                                            ++handed;
                                            EXPECT_LT(budget.in_use(), 30u);
                                          }});
    for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.send(item(10)), status::ok);
  }
  EXPECT_EQ(handed, 3);
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_EQ(budget.stats().streams, 0u);
}

TEST(BudgetedChannelLifetime, RangeForAndCountedValues) {
  watchdog dog(30s);
  bp::test::counted::live = 0;
  {
    bp::memory_budget budget(1000);
    bp::budgeted_channel<bp::test::counted> ch(budget, 4);
    std::thread producer([&] {
      for (int i = 0; i < 100; ++i) ASSERT_EQ(ch.send(bp::test::counted(i)), status::ok);
      ch.close();
    });
    int expect = 0;
    for (auto& v : ch) EXPECT_EQ(v.value, expect++);
    producer.join();
    EXPECT_EQ(expect, 100);
    EXPECT_EQ(budget.in_use(), 0u);
  }
  EXPECT_EQ(bp::test::counted::live, 0);
}

// Two channels share a budget; the hot one has filled it. The cold one's send waits, and is
// served from the bytes the hot one's consumer gives back, even though the hot producer keeps
// sending: the budget's fairness rule.
TEST(BudgetedChannelFairness, ColdChannelIsServedWhileAHotOneKeepsSending) {
  watchdog dog(30s);
  bp::memory_budget budget(1000);
  bp::budgeted_channel<std::string> hot(budget, 1000);
  bp::budgeted_channel<std::string> cold(budget, 10);
  while (hot.try_send(item(50)) == status::ok) {
  }
  EXPECT_EQ(budget.in_use(), 1000u);
  std::atomic<bool> served{false};
  std::atomic<bool> stop{false};
  std::thread hot_producer([&] {
    while (!stop) (void)hot.send_for(item(50), 5ms);
  });
  std::thread cold_sender([&] {
    EXPECT_EQ(cold.send_for(item(200), 20s), status::ok);
    served = true;
  });
  while (!served) {
    (void)hot.recv_for(1ms);
    std::this_thread::sleep_for(200us);
  }
  stop = true;
  hot_producer.join();
  cold_sender.join();
  EXPECT_EQ(cold.bytes(), 200u);
  EXPECT_LE(budget.peak(), 1000u);
}

// A type with heap data tells the budget its real cost through bp::item_size.
struct with_heap {
  std::string body;
};

}  // namespace

template <>
struct bp::item_size<with_heap> {
  std::size_t operator()(const with_heap& m) const noexcept { return sizeof m + m.body.size(); }
};

namespace {

TEST(BudgetedChannelItemSize, ASpecializedItemSizeIsWhatTheBudgetCounts) {
  bp::memory_budget budget(1 << 20);
  bp::budgeted_channel<with_heap> ch(budget, 4);
  ASSERT_EQ(ch.send(with_heap{std::string(1000, 'x')}), bp::status::ok);
  EXPECT_EQ(budget.in_use(), sizeof(with_heap) + 1000);
  ASSERT_TRUE(ch.recv().has_value());
  EXPECT_EQ(budget.in_use(), 0u);
  // Contiguous ranges and trivially copyable types need nothing.
  EXPECT_EQ(bp::item_size<std::string>{}(std::string(10, 'y')), 10u);
  EXPECT_EQ(bp::item_size<std::vector<int>>{}(std::vector<int>(3)), 3 * sizeof(int));
  EXPECT_EQ(bp::item_size<double>{}(1.0), sizeof(double));
}

}  // namespace

#include <bp/channel.hpp>

#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using bp::test::counted;
using bp::test::eventually;
using bp::test::watchdog;

// Every API.md invariant that must hold once all threads are done.
template <class T>
void expect_invariants(const bp::channel<T>& ch, std::uint64_t sends_not_closed_or_timeout) {
  const auto s = ch.stats();
  EXPECT_EQ(s.sent, s.received + ch.size() + s.evicted);
  EXPECT_EQ(s.sent + s.dropped + s.rejected, sends_not_closed_or_timeout);
  EXPECT_LE(s.high_watermark, ch.capacity());
}

// ---- construction --------------------------------------------------------------------------

TEST(ChannelConstruct, RendezvousNeedsBlock) {
  for (auto p : {overflow::drop_newest, overflow::drop_oldest, overflow::reject}) {
    try {
      bp::channel<int> ch(0, p);
      FAIL() << "capacity 0 with " << p << " must throw";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(bp::channel<int>(0, overflow::block));
}

TEST(ChannelConstruct, InvalidPolicyNamesTheArgument) {
  try {
    bp::channel<int> ch(4, static_cast<overflow>(17));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("policy"), std::string::npos) << e.what();
  }
}

TEST(ChannelConstruct, HugeCapacityNamesTheArgument) {
  try {
    bp::channel<int> ch(std::size_t{1} << 50);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("capacity"), std::string::npos) << e.what();
  }
}

TEST(ChannelConstruct, OptionsWithDesignatedInitializers) {
  int undelivered = 0;
  {
    bp::channel<int> ch({.capacity = 3,
                         .policy = overflow::drop_oldest,
                         .on_undelivered = [&](int&&) { ++undelivered; }});
    EXPECT_EQ(ch.capacity(), 3u);
    EXPECT_EQ(ch.policy(), overflow::drop_oldest);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(ch.send(i), status::ok);
    EXPECT_EQ(undelivered, 2);  // 0 and 1 evicted
  }
  EXPECT_EQ(undelivered, 5);  // 2, 3, 4 still buffered at destruction
}

TEST(ChannelConstruct, AnyCapacityHoldsExactlyThatMany) {
  for (std::size_t cap : {1u, 2u, 3u, 7u, 10u, 1000u}) {
    bp::channel<std::size_t> ch(cap, overflow::reject);
    for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(ch.try_send(i), status::ok);
    EXPECT_EQ(ch.size(), cap);
    EXPECT_EQ(ch.try_send(cap), status::full);
    for (std::size_t i = 0; i < cap; ++i) ASSERT_EQ(ch.try_recv(), i);
    EXPECT_EQ(ch.try_recv(), std::nullopt);
  }
}

// ---- one typed suite over every policy ---------------------------------------------------

class EveryPolicy : public ::testing::TestWithParam<overflow> {};
INSTANTIATE_TEST_SUITE_P(Channel, EveryPolicy,
                         ::testing::Values(overflow::block, overflow::drop_newest,
                                           overflow::drop_oldest, overflow::reject),
                         [](const auto& info) { return std::string(bp::to_string(info.param)); });

TEST_P(EveryPolicy, FifoBelowCapacity) {
  bp::channel<int> ch(4, GetParam());
  for (int lap = 0; lap < 10; ++lap) {  // wraps the ring several times
    for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.send(lap * 10 + i), status::ok);
    EXPECT_EQ(ch.size(), 3u);
    for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.recv(), lap * 10 + i);
  }
  EXPECT_EQ(ch.size(), 0u);
  expect_invariants(ch, 30);
}

TEST_P(EveryPolicy, FullBufferAnswersPerPolicyTable) {
  std::vector<int> undelivered;
  bp::channel<std::string> ch(2, GetParam(),
                              [&](std::string&& s) { undelivered.push_back(std::stoi(s)); });
  ASSERT_EQ(ch.send(std::string("0")), status::ok);
  ASSERT_EQ(ch.send(std::string("1")), status::ok);
  std::string v = "2";
  status s =
      GetParam() == overflow::block ? ch.send_for(std::move(v), 20ms) : ch.send(std::move(v));
  switch (GetParam()) {
    case overflow::block:
      EXPECT_EQ(s, status::timeout);
      EXPECT_EQ(v, "2") << "a value not taken stays with the caller";
      EXPECT_EQ(ch.stats().send_waits, 1u);
      break;
    case overflow::drop_newest:
      EXPECT_EQ(s, status::dropped);
      EXPECT_EQ(v, "2");
      EXPECT_EQ(ch.stats().dropped, 1u);
      break;
    case overflow::drop_oldest:
      EXPECT_EQ(s, status::ok);
      EXPECT_EQ(ch.stats().evicted, 1u);
      EXPECT_EQ(undelivered, std::vector<int>{0});
      break;
    case overflow::reject:
      EXPECT_EQ(s, status::full);
      EXPECT_EQ(v, "2");
      EXPECT_EQ(ch.stats().rejected, 1u);
      break;
  }
  EXPECT_EQ(ch.size(), 2u);
  if (GetParam() == overflow::drop_oldest) {
    EXPECT_EQ(ch.recv(), "1");
    EXPECT_EQ(ch.recv(), "2");
  } else {
    EXPECT_EQ(ch.recv(), "0");
    EXPECT_EQ(ch.recv(), "1");
  }
  expect_invariants(ch, GetParam() == overflow::block ? 2 : 3);
}

TEST_P(EveryPolicy, TrySendNeverWaits) {
  bp::channel<int> ch(1, GetParam());
  ASSERT_EQ(ch.try_send(1), status::ok);
  const status expected[] = {status::full, status::dropped, status::ok, status::full};
  EXPECT_EQ(ch.try_send(2), expected[static_cast<int>(GetParam())]);
  expect_invariants(ch, 2);
  const auto st = ch.stats();
  if (GetParam() == overflow::block || GetParam() == overflow::reject) {
    EXPECT_EQ(st.rejected, 1u);
  }
}

TEST_P(EveryPolicy, SendOnClosedAnswersClosedAndLeavesValue) {
  bp::channel<std::unique_ptr<int>> ch(2, GetParam());
  ch.close();
  auto p = std::make_unique<int>(7);
  EXPECT_EQ(ch.send(std::move(p)), status::closed);
  EXPECT_EQ(ch.try_send(std::move(p)), status::closed);
  EXPECT_EQ(ch.send_for(std::move(p), 1ms), status::closed);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 7);
  EXPECT_EQ(ch.stats().sent, 0u);
  expect_invariants(ch, 0);
}

TEST_P(EveryPolicy, CloseDeliversWhatWasBufferedThenEnds) {
  bp::channel<int> ch(3, GetParam());
  ASSERT_EQ(ch.send(1), status::ok);
  ASSERT_EQ(ch.send(2), status::ok);
  ch.close();
  ch.close();  // idempotent
  EXPECT_TRUE(ch.is_closed());
  EXPECT_EQ(ch.recv(), 1);
  EXPECT_EQ(ch.try_recv(), 2);
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(ch.recv_for(1ms), std::nullopt);
  EXPECT_EQ(ch.try_recv(), std::nullopt);
}

TEST_P(EveryPolicy, RangeForDrainsUntilClosed) {
  watchdog dog(30s);
  bp::channel<int> ch(2, GetParam() == overflow::block ? overflow::block : GetParam());
  std::thread producer([&] {
    for (int i = 0; i < 100; ++i) {
      while (ch.send(i) != status::ok) std::this_thread::yield();  // lossy policies: retry
    }
    ch.close();
  });
  int expected = 0;
  for (int v : ch) {
    if (GetParam() == overflow::drop_oldest) {
      EXPECT_GE(v, expected);  // evictions may skip values, never reorder them
      expected = v + 1;
    } else {
      EXPECT_EQ(v, expected++);
    }
  }
  producer.join();
  if (GetParam() != overflow::drop_oldest) {
    EXPECT_EQ(expected, 100);
  }
}

TEST_P(EveryPolicy, MoveOnlyPayload) {
  bp::channel<std::unique_ptr<int>> ch(2, GetParam());
  ASSERT_EQ(ch.send(std::make_unique<int>(1)), status::ok);
  auto v = ch.recv();
  ASSERT_TRUE(v && *v);
  EXPECT_EQ(**v, 1);
}

TEST_P(EveryPolicy, NoLeakNoDoubleDestroy) {
  const long before = counted::live;
  {
    bp::channel<counted> ch(4, GetParam());
    for (int i = 0; i < 10; ++i) (void)ch.try_send(counted(i));
    (void)ch.recv();
    counted keep(99);
    (void)ch.send(keep);  // copy overload
    EXPECT_FALSE(keep.moved_from);
  }
  EXPECT_EQ(counted::live, before);
}

TEST_P(EveryPolicy, ConstRefSendCopies) {
  bp::channel<std::string> ch(1, GetParam());
  const std::string s = "hello";
  ASSERT_EQ(ch.send(s), status::ok);
  EXPECT_EQ(ch.recv(), "hello");
  EXPECT_EQ(s, "hello");
}

TEST_P(EveryPolicy, HighWatermark) {
  bp::channel<int> ch(5, GetParam());
  for (int i = 0; i < 3; ++i) ASSERT_EQ(ch.send(i), status::ok);
  EXPECT_EQ(ch.stats().high_watermark, 3u);
  for (int i = 0; i < 3; ++i) (void)ch.recv();
  ASSERT_EQ(ch.send(9), status::ok);
  EXPECT_EQ(ch.stats().high_watermark, 3u);
  for (int i = 0; i < 10; ++i) (void)ch.try_send(i);
  EXPECT_EQ(ch.stats().high_watermark, 5u);
}

// ---- blocking and waking -------------------------------------------------------------------

TEST(ChannelBlock, SenderWaitsUntilASlotFrees) {
  watchdog dog(30s);
  bp::channel<int> ch(1);
  ASSERT_EQ(ch.send(1), status::ok);
  std::atomic<bool> done{false};
  std::thread t([&] {
    EXPECT_EQ(ch.send_for(2, 10s), status::ok);
    done = true;
  });
  ASSERT_TRUE(eventually([&] { return ch.stats().send_waits == 1; }));  // it really waits
  EXPECT_FALSE(done);
  EXPECT_EQ(ch.recv_for(5s), 1);
  EXPECT_EQ(ch.recv_for(5s), 2);
  t.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(ch.stats().send_waits, 1u);
}

TEST(ChannelBlock, ReceiverWaitsUntilAValueArrives) {
  watchdog dog(30s);
  bp::channel<int> ch(4);
  std::thread t([&] { EXPECT_EQ(ch.recv_for(10s), 42); });
  std::this_thread::sleep_for(20ms);
  ASSERT_EQ(ch.send(42), status::ok);
  t.join();
}

TEST(ChannelBlock, CloseWakesEveryBlockedSenderAndLeavesTheirValues) {
  watchdog dog(30s);
  bp::channel<std::unique_ptr<int>> ch(1);
  ASSERT_EQ(ch.send(std::make_unique<int>(0)), status::ok);
  constexpr int n = 4;
  std::vector<std::thread> senders;
  std::atomic<int> closed_answers{0}, values_kept{0};
  for (int i = 0; i < n; ++i) {
    senders.emplace_back([&, i] {
      auto v = std::make_unique<int>(i + 1);
      if (ch.send_for(std::move(v), 20s) == status::closed) ++closed_answers;
      if (v && *v == i + 1) ++values_kept;
    });
  }
  ASSERT_TRUE(eventually([&] { return ch.stats().send_waits == n; }));
  std::this_thread::sleep_for(10ms);  // let them park
  ch.close();
  for (auto& t : senders) t.join();
  EXPECT_EQ(closed_answers, n);
  EXPECT_EQ(values_kept, n);
  auto first = ch.recv();  // the value buffered before close is still delivered
  ASSERT_TRUE(first && *first);
  EXPECT_EQ(**first, 0);
  EXPECT_EQ(ch.recv(), std::nullopt);
}

TEST(ChannelBlock, CloseWakesEveryBlockedReceiver) {
  watchdog dog(30s);
  bp::channel<int> ch(4);
  std::vector<std::thread> receivers;
  std::atomic<int> ended{0};
  for (int i = 0; i < 4; ++i)
    receivers.emplace_back([&] {
      if (!ch.recv_for(20s)) ++ended;
    });
  std::this_thread::sleep_for(30ms);
  ch.close();
  for (auto& t : receivers) t.join();
  EXPECT_EQ(ended, 4);
}

TEST(ChannelBlock, RecvForTimesOut) {
  bp::channel<int> ch(1);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.recv_for(30ms), std::nullopt);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 30ms);
  EXPECT_LT(waited, 5s);
  EXPECT_FALSE(ch.is_closed());
}

TEST(ChannelBlock, ZeroAndNegativeTimeoutsDoNotWait) {
  bp::channel<int> ch(1);
  ASSERT_EQ(ch.send(1), status::ok);
  EXPECT_EQ(ch.send_for(2, 0ms), status::timeout);
  EXPECT_EQ(ch.send_for(2, -5ms), status::timeout);
  EXPECT_EQ(ch.recv_for(0ms), 1);
  EXPECT_EQ(ch.recv_for(-1ms), std::nullopt);
  expect_invariants(ch, 1);
}

TEST(ChannelBlock, UntilVariantsTakeAnyClock) {
  bp::channel<int> ch(1);
  ASSERT_EQ(ch.send_until(1, std::chrono::system_clock::now() + 1s), status::ok);
  EXPECT_EQ(ch.send_until(2, std::chrono::steady_clock::now() + 10ms), status::timeout);
  EXPECT_EQ(ch.recv_until(std::chrono::system_clock::now() + 1s), 1);
  EXPECT_EQ(ch.recv_until(std::chrono::steady_clock::now() + 10ms), std::nullopt);
}

TEST(ChannelBlock, HugeTimeoutIsAccepted) {
  bp::channel<int> ch(1);
  EXPECT_EQ(ch.send_for(1, std::chrono::hours::max()), status::ok);
  EXPECT_EQ(ch.recv_for(std::chrono::nanoseconds::max()), 1);
}

// A blocked thread parks: over 300 ms of waiting it may spin a few microseconds, never more.
// (Thread CPU time, not wall time: this is a property check, not a speed test.)
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

TEST(ChannelBlock, BlockedThreadsBurnNoCpu) {
  watchdog dog(60s);
  bp::channel<int> empty(4), full(1), rendezvous(0);
  ASSERT_EQ(full.send(0), status::ok);
  double cpu[3] = {};
  std::thread a([&] {
    const double t0 = thread_cpu_seconds();
    EXPECT_EQ(empty.recv_for(300ms), std::nullopt);
    cpu[0] = thread_cpu_seconds() - t0;
  });
  std::thread b([&] {
    const double t0 = thread_cpu_seconds();
    EXPECT_EQ(full.send_for(1, 300ms), status::timeout);
    cpu[1] = thread_cpu_seconds() - t0;
  });
  std::thread c([&] {
    const double t0 = thread_cpu_seconds();
    EXPECT_EQ(rendezvous.send_for(1, 300ms), status::timeout);
    cpu[2] = thread_cpu_seconds() - t0;
  });
  a.join(), b.join(), c.join();
  for (double used : cpu) EXPECT_LT(used, 0.03) << "a parked thread must not spin";
}

// ---- capacity 0: rendezvous ----------------------------------------------------------------

TEST(ChannelRendezvous, SendReturnsOnlyOnceTaken) {
  watchdog dog(30s);
  bp::channel<int> ch(0);
  EXPECT_EQ(ch.capacity(), 0u);
  std::atomic<bool> sent{false};
  std::thread t([&] {
    EXPECT_EQ(ch.send_for(5, 10s), status::ok);
    sent = true;
  });
  ASSERT_TRUE(eventually([&] { return ch.stats().send_waits == 1; }));  // parked, not taken
  EXPECT_FALSE(sent);
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.recv_for(5s), 5);
  t.join();
  EXPECT_TRUE(sent);
  const auto s = ch.stats();
  EXPECT_EQ(s.sent, 1u);
  EXPECT_EQ(s.received, 1u);
  EXPECT_EQ(s.send_waits, 1u);
  EXPECT_EQ(s.high_watermark, 0u);
}

TEST(ChannelRendezvous, TrySendNeedsAWaitingReceiver) {
  watchdog dog(30s);
  bp::channel<int> ch(0);
  EXPECT_EQ(ch.try_send(1), status::full);
  EXPECT_EQ(ch.stats().rejected, 1u);
  std::optional<int> got;
  std::thread r([&] { got = ch.recv_for(10s); });
  ASSERT_TRUE(eventually([&] { return ch.try_send(2) == status::ok; }));
  r.join();
  EXPECT_EQ(got, 2);
  expect_invariants(ch, ch.stats().sent + ch.stats().rejected);
}

TEST(ChannelRendezvous, TryRecvTakesFromAWaitingSender) {
  watchdog dog(30s);
  bp::channel<int> ch(0);
  EXPECT_EQ(ch.try_recv(), std::nullopt);
  std::thread s([&] { EXPECT_EQ(ch.send_for(9, 10s), status::ok); });
  std::optional<int> got;
  ASSERT_TRUE(eventually([&] { return (got = ch.try_recv()).has_value(); }));
  s.join();
  EXPECT_EQ(got, 9);
}

TEST(ChannelRendezvous, TimeoutLeavesTheValueWithTheSender) {
  bp::channel<std::unique_ptr<int>> ch(0);
  auto p = std::make_unique<int>(3);
  EXPECT_EQ(ch.send_for(std::move(p), 10ms), status::timeout);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(ch.recv_for(10ms), std::nullopt);  // the timed-out sender left nothing behind
  EXPECT_EQ(ch.stats().sent, 0u);
}

TEST(ChannelRendezvous, CloseAnswersWaitingSenderClosedValueNotDelivered) {
  watchdog dog(30s);
  bp::channel<std::unique_ptr<int>> ch(0);
  std::thread t([&] {
    auto p = std::make_unique<int>(4);
    EXPECT_EQ(ch.send_for(std::move(p), 20s), status::closed);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(*p, 4);
  });
  ASSERT_TRUE(eventually([&] { return ch.stats().send_waits == 1; }));
  ch.close();
  t.join();
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(ch.send(std::make_unique<int>(1)), status::closed);
}

TEST(ChannelRendezvous, CloseWakesWaitingReceiver) {
  watchdog dog(30s);
  bp::channel<int> ch(0);
  std::thread t([&] { EXPECT_EQ(ch.recv_for(20s), std::nullopt); });
  std::this_thread::sleep_for(20ms);
  ch.close();
  t.join();
  EXPECT_TRUE(ch.is_closed());
}

TEST(ChannelRendezvous, PingPongKeepsOrder) {
  watchdog dog(60s);
  bp::channel<int> ch(0);
  std::thread t([&] {
    for (int i = 0; i < 2000; ++i) ASSERT_EQ(ch.send_for(i, 10s), status::ok);
    ch.close();
  });
  int expected = 0;
  while (auto v = ch.recv_for(10s)) ASSERT_EQ(*v, expected++);
  t.join();
  EXPECT_EQ(expected, 2000);
  EXPECT_EQ(ch.stats().sent, 2000u);
}

// ---- drop handler --------------------------------------------------------------------------

TEST(ChannelDropHandler, ReceivesEvictedAndLeftoverValuesOnlyOnce) {
  std::vector<int> seen;
  {
    bp::channel<std::unique_ptr<int>> ch(2, overflow::drop_oldest,
                                         [&](std::unique_ptr<int>&& p) { seen.push_back(*p); });
    for (int i = 0; i < 5; ++i) ASSERT_EQ(ch.send(std::make_unique<int>(i)), status::ok);
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(**ch.recv(), 3);
  }
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 4}));
}

TEST(ChannelDropHandler, NotCalledForValuesThatStayWithTheCaller) {
  int calls = 0;
  bp::channel<int> ch(1, overflow::drop_newest, [&](int&&) { ++calls; });
  ASSERT_EQ(ch.send(1), status::ok);
  EXPECT_EQ(ch.send(2), status::dropped);
  EXPECT_EQ(calls, 0);
}

// ---- batch operations -----------------------------------------------------------------------

TEST_P(EveryPolicy, TrySendNStopsAtTheFirstValueNotTaken) {
  bp::channel<std::unique_ptr<int>> ch(3, GetParam());
  std::vector<std::unique_ptr<int>> values;
  for (int i = 0; i < 5; ++i) values.push_back(std::make_unique<int>(i));
  const auto r = ch.try_send_n(values);
  switch (GetParam()) {
    case overflow::drop_oldest:  // everything enters, the two oldest are evicted
      EXPECT_EQ(r, (bp::send_n_result{5, status::ok}));
      EXPECT_EQ(ch.stats().evicted, 2u);
      EXPECT_EQ(**ch.try_recv(), 2);
      break;
    default: {
      const status expected = GetParam() == overflow::drop_newest ? status::dropped : status::full;
      EXPECT_EQ(r, (bp::send_n_result{3, expected}));
      EXPECT_EQ(values[3] ? *values[3] : -1, 3) << "the value that stopped the batch is untouched";
      EXPECT_EQ(values[4] ? *values[4] : -1, 4);
      EXPECT_EQ(**ch.try_recv(), 0);
    }
  }
  for (std::size_t i = 0; i < r.count; ++i) EXPECT_EQ(values[i], nullptr) << "taken values moved";
}

TEST_P(EveryPolicy, RecvManyTakesWhatIsThereUpToMax) {
  bp::channel<int> ch(8, GetParam());
  std::vector<int> in{1, 2, 3, 4, 5};
  ASSERT_EQ(ch.send_n(in).count, 5u);
  std::vector<int> out{0};
  EXPECT_EQ(ch.recv_many(out, 3), 3u);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(ch.try_recv_many(out, 10), 2u);
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(ch.try_recv_many(out, 10), 0u);
  EXPECT_EQ(ch.recv_many_for(out, 10, 5ms), 0u);
  EXPECT_EQ(ch.recv_many(out, 0), 0u);
  expect_invariants(ch, 5);
}

TEST(ChannelBatch, SendNWaitsForRoomAndKeepsOrder) {
  watchdog dog(30s);
  bp::channel<int> ch(4);
  std::vector<int> in(1000);
  for (int i = 0; i < 1000; ++i) in[i] = i;
  std::thread producer([&] {
    EXPECT_EQ(ch.send_n_for(in, 20s), (bp::send_n_result{1000, status::ok}));
  });
  std::vector<int> out;
  while (out.size() < 1000) ASSERT_GT(ch.recv_many_for(out, 7, 10s), 0u);
  producer.join();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(out[i], i);
  EXPECT_LE(ch.stats().high_watermark, 4u);
}

TEST(ChannelBatch, RecvManyWakesOnArrivalAndEndsAtClose) {
  watchdog dog(30s);
  bp::channel<int> ch(16);
  std::vector<int> out;
  std::thread consumer([&] {
    EXPECT_GE(ch.recv_many_for(out, 16, 10s), 1u);
    std::vector<int> rest;
    while (ch.recv_many_for(rest, 16, 10s) != 0) {
    }
    EXPECT_TRUE(ch.is_closed());
  });
  std::this_thread::sleep_for(20ms);
  std::vector<int> in{1, 2, 3};
  ASSERT_EQ(ch.send_n(in).answer, status::ok);
  std::this_thread::sleep_for(20ms);
  ch.close();
  consumer.join();
  EXPECT_GE(out.size(), 1u);
  EXPECT_EQ(out[0], 1);
}

TEST(ChannelBatch, SendNOnClosedAndTimeoutAndRendezvous) {
  watchdog dog(30s);
  bp::channel<int> full(2);
  std::vector<int> in{1, 2, 3};
  EXPECT_EQ(full.send_n_for(in, 10ms), (bp::send_n_result{2, status::timeout}));
  full.close();
  EXPECT_EQ(full.send_n(in), (bp::send_n_result{0, status::closed}));

  bp::channel<int> rv(0);
  std::thread producer([&] {
    std::vector<int> v{7, 8, 9};
    EXPECT_EQ(rv.send_n_for(v, 10s), (bp::send_n_result{3, status::ok}));
  });
  std::vector<int> out;
  while (out.size() < 3) ASSERT_EQ(rv.recv_many_for(out, 5, 10s), 1u);
  producer.join();
  EXPECT_EQ(out, (std::vector<int>{7, 8, 9}));
}

TEST(ChannelBatch, HandlesForwardBatches) {
  auto [tx, rx] = bp::make_channel<int>(4);
  std::vector<int> in{1, 2};
  EXPECT_EQ(tx.send_n(in).count, 2u);
  EXPECT_EQ(tx.try_send_n(in).count, 2u);
  EXPECT_EQ(tx.send_n_for(in, 1ms).answer, status::timeout);
  std::vector<int> out;
  EXPECT_EQ(rx.recv_many(out, 3), 3u);
  EXPECT_EQ(rx.try_recv_many(out, 3), 1u);
  EXPECT_EQ(rx.recv_many_for(out, 3, 1ms), 0u);
  bp::sender<int> empty;
  EXPECT_EQ(empty.send_n(in).answer, status::closed);
}

// ---- lingering batch receive ------------------------------------------------------------------

TEST(ChannelLinger, FullBatchReturnsAtOnceWithoutLingering) {
  watchdog dog(30s);
  bp::channel<int> ch(16);
  std::vector<int> in{1, 2, 3, 4, 5};
  ASSERT_EQ(ch.send_n(in).count, 5u);
  std::vector<int> out;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.recv_batch(out, 4, 10s), 4u);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
  EXPECT_EQ(out, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(ch.recv_batch(out, 0, 10s), 0u);
}

TEST(ChannelLinger, PartialBatchWaitsForTheLingerThenReturnsWhatCame) {
  watchdog dog(30s);
  bp::channel<int> ch(16);
  ASSERT_EQ(ch.send(1), status::ok);
  ASSERT_EQ(ch.send(2), status::ok);
  std::vector<int> out;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.recv_batch(out, 10, 60ms), 2u);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 60ms);
  EXPECT_LT(waited, 10s);
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
}

TEST(ChannelLinger, TheWindowOpensAtTheFirstValueNotAtTheCall) {
  watchdog dog(30s);
  bp::channel<int> ch(16);
  std::vector<int> out;
  std::thread producer([&] {
    std::this_thread::sleep_for(150ms);  // longer than the linger: the call waits for value 1
    ASSERT_EQ(ch.send(1), status::ok);
    std::this_thread::sleep_for(20ms);  // well inside the window opened by value 1
    ASSERT_EQ(ch.send(2), status::ok);
  });
  EXPECT_EQ(ch.recv_batch(out, 2, 100ms), 2u);
  producer.join();
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
}

TEST(ChannelLinger, TrickleFillsTheBatchBeforeTheLingerEnds) {
  watchdog dog(30s);
  bp::channel<int> ch(4);
  std::thread producer([&] {
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(ch.send(i), status::ok);
      std::this_thread::sleep_for(2ms);
    }
  });
  std::vector<int> out;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.recv_batch(out, 8, 20s), 8u);  // more than the capacity: taken as it trickles in
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  producer.join();
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(ChannelLinger, CloseEndsTheBatchWithWhatWasGathered) {
  watchdog dog(30s);
  bp::channel<int> ch(8);
  ASSERT_EQ(ch.send(1), status::ok);
  std::thread closer([&] {
    std::this_thread::sleep_for(20ms);
    ASSERT_EQ(ch.send(2), status::ok);
    ch.close();
  });
  std::vector<int> out;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.recv_batch(out, 10, 20s), 2u);  // does not wait out the 20 s linger
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
  closer.join();
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
  EXPECT_EQ(ch.recv_batch(out, 10, 20s), 0u);  // closed and drained
  EXPECT_EQ(ch.recv_batch_for(out, 10, 20s, 20s), 0u);
}

TEST(ChannelLinger, ForVariantBoundsTheWaitForTheFirstValue) {
  watchdog dog(30s);
  bp::channel<int> ch(8);
  std::vector<int> out;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(ch.recv_batch_for(out, 10, 1s, 30ms), 0u);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);
  EXPECT_TRUE(out.empty());
  ASSERT_EQ(ch.send(5), status::ok);
  EXPECT_EQ(ch.recv_batch_for(out, 10, 10ms, 10s), 1u);  // then the linger applies
  EXPECT_EQ(out, (std::vector<int>{5}));
}

TEST(ChannelLinger, RendezvousAndHandles) {
  watchdog dog(30s);
  bp::channel<int> rv(0);
  std::thread producer([&] {
    for (int i = 0; i < 3; ++i) ASSERT_EQ(rv.send(i), status::ok);
  });
  std::vector<int> out;
  while (out.size() < 3) ASSERT_GT(rv.recv_batch_for(out, 3, 50ms, 10s), 0u);
  producer.join();
  EXPECT_EQ(out, (std::vector<int>{0, 1, 2}));

  auto [tx, rx] = bp::make_channel<int>(4);
  ASSERT_EQ(tx.send(9), status::ok);
  out.clear();
  EXPECT_EQ(rx.recv_batch(out, 4, 5ms), 1u);
  EXPECT_EQ(rx.recv_batch_for(out, 4, 5ms, 5ms), 0u);
  bp::receiver<int> empty;
  EXPECT_EQ(empty.recv_batch(out, 4, 5ms), 0u);
}

// ---- reservations --------------------------------------------------------------------------

TEST(ChannelReserve, PermitSendsInSlotOrder) {
  watchdog dog(30s);
  bp::channel<int> ch(4);
  ASSERT_EQ(ch.send(1), status::ok);
  auto permit = ch.reserve(2);
  ASSERT_TRUE(permit);
  EXPECT_EQ(permit.remaining(), 2u);
  ASSERT_EQ(ch.send(4), status::ok);  // behind the reserved slots
  EXPECT_EQ(ch.try_recv(), 1);
  EXPECT_EQ(ch.try_recv(), std::nullopt) << "the reserved slot holds back what follows";
  permit.send(2);
  permit.send(3);
  EXPECT_EQ(permit.remaining(), 0u);
  EXPECT_THROW(permit.send(9), std::logic_error);
  EXPECT_EQ(ch.try_recv(), 2);
  EXPECT_EQ(ch.try_recv(), 3);
  EXPECT_EQ(ch.try_recv(), 4);
  expect_invariants(ch, 4);
  EXPECT_EQ(ch.stats().sent, 4u);
}

TEST(ChannelReserve, UnusedSlotsAreGivenBack) {
  watchdog dog(30s);
  bp::channel<int> ch(3);
  {
    auto permit = ch.reserve(3);
    permit.send(1);
    EXPECT_EQ(ch.try_send(2), status::full);
    EXPECT_EQ(ch.size(), 1u) << "reserved slots are not values";
  }  // two slots given back, behind value 1: free once value 1 has been received
  EXPECT_EQ(ch.size(), 1u);
  EXPECT_EQ(ch.try_recv(), 1);
  ASSERT_EQ(ch.try_send(2), status::ok) << "no receiver needed to pass the given-back slots";
  ASSERT_EQ(ch.try_send(3), status::ok);
  ASSERT_EQ(ch.try_send(4), status::ok);
  EXPECT_EQ(ch.try_send(5), status::full);
  EXPECT_EQ(ch.size(), 3u);
  EXPECT_EQ(ch.stats().sent, 4u);
  std::vector<int> out;
  EXPECT_EQ(ch.try_recv_many(out, 10), 3u);
  EXPECT_EQ(out, (std::vector<int>{2, 3, 4}));
  const auto st = ch.stats();
  EXPECT_EQ(st.sent, st.received + ch.size() + st.evicted);
  EXPECT_EQ(st.received, 4u);
}

TEST(ChannelReserve, ReceiverAsleepOnAReservedSlotWakesOnSendAndOnRelease) {
  watchdog dog(30s);
  bp::channel<int> ch(4);
  auto permit = ch.reserve(1);
  ASSERT_EQ(ch.send(2), status::ok);
  std::thread r([&] {
    EXPECT_EQ(ch.recv_for(10s), 1);
    EXPECT_EQ(ch.recv_for(10s), 2);
  });
  std::this_thread::sleep_for(30ms);
  permit.send(1);
  r.join();

  auto unused = ch.reserve(2);
  ASSERT_EQ(ch.send(3), status::ok);
  std::thread r2([&] { EXPECT_EQ(ch.recv_for(10s), 3); });
  std::this_thread::sleep_for(30ms);
  unused.release();
  r2.join();
}

TEST(ChannelReserve, WaitsForRoomTimesOutAndAnswersClosed) {
  watchdog dog(30s);
  bp::channel<int> ch(2, overflow::drop_newest);
  ASSERT_EQ(ch.send(1), status::ok);
  EXPECT_EQ(ch.try_reserve(2).answer(), status::full);
  EXPECT_EQ(ch.reserve_for(2, 10ms).answer(), status::timeout);
  std::thread r([&] {
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(ch.recv(), 1);
  });
  auto permit = ch.reserve_for(2, 10s);
  r.join();
  ASSERT_TRUE(permit);
  ch.close();
  EXPECT_EQ(ch.try_reserve().answer(), status::closed);
  permit.send(7);  // claimed before close: delivered
  permit.release();
  EXPECT_EQ(ch.recv(), 7);
  EXPECT_EQ(ch.recv(), std::nullopt);
}

TEST(ChannelReserve, CloseDoesNotEndTheStreamBeforeAnOutstandingPermitSends) {
  watchdog dog(30s);
  bp::channel<int> ch(4);
  auto permit = ch.reserve(1);
  std::vector<int> got;
  std::thread r([&] {
    while (auto v = ch.recv_for(10s)) got.push_back(*v);
  });
  std::this_thread::sleep_for(20ms);
  ch.close();  // the receiver must keep waiting: the reserved slot is not drained
  std::this_thread::sleep_for(20ms);
  permit.send(42);
  r.join();
  EXPECT_EQ(got, std::vector<int>{42});
  EXPECT_TRUE(ch.is_closed());
}

TEST(ChannelReserve, InvalidCountsNameTheArgument) {
  watchdog dog(30s);
  bp::channel<int> ch(2);
  bp::channel<int> rv(0);
  for (auto* c : {&ch, &rv}) {
    for (std::size_t n : {std::size_t{0}, std::size_t{3}}) {
      try {
        (void)c->reserve(n);
        FAIL();
      } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("n must be"), std::string::npos) << e.what();
      }
    }
  }
  auto [tx, rx] = bp::make_channel<int>(2);
  auto p = tx.reserve(1);
  p.send(5);
  EXPECT_EQ(rx.recv(), 5);
  EXPECT_FALSE(bp::sender<int>().reserve());
}

TEST(ChannelReserve, MovedPermitKeepsItsSlots) {
  watchdog dog(30s);
  bp::channel<int> ch(2);
  auto a = ch.reserve(2);
  auto b = std::move(a);
  EXPECT_EQ(a.remaining(), 0u);  // NOLINT(bugprone-use-after-move): documented
  b.send(1);
  bp::send_permit<int> c;
  c = std::move(b);
  c.send(2);
  EXPECT_EQ(ch.recv_for(5s), 1);
  EXPECT_EQ(ch.recv_for(5s), 2);
}

TEST(ChannelReserve, GivenBackSlotBehindValuesIsPassedBySenders) {
  watchdog dog(30s);
  bp::channel<int> ch(2);
  ASSERT_EQ(ch.send(1), status::ok);
  ch.reserve(1).release();      // a tombstone behind the value
  EXPECT_EQ(ch.try_recv(), 1);  // the tombstone is now at the head
  EXPECT_EQ(ch.try_send(2), status::ok);
  EXPECT_EQ(ch.try_send(3), status::ok) << "a full-looking channel frees given-back slots";
  EXPECT_EQ(ch.try_recv(), 2);
  EXPECT_EQ(ch.try_recv(), 3);
}

// ---- ownership-based closing ---------------------------------------------------------------

TEST(MakeChannel, LastSenderGoneClosesAndReceiversDrain) {
  auto [tx, rx] = bp::make_channel<int>(4);
  {
    auto tx2 = tx;
    ASSERT_EQ(tx2.send(1), status::ok);
  }
  EXPECT_FALSE(rx.is_closed());
  ASSERT_EQ(tx.send(2), status::ok);
  tx.reset();
  EXPECT_TRUE(rx.is_closed());
  EXPECT_EQ(rx.recv(), 1);
  EXPECT_EQ(rx.recv(), 2);
  EXPECT_EQ(rx.recv(), std::nullopt);
}

TEST(MakeChannel, LastReceiverGoneMakesSendsAnswerClosed) {
  auto [tx, rx] = bp::make_channel<int>(4, overflow::reject);
  auto rx2 = rx;
  rx.reset();
  EXPECT_EQ(tx.send(1), status::ok);
  rx2 = bp::receiver<int>();
  EXPECT_EQ(tx.send(2), status::closed);
  EXPECT_TRUE(tx.is_closed());
}

TEST(MakeChannel, BlockedSenderWakesWhenLastReceiverLeaves) {
  watchdog dog(30s);
  auto [tx, rx] = bp::make_channel<int>(1);
  ASSERT_EQ(tx.send(1), status::ok);
  std::thread t([tx = tx] { EXPECT_EQ(tx.send_for(2, 20s), status::closed); });
  ASSERT_TRUE(eventually([&] { return tx.stats().send_waits == 1; }));
  rx.reset();
  t.join();
}

TEST(MakeChannel, ProducersOwningCopiesCloseWhenAllFinish) {
  watchdog dog(30s);
  auto [tx, rx] = bp::make_channel<int>(8);
  std::vector<std::thread> producers;
  for (int p = 0; p < 3; ++p)
    producers.emplace_back([tx = tx, p] {
      for (int i = 0; i < 100; ++i) ASSERT_EQ(tx.send_for(p * 1000 + i, 10s), status::ok);
    });
  tx.reset();
  long count = 0;
  for (int v : rx) {
    (void)v;
    ++count;
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(count, 300);
}

TEST(MakeChannel, EmptyHandlesAnswerClosed) {
  bp::sender<int> tx;
  bp::receiver<int> rx;
  EXPECT_FALSE(tx);
  EXPECT_EQ(tx.send(1), status::closed);
  EXPECT_EQ(tx.try_send(1), status::closed);
  EXPECT_TRUE(tx.is_closed());
  EXPECT_EQ(rx.recv(), std::nullopt);
  auto [a, b] = bp::make_channel<int>(1);
  auto moved = std::move(a);
  EXPECT_EQ(a.send(1), status::closed);  // NOLINT(bugprone-use-after-move): documented
  EXPECT_EQ(moved.send(1), status::ok);
  EXPECT_FALSE(b.is_closed());
}

TEST(MakeChannel, OptionsAndRendezvous) {
  watchdog dog(30s);
  int undelivered = 0;
  {
    auto [tx, rx] = bp::make_channel<int>(bp::channel_options<int>{
        .capacity = 1, .policy = overflow::drop_oldest, .on_undelivered = [&](int&&) {
          ++undelivered;
        }});
    ASSERT_EQ(tx.send(1), status::ok);
    ASSERT_EQ(tx.send(2), status::ok);
    EXPECT_EQ(undelivered, 1);
  }
  EXPECT_EQ(undelivered, 2);
  auto [tx, rx] = bp::make_channel<int>(0);
  std::thread t([tx = std::move(tx)] { EXPECT_EQ(tx.send_for(1, 10s), status::ok); });
  EXPECT_EQ(rx.recv_for(10s), 1);
  t.join();
  EXPECT_EQ(rx.recv_for(10s), std::nullopt);  // the only sender is gone
}

}  // namespace

TEST(MakeChannel, WithDesignatedInitializers) {
  auto [tx, rx] = bp::make_channel<int>({.capacity = 2, .policy = overflow::drop_newest});
  EXPECT_EQ(tx.capacity(), 2u);
  EXPECT_EQ(tx.try_send(1), status::ok);
  EXPECT_EQ(tx.try_send(2), status::ok);
  EXPECT_EQ(tx.try_send(3), status::dropped);
  EXPECT_EQ(rx.try_recv(), 1);
}

// --- reservations meet the other verbs: each of these once hung, spun or answered wrongly -------

// A call documented as "never waits" returns within a bounded time, checked from another
// thread: a regression shows as a failed expectation, not as a hung test binary.
template <class F>
void returns_promptly(F f, std::chrono::milliseconds limit = 2000ms) {
  std::atomic<bool> done{false};
  std::thread t([&] {
    f();
    done = true;
  });
  const bool in_time = eventually([&] { return done.load(); }, limit);
  if (!in_time) {
    ADD_FAILURE() << "the call did not return within " << limit.count() << " ms";
    std::_Exit(1);  // the call is stuck on `t`: nothing else can be checked safely
  }
  t.join();
}

TEST(ChannelReservations, DropOldestRefusesWhenTheOldestSlotIsUnfilled) {
  watchdog wd(30s);
  bp::channel<int> ch(2, overflow::drop_oldest);
  auto p = ch.try_reserve(1);  // the oldest slot: reserved, no value yet
  ASSERT_TRUE(p);
  ASSERT_EQ(ch.try_send(1), status::ok);  // full: [reserved, 1]
  returns_promptly([&] { EXPECT_EQ(ch.try_send(2), status::dropped); });
  returns_promptly([&] { EXPECT_EQ(ch.send(3), status::dropped); });
  returns_promptly([&] { EXPECT_EQ(ch.send_for(4, 1s), status::dropped); });
  std::vector<int> batch{5, 6};
  returns_promptly([&] {
    EXPECT_EQ(ch.try_send_n(batch), (bp::send_n_result{0, status::dropped}));
  });
  auto st = ch.stats();
  EXPECT_EQ(st.dropped, 4u);
  EXPECT_EQ(st.evicted, 0u);
  // The permit's value keeps its place ahead of the value sent after it.
  p.send(0);
  EXPECT_EQ(ch.try_recv(), 0);
  EXPECT_EQ(ch.try_recv(), 1);
  // Once the head holds a value again, drop_oldest evicts as before.
  ASSERT_EQ(ch.try_send(7), status::ok);
  ASSERT_EQ(ch.try_send(8), status::ok);
  EXPECT_EQ(ch.try_send(9), status::ok);
  EXPECT_EQ(ch.stats().evicted, 1u);
  EXPECT_EQ(ch.try_recv(), 8);
  EXPECT_EQ(ch.try_recv(), 9);
}

TEST(ChannelReservations, DropOldestEvictsTheOldestValueBeforeAReservation) {
  watchdog wd(30s);
  bp::channel<int> ch(2, overflow::drop_oldest);
  ASSERT_EQ(ch.try_send(1), status::ok);
  auto p = ch.try_reserve(1);  // full: [1, reserved]
  ASSERT_TRUE(p);
  EXPECT_EQ(ch.try_send(2), status::ok);  // 1 is evicted: [reserved, 2]
  EXPECT_EQ(ch.stats().evicted, 1u);
  EXPECT_EQ(ch.try_send(3), status::dropped);  // now the oldest slot holds no value
  p.send(0);
  EXPECT_EQ(ch.try_recv(), 0);
  EXPECT_EQ(ch.try_recv(), 2);
  EXPECT_FALSE(ch.try_recv());
  expect_invariants(ch, 4);  // three sends and the permit's
}

TEST(ChannelReservations, NeverWaitingVerbsNeverWaitWithAnyMixOfReservations) {
  watchdog wd(30s);
  for (auto policy :
       {overflow::block, overflow::drop_newest, overflow::drop_oldest, overflow::reject}) {
    for (std::size_t cap = 1; cap <= 4; ++cap) {
      bp::channel<int> ch(cap, policy);
      std::vector<bp::send_permit<int>> permits;
      for (std::size_t i = 0; i < cap; ++i) {
        if (i % 2 == 0) {
          permits.push_back(ch.try_reserve(1));
        } else {
          (void)ch.try_send(static_cast<int>(i));
        }
      }
      returns_promptly([&] {
        (void)ch.try_send(100);
        (void)ch.try_recv();
        (void)ch.try_send(101);
        std::vector<int> out;
        (void)ch.try_recv_many(out, cap);
        std::vector<int> in{1, 2, 3};
        (void)ch.try_send_n(in);
        (void)ch.try_reserve(cap);
        (void)ch.reserve_for(1, 0s);
        (void)ch.send_for(102, 0s);
        (void)ch.recv_for(0s);
      });
    }
  }
}

TEST(ChannelReservations, GivenBackSlotsAreFreeForAZeroTimeoutReservation) {
  watchdog wd(30s);
  bp::channel<int> ch(2);
  ASSERT_EQ(ch.try_send(1), status::ok);
  {
    auto p = ch.try_reserve(1);
    ASSERT_TRUE(p);
  }                             // given back behind the value
  ASSERT_EQ(ch.try_recv(), 1);  // every slot is free again
  auto a = ch.try_reserve(2);
  EXPECT_TRUE(a) << to_string(a.answer());
  a.release();
  ASSERT_EQ(ch.try_send(2), status::ok);
  {
    auto p = ch.try_reserve(1);
    ASSERT_TRUE(p);
  }
  ASSERT_EQ(ch.try_recv(), 2);
  auto b = ch.reserve_for(2, 0s);
  EXPECT_TRUE(b) << to_string(b.answer());
}

TEST(ChannelReservations, HighWatermarkCountsValuesNotReservedSlots) {
  watchdog wd(30s);
  bp::channel<int> ch(4);
  auto p = ch.reserve(2);
  ASSERT_EQ(ch.send(1), status::ok);
  ASSERT_EQ(ch.send(2), status::ok);
  EXPECT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch.stats().high_watermark, 2u);
  p.send(0);
  EXPECT_EQ(ch.size(), 3u);
  EXPECT_EQ(ch.stats().high_watermark, 3u);
  p.send(3);  // [0, 3, 1, 2]
  EXPECT_EQ(ch.stats().high_watermark, 4u);
  EXPECT_EQ(ch.try_recv(), 0);
  std::vector<int> batch{4};
  EXPECT_EQ(ch.try_send_n(batch).count, 1u);
  EXPECT_EQ(ch.stats().high_watermark, 4u);
  EXPECT_EQ(ch.size(), 4u);
}

TEST(ChannelReservations, TryRecvManyPassesGivenBackSlotsBetweenValues) {
  watchdog wd(30s);
  bp::channel<int> ch(4);
  auto p = ch.reserve(3);
  p.send(1);                              // [1, reserved, reserved]
  ASSERT_EQ(ch.try_send(2), status::ok);  // [1, reserved, reserved, 2]
  p.release();                            // [1, given back, given back, 2]
  std::vector<int> out;
  EXPECT_EQ(ch.try_recv_many(out, 4), 2u);
  EXPECT_EQ(out, (std::vector<int>{1, 2}));
  EXPECT_EQ(ch.size(), 0u);
}

TEST(ChannelReservations, RecvManyStopsAtAnUnfilledReservation) {
  watchdog wd(30s);
  bp::channel<int> ch(4);
  ASSERT_EQ(ch.try_send(1), status::ok);
  auto p = ch.reserve(1);
  ASSERT_EQ(ch.try_send(2), status::ok);  // [1, reserved, 2]: 2 waits behind the reservation
  std::vector<int> out;
  EXPECT_EQ(ch.try_recv_many(out, 4), 1u);
  p.send(9);
  EXPECT_EQ(ch.try_recv_many(out, 4), 2u);
  EXPECT_EQ(out, (std::vector<int>{1, 9, 2}));
}

// CPU time of the calling thread: unlike the wall clock it does not grow while the thread is
// preempted, so the bound below holds on a loaded machine.
std::chrono::nanoseconds thread_cpu_time() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

TEST(ChannelClose, ReceivingFromAClosedDrainedChannelDoesNotSpin) {
  watchdog wd(30s);
  for (std::size_t cap : {0u, 1u, 8u}) {
    bp::channel<int> ch(cap);
    ch.close();
    // 5000 rounds of 3 calls: a 10 us spin in each would burn 150 ms of CPU; checking for the end
    // first costs well under 10 ms even under a sanitizer.
    const auto t0 = thread_cpu_time();
    std::vector<int> out;
    for (int i = 0; i < 5000; ++i) {
      EXPECT_FALSE(ch.recv());
      EXPECT_FALSE(ch.recv_for(1s));
      EXPECT_EQ(ch.recv_many(out, 4), 0u);
    }
    EXPECT_LT(thread_cpu_time() - t0, 60ms) << "capacity " << cap;
  }
}

// The receive verbs that answer a status tell a timeout (or nothing buffered) from the end.
TEST(ChannelRecvStatus, TellsTimeoutFullAndClosedApart) {
  for (std::size_t cap : {std::size_t{0}, std::size_t{2}}) {
    bp::channel<int> ch(cap);
    int v = -1;
    EXPECT_EQ(ch.try_recv(v), status::full) << cap;
    EXPECT_EQ(ch.recv_for(v, 5ms), status::timeout) << cap;
    EXPECT_EQ(ch.recv_until(v, std::chrono::steady_clock::now() + 1ms), status::timeout) << cap;
    EXPECT_EQ(v, -1) << "untouched unless ok";
    if (cap != 0) {
      ASSERT_EQ(ch.send(7), status::ok);
      ch.close();
      EXPECT_EQ(ch.recv_for(v, 5ms), status::ok) << "values sent before close still arrive";
      EXPECT_EQ(v, 7);
    } else {
      ch.close();
    }
    EXPECT_EQ(ch.recv(v), status::closed) << cap;
    EXPECT_EQ(ch.try_recv(v), status::closed) << cap;
    EXPECT_EQ(ch.recv_for(v, 5ms), status::closed) << cap;
  }
}

TEST(ChannelRecvStatus, ReceiverEndsAnswerTheSameAndAnEmptyOneIsClosed) {
  watchdog dog(30s);
  auto [tx, rx] = bp::make_channel<int>(1);
  int v = 0;
  EXPECT_EQ(rx.try_recv(v), status::full);
  std::thread t([tx = std::move(tx)]() mutable { EXPECT_EQ(tx.send(5), status::ok); });
  EXPECT_EQ(rx.recv_for(v, 10s), status::ok);
  EXPECT_EQ(v, 5);
  t.join();  // the last sender is gone: closed
  EXPECT_EQ(rx.recv(v), status::closed);
  bp::receiver<int> empty;
  EXPECT_EQ(empty.recv_for(v, 1ms), status::closed);
}

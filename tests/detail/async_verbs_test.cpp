// The awaitable verbs beyond a channel's single send and receive: the channel's (and its ends')
// batch verbs and reservations, the budgeted channel, the memory budget and its streams, and
// the token and leaky buckets. Each against its blocking twin's status table, with
// cancellation (a cancelled wait holds nothing), close, timeouts and conservation under threads.
#include <bp/budgeted_channel.hpp>
#include <bp/channel.hpp>
#include <bp/clock.hpp>
#include <bp/leaky_bucket.hpp>
#include <bp/memory_budget.hpp>
#include <bp/task.hpp>
#include <bp/token_bucket.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "coro_util.hpp"
#include "test_util.hpp"

namespace {

using bp::status;
using bp::test::detached;
using namespace std::chrono_literals;

// --- channel: async_recv_many ----------------------------------------------------------------

detached recv_many(bp::channel<int>& ch, std::vector<int>& out, std::size_t max,
                   std::optional<std::size_t>& got, bp::async_options opts = {}) {
  got = co_await ch.async_recv_many(out, max, std::move(opts));
}

class AsyncBatch : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Capacities, AsyncBatch, ::testing::Values(0, 1, 8));

TEST_P(AsyncBatch, RecvManyTakesWhatIsBufferedOrWaitsForOne) {
  bp::channel<int> ch(GetParam());
  std::vector<int> out;
  std::optional<std::size_t> got;
  if (GetParam() >= 8) {
    for (int i = 0; i < 5; ++i) ASSERT_EQ(ch.try_send(i), status::ok);
    recv_many(ch, out, 3, got);
    ASSERT_EQ(got, 3u) << "buffered values are taken at once, up to max";
    EXPECT_EQ(out, (std::vector<int>{0, 1, 2}));
    out.clear();
    got.reset();
    recv_many(ch, out, 10, got);
    EXPECT_EQ(got, 2u);
    out.clear();
    got.reset();
  }
  recv_many(ch, out, 4, got);
  EXPECT_FALSE(got) << "nothing buffered: it suspends";
  ASSERT_EQ(ch.send_for(42, 1s), status::ok);
  ASSERT_EQ(got, 1u);
  EXPECT_EQ(out, (std::vector<int>{42}));
  got.reset();
  recv_many(ch, out, 4, got);
  ch.close();
  EXPECT_EQ(got, 0u) << "closed and drained: 0";
}

TEST_P(AsyncBatch, RecvManyCancelledTakesNothing) {
  bp::channel<int> ch(GetParam());
  std::stop_source stop;
  std::vector<int> out;
  std::optional<std::size_t> got;
  recv_many(ch, out, 4, got, stop.get_token());
  EXPECT_FALSE(got);
  stop.request_stop();
  EXPECT_EQ(got, 0u);
  EXPECT_TRUE(out.empty());
  if (GetParam() > 0) {
    ASSERT_EQ(ch.try_send(1), status::ok);
    EXPECT_EQ(ch.try_recv(), 1) << "the value sent after the cancel is still there";
  }
}

TEST(AsyncBatch, RecvManyZeroMaxAnswersZeroAtOnce) {
  bp::channel<int> ch(4);
  std::vector<int> out;
  std::optional<std::size_t> got;
  recv_many(ch, out, 0, got);
  EXPECT_EQ(got, 0u);
}

// --- channel: async_send_n -------------------------------------------------------------------

bp::task<bp::send_n_result> send_all(bp::channel<int>& ch, std::vector<int>& v,
                                     bp::async_options opts = {}) {
  co_return co_await ch.async_send_n(v, std::move(opts));
}

TEST_P(AsyncBatch, SendNDeliversEveryValueInOrderThroughAFullChannel) {
  bp::test::watchdog dog(30s);
  bp::channel<int> ch(GetParam());
  std::vector<int> v(1000);
  std::iota(v.begin(), v.end(), 0);
  std::vector<int> got;
  std::thread consumer([&] {
    while (auto x = ch.recv_for(5s)) got.push_back(*x);
  });
  const auto r = bp::sync_wait(send_all(ch, v));
  ch.close();
  consumer.join();
  EXPECT_EQ(r.count, v.size());
  EXPECT_EQ(r.answer, status::ok);
  EXPECT_EQ(got, v);
}

TEST_P(AsyncBatch, SendNCancelledStopsAtTheValueItWaitedFor) {
  bp::test::watchdog dog(30s);
  bp::channel<int> ch(GetParam());
  std::vector<int> v{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  const auto r = bp::sync_wait(send_all(ch, v, stop.get_token()));
  stopper.join();
  EXPECT_EQ(r.answer, status::cancelled);
  EXPECT_EQ(r.count, GetParam()) << "the free slots were filled, then it waited";
  std::size_t buffered = 0;
  while (ch.try_recv()) ++buffered;
  EXPECT_EQ(buffered, r.count);
}

TEST(AsyncBatch, SendNOnALossyChannelAnswersAsSendN) {
  bp::channel<int> ch(4, bp::overflow::reject);
  std::vector<int> v{1, 2, 3, 4, 5, 6};
  const auto r = bp::sync_wait(send_all(ch, v));
  EXPECT_EQ(r.count, 4u);
  EXPECT_EQ(r.answer, status::full);
  ch.close();
  const auto c = bp::sync_wait(send_all(ch, v));
  EXPECT_EQ(c.answer, status::closed);
  EXPECT_EQ(c.count, 0u);
}

// --- channel: async_reserve ------------------------------------------------------------------

detached reserve(bp::channel<int>& ch, std::size_t n, std::optional<bp::send_permit<int>>& out,
                 bp::async_options opts = {}) {
  out.emplace(co_await ch.async_reserve(n, std::move(opts)));
}
TEST(AsyncReserve, GrantsAtOnceOrWhenRoomComes) {
  bp::channel<int> ch(2);
  std::optional<bp::send_permit<int>> p;
  reserve(ch, 2, p);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->answer(), status::ok);
  std::optional<bp::send_permit<int>> q;
  reserve(ch, 1, q);
  EXPECT_FALSE(q) << "every slot is reserved: it suspends";
  p->send(1);
  p->send(2);
  EXPECT_FALSE(q);
  EXPECT_EQ(ch.try_recv(), 1);
  ASSERT_TRUE(q) << "a freed slot resumes it";
  EXPECT_EQ(q->answer(), status::ok);
  q->send(3);
  EXPECT_EQ(ch.try_recv(), 2);
  EXPECT_EQ(ch.try_recv(), 3);
  EXPECT_EQ(ch.stats().send_waits, 1u);
}

TEST(AsyncReserve, CancelledTimedOutAndClosedHoldNoSlot) {
  bp::channel<int> ch(1);
  ASSERT_EQ(ch.try_send(0), status::ok);
  std::stop_source stop;
  std::optional<bp::send_permit<int>> p;
  reserve(ch, 1, p, stop.get_token());
  EXPECT_FALSE(p);
  stop.request_stop();
  ASSERT_TRUE(p);
  EXPECT_EQ(p->answer(), status::cancelled);
  // Resumed by the deadline on bp's timer thread: sync_wait joins it properly.
  auto t = bp::sync_wait([&]() -> bp::task<bp::send_permit<int>> {
    co_return co_await ch.async_reserve_for(1, 5ms);
  }());
  EXPECT_EQ(t.answer(), status::timeout);
  EXPECT_EQ(ch.stats().timeouts, 1u);
  std::optional<bp::send_permit<int>> c;
  reserve(ch, 1, c);
  ch.close();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->answer(), status::closed);
  EXPECT_EQ(ch.try_recv(), 0);
  EXPECT_FALSE(ch.try_recv());
}

TEST(AsyncReserve, InvalidNThrowsAtTheCall) {
  bp::channel<int> ch(2);
  EXPECT_THROW((void)ch.async_reserve(3), std::invalid_argument);
  EXPECT_THROW((void)ch.async_reserve(0), std::invalid_argument);
}

// --- the ends ----------------------------------------------------------------------------------

bp::task<int> ends_roundtrip(bp::sender<int> tx, bp::receiver<int> rx) {
  std::vector<int> v{1, 2, 3};
  auto r = co_await tx.async_send_n(v);
  auto p = co_await tx.async_reserve(1);
  p.send(4);
  std::vector<int> out;
  std::size_t n = 0;
  while (n < 4) n += co_await rx.async_recv_many(out, 8);
  auto late = co_await rx.async_recv_for(1ms);
  co_return static_cast<int>(r.count) + std::accumulate(out.begin(), out.end(), 0) +
      (late ? 100 : 0);
}

TEST(AsyncEnds, BatchVerbsAndReservationsThroughTheEnds) {
  auto [tx, rx] = bp::make_channel<int>(8);
  EXPECT_EQ(bp::sync_wait(ends_roundtrip(tx, rx)), 3 + 10);
  bp::sender<int> empty;
  auto p = bp::sync_wait(
      [&]() -> bp::task<bp::send_permit<int>> { co_return co_await empty.async_reserve(4); }());
  EXPECT_EQ(p.answer(), status::closed) << "an empty sender answers closed";
}

// --- budgeted_channel --------------------------------------------------------------------------

std::size_t length(const std::string& s) {
  return s.size();
}

bp::task<status> budgeted_send(bp::budgeted_channel<std::string>& q, std::string& v,
                               bp::async_options opts = {}) {
  co_return co_await q.async_send(std::move(v), std::move(opts));
}

TEST(AsyncBudgeted, SendWaitsForBytesThenSlotsAndLosesNothing) {
  bp::test::watchdog dog(30s);
  bp::memory_budget budget(1000);
  bp::budgeted_channel<std::string> q(budget, {.capacity = 4, .size = length});
  constexpr int n = 2000;
  std::atomic<long> bytes{0};
  std::thread consumer([&] {
    for (;;) {
      auto v = bp::sync_wait(
          [&]() -> bp::task<std::optional<std::string>> { co_return co_await q.async_recv(); }());
      if (!v) break;
      bytes += static_cast<long>(v->size());
    }
  });
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    std::string s(100 + i % 200, 'x');
    if (bp::sync_wait(budgeted_send(q, s)) == status::ok) ++ok;
  }
  q.close();
  consumer.join();
  EXPECT_EQ(ok, n);
  long want = 0;
  for (int i = 0; i < n; ++i) want += 100 + i % 200;
  EXPECT_EQ(bytes.load(), want);
  EXPECT_LE(budget.peak(), 1000u);
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(AsyncBudgeted, CancelledSendKeepsTheValueAndHoldsNoBytes) {
  bp::test::watchdog dog(30s);
  bp::memory_budget budget(100);
  bp::budgeted_channel<std::string> q(budget, {.capacity = 4, .size = length});
  std::string first(80, 'a');
  ASSERT_EQ(bp::sync_wait(budgeted_send(q, first)), status::ok);
  std::string second(50, 'b');
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  EXPECT_EQ(bp::sync_wait(budgeted_send(q, second, stop.get_token())), status::cancelled);
  stopper.join();
  EXPECT_EQ(second, std::string(50, 'b')) << "a cancelled send leaves the value with the caller";
  EXPECT_EQ(budget.in_use(), 80u);
  q.close();
  std::string third(1, 'c');
  EXPECT_EQ(bp::sync_wait(budgeted_send(q, third)), status::closed);
  EXPECT_EQ(third, "c");
}

TEST(AsyncBudgeted, LossyPoliciesAnswerAtOnce) {
  bp::memory_budget budget(100);
  bp::budgeted_channel<std::string> q(
      budget, {.capacity = 4, .policy = bp::overflow::drop_newest, .size = length});
  std::string a(80, 'a');
  std::string b(80, 'b');
  EXPECT_EQ(bp::sync_wait(budgeted_send(q, a)), status::ok);
  EXPECT_EQ(bp::sync_wait(budgeted_send(q, b)), status::dropped);
  EXPECT_EQ(b, std::string(80, 'b'));
}

// --- memory_budget ---------------------------------------------------------------------------

detached reserve_bytes(bp::memory_budget::stream& s, std::size_t bytes,
                       std::optional<bp::memory_permit>& out, bp::async_options opts = {}) {
  out.emplace(co_await s.async_reserve(bytes, std::move(opts)));
}

TEST(AsyncMemoryBudget, WaitsForBytesAndCountsTheWait) {
  bp::memory_budget budget(100);
  auto a = budget.open_stream();
  auto b = budget.open_stream();
  auto held = a.try_reserve(100);
  ASSERT_TRUE(held);
  std::optional<bp::memory_permit> got;
  reserve_bytes(b, 40, got);
  EXPECT_FALSE(got) << "the budget is spent: it suspends";
  held.release(50);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status(), status::ok);
  EXPECT_EQ(got->bytes(), 40u);
  EXPECT_EQ(budget.stats().waits, 1u);
  EXPECT_EQ(budget.wait_times().snapshot().count, 1u);
  got.reset();
  held.release();
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(AsyncMemoryBudget, CancelTimeoutCloseAndTheEmptyStream) {
  bp::memory_budget budget(100);
  auto s = budget.open_stream();
  auto held = budget.try_reserve(100);
  std::stop_source stop;
  std::optional<bp::memory_permit> c;
  reserve_bytes(s, 10, c, stop.get_token());
  stop.request_stop();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status(), status::cancelled);
  EXPECT_EQ(c->bytes(), 0u);
  auto timed = bp::sync_wait(
      [&]() -> bp::task<bp::memory_permit> { co_return co_await s.async_reserve_for(10, 5ms); }());
  EXPECT_EQ(timed.status(), status::timeout);
  EXPECT_EQ(budget.stats().timeouts, 1u);
  std::optional<bp::memory_permit> closed;
  reserve_bytes(s, 10, closed);
  s.close();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->status(), status::closed);
  bp::memory_budget::stream empty;
  std::optional<bp::memory_permit> e;
  reserve_bytes(empty, 10, e);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->status(), status::closed);
  EXPECT_THROW((void)s.async_reserve(101), std::invalid_argument);
  held.release();
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(AsyncMemoryBudget, ManyCoroutinesShareTheBudgetUnderThreads) {
  bp::test::watchdog dog(60s);
  bp::memory_budget budget(1000);
  std::atomic<long> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto s = budget.open_stream();
      for (int i = 0; i < 500; ++i) {
        auto r = bp::sync_wait(
            [&]() -> bp::task<bp::memory_permit> { co_return co_await s.async_reserve(300); }());
        ASSERT_EQ(r.status(), status::ok);
        EXPECT_LE(budget.in_use(), 1000u);
        ++granted;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 2000);
  EXPECT_LE(budget.peak(), 1000u);
  EXPECT_EQ(budget.in_use(), 0u);
}

// --- token and leaky buckets -------------------------------------------------------------------

template <class Bucket>
detached acquire(Bucket& b, std::size_t n, std::optional<bp::result>& out,
                 bp::async_options opts = {}) {
  out.emplace(co_await b.async_acquire(n, std::move(opts)));
}

TEST(AsyncBuckets, TokenBucketOnAManualClockWakesOnAdvance) {
  bp::manual_clock clock;
  bp::token_bucket tb(10, 1, clock);  // one token every 100 ms
  std::optional<bp::result> first;
  acquire(tb, 1, first);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, status::ok) << "the burst is there at once";
  std::optional<bp::result> second;
  acquire(tb, 1, second);
  EXPECT_FALSE(second);
  clock.advance(50ms);
  EXPECT_FALSE(second) << "not yet due";
  clock.advance(50ms);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, status::ok);
  EXPECT_EQ(tb.stats().waits, 1u);
}

TEST(AsyncBuckets, CancelledAcquireGivesTheTokensBack) {
  bp::manual_clock clock;
  bp::token_bucket tb(10, 1, clock);
  ASSERT_TRUE(tb.try_acquire());
  std::stop_source stop;
  std::optional<bp::result> got;
  acquire(tb, 1, got, stop.get_token());
  EXPECT_FALSE(got);
  stop.request_stop();
  ASSERT_TRUE(got);
  EXPECT_EQ(*got, status::cancelled);
  clock.advance(100ms);
  EXPECT_TRUE(tb.try_acquire()) << "the cancelled claim gave its token back";
}

TEST(AsyncBuckets, CloseAndForAnswerAsTheBlockingVerbs) {
  bp::manual_clock clock;
  bp::leaky_bucket lb(10, 1, clock);
  ASSERT_TRUE(lb.try_acquire());
  auto far = bp::sync_wait(
      [&]() -> bp::task<bp::result> { co_return co_await lb.async_acquire_for(1, 10ms); }());
  EXPECT_EQ(far, status::timeout) << "not within the timeout: answered at once";
  std::optional<bp::result> waiting;
  acquire(lb, 1, waiting);
  EXPECT_FALSE(waiting);
  lb.close();
  ASSERT_TRUE(waiting);
  EXPECT_EQ(*waiting, status::closed);
  std::optional<bp::result> after;
  acquire(lb, 1, after);
  ASSERT_TRUE(after);
  EXPECT_EQ(*after, status::closed);
}

TEST(AsyncBuckets, RealClockResumesOnTheTimerWithTheRate) {
  bp::test::watchdog dog(30s);
  bp::token_bucket tb(200, 1);  // 5 ms per token
  const auto start = std::chrono::steady_clock::now();
  const int n = bp::sync_wait([&]() -> bp::task<int> {
    int ok = 0;
    for (int i = 0; i < 11; ++i)
      if (co_await tb.async_acquire(1)) ++ok;
    co_return ok;
  }());
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(n, 11);
  EXPECT_GE(took, 45ms) << "10 tokens beyond the burst at 5 ms each";
}

}  // namespace

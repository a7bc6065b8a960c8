// Cancellation of the blocking verbs by std::stop_token (bp/detail/stop.hpp): every overload that
// takes a token is woken by request_stop() and answers `cancelled` having taken nothing; a token
// stopped before the call cancels only a wait, never credit that is ready; a token never stopped
// changes nothing; close() still wakes a waiter that has a token.
// bp-test-timeout: 300
#include <bp/detail/stop.hpp>

#include <bp/budgeted_channel.hpp>
#include <bp/channel.hpp>
#include <bp/channel_ends.hpp>
#include <bp/clock.hpp>
#include <bp/concurrency_limiter.hpp>
#include <bp/leaky_bucket.hpp>
#include <bp/memory_budget.hpp>
#include <bp/semaphore.hpp>
#include <bp/token_bucket.hpp>
#include <bp/unbounded_channel.hpp>
#include <bp/watermark_buffer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "coro_util.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::status;
using bp::test::counted;
using bp::test::watchdog;
using steady = std::chrono::steady_clock;

// What a call answered once stopped, and how long after request_stop() it returned.
template <class R>
struct stopped_call {
  R answer;
  std::chrono::nanoseconds latency;
};

// Runs call(token) on a thread of its own; after `settle` (the call must still be waiting: it
// cannot return before the stop), requests stop and returns what the call answered.
template <class F>
auto stop_while_waiting(F call, std::chrono::milliseconds settle = 20ms) {
  using R = std::invoke_result_t<F&, std::stop_token>;
  std::stop_source src;
  std::optional<R> out;
  std::atomic<bool> returned{false};
  steady::time_point end{};
  std::thread t([&] {
    out.emplace(call(src.get_token()));
    end = steady::now();
    returned.store(true);
  });
  std::this_thread::sleep_for(settle);
  EXPECT_FALSE(returned.load()) << "the call did not wait";
  const auto start = steady::now();
  src.request_stop();
  t.join();
  const auto latency = std::max(end - start, steady::duration::zero());
  EXPECT_LT(latency, 1s);
  return stopped_call<R>{std::move(*out), latency};
}

// Cancels verb(arg, token) while it waits and expects `cancelled`; `arg` is the value sent or the
// variable received into, left for the caller to check.
template <class Arg, class Verb>
void expect_cancelled(Arg& arg, Verb verb) {
  auto r = stop_while_waiting([&](std::stop_token st) { return verb(arg, st); });
  EXPECT_EQ(r.answer, status::cancelled);
}

// As stop_while_waiting, but ends the wait by `close()` while the token stays unstopped.
template <class F, class Close>
auto close_while_waiting(F call, Close close) {
  using R = std::invoke_result_t<F&, std::stop_token>;
  std::stop_source src;
  std::optional<R> out;
  std::atomic<bool> returned{false};
  std::thread t([&] {
    out.emplace(call(src.get_token()));
    returned.store(true);
  });
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(returned.load()) << "the call did not wait";
  close();
  t.join();
  EXPECT_FALSE(src.stop_requested());
  return std::move(*out);
}

std::stop_token stopped_token() {
  static std::stop_source src = [] {
    std::stop_source s;
    s.request_stop();
    return s;
  }();
  return src.get_token();
}

// ---- channel: every send overload, capacity 0 and buffered --------------------------------------

class ChannelStop : public ::testing::TestWithParam<std::size_t> {
 protected:
  std::size_t cap() const { return GetParam(); }
  // Fills a buffered channel (values 100, 101, ...) so that the next send waits.
  template <class Ch>
  void fill(Ch& ch) {
    for (std::size_t i = 0; i < cap(); ++i)
      ASSERT_EQ(ch.try_send(counted(100 + static_cast<int>(i))), status::ok);
  }
  // The buffered values are exactly the fill, and nothing else (no sender left waiting on a
  // capacity-0 channel).
  template <class Ch>
  void expect_only_the_fill(Ch& ch) {
    for (std::size_t i = 0; i < cap(); ++i) {
      auto got = ch.try_recv();
      ASSERT_TRUE(got.has_value());
      EXPECT_EQ(got->value, 100 + static_cast<int>(i));
    }
    EXPECT_FALSE(ch.try_recv().has_value());
  }
};

INSTANTIATE_TEST_SUITE_P(Capacity, ChannelStop, ::testing::Values(std::size_t{0}, std::size_t{2}));

template <class Ch>
void expect_every_send_overload_cancelled(Ch& ch, std::size_t size) {
  const auto before = ch.stats();
  auto check = [&](const char* what, auto send) {
    SCOPED_TRACE(what);
    counted v(7);
    expect_cancelled(v, send);
    EXPECT_FALSE(v.moved_from);  // the value stays with the caller
    EXPECT_EQ(v.value, 7);
    EXPECT_EQ(ch.size(), size);
    EXPECT_EQ(ch.stats().sent, before.sent);
    EXPECT_EQ(ch.stats().received, before.received);
  };
  check("send(T&&)", [&](counted& v, std::stop_token st) { return ch.send(std::move(v), st); });
  check("send(const T&)",
        [&](counted& v, std::stop_token st) { return ch.send(std::as_const(v), st); });
  check("send_for(T&&)",
        [&](counted& v, std::stop_token st) { return ch.send_for(std::move(v), 30s, st); });
  check("send_for(const T&)",
        [&](counted& v, std::stop_token st) { return ch.send_for(std::as_const(v), 30s, st); });
  check("send_until(T&&)", [&](counted& v, std::stop_token st) {
    return ch.send_until(std::move(v), steady::now() + 30s, st);
  });
  check("send_until(const T&)", [&](counted& v, std::stop_token st) {
    return ch.send_until(std::as_const(v), std::chrono::system_clock::now() + 30s, st);
  });
}

TEST_P(ChannelStop, EverySendOverloadIsWokenAndKeepsItsValue) {
  watchdog dog(60s);
  bp::channel<counted> ch(cap());
  fill(ch);
  expect_every_send_overload_cancelled(ch, cap());
  expect_only_the_fill(ch);
}

template <class Ch>
void expect_every_recv_overload_cancelled(Ch& ch) {
  const auto before = ch.stats();
  auto check = [&](const char* what, auto recv) {
    SCOPED_TRACE(what);
    counted out(5);
    expect_cancelled(out, recv);
    EXPECT_EQ(out.value, 5);  // untouched
    EXPECT_EQ(ch.stats().received, before.received);
  };
  check("recv(T&)", [&](counted& out, std::stop_token st) { return ch.recv(out, st); });
  check("recv_for(T&)",
        [&](counted& out, std::stop_token st) { return ch.recv_for(out, 30s, st); });
  check("recv_until(T&)", [&](counted& out, std::stop_token st) {
    return ch.recv_until(out, std::chrono::system_clock::now() + 30s, st);
  });
  auto opt = stop_while_waiting([&](std::stop_token st) { return ch.recv(st); });
  EXPECT_FALSE(opt.answer.has_value());
  std::vector<counted> many;
  auto n = stop_while_waiting([&](std::stop_token st) { return ch.recv_many(many, 4, st); });
  EXPECT_EQ(n.answer, 0u);
  EXPECT_TRUE(many.empty());
  EXPECT_EQ(ch.stats().received, before.received);
}

TEST_P(ChannelStop, EveryRecvOverloadIsWokenAndTakesNothing) {
  watchdog dog(60s);
  bp::channel<counted> ch(cap());
  expect_every_recv_overload_cancelled(ch);
  // No receiver was left behind: on capacity 0 a try_send finds nobody to hand to.
  if (cap() == 0) {
    EXPECT_EQ(ch.try_send(counted(1)), status::full);
  } else {
    EXPECT_EQ(ch.try_send(counted(1)), status::ok);
    counted got;
    EXPECT_EQ(ch.try_recv(got), status::ok);
    EXPECT_EQ(got.value, 1);
  }
}

TEST_P(ChannelStop, SendNStopsAtTheValueItWasWaitingFor) {
  watchdog dog(60s);
  bp::channel<counted> ch(cap());
  std::vector<counted> values;
  for (int i = 0; i < static_cast<int>(cap()) + 2; ++i) values.emplace_back(i);
  auto r = stop_while_waiting([&](std::stop_token st) { return ch.send_n(values, st); });
  EXPECT_EQ(r.answer.answer, status::cancelled);
  EXPECT_EQ(r.answer.count, cap());
  for (std::size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(values[i].moved_from, i < cap()) << i;
    EXPECT_EQ(values[i].value, static_cast<int>(i));
  }
  EXPECT_EQ(ch.size(), cap());
}

TEST(ChannelStopReserve, AReserveWaitingForRoomIsCancelledAndHoldsNoSlot) {
  watchdog dog(60s);
  bp::channel<counted> ch(2);
  ASSERT_EQ(ch.try_send(counted(1)), status::ok);
  auto r = stop_while_waiting([&](std::stop_token st) { return ch.reserve(2, st); });
  EXPECT_FALSE(r.answer);
  EXPECT_EQ(r.answer.answer(), status::cancelled);
  EXPECT_EQ(ch.size(), 1u);
  // The free slot was not kept by the cancelled reservation.
  auto p = ch.try_reserve(1);
  EXPECT_TRUE(p);
}

TEST_P(ChannelStop, TheEndsOfAChannelAreCancelledAlike) {
  watchdog dog(60s);
  auto [tx, rx] = bp::make_channel<counted>(cap());
  {
    fill(tx);
    expect_every_send_overload_cancelled(tx, cap());
    std::vector<counted> values(1);
    auto n = stop_while_waiting([&](std::stop_token st) { return tx.send_n(values, st); });
    EXPECT_EQ(n.answer.answer, status::cancelled);
    EXPECT_EQ(n.answer.count, 0u);
    EXPECT_FALSE(values[0].moved_from);
    expect_only_the_fill(rx);
  }
  expect_every_recv_overload_cancelled(rx);
  if (cap() != 0) {
    fill(tx);
    auto p = stop_while_waiting([&](std::stop_token st) { return tx.reserve(1, st); });
    EXPECT_EQ(p.answer.answer(), status::cancelled);
    expect_only_the_fill(rx);
  }
}

// ---- budgeted_channel: the budget wait, then the slot wait --------------------------------------

TEST_P(ChannelStop, BudgetedSendIsCancelledInTheSlotWaitAndGivesItsBytesBack) {
  watchdog dog(60s);
  bp::memory_budget budget(1 << 20);
  bp::budgeted_channel<counted> ch(budget, {.capacity = cap()});
  fill(ch);
  const std::size_t held = ch.bytes();
  auto check = [&](const char* what, auto send) {
    SCOPED_TRACE(what);
    counted v(7);
    expect_cancelled(v, send);
    EXPECT_EQ(v.value, 7);  // back with the caller (moved in and out of the channel's entry)
    EXPECT_EQ(ch.size(), cap());
    EXPECT_EQ(ch.bytes(), held);
    EXPECT_EQ(budget.in_use(), held);
  };
  check("send(T&&)", [&](counted& v, std::stop_token st) { return ch.send(std::move(v), st); });
  check("send(const T&)",
        [&](counted& v, std::stop_token st) { return ch.send(std::as_const(v), st); });
  check("send_for", [&](counted& v, std::stop_token st) { return ch.send_for(v, 30s, st); });
  check("send_until", [&](counted& v, std::stop_token st) {
    return ch.send_until(std::move(v), steady::now() + 30s, st);
  });
  expect_only_the_fill(ch);
  EXPECT_EQ(budget.in_use(), 0u);
  auto opt = stop_while_waiting([&](std::stop_token st) { return ch.recv(st); });
  EXPECT_FALSE(opt.answer.has_value());
}

TEST_P(ChannelStop, BudgetedSendIsCancelledInTheBudgetWait) {
  watchdog dog(60s);
  bp::memory_budget budget(1000);
  bp::budgeted_channel<std::string> ch(
      budget, {.capacity = cap() + 1, .size = [](const std::string& s) { return s.size(); }});
  auto hog = budget.reserve(1000);  // every byte taken: the send waits for bytes
  ASSERT_TRUE(hog);
  const std::string text(100, 'x');
  std::string v = text;
  auto r = stop_while_waiting([&](std::stop_token st) { return ch.send(std::move(v), st); });
  EXPECT_EQ(r.answer, status::cancelled);
  EXPECT_EQ(v, text);
  EXPECT_EQ(ch.size(), 0u);
  EXPECT_EQ(ch.bytes(), 0u);
  EXPECT_EQ(budget.in_use(), 1000u);
  hog.release();
  EXPECT_EQ(budget.in_use(), 0u);
}

// ---- unbounded_channel --------------------------------------------------------------------------

TEST(UnboundedChannelStop, EveryRecvOverloadIsWokenAndTakesNothing) {
  watchdog dog(60s);
  bp::unbounded_channel<counted> ch;
  auto check = [&](const char* what, auto recv) {
    SCOPED_TRACE(what);
    counted out(5);
    expect_cancelled(out, recv);
    EXPECT_EQ(out.value, 5);
  };
  check("recv(T&)", [&](counted& out, std::stop_token st) { return ch.recv(out, st); });
  check("recv_for(T&)",
        [&](counted& out, std::stop_token st) { return ch.recv_for(out, 30s, st); });
  check("recv_until(T&)", [&](counted& out, std::stop_token st) {
    return ch.recv_until(out, steady::now() + 30s, st);
  });
  auto opt = stop_while_waiting([&](std::stop_token st) { return ch.recv(st); });
  EXPECT_FALSE(opt.answer.has_value());
  EXPECT_EQ(ch.send(counted(3)), status::ok);
  counted got;
  EXPECT_EQ(ch.recv(got, stopped_token()), status::ok);  // a value ready is taken
  EXPECT_EQ(got.value, 3);
}

// ---- semaphore ----------------------------------------------------------------------------------

TEST(SemaphoreStop, EveryAcquireOverloadIsWokenAndLeavesTheQueue) {
  watchdog dog(60s);
  bp::semaphore sem(0);
  auto a = stop_while_waiting([&](std::stop_token st) { return sem.acquire(1, st); });
  EXPECT_EQ(a.answer, status::cancelled);
  EXPECT_EQ(sem.waiting(), 0u);
  auto b = stop_while_waiting([&](std::stop_token st) { return sem.acquire_for(1, 30s, st); });
  EXPECT_EQ(b.answer, status::cancelled);
  EXPECT_EQ(sem.waiting(), 0u);
  auto c = stop_while_waiting([&](std::stop_token st) { return sem.acquire_permit(1, st); });
  EXPECT_FALSE(c.answer);
  EXPECT_EQ(c.answer.answer(), status::cancelled);
  EXPECT_EQ(c.answer.count(), 0u);
  EXPECT_EQ(sem.waiting(), 0u);
  sem.release(1);
  EXPECT_EQ(sem.available(), 1u);  // nobody took it
  EXPECT_TRUE(sem.try_acquire(1));
}

// A waiter with a token heads the queue (asking for `head_n` of `initial` permits), another
// waits behind it; the head is cancelled, then `release` permits are released: the one behind is
// served, and nothing is left held or queued.
void cancel_the_head(std::size_t initial, std::size_t head_n, std::size_t release) {
  bp::semaphore sem(initial);
  std::stop_source head_stop;
  std::atomic<int> head{-1}, next{-1};
  std::thread h(
      [&] { head = static_cast<int>(sem.acquire(head_n, head_stop.get_token()).value()); });
  ASSERT_TRUE(bp::test::eventually([&] { return sem.waiting() == 1; }));
  std::thread n([&] { next = static_cast<int>(sem.acquire_for(1, 30s).value()); });
  ASSERT_TRUE(bp::test::eventually([&] { return sem.waiting() == 2; }));
  EXPECT_EQ(next.load(), -1);  // queued behind the head (no barging)
  head_stop.request_stop();
  h.join();
  EXPECT_EQ(head.load(), static_cast<int>(status::cancelled));
  if (release != 0) {
    EXPECT_EQ(sem.waiting(), 1u);
    sem.release(release);
  }
  n.join();
  EXPECT_EQ(next.load(), static_cast<int>(status::ok));
  EXPECT_EQ(sem.waiting(), 0u);
  EXPECT_EQ(sem.available(), 0u);
}

TEST(SemaphoreStop, ACancelledHeadOfTheQueueLetsTheNextWaiterBeServedAtOnce) {
  watchdog dog(60s);
  cancel_the_head(1, 2, 0);  // the permit the head waited beside goes to the next waiter
}

TEST(SemaphoreStop, AfterACancelledWaiterALaterReleaseServesTheNextOne) {
  watchdog dog(60s);
  cancel_the_head(0, 1, 1);
}

// ---- throttles ----------------------------------------------------------------------------------

// A bucket of one unit per 100 ms on a manual clock, its unit just spent: `wait` is cancelled
// while it waits for the next unit, which must then come at 100 ms as if the call had never been
// made (a unit kept by the cancelled call would push it to 200 ms).
template <class Bucket, class Wait>
void expect_the_next_unit_back(bp::manual_clock& clock, Bucket& b, Wait wait) {
  ASSERT_TRUE(b.try_acquire());
  auto r = stop_while_waiting([&](std::stop_token st) -> bp::result { return wait(st); });
  EXPECT_EQ(r.answer, status::cancelled);
  clock.advance(99ms);
  EXPECT_FALSE(b.try_acquire());
  clock.advance(1ms);
  EXPECT_TRUE(b.try_acquire());
  EXPECT_FALSE(b.try_acquire());
}

// Token bucket: acquire, acquire_for, reservation::wait; leaky bucket: acquire, acquire_for.
TEST(BucketStop, ACancelledAcquireGivesItsUnitBack) {
  watchdog dog(60s);
  for (int verb = 0; verb < 5; ++verb) {
    SCOPED_TRACE(verb);
    bp::manual_clock clock;
    bp::token_bucket tokens(10.0, 1, clock);
    bp::leaky_bucket paced(10.0, 2, clock);
    if (verb < 3) {
      expect_the_next_unit_back(clock, tokens, [&](std::stop_token st) -> bp::result {
        if (verb == 0) return tokens.acquire(1, st);
        if (verb == 1) return tokens.acquire_for(1, 30s, st);
        auto res = tokens.reserve(1);
        return res.wait(st);
      });
    } else {
      expect_the_next_unit_back(clock, paced, [&](std::stop_token st) {
        return verb == 3 ? paced.acquire(1, st) : paced.acquire_for(1, 30s, st);
      });
    }
  }
}

TEST(TokenBucketStop, ASleepOnTheSteadyClockIsCancelledToo) {
  watchdog dog(60s);
  bp::token_bucket b(0.01, 1);  // the next token is 100 s away
  ASSERT_TRUE(b.try_acquire());
  auto r = stop_while_waiting([&](std::stop_token st) { return b.acquire(1, st); });
  EXPECT_EQ(r.answer, status::cancelled);
  bp::leaky_bucket l(0.01, 1);
  ASSERT_TRUE(l.try_acquire());
  auto s = stop_while_waiting([&](std::stop_token st) { return l.acquire(1, st); });
  EXPECT_EQ(s.answer, status::cancelled);
}

// ---- memory budget, concurrency limiter, watermark buffer ---------------------------------------

TEST(MemoryBudgetStop, EveryReserveOverloadIsWokenAndHoldsNoBytes) {
  watchdog dog(60s);
  bp::memory_budget budget(100);
  auto stream = budget.open_stream();
  auto hog = budget.reserve(100);
  ASSERT_TRUE(hog);
  auto check = [&](const char* what, auto reserve) {
    SCOPED_TRACE(what);
    auto r = stop_while_waiting([&](std::stop_token st) { return reserve(st); });
    EXPECT_FALSE(r.answer);
    EXPECT_EQ(r.answer.answer(), status::cancelled);
    EXPECT_EQ(budget.in_use(), 100u);
    EXPECT_EQ(stream.in_use(), 0u);
  };
  check("budget.reserve", [&](std::stop_token st) { return budget.reserve(10, st); });
  check("budget.reserve_for", [&](std::stop_token st) { return budget.reserve_for(10, 30s, st); });
  check("stream.reserve", [&](std::stop_token st) { return stream.reserve(10, st); });
  check("stream.reserve_for", [&](std::stop_token st) { return stream.reserve_for(10, 30s, st); });
  hog.release();
  EXPECT_EQ(budget.in_use(), 0u);
  EXPECT_TRUE(stream.try_reserve(100));
}

TEST(ConcurrencyLimiterStop, EveryAcquireOverloadIsWokenAndHoldsNoSlot) {
  watchdog dog(60s);
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto busy = lim.try_acquire();
  ASSERT_TRUE(busy);
  auto a = stop_while_waiting([&](std::stop_token st) { return lim.acquire(st); });
  EXPECT_FALSE(a.answer);
  EXPECT_EQ(a.answer.answer(), status::cancelled);
  EXPECT_EQ(lim.in_flight(), 1u);
  auto b = stop_while_waiting([&](std::stop_token st) { return lim.acquire_for(30s, st); });
  EXPECT_FALSE(b.answer);
  EXPECT_EQ(b.answer.answer(), status::cancelled);
  EXPECT_EQ(lim.in_flight(), 1u);
  { auto done = std::move(busy); }  // the one request in flight ends
  EXPECT_EQ(lim.in_flight(), 0u);
  EXPECT_TRUE(lim.try_acquire());
}

TEST(WatermarkBufferStop, WaitDrainIsWokenAndAnswersCancelled) {
  watchdog dog(60s);
  bp::watermark_buffer<std::string> b({.high_watermark = 4, .low_watermark = 2});
  EXPECT_EQ(b.wait_drain(stopped_token()), status::ok);  // nothing pending: done at once
  (void)b.write(std::string(2, 'a'));
  EXPECT_FALSE(b.write(std::string(2, 'b')));  // at the high watermark: a drain is pending
  auto a = stop_while_waiting([&](std::stop_token st) { return b.wait_drain(st); });
  EXPECT_EQ(a.answer, status::cancelled);
  auto c = stop_while_waiting([&](std::stop_token st) { return b.wait_drain_for(30s, st); });
  EXPECT_EQ(c.answer, status::cancelled);
  EXPECT_EQ(b.wait_drain(stopped_token()), status::cancelled);  // would wait: does not
  EXPECT_EQ(b.read(), "aa");
  EXPECT_EQ(b.wait_drain(stopped_token()), status::ok);  // the drain fired
}

// ---- a token stopped before the call ------------------------------------------------------------

TEST(StoppedBeforeTheCall, CreditThatIsReadyIsTakenAndAWaitIsNotStarted) {
  watchdog dog(60s);
  const auto st = stopped_token();
  {
    bp::channel<counted> ch(1);
    counted v(1);
    EXPECT_EQ(ch.send(std::move(v), st), status::ok);  // room: taken
    counted w(2);
    EXPECT_EQ(ch.send(std::move(w), st), status::cancelled);  // full: not waited for
    EXPECT_FALSE(w.moved_from);
    EXPECT_EQ(ch.send_for(std::move(w), 30s, st), status::cancelled);
    std::vector<counted> more(2);
    const auto n = ch.send_n(more, st);
    EXPECT_EQ(n.answer, status::cancelled);
    EXPECT_EQ(n.count, 0u);
    EXPECT_EQ(ch.reserve(1, st).answer(), status::cancelled);
    counted got;
    EXPECT_EQ(ch.recv(got, st), status::ok);  // a value: taken
    EXPECT_EQ(got.value, 1);
    EXPECT_EQ(ch.recv(got, st), status::cancelled);  // empty: not waited for
    EXPECT_FALSE(ch.recv(st).has_value());
    std::vector<counted> many;
    EXPECT_EQ(ch.recv_many(many, 4, st), 0u);
    const auto m = ch.send_n(more, st);  // room for one: taken; the second is not waited for
    EXPECT_EQ(m.count, 1u);
    EXPECT_EQ(m.answer, status::cancelled);
    EXPECT_FALSE(more[1].moved_from);
    EXPECT_EQ(ch.size(), 1u);
    EXPECT_EQ(ch.recv_many(many, 4, st), 1u);
    EXPECT_EQ(ch.reserve(1, st).answer(), status::ok);
  }
  {
    // Capacity 0: a receiver already waiting makes a stopped send complete.
    bp::channel<counted> ch(0);
    std::optional<counted> got;
    std::thread r([&] { got = ch.recv_for(30s); });
    ASSERT_TRUE(bp::test::eventually([&] { return ch.try_send(counted(-1)) == status::ok; }));
    r.join();
    EXPECT_EQ(got->value, -1);
    counted v(9);
    EXPECT_EQ(ch.send(std::move(v), st), status::cancelled);  // no receiver: not waited for
    EXPECT_FALSE(v.moved_from);
    EXPECT_EQ(ch.try_recv(got.emplace()), status::full);  // and not left queued
  }
  {
    bp::semaphore sem(1);
    EXPECT_EQ(sem.acquire(1, st), status::ok);
    EXPECT_EQ(sem.acquire(1, st), status::cancelled);
    EXPECT_EQ(sem.acquire_for(1, 30s, st), status::cancelled);
    EXPECT_EQ(sem.acquire_permit(1, st).answer(), status::cancelled);
    EXPECT_EQ(sem.waiting(), 0u);
    sem.release(1);
    EXPECT_EQ(sem.acquire_permit(1, st).answer(), status::ok);
  }
  {
    bp::manual_clock clock;
    bp::token_bucket b(10.0, 1, clock);
    EXPECT_EQ(b.acquire(1, st), status::ok);
    EXPECT_EQ(b.acquire(1, st), status::cancelled);
    EXPECT_EQ(b.acquire_for(1, 30s, st), status::cancelled);
    EXPECT_EQ(b.acquire_for(1, 50ms, st), status::timeout);  // too far: never waited
    clock.advance(100ms);
    EXPECT_EQ(b.acquire_for(1, 30s, st), status::ok);  // the cancelled calls gave theirs back
    bp::leaky_bucket l(10.0, 2, clock);
    EXPECT_EQ(l.acquire(1, st), status::ok);
    EXPECT_EQ(l.acquire(1, st), status::cancelled);
    clock.advance(100ms);
    EXPECT_EQ(l.acquire(1, st), status::ok);
    ASSERT_TRUE(b.try_acquire());
    auto res = b.reserve(1);
    ASSERT_EQ(res.delay(), 100ms);
    EXPECT_EQ(res.wait(st), status::cancelled);
    clock.advance(100ms);
    EXPECT_TRUE(b.try_acquire());
  }
  {
    bp::memory_budget budget(10);
    auto stream = budget.open_stream();
    auto a = budget.reserve(6, st);
    EXPECT_EQ(a.answer(), status::ok);
    EXPECT_EQ(budget.reserve(6, st).answer(), status::cancelled);
    EXPECT_EQ(stream.reserve_for(6, 30s, st).answer(), status::cancelled);
    EXPECT_EQ(stream.reserve(4, st).answer(), status::ok);
    EXPECT_EQ(budget.in_use(), 6u);
  }
  {
    bp::concurrency_limiter lim(bp::fixed_limit{1});
    auto a = lim.acquire(st);
    EXPECT_TRUE(a);
    EXPECT_EQ(lim.acquire(st).answer(), status::cancelled);
    EXPECT_EQ(lim.acquire_for(30s, st).answer(), status::cancelled);
    EXPECT_EQ(lim.in_flight(), 1u);
  }
  {
    bp::memory_budget budget(1 << 20);
    bp::budgeted_channel<counted> ch(budget, {.capacity = 1});
    EXPECT_EQ(ch.send(counted(1), st), status::ok);
    counted v(2);
    EXPECT_EQ(ch.send(std::move(v), st), status::cancelled);
    EXPECT_EQ(v.value, 2);
    EXPECT_EQ(ch.bytes(), sizeof(counted));
    EXPECT_EQ(ch.recv(st)->value, 1);
    EXPECT_FALSE(ch.recv(st).has_value());
  }
}

// ---- a token never stopped ----------------------------------------------------------------------

TEST(NeverStopped, ATokenThatIsNeverStoppedChangesNothing) {
  watchdog dog(60s);
  std::stop_source src;
  for (const std::stop_token& st : {src.get_token(), std::stop_token{}}) {
    bp::channel<int> ch(1);
    EXPECT_EQ(ch.send(1, st), status::ok);
    EXPECT_EQ(ch.send_for(2, 20ms, st), status::timeout);
    int got = 0;
    EXPECT_EQ(ch.recv(got, st), status::ok);
    EXPECT_EQ(ch.recv_for(got, 20ms, st), status::timeout);
    EXPECT_EQ(ch.recv_until(got, steady::now() + 20ms, st), status::timeout);
    bp::channel<int> zero(0);
    EXPECT_EQ(zero.send_for(1, 20ms, st), status::timeout);
    std::thread s([&] { EXPECT_EQ(zero.send(5, st), status::ok); });
    EXPECT_EQ(zero.recv(st), std::optional<int>(5));
    s.join();
    bp::semaphore sem(1);
    EXPECT_EQ(sem.acquire(1, st), status::ok);
    EXPECT_EQ(sem.acquire_for(1, 20ms, st), status::timeout);
    EXPECT_EQ(sem.waiting(), 0u);
    bp::manual_clock clock;
    bp::token_bucket b(10.0, 1, clock);
    EXPECT_EQ(b.acquire(1, st), status::ok);
    EXPECT_EQ(b.acquire_for(1, 50ms, st), status::timeout);
    bp::memory_budget budget(10);
    auto a = budget.reserve(10, st);
    EXPECT_TRUE(a);
    EXPECT_EQ(budget.reserve_for(1, 20ms, st).answer(), status::timeout);
    bp::concurrency_limiter lim(bp::fixed_limit{1});
    auto p = lim.acquire(st);
    EXPECT_TRUE(p);
    EXPECT_EQ(lim.acquire_for(20ms, st).answer(), status::timeout);
    bp::watermark_buffer<std::string> w({.high_watermark = 1});
    EXPECT_FALSE(w.write(std::string("x")));
    EXPECT_EQ(w.wait_drain_for(20ms, st), status::timeout);
  }
  EXPECT_FALSE(src.stop_requested());
}

// ---- close() still wakes a waiter that has a token ----------------------------------------------

TEST_P(ChannelStop, CloseWakesAWaiterThatHasAToken) {
  watchdog dog(60s);
  {
    bp::channel<counted> ch(cap());
    fill(ch);
    counted v(7);
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return ch.send(std::move(v), st); },
                                  [&] { ch.close(); }),
              status::closed);
    EXPECT_FALSE(v.moved_from);
  }
  {
    bp::channel<counted> ch(cap());
    counted out;
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return ch.recv(out, st); },
                                  [&] { ch.close(); }),
              status::closed);
  }
  {
    bp::memory_budget budget(1 << 20);
    bp::budgeted_channel<counted> ch(budget, {.capacity = cap()});
    fill(ch);
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return ch.send(counted(1), st); },
                                  [&] { ch.close(); }),
              status::closed);
  }
}

TEST(CloseWithAToken, EveryPrimitiveStillAnswersClosed) {
  watchdog dog(60s);
  {
    bp::unbounded_channel<int> ch;
    EXPECT_FALSE(
        close_while_waiting([&](std::stop_token st) { return ch.recv(st); }, [&] { ch.close(); }));
  }
  {
    bp::channel<int> ch(2);
    ASSERT_EQ(ch.try_send(1), status::ok);
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return ch.reserve(2, st); },
                                  [&] { ch.close(); })
                  .answer(),
              status::closed);
  }
  {
    bp::semaphore sem(0);
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return sem.acquire(1, st); },
                                  [&] { sem.close(); }),
              status::closed);
  }
  {
    bp::manual_clock clock;
    bp::token_bucket b(10.0, 1, clock);
    ASSERT_TRUE(b.try_acquire());
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return b.acquire(1, st); },
                                  [&] { b.close(); }),
              status::closed);
  }
  {
    bp::memory_budget budget(10);
    auto hog = budget.reserve(10);
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return budget.reserve(1, st); },
                                  [&] { budget.close(); })
                  .answer(),
              status::closed);
  }
  {
    bp::concurrency_limiter lim(bp::fixed_limit{1});
    auto busy = lim.try_acquire();
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return lim.acquire(st); },
                                  [&] { lim.close(); })
                  .answer(),
              status::closed);
  }
  {
    bp::watermark_buffer<std::string> w({.high_watermark = 1});
    EXPECT_FALSE(w.write(std::string("x")));
    EXPECT_EQ(close_while_waiting([&](std::stop_token st) { return w.wait_drain(st); },
                                  [&] { w.close(); }),
              status::closed);
  }
}

// ---- drop handlers run inside the scope ---------------------------------------------------------

TEST(DropHandlerInsideTheScope, AWaitInADropHandlerIsCancelledByTheSendersToken) {
  watchdog dog(60s);
  bp::semaphore gate(0);
  std::atomic<int> handler_answer{-1};
  bp::channel<int> ch(
      {.capacity = 1, .policy = bp::overflow::drop_oldest, .on_undelivered = [&](int&&) {
         handler_answer = static_cast<int>(gate.acquire(1).value());
       }});
  ASSERT_EQ(ch.try_send(1), status::ok);
  // The eviction calls the handler, which waits on the gate: the sender's token ends that wait.
  auto r = stop_while_waiting([&](std::stop_token st) { return ch.send(2, st); });
  EXPECT_EQ(handler_answer.load(), static_cast<int>(status::cancelled));
  EXPECT_EQ(r.answer, status::ok);  // the send itself needed no wait: the value is in
  EXPECT_EQ(ch.try_recv(), std::optional<int>(2));
  EXPECT_EQ(gate.waiting(), 0u);
}

// ---- a coroutine resumed inside a verb's scope
// -----------------------------------------------------

bp::test::detached receive_then_wait(bp::channel<int>& ch, bp::semaphore& gate,
                                     std::optional<int>& got, std::atomic<int>& answer) {
  got = co_await ch.async_recv();
  answer = static_cast<int>(gate.acquire_for(1, 20ms).value());  // a wait of its own, no token
}

// A send that hands its value to a waiting coroutine resumes it inline, inside the send. The
// coroutine is not part of the send: its own waits must not watch the sender's token.
TEST_P(ChannelStop, ACoroutineResumedByASendDoesNotWatchTheSendersToken) {
  watchdog dog(60s);
  bp::channel<int> ch(cap());
  bp::semaphore gate(0);
  std::optional<int> got;
  std::atomic<int> answer{-1};
  receive_then_wait(ch, gate, got, answer);
  ASSERT_EQ(answer.load(), -1);  // suspended in async_recv
  EXPECT_EQ(ch.send(5, stopped_token()), status::ok);
  ASSERT_TRUE(bp::test::eventually([&] { return answer.load() != -1; }));
  EXPECT_EQ(got, std::optional<int>(5));
  EXPECT_EQ(answer.load(), static_cast<int>(status::timeout));
}

// ---- wake latency -------------------------------------------------------------------------------

void report_latency(const char* what, std::vector<std::chrono::nanoseconds> v) {
  std::sort(v.begin(), v.end());
  const auto us = [](std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e3; };
  const std::size_t p99 = std::min(v.size() - 1, (v.size() * 99) / 100);
  std::printf(
      "[ latency  ] %-34s request_stop -> return over %zu trials: median %.1f us, p99 %.1f "
      "us, max %.1f us\n",
      what, v.size(), us(v[v.size() / 2]), us(v[p99]), us(v.back()));
  EXPECT_LT(v.back(), 1s);
}

template <class F>
void measure(const char* what, F call) {
  constexpr int trials = 200;
  std::vector<std::chrono::nanoseconds> lat;
  lat.reserve(trials);
  for (int i = 0; i < trials; ++i) lat.push_back(stop_while_waiting(call, 2ms).latency);
  report_latency(what, std::move(lat));
}

TEST(WakeLatency, RequestStopToReturn) {
  watchdog dog(120s);
  bp::channel<int> buffered(4);
  measure("channel<int>(4)::recv(out, stop)", [&](std::stop_token st) {
    int out = 0;
    return buffered.recv(out, st);
  });
  bp::channel<int> zero(0);
  measure("channel<int>(0)::send(v, stop)", [&](std::stop_token st) { return zero.send(1, st); });
  bp::semaphore sem(0);
  measure("semaphore::acquire(1, stop)", [&](std::stop_token st) { return sem.acquire(1, st); });
  bp::manual_clock clock;
  bp::token_bucket bucket(10.0, 1, clock);
  ASSERT_TRUE(bucket.try_acquire());
  measure("token_bucket::acquire(1, stop)",
          [&](std::stop_token st) { return bucket.acquire(1, st); });
}

// ---- race: senders and receivers with tokens, stops and close -----------------------------------

// A stop_source per thread, replaced after each stop so that the thread can try again.
class restartable_stop {
 public:
  std::stop_token token() {
    std::lock_guard lock(m_);
    if (src_.stop_requested()) src_ = std::stop_source();
    return src_.get_token();
  }
  void stop() {
    std::lock_guard lock(m_);
    src_.request_stop();
  }

 private:
  std::mutex m_;
  std::stop_source src_;
};

void race(std::size_t capacity, int senders, int receivers, int per_sender) {
  bp::channel<std::unique_ptr<int>> ch(capacity);
  std::vector<restartable_stop> stops(static_cast<std::size_t>(senders + receivers));
  std::vector<std::vector<int>> kept(static_cast<std::size_t>(senders));
  std::vector<std::vector<int>> got(static_cast<std::size_t>(receivers));
  std::atomic<int> cancels{0};
  std::atomic<int> sent{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < senders; ++s) {
    threads.emplace_back([&, s] {
      auto& mine = kept[static_cast<std::size_t>(s)];
      auto& stop = stops[static_cast<std::size_t>(s)];
      for (int i = 0; i < per_sender; ++i) {
        auto v = std::make_unique<int>(s * per_sender + i);
        for (;;) {
          const status a = ch.send(std::move(v), stop.token());
          if (a == status::ok) {
            EXPECT_EQ(v, nullptr);
            ++sent;
            break;
          }
          EXPECT_NE(v, nullptr);  // not taken: still ours
          if (a == status::cancelled) {
            ++cancels;
            continue;
          }
          EXPECT_EQ(a, status::closed);
          mine.push_back(*v);
          for (int j = i + 1; j < per_sender; ++j) mine.push_back(s * per_sender + j);
          return;
        }
      }
    });
  }
  for (int r = 0; r < receivers; ++r) {
    threads.emplace_back([&, r] {
      auto& mine = got[static_cast<std::size_t>(r)];
      auto& stop = stops[static_cast<std::size_t>(senders + r)];
      for (;;) {
        std::unique_ptr<int> out;
        const status a = ch.recv(out, stop.token());
        if (a == status::ok) {
          mine.push_back(*out);
          if (mine.size() % 8 == 0) std::this_thread::sleep_for(50us);  // senders wait, too
        } else if (a == status::cancelled) {
          ++cancels;
          EXPECT_EQ(out, nullptr);
        } else {
          EXPECT_EQ(a, status::closed);
          return;
        }
      }
    });
  }
  std::thread stopper([&] {
    std::minstd_rand rng(42);
    const int total = senders * per_sender;
    while (!ch.is_closed()) {
      stops[rng() % stops.size()].stop();
      std::this_thread::yield();
      if (sent.load() >= total * 3 / 4) ch.close();  // close with sends still to come
    }
  });
  stopper.join();
  for (auto& t : threads) t.join();
  std::vector<int> all;
  for (auto& v : got) all.insert(all.end(), v.begin(), v.end());
  const std::size_t received = all.size();
  for (auto& v : kept) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<std::size_t>(senders * per_sender)) << "lost or duplicated";
  for (int i = 0; i < senders * per_sender; ++i) ASSERT_EQ(all[static_cast<std::size_t>(i)], i);
  EXPECT_EQ(ch.stats().received, received);
  std::printf("[ race     ] capacity %zu: %zu received, %zu kept by senders, %d cancelled calls\n",
              capacity, received, all.size() - received, cancels.load());
}

TEST(StopRace, EveryValueIsReceivedOnceOrStaysWithItsSender) {
  watchdog dog(240s);
  for (int round = 0; round < 3; ++round) {
    race(0, 3, 2, 2000);
    race(4, 3, 2, 2000);
  }
}

TEST(StopRace, SemaphorePermitsAreConserved) {
  watchdog dog(120s);
  bp::semaphore sem(2);
  std::vector<restartable_stop> stops(4);
  std::atomic<bool> done{false};
  std::atomic<int> held{0};
  std::atomic<int> cancels{0};
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < stops.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const auto n = 1 + static_cast<std::size_t>(i % 2);
        if (sem.acquire(n, stops[t].token())) {
          EXPECT_LE(held.fetch_add(static_cast<int>(n)) + static_cast<int>(n), 2);
          std::this_thread::yield();  // others queue meanwhile
          held.fetch_sub(static_cast<int>(n));
          sem.release(n);
        } else {
          ++cancels;
        }
      }
    });
  }
  std::thread stopper([&] {
    std::minstd_rand rng(7);
    while (!done.load()) {
      stops[rng() % stops.size()].stop();
      std::this_thread::yield();
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  stopper.join();
  EXPECT_EQ(sem.available(), 2u);
  EXPECT_EQ(sem.waiting(), 0u);
  std::printf("[ race     ] semaphore: %d cancelled acquires\n", cancels.load());
}

}  // namespace

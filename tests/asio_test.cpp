// bp-test-timeout: 300
#include <bp/asio.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <asio.hpp>
#include <asio/experimental/deferred.hpp>
#include <atomic>
#include <bp/budgeted_channel.hpp>
#include <bp/channel.hpp>
#include <bp/channel_ends.hpp>
#include <bp/clock.hpp>
#include <bp/concurrency_limiter.hpp>
#include <bp/leaky_bucket.hpp>
#include <bp/memory_budget.hpp>
#include <bp/select.hpp>
#include <bp/semaphore.hpp>
#include <bp/token_bucket.hpp>
#include <bp/unbounded_channel.hpp>
#include <bp/watermark_buffer.hpp>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "asio_pubsub.hpp"
#include "test_util.hpp"

namespace {

namespace bpa = bp::asio_interop;
using namespace std::chrono_literals;
using bp::status;
using bp::test::watchdog;

// Runs `io` until it has no work left: every operation below holds work until its handler
// has been posted, so an io_context that stops early means a lost completion. Bounded: a
// hang fails here after 10 s instead of blocking the test.
void run_to_end(asio::io_context& io) {
  io.restart();
  io.run_for(10s);
  EXPECT_TRUE(io.stopped()) << "the io_context still had work after 10 s";
}

// Starts `body` as an asio coroutine on `io` and runs it once, up to its first wait.
template <class F>
void spawn(asio::io_context& io, F body) {
  asio::co_spawn(io, std::move(body), asio::detached);
  io.restart();
  io.poll();
}

// ---- every verb, every token kind ----------------------------------------------------------

TEST(AsioRecv, UseAwaitableWaitsAndResumesOnTheCoroutinesThread) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<int> ch(4);
  std::optional<std::pair<status, int>> got;
  std::thread::id resumed_on;
  spawn(io, [&]() -> asio::awaitable<void> {
    auto [st, v] = co_await bpa::async_recv(ch, asio::use_awaitable);
    got.emplace(st, v);
    resumed_on = std::this_thread::get_id();
  });
  EXPECT_FALSE(got);  // suspended: the channel is empty
  std::thread sender([&] { EXPECT_EQ(ch.send(7), status::ok); });
  run_to_end(io);
  sender.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->first, status::ok);
  EXPECT_EQ(got->second, 7);
  EXPECT_EQ(resumed_on, std::this_thread::get_id());  // not the sender's thread
}

TEST(AsioRecv, CallbackAndDeferred) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<std::string> ch(4);
  std::vector<std::string> got;
  auto cb = [&](status st, std::string v) {
    EXPECT_EQ(st, status::ok);
    got.push_back(std::move(v));
  };
  bpa::async_recv(ch, asio::bind_executor(io, cb));
  auto later = bpa::async_recv(ch, asio::experimental::deferred);
  ASSERT_EQ(ch.send(std::string("a")), status::ok);
  ASSERT_EQ(ch.send(std::string("b")), status::ok);
  io.restart();
  io.poll();
  EXPECT_EQ(got, std::vector<std::string>{"a"});  // the deferred one has not started
  std::move(later)(asio::bind_executor(io, cb));
  run_to_end(io);
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b"}));
}

TEST(AsioRecv, AnImmediateAnswerIsPostedNotCalledInline) {
  asio::io_context io;
  bp::channel<int> ch(4);
  ASSERT_EQ(ch.send(1), status::ok);
  bool called = false;
  bpa::async_recv(ch, asio::bind_executor(io, [&](status, int) { called = true; }));
  EXPECT_FALSE(called);
  run_to_end(io);
  EXPECT_TRUE(called);
}

TEST(AsioSend, WaitsWhileFullWithEachToken) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<int> ch(1);
  ASSERT_EQ(ch.send(0), status::ok);  // full from here on
  std::vector<status> answers;
  int a = 1, b = 2, c = 3;
  spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back(co_await bpa::async_send(ch, a, asio::use_awaitable));
  });
  bpa::async_send(ch, b, asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  auto later = bpa::async_send(ch, c, asio::experimental::deferred);
  io.poll();
  EXPECT_TRUE(answers.empty());
  std::move(later)(asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  std::thread receiver([&] {
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(ch.recv_for(10s)) << i;
  });
  run_to_end(io);
  receiver.join();
  EXPECT_EQ(answers, std::vector<status>(3, status::ok));
}

TEST(AsioSend, LossyPoliciesAnswerAtOnce) {
  asio::io_context io;
  bp::channel<int> ch(1, bp::overflow::drop_newest);
  ASSERT_EQ(ch.send(0), status::ok);
  int v = 5;
  std::optional<status> got;
  bpa::async_send(ch, v, asio::bind_executor(io, [&](status s) { got = s; }));
  run_to_end(io);
  EXPECT_EQ(got, status::dropped);
  EXPECT_EQ(v, 5);
}

TEST(AsioTimed, SendForRecvForAcquireForAnswerTimeout) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<std::string> full(1);
  ASSERT_EQ(full.send(std::string("x")), status::ok);
  bp::channel<std::string> empty(1);
  bp::semaphore sem(0);
  std::string kept = "kept";
  std::vector<status> answers;
  spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back(co_await bpa::async_send_for(full, kept, 20ms, asio::use_awaitable));
    auto [st, v] = co_await bpa::async_recv_for(empty, 20ms, asio::use_awaitable);
    EXPECT_TRUE(v.empty());
    answers.push_back(st);
    answers.push_back(co_await bpa::async_acquire_for(sem, 1, 20ms, asio::use_awaitable));
  });
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>(3, status::timeout));
  EXPECT_EQ(kept, "kept");

  // and `ok` when the credit comes first
  ASSERT_EQ(empty.send(std::string("y")), status::ok);
  sem.release(1);
  answers.clear();
  bpa::async_recv_for(empty, 10s, asio::bind_executor(io, [&](status s, std::string v) {
                        EXPECT_EQ(v, "y");
                        answers.push_back(s);
                      }));
  bpa::async_acquire_for(sem, 1, 10s,
                         asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>(2, status::ok));
}

TEST(AsioSemaphore, AcquireWithEachToken) {
  watchdog dog(60s);
  asio::io_context io;
  bp::semaphore sem(0);
  std::vector<status> answers;
  spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back(co_await bpa::async_acquire(sem, 2, asio::use_awaitable));
  });
  bpa::async_acquire(sem, 1, asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  auto later = bpa::async_acquire(sem, 1, asio::experimental::deferred);
  std::move(later)(asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  io.poll();
  EXPECT_TRUE(answers.empty());
  std::thread releaser([&] { sem.release(4); });
  run_to_end(io);
  releaser.join();
  EXPECT_EQ(answers, std::vector<status>(3, status::ok));
  EXPECT_EQ(sem.available(), 0u);
  EXPECT_THROW(bpa::async_acquire(sem, std::size_t{1} << 63, asio::detached),
               std::invalid_argument);
}

TEST(AsioLimiter, AcquireWithEachToken) {
  watchdog dog(60s);
  asio::io_context io;
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto first = lim.try_acquire();
  ASSERT_TRUE(first);
  std::vector<bp::limiter_permit> permits;
  spawn(io, [&]() -> asio::awaitable<void> {
    permits.push_back(co_await bpa::async_acquire(lim, asio::use_awaitable));
  });
  bpa::async_acquire(
      lim, asio::bind_executor(io, [&](bp::limiter_permit p) { permits.push_back(std::move(p)); }));
  auto later = bpa::async_acquire(lim, asio::experimental::deferred);
  std::move(later)(
      asio::bind_executor(io, [&](bp::limiter_permit p) { permits.push_back(std::move(p)); }));
  io.poll();
  EXPECT_TRUE(permits.empty());
  first.on_ignore();  // done: the slot goes to the first waiter
  // Each waiter gets the slot when the one before gives it back.
  for (std::size_t n = 1; n <= 3; ++n) {
    io.restart();
    while (permits.size() < n && io.run_one_for(10s) != 0) {
    }
    ASSERT_EQ(permits.size(), n);
    EXPECT_TRUE(permits.back());
    EXPECT_EQ(lim.in_flight(), 1u);
    permits.back().on_ignore();
  }
  EXPECT_EQ(lim.in_flight(), 0u);
  // Timed: an empty permit answering timeout, and nothing held.
  auto held = lim.try_acquire();
  ASSERT_TRUE(held);
  std::optional<bp::limiter_permit> timed;
  bpa::async_acquire_for(lim, 20ms, asio::bind_executor(io, [&](bp::limiter_permit p) {
                           timed.emplace(std::move(p));
                         }));
  run_to_end(io);
  ASSERT_TRUE(timed);
  EXPECT_FALSE(*timed);
  EXPECT_EQ(timed->answer(), status::timeout);
  EXPECT_EQ(lim.in_flight(), 1u);
}

TEST(AsioBudget, ReserveWaitsForBytesOnTheBudgetAndOnAStream) {
  watchdog dog(60s);
  asio::io_context io;
  bp::memory_budget budget(100);
  auto stream = budget.open_stream();
  auto held = budget.try_reserve(100);
  ASSERT_TRUE(held);
  std::vector<bp::memory_permit> permits;
  spawn(io, [&]() -> asio::awaitable<void> {
    permits.push_back(co_await bpa::async_reserve(stream, 40, asio::use_awaitable));
  });
  bpa::async_reserve(budget, 30, asio::bind_executor(io, [&](bp::memory_permit p) {
                       permits.push_back(std::move(p));
                     }));
  io.poll();
  EXPECT_TRUE(permits.empty()) << "the budget is spent: both wait";
  std::thread releaser([&] { held.release(); });
  run_to_end(io);
  releaser.join();
  ASSERT_EQ(permits.size(), 2u);
  EXPECT_EQ(permits[0].bytes() + permits[1].bytes(), 70u);
  EXPECT_EQ(budget.in_use(), 70u);
  auto full = budget.try_reserve(30);
  std::optional<bp::memory_permit> timed;
  bpa::async_reserve_for(stream, 10, 5ms, asio::bind_executor(io, [&](bp::memory_permit p) {
                           timed.emplace(std::move(p));
                         }));
  run_to_end(io);
  ASSERT_TRUE(timed);
  EXPECT_EQ(timed->status(), status::timeout);
  EXPECT_THROW(bpa::async_reserve(budget, 101, asio::detached), std::invalid_argument);
}

TEST(AsioBuckets, AcquireSleepsUntilTheTokensAreDueAndCancelGivesThemBack) {
  watchdog dog(60s);
  asio::io_context io;
  bp::manual_clock clock;
  bp::token_bucket tb(10, 1, clock);
  bp::leaky_bucket lb(10, 1, clock);
  ASSERT_TRUE(tb.try_acquire());
  ASSERT_TRUE(lb.try_acquire());
  std::vector<status> answers;
  bpa::async_acquire(tb, 1, asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  bpa::async_acquire(lb, 1, asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  io.poll();
  EXPECT_TRUE(answers.empty()) << "not due yet";
  clock.advance(100ms);
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>(2, status::ok));
  asio::cancellation_signal cancel;
  std::optional<status> cancelled;
  bpa::async_acquire(tb, 1,
                     asio::bind_cancellation_slot(
                         cancel.slot(), asio::bind_executor(io, [&](status s) { cancelled = s; })));
  io.poll();
  EXPECT_FALSE(cancelled);
  asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  run_to_end(io);
  EXPECT_EQ(cancelled, status::cancelled);
  clock.advance(100ms);
  EXPECT_TRUE(tb.try_acquire()) << "the cancelled wait gave its token back";
  EXPECT_THROW(bpa::async_acquire(tb, 2, asio::detached), std::invalid_argument);
}

TEST(AsioBuckets, AcquireForAnswersTimeoutAtOnceWhenTheTokensCannotComeInTime) {
  watchdog dog(60s);
  asio::io_context io;
  bp::manual_clock clock;
  bp::token_bucket tb(10, 1, clock);  // one token per 100 ms
  bp::leaky_bucket lb(10, 1, clock);
  ASSERT_TRUE(tb.try_acquire());
  ASSERT_TRUE(lb.try_acquire());
  std::vector<status> answers;
  auto record = asio::bind_executor(io, [&](status s) { answers.push_back(s); });
  bpa::async_acquire_for(tb, 1, 10ms, record);  // due in 100 ms: not within 10 ms
  bpa::async_acquire_for(lb, 1, 10ms, record);
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>(2, status::timeout));
  answers.clear();
  bpa::async_acquire_for(tb, 1, 1s, record);  // due in 100 ms: waits for it
  bpa::async_acquire_for(lb, 1, 1s, record);
  io.restart();
  io.poll();
  EXPECT_TRUE(answers.empty()) << "not due yet";
  clock.advance(100ms);
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>(2, status::ok));
  EXPECT_THROW(bpa::async_acquire_for(tb, 2, 1s, asio::detached), std::invalid_argument);
}

TEST(AsioWatermark, WaitDrainWithEachTokenAndCancel) {
  watchdog dog(60s);
  asio::io_context io;
  bp::watermark_buffer<std::string> buf({.high_watermark = 8});
  std::vector<status> answers;
  bpa::async_wait_drain(buf, asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>{status::ok}) << "not paused: ok at once";
  ASSERT_FALSE(buf.write(std::string(10, 'x')).keep_writing);
  spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back(co_await bpa::async_wait_drain(buf, asio::use_awaitable));
  });
  auto deferred_op = bpa::async_wait_drain(buf, asio::experimental::deferred);
  std::move(deferred_op)(asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  io.poll();
  EXPECT_EQ(answers.size(), 1u) << "paused: both wait";
  ASSERT_TRUE(buf.try_read());  // empty: the drain
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>(3, status::ok));

  ASSERT_FALSE(buf.write(std::string(10, 'x')).keep_writing);
  asio::cancellation_signal cancel;
  std::optional<status> cancelled;
  bpa::async_wait_drain(
      buf, asio::bind_cancellation_slot(cancel.slot(),
                                        asio::bind_executor(io, [&](status s) { cancelled = s; })));
  io.restart();
  io.poll();
  EXPECT_FALSE(cancelled);
  asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  run_to_end(io);
  EXPECT_EQ(cancelled, status::cancelled);
  std::optional<status> closed;
  bpa::async_wait_drain(buf, asio::bind_executor(io, [&](status s) { closed = s; }));
  io.restart();
  io.poll();
  buf.close();
  run_to_end(io);
  EXPECT_EQ(closed, status::closed);
}

TEST(AsioSelect, TakesFromTheReadyCaseAndConsumesNothingElse) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<int> a(1), b(1), full(1);
  ASSERT_EQ(full.send(1), status::ok);
  int from_a = 0, from_b = 0, unsent = 5;
  std::optional<bp::select_result> got;
  spawn(io, [&]() -> asio::awaitable<void> {
    got = co_await bpa::async_select(bp::recv_case(a, from_a), bp::recv_case(b, from_b),
                                     bp::send_case(full, unsent), asio::use_awaitable);
  });
  EXPECT_FALSE(got) << "nothing ready: it waits";
  std::thread sender([&] { EXPECT_EQ(b.send(42), status::ok); });
  run_to_end(io);
  sender.join();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->index, 1u);
  EXPECT_EQ(got->answer, status::ok);
  EXPECT_EQ(from_b, 42);
  EXPECT_EQ(from_a, 0);
  EXPECT_EQ(unsent, 5) << "the send case not chosen keeps its value";
  EXPECT_EQ(full.size(), 1u);

  // A callback, and a closed channel's case is ready with `closed`.
  a.close();
  std::optional<bp::select_result> cb;
  bpa::async_select(bp::recv_case(a, from_a), bp::recv_case(b, from_b),
                    asio::bind_executor(io, [&](bp::select_result r) { cb = r; }));
  run_to_end(io);
  EXPECT_EQ(cb, (bp::select_result{0, status::closed}));
}

TEST(AsioSelect, SelectForTimesOutAndCancelTakesNothing) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<int> a(1), b(1);
  int x = 0, y = 0;
  std::optional<bp::select_result> timed;
  const auto t0 = std::chrono::steady_clock::now();
  bpa::async_select_for(30ms, bp::recv_case(a, x), bp::recv_case(b, y),
                        asio::bind_executor(io, [&](bp::select_result r) { timed = r; }));
  run_to_end(io);
  EXPECT_EQ(timed, (bp::select_result{bp::select_none, status::timeout}));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 30ms);

  asio::cancellation_signal cancel;
  std::optional<bp::select_result> cancelled;
  bpa::async_select(
      bp::recv_case(a, x), bp::recv_case(b, y),
      asio::bind_cancellation_slot(
          cancel.slot(), asio::bind_executor(io, [&](bp::select_result r) { cancelled = r; })));
  io.restart();
  io.poll();
  EXPECT_FALSE(cancelled);
  asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
  run_to_end(io);
  EXPECT_EQ(cancelled, (bp::select_result{bp::select_none, status::cancelled}));
  ASSERT_EQ(a.send(9), status::ok);
  EXPECT_EQ(a.try_recv(), std::optional<int>(9)) << "the cancelled select took nothing";
}

TEST(AsioBudgeted, ABudgetedChannelSendsLikeAChannel) {
  watchdog dog(60s);
  asio::io_context io;
  bp::memory_budget budget(10);
  bp::budgeted_channel<std::string> q(
      budget, {.capacity = 4, .size = [](const std::string& s) { return s.size(); }});
  std::string first(8, 'a'), second(5, 'b');
  std::vector<status> answers;
  bpa::async_send(q, first, asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  bpa::async_send(q, second, asio::bind_executor(io, [&](status s) { answers.push_back(s); }));
  io.poll();
  ASSERT_EQ(answers, std::vector<status>{status::ok}) << "the second waits for bytes";
  std::thread taker([&] { EXPECT_EQ(q.recv(), std::string(8, 'a')); });
  run_to_end(io);
  taker.join();
  EXPECT_EQ(answers, (std::vector<status>{status::ok, status::ok}));
  EXPECT_EQ(q.recv(), std::string(5, 'b'));
}

TEST(AsioEnds, SenderAndReceiverAndUnbounded) {
  watchdog dog(60s);
  asio::io_context io;
  auto ends = bp::make_channel<int>(2);
  auto& tx = ends.first;
  auto& rx = ends.second;
  bp::unbounded_channel<int> u;
  std::vector<int> got;
  spawn(io, [&]() -> asio::awaitable<void> {
    for (;;) {
      auto [st, v] = co_await bpa::async_recv(rx, asio::use_awaitable);
      if (st != status::ok) break;
      got.push_back(v);
    }
    auto [st, v] = co_await bpa::async_recv(u, asio::use_awaitable);
    got.push_back(st == status::ok ? v : -1);
  });
  spawn(io, [&, tx = tx]() mutable -> asio::awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      int v = i;
      EXPECT_EQ(co_await bpa::async_send(tx, v, asio::use_awaitable), status::ok);
    }
    tx.reset();  // the last sender: the channel closes
  });
  tx.reset();
  ASSERT_EQ(u.send(42), status::ok);
  run_to_end(io);
  EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 42}));
}

// ---- where handlers run --------------------------------------------------------------------

TEST(AsioExecutor, CompletesOnTheHandlersStrand) {
  watchdog dog(60s);
  asio::io_context io;
  auto strand = asio::make_strand(io);
  bp::channel<int> ch(1);
  std::atomic<int> on_strand{0};
  constexpr int waits = 50;
  for (int i = 0; i < waits; ++i) {
    bpa::async_recv(ch, asio::bind_executor(strand, [&](status s, int) {
                      EXPECT_EQ(s, status::ok);
                      if (strand.running_in_this_thread()) on_strand.fetch_add(1);
                    }));
  }
  std::thread sender([&] {
    for (int i = 0; i < waits; ++i) EXPECT_EQ(ch.send_for(int{i}, 10s), status::ok);
  });
  // Two threads run the io_context: the strand still serializes the handlers.
  std::thread second([&] { io.run_for(10s); });
  io.run_for(10s);
  second.join();
  EXPECT_TRUE(io.stopped());
  sender.join();
  EXPECT_EQ(on_strand.load(), waits);
}

TEST(AsioExecutor, CompletesOnASecondIoContext) {
  watchdog dog(60s);
  asio::io_context io1, io2;
  bp::channel<int> ch(1);
  bool on_io2 = false;
  // Waits from io1's coroutine, completes on io2 (the handler's executor), woken by a send
  // made on io1.
  bpa::async_recv(ch, asio::bind_executor(io2, [&](status s, int v) {
                    EXPECT_EQ(s, status::ok);
                    EXPECT_EQ(v, 9);
                    on_io2 = io2.get_executor().running_in_this_thread() &&
                             !io1.get_executor().running_in_this_thread();
                  }));
  spawn(io1, [&]() -> asio::awaitable<void> {
    int v = 9;
    EXPECT_EQ(co_await bpa::async_send(ch, v, asio::use_awaitable), status::ok);
  });
  run_to_end(io1);
  EXPECT_FALSE(on_io2);  // io2 has not run yet: the handler waits for it
  std::thread t([&] { run_to_end(io2); });
  t.join();
  EXPECT_TRUE(on_io2);
}

// ---- cancellation and close ----------------------------------------------------------------

TEST(AsioCancel, ASlotCancelsASendAndTheValueStays) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<std::string> ch(1);
  ASSERT_EQ(ch.send(std::string("first")), status::ok);
  std::string v = "second";
  asio::cancellation_signal sig;
  std::optional<status> got;
  bpa::async_send(ch, v,
                  asio::bind_cancellation_slot(
                      sig.slot(), asio::bind_executor(io, [&](status s) { got = s; })));
  io.poll();
  EXPECT_FALSE(got);
  sig.emit(asio::cancellation_type::terminal);
  run_to_end(io);
  EXPECT_EQ(got, status::cancelled);
  EXPECT_EQ(v, "second");
  EXPECT_EQ(ch.size(), 1u);
  EXPECT_FALSE(sig.slot().has_handler());  // cleared before the handler ran
}

TEST(AsioCancel, AnAwaitablesCancellationCancelsARecvAndAnAcquire) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<int> ch(1);
  bp::semaphore sem(0);
  asio::cancellation_signal sig1, sig2;
  std::vector<status> answers;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto [st, v] = co_await bpa::async_recv(ch, asio::use_awaitable);
        answers.push_back(st);
      },
      asio::bind_cancellation_slot(sig1.slot(), asio::detached));
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        answers.push_back(co_await bpa::async_acquire(sem, 1, asio::use_awaitable));
      },
      asio::bind_cancellation_slot(sig2.slot(), asio::detached));
  io.poll();
  EXPECT_TRUE(answers.empty());
  sig1.emit(asio::cancellation_type::terminal);
  sig2.emit(asio::cancellation_type::terminal);
  run_to_end(io);
  EXPECT_EQ(answers, std::vector<status>(2, status::cancelled));
  // Nothing was taken: a value sent now is there, the permits are all free.
  ASSERT_EQ(ch.send(3), status::ok);
  EXPECT_EQ(ch.try_recv(), std::optional<int>(3));
  sem.release(1);
  EXPECT_EQ(sem.available(), 1u);
}

TEST(AsioCancel, ALimiterWaitCancelsWithAnEmptyPermit) {
  watchdog dog(60s);
  asio::io_context io;
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto held = lim.try_acquire();
  asio::cancellation_signal sig;
  std::optional<status> answer;
  bpa::async_acquire(lim, asio::bind_cancellation_slot(
                              sig.slot(), asio::bind_executor(io, [&](bp::limiter_permit p) {
                                answer = p.answer();
                                EXPECT_FALSE(p);
                              })));
  io.poll();
  sig.emit(asio::cancellation_type::terminal);
  run_to_end(io);
  EXPECT_EQ(answer, status::cancelled);
  EXPECT_EQ(lim.in_flight(), 1u);
}

TEST(AsioClose, CloseWakesEveryWaitWithClosed) {
  watchdog dog(60s);
  asio::io_context io;
  bp::channel<int> empty(1), full(1);
  ASSERT_EQ(full.send(0), status::ok);
  bp::semaphore sem(0);
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  auto held = lim.try_acquire();
  int v = 1;
  std::vector<status> answers;
  spawn(io, [&]() -> asio::awaitable<void> {
    auto [st, x] = co_await bpa::async_recv(empty, asio::use_awaitable);
    answers.push_back(st);
  });
  spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back(co_await bpa::async_send(full, v, asio::use_awaitable));
  });
  spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back(co_await bpa::async_acquire(sem, 1, asio::use_awaitable));
  });
  spawn(io, [&]() -> asio::awaitable<void> {
    answers.push_back((co_await bpa::async_acquire(lim, asio::use_awaitable)).answer());
  });
  EXPECT_TRUE(answers.empty());
  std::thread closer([&] {
    empty.close();
    full.close();
    sem.close();
    lim.close();
  });
  run_to_end(io);
  closer.join();
  EXPECT_EQ(answers, std::vector<status>(4, status::closed));
  EXPECT_EQ(v, 1);
}

// ---- the pub/sub server: a slow subscriber loses its oldest lines, nobody else does -------

std::size_t resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;  // their allocators keep freed memory: RSS says nothing
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

// Reads lines, checking that each starts with the next number, and releases one permit of
// `got` per line.
asio::awaitable<void> read_in_order(asio::ip::tcp::socket& s, bp::semaphore& got,
                                    std::atomic<long>& count, std::atomic<bool>& in_order) {
  std::string buf;
  for (;;) {
    asio::error_code ec;
    const std::size_t n = co_await asio::async_read_until(
        s, asio::dynamic_buffer(buf), '\n', asio::redirect_error(asio::use_awaitable, ec));
    if (ec) co_return;
    if (std::stol(buf.substr(0, n)) != count.load()) in_order = false;
    buf.erase(0, n);
    count.fetch_add(1);
    got.release(1);
  }
}

TEST(AsioPubSub, ASilentSubscriberLosesItsOldestLinesAndNobodyElseWaits) {
  watchdog dog(240s);
  constexpr long messages = 20000, batch = 100;
  constexpr std::size_t capacity = 256;
  constexpr int fast_readers = 3;

  asio::io_context server_io;
  bp::semaphore connected(0);
  pubsub::server srv(server_io.get_executor(), 0,
                     {.outbox_capacity = capacity,
                      .send_buffer = 8192,
                      .on_accept = [&](pubsub::session&) { connected.release(1); }});
  srv.start();
  std::thread server_thread([&] { server_io.run_for(200s); });

  asio::io_context client_io;
  const asio::ip::tcp::endpoint at(asio::ip::address_v4::loopback(), srv.port());
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> fast;
  for (int i = 0; i < fast_readers; ++i) {
    fast.push_back(std::make_unique<asio::ip::tcp::socket>(client_io));
    fast.back()->connect(at);
    // One at a time, so the server's list is in this order.
    ASSERT_EQ(connected.acquire_for(1, 10s), status::ok);
  }
  asio::ip::tcp::socket slow(client_io);
  slow.open(asio::ip::tcp::v4());
  slow.set_option(asio::socket_base::receive_buffer_size(1024));
  slow.connect(at);  // never read from
  ASSERT_EQ(connected.acquire_for(1, 10s), status::ok);

  bp::semaphore got(0);
  std::atomic<long> counts[fast_readers] = {};
  std::atomic<bool> in_order[fast_readers] = {true, true, true};
  for (int i = 0; i < fast_readers; ++i) {
    asio::co_spawn(client_io, read_in_order(*fast[i], got, counts[i], in_order[i]), asio::detached);
  }
  std::thread client_thread([&] { client_io.run_for(200s); });

  // Publishes in batches, each once the fast subscribers have read the one before: they
  // pace the publisher, the silent one cannot.
  const std::string pad(500, '.');
  std::size_t rss_after_warmup = 0;
  for (long i = 0; i < messages; i += batch) {
    for (long j = i; j < i + batch; ++j) srv.publish(std::to_string(j) + pad + "\n");
    ASSERT_EQ(got.acquire_for(fast_readers * batch, 60s), status::ok) << "at " << i;
    if (i + batch == 2000) rss_after_warmup = resident_bytes();
  }
  const std::size_t rss_at_end = resident_bytes();

  const auto subscribers = srv.sessions();
  ASSERT_EQ(subscribers.size(), std::size_t{fast_readers + 1});
  for (int i = 0; i < fast_readers; ++i) {
    const auto st = subscribers[i]->outbox().stats();
    EXPECT_EQ(st.sent, std::uint64_t{messages});
    EXPECT_EQ(st.evicted, 0u) << i;
    EXPECT_EQ(counts[i].load(), messages) << i;
    EXPECT_TRUE(in_order[i].load()) << i;
  }
  auto& outbox = subscribers[fast_readers]->outbox();
  const auto st = outbox.stats();
  EXPECT_EQ(st.sent, std::uint64_t{messages});
  EXPECT_GT(st.evicted, std::uint64_t{messages} / 2);  // it could take a few kB at most
  EXPECT_LE(st.high_watermark, capacity);
  EXPECT_LE(outbox.size(), capacity);
  // 20 000 lines of 500 bytes kept for the silent subscriber would be 10 MB.
  if (!sanitized) {
    EXPECT_LT(rss_at_end, rss_after_warmup + 4 * 1024 * 1024)
        << "RSS grew from " << rss_after_warmup << " to " << rss_at_end;
  }

  server_io.stop();
  client_io.stop();
  server_thread.join();
  client_thread.join();
  srv.stop();  // closes the outboxes; the io_context's destructor frees the waiting writers
}

}  // namespace

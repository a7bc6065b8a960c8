// The coroutine half of the waiting core (detail/async_op.hpp), through the verbs that use it:
// bp::channel's async_send / async_recv (buffered and capacity 0) and bp::semaphore's
// async_acquire. Each answer of the blocking verbs' status table, cancellation by stop_token,
// 100 000 suspended coroutines woken by close and by stop, deep hand-off chains on one thread,
// executors, and conservation under threads (TSan runs this file too).
#include <bp/channel.hpp>
#include <bp/concurrency_limiter.hpp>
#include <bp/semaphore.hpp>
#include <bp/unbounded_channel.hpp>
#include <bp/watermark_buffer.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include "coro_util.hpp"
#include "test_util.hpp"

namespace {

using bp::status;
using bp::test::detached;
using namespace std::chrono_literals;

detached send_one(bp::channel<int>& ch, int v, status& out, bp::async_options opts = {}) {
  out = co_await ch.async_send(std::move(v), std::move(opts));
}
detached send_keep(bp::channel<int>& ch, int& v, status& out, bp::async_options opts = {}) {
  out = co_await ch.async_send(std::move(v), std::move(opts));
}
detached recv_one(bp::channel<int>& ch, std::optional<int>& out, bool& done,
                  bp::async_options opts = {}) {
  out = co_await ch.async_recv(std::move(opts));
  done = true;
}
detached recv_status(bp::channel<int>& ch, int& out, std::optional<status>& answer,
                     bp::async_options opts = {}) {
  answer = co_await ch.async_recv(out, std::move(opts));
}

class AsyncChannel : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(Capacities, AsyncChannel, ::testing::Values(0, 1, 4));

TEST_P(AsyncChannel, SendSuspendsUntilThereIsRoomThenAnswersOk) {
  bp::channel<int> ch(GetParam());
  for (std::size_t i = 0; i < GetParam(); ++i)
    ASSERT_EQ(ch.try_send(static_cast<int>(i)), status::ok);
  status answer = status::timeout;
  send_one(ch, 99, answer);
  EXPECT_EQ(answer, status::timeout) << "a send into a full channel must suspend";
  EXPECT_EQ(detached::live.load(), 1);
  std::vector<int> got;
  for (std::size_t i = 0; i <= GetParam(); ++i) {
    auto v = ch.try_recv();
    ASSERT_TRUE(v.has_value()) << i;
    got.push_back(*v);
  }
  EXPECT_EQ(answer, status::ok);
  EXPECT_EQ(got.back(), 99);
  EXPECT_EQ(detached::live.load(), 0);
}

TEST_P(AsyncChannel, RecvSuspendsUntilAValueThenEndsAtClose) {
  bp::channel<int> ch(GetParam());
  std::optional<int> v;
  bool done = false;
  recv_one(ch, v, done);
  EXPECT_FALSE(done);
  ASSERT_EQ(ch.send_for(7, 1s), status::ok);
  EXPECT_TRUE(done);
  EXPECT_EQ(v, 7);
  done = false;
  recv_one(ch, v, done);
  EXPECT_FALSE(done);
  ch.close();
  EXPECT_TRUE(done);
  EXPECT_EQ(v, std::nullopt);
  std::optional<status> answer;
  int out = 0;
  recv_status(ch, out, answer);
  EXPECT_EQ(answer, status::closed);
}

TEST_P(AsyncChannel, ClosedChannelAnswersClosedAndKeepsTheValue) {
  bp::channel<int> ch(GetParam());
  ch.close();
  int v = 5;
  status answer = status::ok;
  send_keep(ch, v, answer);
  EXPECT_EQ(answer, status::closed);
  EXPECT_EQ(v, 5);
}

TEST_P(AsyncChannel, CancelledSendLeavesTheValueWithTheCaller) {
  bp::channel<int> ch(GetParam());
  for (std::size_t i = 0; i < GetParam(); ++i) ASSERT_EQ(ch.try_send(1), status::ok);
  std::stop_source stop;
  int v = 42;
  status answer = status::timeout;
  send_keep(ch, v, answer, stop.get_token());
  EXPECT_EQ(answer, status::timeout);
  stop.request_stop();
  EXPECT_EQ(answer, status::cancelled);
  EXPECT_EQ(v, 42);
  EXPECT_EQ(ch.size(), GetParam());
  // The cancelled sender left no trace: a receiver gets only what was really sent.
  for (std::size_t i = 0; i < GetParam(); ++i) EXPECT_EQ(ch.try_recv(), 1);
  EXPECT_EQ(ch.try_recv(), std::nullopt);
}

TEST_P(AsyncChannel, CancelledRecvTakesNothing) {
  bp::channel<int> ch(GetParam());
  std::stop_source stop;
  int out = -1;
  std::optional<status> answer;
  recv_status(ch, out, answer, stop.get_token());
  EXPECT_FALSE(answer.has_value());
  stop.request_stop();
  EXPECT_EQ(answer, status::cancelled);
  EXPECT_EQ(out, -1);
  if (GetParam() > 0) {
    ASSERT_EQ(ch.try_send(3), status::ok);
    EXPECT_EQ(ch.try_recv(), 3);
  } else {
    EXPECT_EQ(ch.try_send(3), status::full) << "the cancelled receiver must have left the queue";
  }
}

TEST_P(AsyncChannel, AStopRequestedBeforehandCancelsOnlyAWaitThatWouldSuspend) {
  bp::channel<int> ch(GetParam());
  std::stop_source stop;
  stop.request_stop();
  std::optional<status> answer;
  int out = 0;
  recv_status(ch, out, answer, stop.get_token());
  EXPECT_EQ(answer, status::cancelled);
  if (GetParam() > 0) {
    ASSERT_EQ(ch.try_send(8), status::ok);
    recv_status(ch, out, answer, stop.get_token());
    EXPECT_EQ(answer, status::ok) << "a value ready now is taken even with a stopped token";
    EXPECT_EQ(out, 8);
  }
}

TEST(AsyncChannelPolicies, LossyPoliciesAnswerAtOnceAsTheBlockingSend) {
  struct row {
    bp::overflow policy;
    status expect;
  };
  for (const row r :
       {row{bp::overflow::drop_newest, status::dropped}, row{bp::overflow::reject, status::full},
        row{bp::overflow::drop_oldest, status::ok}}) {
    bp::channel<int> ch(1, r.policy);
    ASSERT_EQ(ch.try_send(1), status::ok);
    int v = 2;
    status answer = status::timeout;
    send_keep(ch, v, answer);
    EXPECT_EQ(answer, r.expect) << bp::to_string(r.policy);
    EXPECT_EQ(v, 2) << "an int is copied by the move; the point is that nothing waits";
    EXPECT_EQ(detached::live.load(), 0);
  }
}

// A ping-pong of a million round trips between two coroutines on one thread: every hand-off
// resumes the other side inline, through the trampoline, so the stack does not grow.
detached pinger(bp::channel<int>& a, bp::channel<int>& b, int rounds, long& sum) {
  for (int i = 0; i < rounds; ++i) {
    int x = i;
    if (co_await a.async_send(std::move(x)) != status::ok) break;
    int y = 0;
    if (co_await b.async_recv(y) != status::ok) break;
    sum += y;
  }
  a.close();
}
detached ponger(bp::channel<int>& a, bp::channel<int>& b) {
  int v = 0;
  while (co_await a.async_recv(v) == status::ok) {
    if (co_await b.async_send(std::move(v)) != status::ok) break;
  }
}

TEST_P(AsyncChannel, AMillionRoundTripsOnOneThread) {
  bp::test::watchdog dog(60s);
  bp::channel<int> a(GetParam()), b(GetParam());
  long sum = 0;
  constexpr int rounds = 1'000'000;
  ponger(a, b);
  pinger(a, b, rounds, sum);
  EXPECT_EQ(sum, static_cast<long>(rounds) * (rounds - 1) / 2);
  EXPECT_EQ(detached::live.load(), 0);
}

// --- the ends of make_channel -------------------------------------------------------------------

detached produce_on(bp::sender<int> tx, int n) {
  for (int i = 0; i < n; ++i) {
    if (co_await tx.async_send(int{i}) != status::ok) break;
  }
  tx.reset();  // the frame outlives the loop: give the channel up explicitly
}
detached consume_on(bp::receiver<int> rx, long& sum, bool& done) {
  while (auto v = co_await rx.async_recv()) sum += *v;
  done = true;
}

TEST_P(AsyncChannel, TheEndsOfMakeChannelAwaitAndAnEmptyEndAnswersClosed) {
  auto [tx, rx] = bp::make_channel<int>(GetParam());
  long sum = 0;
  bool done = false;
  consume_on(std::move(rx), sum, done);
  produce_on(std::move(tx), 1000);
  EXPECT_TRUE(done) << "the last sender's reset() closed the channel";
  EXPECT_EQ(sum, 999L * 1000 / 2);
  bp::receiver<int> empty_rx;
  bp::sender<int> empty_tx;
  std::optional<int> v = 5;
  bool ended = false;
  [](bp::receiver<int> r, std::optional<int>& out, bool& flag) -> detached {
    out = co_await r.async_recv();
    flag = true;
  }(empty_rx, v, ended);
  EXPECT_TRUE(ended);
  EXPECT_EQ(v, std::nullopt);
  status s = status::ok;
  [](bp::sender<int> t, status& out) -> detached { out = co_await t.async_send(1); }(empty_tx, s);
  EXPECT_EQ(s, status::closed);
}

// --- many suspended coroutines -------------------------------------------------------------------

detached park_recv(bp::channel<int>& ch, std::stop_token stop, std::atomic<long>& ended,
                   std::atomic<long>& cancelled) {
  int v = 0;
  const status s = co_await ch.async_recv(v, stop);
  (s == status::cancelled ? cancelled : ended).fetch_add(1, std::memory_order_relaxed);
}

TEST(AsyncChannelScale, HundredThousandSuspendedReceiversWokenByCloseAndByStop) {
  bp::test::watchdog dog(120s);
  constexpr long n = 100'000;
  for (const bool by_stop : {false, true}) {
    bp::channel<int> ch(1);
    std::stop_source stop;
    std::atomic<long> ended{0}, cancelled{0};
    for (long i = 0; i < n; ++i) park_recv(ch, stop.get_token(), ended, cancelled);
    EXPECT_EQ(detached::live.load(), n);
    const std::size_t frame = detached::last_frame_size.load();
    RecordProperty(by_stop ? "frame_bytes_stop" : "frame_bytes_close", static_cast<int>(frame));
    std::printf("suspended receiver: %zu-byte coroutine frame, nothing else allocated\n", frame);
    if (by_stop) {
      stop.request_stop();
      EXPECT_EQ(cancelled.load(), n);
    } else {
      ch.close();
      EXPECT_EQ(ended.load(), n);
    }
    EXPECT_EQ(detached::live.load(), 0);
  }
}

// --- the semaphore -----------------------------------------------------------------------------

detached acquire_then(bp::semaphore& sem, std::size_t n, std::vector<int>& order, int id,
                      std::optional<status>& answer, bp::async_options opts = {}) {
  answer = co_await sem.async_acquire(n, std::move(opts));
  if (*answer == status::ok) order.push_back(id);
}

TEST(AsyncSemaphore, ServesCoroutinesInOrderWithoutBarging) {
  bp::semaphore sem(0);
  std::vector<int> order;
  std::optional<status> a, b, c;
  acquire_then(sem, 2, order, 1, a);
  acquire_then(sem, 1, order, 2, b);
  EXPECT_EQ(sem.waiting(), 2u);
  sem.release(1);  // not enough for the head (2): nobody passes it
  EXPECT_TRUE(order.empty());
  EXPECT_EQ(sem.try_acquire(1), status::full) << "no barging past queued coroutines";
  sem.release(2);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
  std::stop_source stop;
  acquire_then(sem, 1, order, 3, c, stop.get_token());
  EXPECT_FALSE(c.has_value());
  stop.request_stop();
  EXPECT_EQ(c, status::cancelled);
  EXPECT_EQ(sem.waiting(), 0u);
  sem.close();
  acquire_then(sem, 1, order, 4, c);
  EXPECT_EQ(c, status::closed);
}

// A thread at the head of the queue times out and dispatches the permits to the coroutine
// behind it, under the semaphore's mutex: the coroutine must resume after the unlock, or its
// await_resume would take the mutex the thread still holds.
TEST(AsyncSemaphore, AThreadGivingUpAtTheHeadServesTheCoroutineBehindIt) {
  bp::test::watchdog dog(30s);
  bp::semaphore sem(0);
  std::vector<int> order;
  std::optional<status> c;
  std::thread t([&] { EXPECT_EQ(sem.acquire_for(2, 50ms), status::timeout); });
  ASSERT_TRUE(bp::test::eventually([&] { return sem.waiting() == 1; }));
  acquire_then(sem, 1, order, 1, c);
  sem.release(1);  // not enough for the head (2): nobody passes it
  // The coroutine resumes on the thread that gives up (`c` and `order` are read after the join).
  t.join();  // the head gives up: the coroutine gets the permit
  EXPECT_EQ(c, status::ok);
  EXPECT_EQ(order, std::vector<int>{1});
}

detached park_acquire(bp::semaphore& sem, std::stop_token stop, std::atomic<long>& ok,
                      std::atomic<long>& other) {
  const bp::result r = co_await sem.async_acquire(1, stop);
  if (r) {
    ok.fetch_add(1, std::memory_order_relaxed);
    sem.release(1);
  } else {
    other.fetch_add(1, std::memory_order_relaxed);
  }
}

TEST(AsyncSemaphore, HundredThousandWaitersPassOnePermitAlongAndAreClosedOrStopped) {
  bp::test::watchdog dog(120s);
  constexpr long n = 100'000;
  bp::semaphore sem(0);
  std::stop_source stop;
  std::atomic<long> ok{0}, other{0};
  for (long i = 0; i < n; ++i) park_acquire(sem, stop.get_token(), ok, other);
  EXPECT_EQ(sem.waiting(), static_cast<std::size_t>(n));
  std::printf("suspended acquirer: %zu-byte coroutine frame\n", detached::last_frame_size.load());
  sem.release(1);  // each coroutine takes it and gives it back to the next: a chain of 100 000
  EXPECT_EQ(ok.load(), n);
  for (long i = 0; i < n; ++i) park_acquire(sem, stop.get_token(), ok, other);
  EXPECT_EQ(ok.load(), 2 * n) << "the permit is free: nobody suspends";
  ASSERT_TRUE(sem.try_acquire(1));
  for (long i = 0; i < n / 2; ++i) park_acquire(sem, stop.get_token(), ok, other);
  stop.request_stop();
  EXPECT_EQ(other.load(), n / 2);
  std::stop_source never;
  for (long i = 0; i < n / 2; ++i) park_acquire(sem, never.get_token(), ok, other);
  sem.close();
  EXPECT_EQ(other.load(), n);
  EXPECT_EQ(detached::live.load(), 0);
}

// --- timeouts
// -------------------------------------------------------------------------------------

detached recv_within(bp::channel<int>& ch, int& out, std::chrono::milliseconds d,
                     std::atomic<int>& answer) {
  answer.store(static_cast<int>(co_await ch.async_recv_for(out, d)), std::memory_order_release);
}
detached send_within(bp::channel<int>& ch, int& v, std::chrono::milliseconds d,
                     std::atomic<int>& answer) {
  answer.store(static_cast<int>(co_await ch.async_send_for(std::move(v), d)),
               std::memory_order_release);
}
detached acquire_within(bp::semaphore& sem, std::chrono::milliseconds d, std::atomic<int>& answer) {
  answer.store(static_cast<int>((co_await sem.async_acquire_for(1, d)).value()),
               std::memory_order_release);
}

TEST_P(AsyncChannel, TimedWaitsAnswerTimeoutAndTakeNothing) {
  bp::test::watchdog dog(60s);
  bp::channel<int> ch(GetParam());
  std::atomic<int> answer{-1};
  int out = -1;
  const auto t0 = std::chrono::steady_clock::now();
  recv_within(ch, out, 20ms, answer);
  ASSERT_TRUE(bp::test::eventually([&] { return answer.load() != -1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  EXPECT_EQ(static_cast<status>(answer.load()), status::timeout);
  EXPECT_EQ(out, -1);
  // The receiver left no trace: a send afterwards is not taken by it.
  if (GetParam() > 0) {
    ASSERT_EQ(ch.try_send(1), status::ok);
    EXPECT_EQ(ch.try_recv(), 1);
  } else {
    EXPECT_EQ(ch.try_send(1), status::full);
  }
  for (std::size_t i = 0; i < GetParam(); ++i) ASSERT_EQ(ch.try_send(1), status::ok);
  int v = 9;
  answer = -1;
  send_within(ch, v, 20ms, answer);
  ASSERT_TRUE(bp::test::eventually([&] { return answer.load() != -1; }));
  EXPECT_EQ(static_cast<status>(answer.load()), status::timeout);
  EXPECT_EQ(v, 9);
  EXPECT_EQ(ch.size(), GetParam());
  // A value in time beats the timeout.
  while (ch.try_recv()) {
  }
  answer = -1;
  recv_within(ch, out, 10s, answer);
  ASSERT_EQ(ch.send_for(5, 1s), status::ok);
  ASSERT_TRUE(bp::test::eventually([&] { return answer.load() != -1; }));
  EXPECT_EQ(static_cast<status>(answer.load()), status::ok);
  EXPECT_EQ(out, 5);
}

TEST(AsyncSemaphore, TimedAcquireAnswersTimeoutAndLeavesTheQueue) {
  bp::test::watchdog dog(60s);
  bp::semaphore sem(0);
  std::atomic<int> answer{-1};
  acquire_within(sem, 20ms, answer);
  EXPECT_EQ(sem.waiting(), 1u);
  ASSERT_TRUE(bp::test::eventually([&] { return answer.load() != -1; }));
  EXPECT_EQ(static_cast<status>(answer.load()), status::timeout);
  EXPECT_EQ(sem.waiting(), 0u);
  sem.release(1);
  EXPECT_TRUE(sem.try_acquire(1)) << "the timed-out waiter holds no permit";
}

// Many timed waits racing with sends: each either receives a value (counted once) or times out;
// the values not received are still in the channel. Runs under TSan as well.
TEST(AsyncTimeouts, ThousandsOfTimedReceivesRacingWithSendsLoseNothing) {
  bp::test::watchdog dog(120s);
  bp::channel<int> ch(8);
  constexpr int n = 2000;
  std::vector<int> outs(n, -1);
  std::vector<std::atomic<int>> answers(n);
  for (auto& a : answers) a = -1;
  for (int i = 0; i < n; ++i)
    recv_within(ch, outs[i], std::chrono::milliseconds(1 + i % 7), answers[i]);
  std::thread sender([&] {
    for (int i = 0; i < n / 2; ++i) (void)ch.send_for(i, 5ms);
  });
  sender.join();
  ASSERT_TRUE(bp::test::eventually(
      [&] {
        for (auto& a : answers)
          if (a.load() == -1) return false;
        return true;
      },
      60'000ms));
  long got = 0, timed_out = 0;
  for (int i = 0; i < n; ++i) {
    const auto s = static_cast<status>(answers[i].load());
    if (s == status::ok) ++got;
    if (s == status::timeout) ++timed_out;
  }
  EXPECT_EQ(got + timed_out, n);
  EXPECT_EQ(static_cast<std::uint64_t>(got), ch.stats().received) << "each value taken once";
  EXPECT_EQ(ch.stats().sent, ch.stats().received + ch.size()) << "the rest still buffered";
}

// --- the other primitives with one-attempt waits ------------------------------------------------

detached unbounded_recv(bp::unbounded_channel<int>& ch, int& out, std::optional<status>& answer,
                        bp::async_options opts = {}) {
  answer = co_await ch.async_recv(out, std::move(opts));
}

TEST(AsyncUnbounded, ReceiveSuspendsUntilASendAndEndsAtClose) {
  bp::unbounded_channel<int> ch;
  int out = 0;
  std::optional<status> answer;
  unbounded_recv(ch, out, answer);
  EXPECT_FALSE(answer.has_value());
  ASSERT_EQ(ch.send(4), status::ok);
  EXPECT_EQ(answer, status::ok);
  EXPECT_EQ(out, 4);
  std::stop_source stop;
  answer.reset();
  unbounded_recv(ch, out, answer, stop.get_token());
  stop.request_stop();
  EXPECT_EQ(answer, status::cancelled);
  answer.reset();
  unbounded_recv(ch, out, answer);
  ch.close();
  EXPECT_EQ(answer, status::closed);
}

detached limiter_acquire(bp::concurrency_limiter& lim, std::optional<bp::limiter_permit>& got,
                         bp::async_options opts = {}) {
  got.emplace(co_await lim.async_acquire(std::move(opts)));
}

TEST(AsyncLimiter, AcquireSuspendsUntilAPermitIsGivenBack) {
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  std::optional<bp::limiter_permit> first, second, third;
  limiter_acquire(lim, first);
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(static_cast<bool>(*first));
  limiter_acquire(lim, second);
  EXPECT_FALSE(second.has_value()) << "the limit is 1: the second acquire suspends";
  first.reset();  // the permit goes back: the suspended coroutine gets it
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(static_cast<bool>(*second));
  std::stop_source stop;
  limiter_acquire(lim, third, stop.get_token());
  EXPECT_FALSE(third.has_value());
  stop.request_stop();
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->answer(), status::cancelled);
  third.reset();
  lim.close();
  limiter_acquire(lim, third);
  ASSERT_TRUE(third.has_value());
  EXPECT_EQ(third->answer(), status::closed);
}

// The answer as (has a permit, answer), published with release: a timed-out coroutine
// resumes on bp's timer thread.
detached limiter_acquire_for(bp::concurrency_limiter& lim, std::chrono::milliseconds timeout,
                             std::optional<bp::limiter_permit>& got, std::atomic<int>& answer) {
  got.emplace(co_await lim.async_acquire_for(timeout));
  answer.store(static_cast<int>(got->answer()), std::memory_order_release);
}

TEST(AsyncLimiter, AcquireForAnswersTimeoutOrTheSlotGivenBackInTime) {
  bp::concurrency_limiter lim(bp::fixed_limit{1});
  std::optional<bp::limiter_permit> first, timed, in_time;
  std::atomic<int> a1{-1}, a2{-1}, a3{-1};
  limiter_acquire_for(lim, 0ms, first, a1);
  ASSERT_EQ(a1.load(), static_cast<int>(status::ok)) << "a free slot is taken with no wait";
  EXPECT_TRUE(static_cast<bool>(*first));
  limiter_acquire_for(lim, 20ms, timed, a2);
  ASSERT_TRUE(bp::test::eventually([&] { return a2.load(std::memory_order_acquire) != -1; }));
  EXPECT_EQ(a2.load(), static_cast<int>(status::timeout));
  EXPECT_FALSE(static_cast<bool>(*timed));
  EXPECT_EQ(lim.in_flight(), 1u) << "the timed-out wait holds no slot";
  limiter_acquire_for(lim, 10s, in_time, a3);
  EXPECT_EQ(a3.load(), -1) << "the limit is 1: it waits";
  first.reset();  // the slot goes back: the waiting coroutine takes it, on this thread
  ASSERT_EQ(a3.load(), static_cast<int>(status::ok));
  EXPECT_TRUE(static_cast<bool>(*in_time));
  EXPECT_EQ(lim.in_flight(), 1u);
}

detached wait_drain(bp::watermark_buffer<std::string>& b, std::optional<status>& answer) {
  answer = co_await b.async_wait_drain();
}

TEST(AsyncWatermark, AWriterCoroutineSuspendsUntilTheBufferDrains) {
  bp::watermark_buffer<std::string> b({.high_watermark = 4, .low_watermark = 1});
  std::optional<status> answer;
  wait_drain(b, answer);
  EXPECT_EQ(answer, status::ok) << "nothing to drain: no wait";
  EXPECT_FALSE(b.write(std::string(5, 'x')));  // over the high watermark
  answer.reset();
  wait_drain(b, answer);
  EXPECT_FALSE(answer.has_value());
  ASSERT_TRUE(b.read().has_value());  // drains to 0 <= 1: 'drain' fires
  EXPECT_EQ(answer, status::ok);
  EXPECT_FALSE(b.write(std::string(5, 'x')));
  answer.reset();
  wait_drain(b, answer);
  b.close();
  EXPECT_EQ(answer, status::closed);
}

// --- executors ---------------------------------------------------------------------------------

// A one-thread executor for the test: resumes posted coroutines on its own thread.
class test_executor {
 public:
  test_executor() : thread_([this] { run(); }) {}
  ~test_executor() {
    {
      std::lock_guard lock(m_);
      done_ = true;
    }
    thread_.join();
  }
  void post(std::coroutine_handle<> h) noexcept {
    std::lock_guard lock(m_);
    queue_.push_back(h);
  }
  std::thread::id id() const { return thread_.get_id(); }

 private:
  void run() {
    for (;;) {
      std::coroutine_handle<> h;
      {
        std::lock_guard lock(m_);
        if (!queue_.empty()) {
          h = queue_.front();
          queue_.pop_front();
        } else if (done_) {
          return;
        }
      }
      if (h) {
        h.resume();
      } else {
        std::this_thread::sleep_for(50us);
      }
    }
  }
  std::mutex m_;
  std::deque<std::coroutine_handle<>> queue_;
  bool done_ = false;
  std::thread thread_;
};

detached recv_where(bp::channel<int>& ch, bp::resume_target on, std::atomic<bool>& done,
                    std::thread::id& where) {
  int v = 0;
  (void)co_await ch.async_recv(v, on);
  where = std::this_thread::get_id();
  done.store(true, std::memory_order_release);
}

TEST(AsyncExecutors, InlineResumesOnTheSendersThreadAndResumeOnPostsToTheExecutor) {
  bp::test::watchdog dog(30s);
  test_executor ex;
  bp::channel<int> ch(1);
  std::atomic<bool> done{false};
  std::thread::id where;
  recv_where(ch, bp::resume_target{}, done, where);
  std::thread sender([&] { (void)ch.send(1); });
  const auto sender_id = sender.get_id();
  sender.join();
  ASSERT_TRUE(done.load());
  EXPECT_EQ(where, sender_id);
  done = false;
  recv_where(ch, bp::resume_on(ex), done, where);
  (void)ch.send(2);
  ASSERT_TRUE(bp::test::eventually([&] { return done.load(std::memory_order_acquire); }));
  EXPECT_EQ(where, ex.id());
}

// --- threads -----------------------------------------------------------------------------------

detached consume_all(bp::channel<std::uint64_t>& ch, std::atomic<std::uint64_t>& sum,
                     std::atomic<std::uint64_t>& count, std::atomic<int>& finished) {
  std::uint64_t v = 0;
  while (co_await ch.async_recv(v) == status::ok) {
    sum.fetch_add(v, std::memory_order_relaxed);
    count.fetch_add(1, std::memory_order_relaxed);
  }
  finished.fetch_add(1, std::memory_order_release);
}

TEST_P(AsyncChannel, ThreadsSendCoroutinesReceiveNothingLostNothingDuplicated) {
  bp::test::watchdog dog(120s);
  bp::channel<std::uint64_t> ch(GetParam());
  std::atomic<std::uint64_t> sum{0}, count{0};
  std::atomic<int> finished{0};
  constexpr int consumers = 4, producers = 3;
  constexpr std::uint64_t per = 20'000;
  for (int i = 0; i < consumers; ++i) consume_all(ch, sum, count, finished);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (std::uint64_t i = 1; i <= per; ++i)
        ASSERT_EQ(ch.send(static_cast<std::uint64_t>(p) * per + i), status::ok);
    });
  }
  for (auto& t : threads) t.join();
  ch.close();
  ASSERT_TRUE(bp::test::eventually([&] { return finished.load() == consumers; }, 30'000ms));
  const std::uint64_t n = producers * per;
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(sum.load(), n * (n + 1) / 2);
}

detached produce_all(bp::channel<std::uint64_t>& ch, std::uint64_t first, std::uint64_t n,
                     std::atomic<int>& finished) {
  for (std::uint64_t i = 0; i < n; ++i) {
    if (co_await ch.async_send(first + i) != status::ok) break;
  }
  finished.fetch_add(1, std::memory_order_release);
}

TEST_P(AsyncChannel, CoroutinesSendThreadsReceiveNothingLostNothingDuplicated) {
  bp::test::watchdog dog(120s);
  bp::channel<std::uint64_t> ch(GetParam());
  std::atomic<int> finished{0};
  constexpr int producers = 4;
  constexpr std::uint64_t per = 20'000;
  std::atomic<std::uint64_t> sum{0}, count{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&] {
      while (auto v = ch.recv()) {
        sum.fetch_add(*v, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (int p = 0; p < producers; ++p) produce_all(ch, p * per + 1, per, finished);
  ASSERT_TRUE(bp::test::eventually([&] { return finished.load() == producers; }, 60'000ms));
  ch.close();
  for (auto& t : threads) t.join();
  const std::uint64_t n = producers * per;
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(sum.load(), n * (n + 1) / 2);
}

// A stop request racing with a send and a close: the value is either received once or still
// with the sender (cancelled / closed), never lost and never both.
detached racing_send(bp::channel<int>& ch, int& v, std::stop_token stop, std::atomic<int>& ans) {
  ans.store(static_cast<int>(co_await ch.async_send(std::move(v), stop)),
            std::memory_order_release);
}

TEST_P(AsyncChannel, StopRacingWithReceiveAndCloseLosesNothing) {
  bp::test::watchdog dog(120s);
  for (int round = 0; round < 2000; ++round) {
    bp::channel<int> ch(GetParam());
    for (std::size_t i = 0; i < GetParam(); ++i) ASSERT_EQ(ch.try_send(-1), status::ok);
    std::stop_source stop;
    int v = round;
    std::atomic<int> ans{-1};
    racing_send(ch, v, stop.get_token(), ans);
    std::thread stopper([&] { stop.request_stop(); });
    std::thread closer([&] {
      if (round % 3 == 0) ch.close();
    });
    int received = 0;
    std::thread receiver([&] {
      while (auto x = ch.recv_for(20ms)) {
        if (*x == round) ++received;
      }
    });
    stopper.join();
    closer.join();
    ASSERT_TRUE(bp::test::eventually([&] { return ans.load() != -1; }));
    ch.close();
    receiver.join();
    const auto s = static_cast<status>(ans.load());
    if (s == status::ok) {
      EXPECT_EQ(received, 1) << round;
    } else {
      EXPECT_TRUE(s == status::cancelled || s == status::closed) << round << " " << s;
      EXPECT_EQ(received, 0) << round;
      EXPECT_EQ(v, round) << "a value not sent stays with the caller";
    }
  }
}

}  // namespace

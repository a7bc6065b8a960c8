// bp::select, try_select, select_for / select_until, select(stop_token) and async_select: the
// answers, "a case not chosen consumes nothing", fairness (chi-square over 100 000 picks), wake
// passing under threads (conservation, also under TSan) and cancellation.
#include <bp/select.hpp>

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stop_token>
#include <thread>
#include <vector>

#include <bp/executor.hpp>
#include <bp/task.hpp>

#include "test_util.hpp"

namespace {

using bp::status;
using namespace std::chrono_literals;

TEST(Select, TakesFromTheReadyCaseOnlyAndLeavesTheOthersUntouched) {
  bp::channel<int> a(2), b(2), c(1);
  int x = -1, y = -1, z = 7;
  ASSERT_EQ(b.try_send(20), status::ok);
  ASSERT_EQ(c.try_send(1), status::ok);  // c is full: the send case is not ready
  auto r = bp::select(bp::recv_case(a, x), bp::recv_case(b, y), bp::send_case(c, z));
  EXPECT_EQ(r, (bp::select_result{1, status::ok}));
  EXPECT_EQ(y, 20);
  EXPECT_EQ(x, -1);
  EXPECT_EQ(z, 7) << "the send case not chosen keeps its value";
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(a.size(), 0u);
}

TEST(Select, SendCaseMovesTheValueInOnlyWhenChosen) {
  bp::channel<std::vector<int>> out(1);
  bp::channel<std::vector<int>> in(1);
  std::vector<int> v{1, 2, 3}, got;
  auto r = bp::select(bp::recv_case(in, got), bp::send_case(out, v));
  EXPECT_EQ(r, (bp::select_result{1, status::ok}));
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(out.try_recv(), (std::vector<int>{1, 2, 3}));
}

TEST(Select, AClosedChannelsCaseIsReadyAndSaysClosed) {
  bp::channel<int> a(1), b(1);
  int x = 0, v = 3;
  a.close();
  EXPECT_EQ(bp::select(bp::recv_case(a, x), bp::recv_case(b, x)),
            (bp::select_result{0, status::closed}));
  b.close();
  EXPECT_EQ(bp::try_select(bp::send_case(b, v)), (bp::select_result{0, status::closed}));
  EXPECT_EQ(v, 3);
  bp::channel<int> d(2);
  ASSERT_EQ(d.try_send(5), status::ok);
  d.close();
  EXPECT_EQ(bp::select(bp::recv_case(d, x)), (bp::select_result{0, status::ok}))
      << "a closed channel still delivers what it holds";
  EXPECT_EQ(x, 5);
  EXPECT_EQ(bp::select(bp::recv_case(d, x)), (bp::select_result{0, status::closed}));
}

TEST(Select, LossyPoliciesAnswerAtOnceAsTheirSend) {
  bp::channel<int> dn(1, bp::overflow::drop_newest), rj(1, bp::overflow::reject);
  ASSERT_EQ(dn.try_send(1), status::ok);
  ASSERT_EQ(rj.try_send(1), status::ok);
  int v = 9;
  EXPECT_EQ(bp::try_select(bp::send_case(dn, v)), (bp::select_result{0, status::dropped}));
  EXPECT_EQ(bp::try_select(bp::send_case(rj, v)), (bp::select_result{0, status::full}));
  EXPECT_EQ(rj.stats().rejected, 1u);
}

TEST(Select, TryTimeoutAndStopAnswerWithNoCase) {
  bp::test::watchdog dog(30s);
  bp::channel<int> a(1);
  int x = 0;
  EXPECT_EQ(bp::try_select(bp::recv_case(a, x)),
            (bp::select_result{bp::select_none, status::full}));
  EXPECT_EQ(bp::select_for(5ms, bp::recv_case(a, x)),
            (bp::select_result{bp::select_none, status::timeout}));
  EXPECT_EQ(bp::select_until(std::chrono::steady_clock::now() + 5ms, bp::recv_case(a, x)),
            (bp::select_result{bp::select_none, status::timeout}));
  std::stop_source stop;
  std::thread t([&] {
    std::this_thread::sleep_for(10ms);
    stop.request_stop();
  });
  EXPECT_EQ(bp::select(stop.get_token(), bp::recv_case(a, x)),
            (bp::select_result{bp::select_none, status::cancelled}));
  t.join();
  EXPECT_EQ(a.stats().send_waits, 0u);
  // Nothing of the waits is left registered: the channel works as before.
  ASSERT_EQ(a.try_send(4), status::ok);
  EXPECT_EQ(a.try_recv(), 4);
}

// --- capacity-0 (rendezvous) channels: a party that comes along completes the select's case ---

TEST(SelectRendezvous, ReceiveAndSendCasesMeetPlainPartiesOnEitherSide) {
  bp::test::watchdog dog(30s);
  bp::channel<int> a(0), b(0);
  int x = -1, y = 5;
  std::thread sender([&] {
    std::this_thread::sleep_for(5ms);
    ASSERT_EQ(a.send_for(42, 5s), status::ok);
  });
  EXPECT_EQ(bp::select(bp::recv_case(a, x), bp::send_case(b, y)),
            (bp::select_result{0, status::ok}));
  sender.join();
  EXPECT_EQ(x, 42);
  EXPECT_EQ(y, 5) << "the send case not chosen keeps its value";
  std::optional<int> got;
  std::thread receiver([&] { got = b.recv_for(5s); });
  EXPECT_EQ(bp::select(bp::recv_case(a, x), bp::send_case(b, y)),
            (bp::select_result{1, status::ok}));
  receiver.join();
  EXPECT_EQ(got, 5);
  EXPECT_EQ(x, 42) << "the receive case not chosen took nothing";
}

TEST(SelectRendezvous, TrySelectTakesOnlyFromAPartyAlreadyWaiting) {
  bp::test::watchdog dog(30s);
  bp::channel<int> a(0);
  int x = -1;
  EXPECT_EQ(bp::try_select(bp::recv_case(a, x)),
            (bp::select_result{bp::select_none, status::full}));
  std::thread sender([&] { ASSERT_EQ(a.send_for(7, 5s), status::ok); });
  ASSERT_TRUE(bp::test::eventually([&] { return a.stats().send_waits == 1; }, 5000ms));
  EXPECT_EQ(bp::try_select(bp::recv_case(a, x)), (bp::select_result{0, status::ok}));
  sender.join();
  EXPECT_EQ(x, 7);
}

TEST(SelectRendezvous, TimeoutCloseAndMixedWithBufferedCases) {
  bp::test::watchdog dog(30s);
  bp::channel<int> r(0), q(2);
  int x = -1, v = 9;
  EXPECT_EQ(bp::select_for(5ms, bp::send_case(r, v), bp::recv_case(q, x)),
            (bp::select_result{bp::select_none, status::timeout}));
  EXPECT_EQ(v, 9);
  EXPECT_EQ(r.try_recv(), std::nullopt) << "a select that timed out left nothing queued";
  std::thread feeder([&] {
    std::this_thread::sleep_for(5ms);
    ASSERT_EQ(q.send(3), status::ok);
  });
  EXPECT_EQ(bp::select(bp::send_case(r, v), bp::recv_case(q, x)),
            (bp::select_result{1, status::ok}));
  feeder.join();
  EXPECT_EQ(x, 3);
  std::thread closer([&] {
    std::this_thread::sleep_for(5ms);
    r.close();
  });
  EXPECT_EQ(bp::select(bp::send_case(r, v), bp::recv_case(q, x)),
            (bp::select_result{0, status::closed}));
  closer.join();
  EXPECT_EQ(v, 9);
  std::stop_source stop;
  bp::channel<int> s(0);
  std::thread stopper([&] {
    std::this_thread::sleep_for(5ms);
    stop.request_stop();
  });
  EXPECT_EQ(bp::select(stop.get_token(), bp::recv_case(s, x)),
            (bp::select_result{bp::select_none, status::cancelled}));
  stopper.join();
}

TEST(SelectRendezvous, ASelectNeverMeetsItselfOnOneChannel) {
  bp::channel<int> a(0);
  int x = -1, v = 1;
  EXPECT_EQ(bp::select_for(5ms, bp::send_case(a, v), bp::recv_case(a, x)),
            (bp::select_result{bp::select_none, status::timeout}));
  EXPECT_EQ(v, 1);
  EXPECT_EQ(x, -1);
}

// Selecting senders and selecting receivers on both sides of two capacity-0 channels, with plain
// senders and receivers among them: every value is received exactly once. This is where two
// selects meet (one completes the other's case) and where one gives way to the other.
TEST(SelectRendezvous, SelectsOnBothSidesAndPlainPartiesNothingLostNothingDuplicated) {
  bp::test::watchdog dog(180s);
  bp::channel<int> c0(0), c1(0);
  constexpr int per = 3000;
  constexpr int selecting_senders = 2;
  std::vector<std::atomic<int>> seen((selecting_senders + 1) * per);
  std::vector<std::thread> senders;
  for (int p = 0; p < selecting_senders; ++p) {
    senders.emplace_back([&, p] {
      for (int i = 0; i < per; ++i) {
        int v = p * per + i;
        const auto r = bp::select(bp::send_case(c0, v), bp::send_case(c1, v));
        ASSERT_EQ(r.answer, status::ok);
      }
    });
  }
  senders.emplace_back([&] {  // a plain sender on c1
    for (int i = 0; i < per; ++i) ASSERT_EQ(c1.send(selecting_senders * per + i), status::ok);
  });
  std::atomic<int> received{0};
  auto selecting_receiver = [&] {
    bool open0 = true, open1 = true;
    int x = -1, y = -1;
    while (open0 || open1) {
      bp::select_result r;
      if (open0 && open1) {
        r = bp::select(bp::recv_case(c0, x), bp::recv_case(c1, y));
      } else if (open0) {
        r = bp::select(bp::recv_case(c0, x));
      } else {
        r = bp::select(bp::recv_case(c1, y));
        r.index = 1;
      }
      if (r.answer == status::closed) {
        (r.index == 0 ? open0 : open1) = false;
        continue;
      }
      ASSERT_EQ(r.answer, status::ok);
      seen[r.index == 0 ? x : y].fetch_add(1);
      received.fetch_add(1);
    }
  };
  std::vector<std::thread> receivers;
  receivers.emplace_back(selecting_receiver);
  receivers.emplace_back(selecting_receiver);
  receivers.emplace_back([&] {  // a plain receiver on c0
    while (auto v = c0.recv()) {
      seen[*v].fetch_add(1);
      received.fetch_add(1);
    }
  });
  for (auto& t : senders) t.join();
  ASSERT_TRUE(bp::test::eventually([&] { return received.load() == (selecting_senders + 1) * per; },
                                   60'000ms))
      << received.load();
  c0.close();
  c1.close();
  for (auto& t : receivers) t.join();
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "value " << i;
}

// Selects that time out at once, against senders that arrive at any moment: a sender that finds
// the node of a select that is giving up must move on (the select is taking its node back under
// the same mutex), and every value is either received once or stays with its sender.
TEST(SelectRendezvous, SelectsGivingUpRaceSendersNothingLostNoDeadlock) {
  bp::test::watchdog dog(120s);
  bp::channel<int> c(0);
  constexpr int rounds = 20'000;
  std::atomic<int> sent{0}, received{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      int x = -1;
      for (int i = 0; i < rounds; ++i) {
        const auto r = bp::select_for(std::chrono::microseconds(i % 3), bp::recv_case(c, x));
        if (r.index == 0 && r.answer == status::ok) received.fetch_add(1);
      }
    });
  }
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!done.load()) {
        if (c.send_for(1, std::chrono::microseconds(50)) == status::ok) sent.fetch_add(1);
      }
    });
  }
  threads[0].join();
  threads[1].join();
  done = true;
  threads[2].join();
  threads[3].join();
  EXPECT_EQ(sent.load(), received.load());
}

bp::task<void> select_sender(bp::channel<int>& a, bp::channel<int>& b, int first, int n,
                             bp::thread_pool::executor_type ex) {
  for (int i = 0; i < n; ++i) {
    int v = first + i;
    auto r = co_await bp::async_select(bp::resume_on(ex), bp::send_case(a, v), bp::send_case(b, v));
    if (r.answer != status::ok) std::abort();
  }
}
bp::task<void> select_receiver(bp::channel<int>& a, bp::channel<int>& b,
                               std::vector<std::atomic<int>>& seen, std::atomic<int>& received,
                               int total, bp::thread_pool::executor_type ex) {
  int x = -1, y = -1;
  while (received.load() < total) {
    auto r = co_await bp::async_select_for(20ms, bp::resume_on(ex), bp::recv_case(a, x),
                                           bp::recv_case(b, y));
    if (r.index == bp::select_none) continue;
    if (r.answer != status::ok) std::abort();
    seen[r.index == 0 ? x : y].fetch_add(1);
    received.fetch_add(1);
  }
}

TEST(SelectRendezvous, CoroutinesSelectingOnBothSidesNothingLost) {
  bp::test::watchdog dog(180s);
  bp::thread_pool pool(2);
  bp::channel<int> a(0), b(0);
  constexpr int per = 2000;
  std::vector<std::atomic<int>> seen(2 * per);
  std::atomic<int> received{0};
  bp::sync_wait(bp::when_all(select_sender(a, b, 0, per, pool.get_executor()),
                             select_sender(a, b, per, per, pool.get_executor()),
                             select_receiver(a, b, seen, received, 2 * per, pool.get_executor()),
                             select_receiver(a, b, seen, received, 2 * per, pool.get_executor())));
  EXPECT_EQ(received.load(), 2 * per);
  for (std::size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i].load(), 1) << "value " << i;
}

TEST(Select, WakesOnWhicheverChannelChangesFirst) {
  bp::test::watchdog dog(30s);
  for (int which = 0; which < 3; ++which) {
    bp::channel<int> a(1), b(1), c(1);
    int x = -1;
    std::array<bp::channel<int>*, 3> chans{&a, &b, &c};
    std::thread t([&] {
      std::this_thread::sleep_for(5ms);
      ASSERT_EQ(chans[which]->send(which), status::ok);
    });
    auto r = bp::select(bp::recv_case(a, x), bp::recv_case(b, x), bp::recv_case(c, x));
    t.join();
    EXPECT_EQ(r, (bp::select_result{static_cast<std::size_t>(which), status::ok}));
    EXPECT_EQ(x, which);
  }
}

// Each of three always-ready cases must be chosen a third of the time. Chi-square with 2
// degrees of freedom: 13.8 is the 0.1% critical value, so a fair select fails once in a
// thousand runs; the test reruns once before failing.
TEST(Select, FairAmongReadyCasesChiSquare) {
  auto run = [] {
    bp::channel<int> ch[3] = {bp::channel<int>(1), bp::channel<int>(1), bp::channel<int>(1)};
    for (auto& c : ch) (void)c.try_send(0);
    std::array<long, 3> n{};
    int x = 0;
    constexpr long picks = 100'000;
    for (long i = 0; i < picks; ++i) {
      auto r =
          bp::select(bp::recv_case(ch[0], x), bp::recv_case(ch[1], x), bp::recv_case(ch[2], x));
      ++n[r.index];
      (void)ch[r.index].try_send(0);
    }
    double chi = 0;
    for (long k : n) chi += (k - picks / 3.0) * (k - picks / 3.0) / (picks / 3.0);
    std::printf("picks %ld %ld %ld, chi-square %.2f\n", n[0], n[1], n[2], chi);
    return chi;
  };
  EXPECT_TRUE(run() < 13.8 || run() < 13.8);
}

// Producers feed two channels; consumers are a mix of selecting threads and plain receivers on
// each channel. A wake absorbed by a selector that took the other case must be passed on, or a
// plain receiver would sleep through a value: every value is received exactly once.
TEST(Select, WakesAbsorbedByASelectorArePassedOnNothingLostNothingDuplicated) {
  bp::test::watchdog dog(120s);
  bp::channel<std::uint64_t> a(2), b(2);
  constexpr std::uint64_t per = 20'000;
  std::atomic<std::uint64_t> sum{0}, count{0};
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (std::uint64_t i = 1; i <= per; ++i) ASSERT_EQ(a.send(i), status::ok);
  });
  threads.emplace_back([&] {
    for (std::uint64_t i = per + 1; i <= 2 * per; ++i) ASSERT_EQ(b.send(i), status::ok);
  });
  std::atomic<int> closed_seen{0};
  for (int s = 0; s < 2; ++s) {
    threads.emplace_back([&] {
      std::uint64_t x = 0, y = 0;
      bool a_open = true, b_open = true;
      while (a_open || b_open) {
        bp::select_result r;
        if (a_open && b_open) {
          r = bp::select(bp::recv_case(a, x), bp::recv_case(b, y));
        } else if (a_open) {
          r = bp::select(bp::recv_case(a, x));
        } else {
          r = bp::select(bp::recv_case(b, y));
          if (r.index == 0) r.index = 1;
        }
        if (r.answer == status::closed) {
          (r.index == 0 ? a_open : b_open) = false;
          continue;
        }
        sum += r.index == 0 ? x : y;
        ++count;
      }
      ++closed_seen;
    });
  }
  for (bp::channel<std::uint64_t>* ch : {&a, &b}) {
    threads.emplace_back([&, ch] {
      while (auto v = ch->recv()) {
        sum += *v;
        ++count;
      }
    });
  }
  threads[0].join();
  threads[1].join();
  ASSERT_TRUE(bp::test::eventually([&] { return count.load() == 2 * per; }, 60'000ms))
      << count.load();
  a.close();
  b.close();
  for (std::size_t i = 2; i < threads.size(); ++i) threads[i].join();
  EXPECT_EQ(count.load(), 2 * per);
  EXPECT_EQ(sum.load(), (2 * per) * (2 * per + 1) / 2);
}

TEST(Select, SendAndReceiveCasesTogetherUnderThreads) {
  bp::test::watchdog dog(120s);
  bp::channel<int> in(1), out(1);
  constexpr int n = 20'000;
  std::thread feeder([&] {
    for (int i = 0; i < n; ++i) ASSERT_EQ(in.send(i), status::ok);
    in.close();
  });
  long got = 0;
  std::thread drain([&] {
    while (auto v = out.recv()) got += *v;
  });
  // Forward from `in` to `out` with one pending value, selecting on both sides.
  std::optional<int> pending;
  int x = 0;
  bool in_open = true;
  while (in_open || pending) {
    if (pending && in_open) {
      auto r = bp::select(bp::recv_case(in, x), bp::send_case(out, *pending));
      if (r.index == 1) {
        pending.reset();
      } else if (r.answer == status::closed) {
        in_open = false;
      } else {
        ASSERT_EQ(out.send(std::move(*pending)), status::ok);
        pending = x;
      }
    } else if (in_open) {
      if (auto v = in.recv())
        pending = *v;
      else
        in_open = false;
    } else {
      ASSERT_EQ(out.send(std::move(*pending)), status::ok);
      pending.reset();
    }
  }
  out.close();
  feeder.join();
  drain.join();
  EXPECT_EQ(got, static_cast<long>(n) * (n - 1) / 2);
}

// --- async_select --------------------------------------------------------------------------------

bp::task<bp::select_result> select_two(bp::channel<int>& a, bp::channel<int>& b, int& x,
                                       bp::async_options opts = {}) {
  co_return co_await bp::async_select(std::move(opts), bp::recv_case(a, x), bp::recv_case(b, x));
}

TEST(AsyncSelect, CompletesAtOnceOrWhenAChannelChanges) {
  bp::test::watchdog dog(30s);
  bp::channel<int> a(1), b(1);
  int x = 0;
  ASSERT_EQ(b.try_send(3), status::ok);
  EXPECT_EQ(bp::sync_wait(select_two(a, b, x)), (bp::select_result{1, status::ok}));
  EXPECT_EQ(x, 3);
  std::thread t([&] {
    std::this_thread::sleep_for(5ms);
    ASSERT_EQ(a.send(8), status::ok);
  });
  EXPECT_EQ(bp::sync_wait(select_two(a, b, x)), (bp::select_result{0, status::ok}));
  t.join();
  EXPECT_EQ(x, 8);
  std::stop_source stop;
  std::thread s([&] {
    std::this_thread::sleep_for(5ms);
    stop.request_stop();
  });
  EXPECT_EQ(bp::sync_wait(select_two(a, b, x, stop.get_token())),
            (bp::select_result{bp::select_none, status::cancelled}));
  s.join();
  ASSERT_EQ(a.try_send(1), status::ok);
  EXPECT_EQ(a.try_recv(), 1) << "the cancelled select left nothing registered";
}

bp::task<void> select_consumer(bp::channel<std::uint64_t>& a, bp::channel<std::uint64_t>& b,
                               std::atomic<std::uint64_t>& sum, std::atomic<std::uint64_t>& count,
                               bp::thread_pool::executor_type ex) {
  std::uint64_t x = 0;
  bool a_open = true, b_open = true;
  while (a_open && b_open) {
    auto r = co_await bp::async_select(bp::resume_on(ex), bp::recv_case(a, x), bp::recv_case(b, x));
    if (r.answer == status::closed) {
      (r.index == 0 ? a_open : b_open) = false;
      continue;
    }
    sum += x;
    ++count;
  }
  auto& rest = a_open ? a : b;
  while (co_await rest.async_recv(x, bp::resume_on(ex)) == status::ok) {
    sum += x;
    ++count;
  }
}

TEST(AsyncSelect, CoroutinesOnAPoolSelectingWithThreadsFeedingNothingLost) {
  bp::test::watchdog dog(120s);
  bp::thread_pool pool(2);
  bp::channel<std::uint64_t> a(4), b(4);
  std::atomic<std::uint64_t> sum{0}, count{0};
  constexpr std::uint64_t per = 20'000;
  std::thread pa([&] {
    for (std::uint64_t i = 1; i <= per; ++i) ASSERT_EQ(a.send(i), status::ok);
  });
  std::thread pb([&] {
    for (std::uint64_t i = per + 1; i <= 2 * per; ++i) ASSERT_EQ(b.send(i), status::ok);
  });
  std::thread consumers([&] {
    bp::sync_wait(bp::when_all(select_consumer(a, b, sum, count, pool.get_executor()),
                               select_consumer(a, b, sum, count, pool.get_executor())));
  });
  pa.join();
  pb.join();
  ASSERT_TRUE(bp::test::eventually([&] { return count.load() == 2 * per; }, 60'000ms))
      << count.load();
  a.close();
  b.close();
  consumers.join();
  EXPECT_EQ(sum.load(), (2 * per) * (2 * per + 1) / 2);
}

bp::task<bp::select_result> select_two_within(bp::channel<int>& a, bp::channel<int>& b, int& x,
                                              std::chrono::milliseconds d) {
  co_return co_await bp::async_select_for(d, bp::recv_case(a, x), bp::recv_case(b, x));
}

TEST(AsyncSelect, ATimeoutEndsTheWaitWithNoCase) {
  bp::test::watchdog dog(30s);
  bp::channel<int> a(1), b(1);
  int x = -1;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(bp::sync_wait(select_two_within(a, b, x, 20ms)),
            (bp::select_result{bp::select_none, status::timeout}));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 20ms);
  EXPECT_EQ(x, -1);
  std::thread t([&] {
    std::this_thread::sleep_for(5ms);
    ASSERT_EQ(b.send(6), status::ok);
  });
  EXPECT_EQ(bp::sync_wait(select_two_within(a, b, x, 10s)), (bp::select_result{1, status::ok}));
  t.join();
  EXPECT_EQ(x, 6);
  ASSERT_EQ(a.try_send(1), status::ok);
  EXPECT_EQ(a.try_recv(), 1) << "nothing left registered";
}

}  // namespace

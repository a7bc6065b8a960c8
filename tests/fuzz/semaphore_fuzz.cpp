// Differential fuzz target: bp::semaphore against a sequential model written from
// docs/limits.md and the header's contract (not from the code):
//   - a count of free permits and a FIFO queue of waiters; release(n) adds n and hands permits
//     to the head of the queue while they suffice (a waiter for 5 is not overtaken by later
//     requests for 1);
//   - try_acquire (and the timed forms with a zero or past timeout) take n when n are free and
//     nobody queues: it "fails while anyone queues";
//   - bp::permit gives its permits back on destruction, release() or move-assignment over it;
//     detach() keeps them taken;
//   - close() answers every waiter false, later acquires false; release still counts;
//   - an initial count or an n above 2^62 throws std::invalid_argument naming it; n == 0 is
//     granted at once (the docs are silent; the header grants it, and the model assumes so).
// The driver is one thread. Waiters are real threads, but each is started only when the model
// knows its fate: it either answers at once, or queues (the driver waits until waiting() shows
// it) and stays queued until a release or close the driver makes, after which the driver joins
// it. A waiter with a short timeout is joined at once: it must time out and leave the queue.
// A waiter at the head timing out while others queue behind it is not driven here (its moment
// depends on the scheduler); tests/semaphore_test.cpp covers it.
#include <bp/semaphore.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using namespace std::chrono_literals;
constexpr std::size_t max_count = std::size_t{1} << 62;

struct waiter {
  int id = 0;
  std::size_t n = 0;
  bool wants_permit = false;
  std::atomic<int> result{-1};  // -1 still waiting, 0 false, 1 true
  bp::permit p;                 // written by the waiter thread before `result`
  std::thread t;
};

// Waits (bounded: a lost wake-up must fail, not hang the fuzzer) until pred() holds.
template <class Pred>
void await(Pred pred) {
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (!pred()) {
    BP_FUZZ_CHECK(std::chrono::steady_clock::now() < end);
    std::this_thread::yield();
  }
}

struct model {
  std::uint64_t count = 0;
  bool closed = false;
  std::deque<waiter*> queue;  // oldest first
  std::vector<waiter*> granted, refused;

  // What an acquire that may not wait answers.
  bool try_take(std::size_t n) {
    if (closed) return false;
    if (n == 0) return true;
    if (!queue.empty() || count < n) return false;
    count -= n;
    return true;
  }
  // Hands permits to the head of the queue while they suffice.
  void dispatch() {
    while (!queue.empty() && count >= queue.front()->n) {
      count -= queue.front()->n;
      granted.push_back(queue.front());
      queue.pop_front();
    }
  }
  void release(std::size_t n) {
    count += n;
    dispatch();
  }
};

struct held_permit {
  bp::permit p;
  std::size_t n = 0;
};

void run(bp::fuzz::input& in) {
  std::size_t initial = 0;
  switch (in.pick(4)) {
    case 0:
      initial = 0;
      break;
    case 1:
      initial = in.in_range<std::size_t>(0, 8);
      break;
    case 2:
      initial = in.in_range<std::size_t>(0, 1000);
      break;
    default:
      initial = max_count - in.in_range<std::size_t>(0, 3);
      break;
  }
  model m;
  m.count = initial;
  std::vector<std::unique_ptr<waiter>> waiters;
  int next_id = 1;
  std::uint64_t detached = 0;  // permits taken by detach(), owed back to the semaphore

  bp::semaphore sem(initial);
  std::vector<held_permit> permits;  // destroyed before the semaphore

  auto pick_n = [&]() -> std::size_t {
    switch (in.pick(6)) {
      case 0:
        return 0;
      case 1:
        return max_count + in.in_range<std::size_t>(1, 2);  // invalid
      case 2:
        return in.in_range<std::size_t>(1, 1000);
      default:
        return in.in_range<std::size_t>(1, 4);
    }
  };
  auto expect_throw_n = [&](auto&& call) {
    const auto what = bp::fuzz::thrown_invalid(call);
    BP_FUZZ_CHECK(what.find("n (") != std::string::npos);
  };
  // Joins the waiters the model has answered, checking each answer; permits they won are
  // handed to the driver.
  auto settle = [&] {
    for (auto* w : m.granted) {
      await([&] { return w->result.load() != -1; });
      BP_FUZZ_CHECK(w->result.load() == 1);
      w->t.join();
      if (w->wants_permit) {
        BP_FUZZ_CHECK(static_cast<bool>(w->p) && w->p.count() == w->n);
        permits.push_back({std::move(w->p), w->n});
      }
    }
    for (auto* w : m.refused) {
      await([&] { return w->result.load() != -1; });
      BP_FUZZ_CHECK(w->result.load() == 0);
      w->t.join();
      BP_FUZZ_CHECK(!w->p);
    }
    m.granted.clear();
    m.refused.clear();
  };
  // A release by whatever means (raw, permit destroyed, released or overwritten).
  auto released = [&](std::size_t n) {
    m.release(n);
    settle();
  };

  for (int step = 0; step < 128 && !in.empty(); ++step) {
    switch (in.pick(11)) {
      case 0: {  // try_acquire / try_acquire_permit
        const std::size_t n = pick_n();
        const bool as_permit = in.boolean();
        if (n > max_count) {
          expect_throw_n([&] { (void)sem.try_acquire(n); });
          break;
        }
        const bool want = m.try_take(n);
        if (as_permit) {
          bp::permit p = sem.try_acquire_permit(n);
          BP_FUZZ_CHECK(static_cast<bool>(p) == want);
          BP_FUZZ_CHECK(p.count() == (want ? n : 0));
          if (want) permits.push_back({std::move(p), n});
        } else {
          BP_FUZZ_CHECK(sem.try_acquire(n) == want);
          if (want) detached += n;
        }
        break;
      }
      case 1: {  // acquire_for(0) / acquire_until(past) / acquire_permit_for(0): never wait
        const std::size_t n = pick_n();
        const int mode = static_cast<int>(in.pick(3));
        if (n > max_count) {
          expect_throw_n([&] { (void)sem.acquire_for(n, 0s); });
          break;
        }
        const bool want = m.try_take(n);
        if (mode == 2) {
          bp::permit p = sem.acquire_permit_for(n, -1ms);
          BP_FUZZ_CHECK(static_cast<bool>(p) == want);
          if (want) permits.push_back({std::move(p), n});
          break;
        }
        const bool got = mode == 0 ? sem.acquire_for(n, 0s)
                                   : sem.acquire_until(n, std::chrono::steady_clock::now() - 1s);
        BP_FUZZ_CHECK(got == want);
        if (want) detached += n;
        break;
      }
      case 2: {  // acquire / acquire_permit in the driver, when it answers at once
        const std::size_t n = pick_n();
        if (n > max_count) {
          expect_throw_n([&] { (void)sem.acquire(n); });
          break;
        }
        if (!m.closed && n != 0 && (!m.queue.empty() || m.count < n)) break;  // would wait
        const bool want = m.try_take(n);
        if (in.boolean()) {
          bp::permit p = sem.acquire_permit(n);
          BP_FUZZ_CHECK(static_cast<bool>(p) == want);
          if (want) permits.push_back({std::move(p), n});
        } else {
          BP_FUZZ_CHECK(sem.acquire(n) == want);
          if (want) detached += n;
        }
        break;
      }
      case 3: {  // a waiter thread: answers at once, or queues until a release or close
        if (waiters.size() >= 6) break;
        const std::size_t n = std::min<std::size_t>(pick_n(), max_count);
        const int kind = static_cast<int>(in.pick(4));
        auto w = std::make_unique<waiter>();
        w->id = next_id++;
        w->n = n;
        w->wants_permit = kind == 2;
        waiter* self = w.get();
        const bool at_once = m.closed || n == 0 || (m.queue.empty() && m.count >= n);
        if (at_once) {
          (m.try_take(n) ? m.granted : m.refused).push_back(self);
        } else {
          m.queue.push_back(self);
        }
        const std::size_t queued = m.queue.size();
        self->t = std::thread([&sem, self, kind] {
          bool ok = false;
          switch (kind) {
            case 0:
              ok = sem.acquire(self->n);
              break;
            case 1:
              ok = sem.acquire_for(self->n, 1h);
              break;
            case 2:
              self->p = sem.acquire_permit(self->n);
              ok = static_cast<bool>(self->p);
              break;
            default:
              ok = sem.acquire_until(self->n, std::chrono::steady_clock::now() + 1h);
              break;
          }
          self->result.store(ok ? 1 : 0);
        });
        waiters.push_back(std::move(w));
        if (at_once) {
          settle();
        } else {
          await([&] { return sem.waiting() == queued; });
          BP_FUZZ_CHECK(self->result.load() == -1);
        }
        break;
      }
      case 4: {  // a waiter with a short timeout, at the tail: it times out and leaves
        if (m.closed || m.queue.empty()) break;
        const std::size_t n = in.in_range<std::size_t>(1, 4);
        bool ok = true;
        std::thread t([&] { ok = sem.acquire_for(n, 1ms); });
        t.join();
        BP_FUZZ_CHECK(!ok);
        break;
      }
      case 5: {  // release(n)
        const std::size_t n = pick_n();
        if (n > max_count) {
          expect_throw_n([&] { sem.release(n); });
          break;
        }
        // The permits in existence, free or taken, must stay below 2^63 (docs/limits.md).
        std::uint64_t total = m.count + detached;
        for (const auto& hp : permits) total += hp.n;
        if (total + n > static_cast<std::uint64_t>(INT64_MAX)) break;
        sem.release(n);
        released(n);
        break;
      }
      case 6: {  // give back what try_acquire / acquire / detach took
        if (detached == 0) break;
        const std::size_t n = in.in_range<std::size_t>(
            1, static_cast<std::size_t>(std::min<std::uint64_t>(detached, 8)));
        detached -= n;
        sem.release(n);
        released(n);
        break;
      }
      case 7: {  // a permit: destroyed, released (twice is harmless), detached, moved
        if (permits.empty()) break;
        const std::size_t i = in.pick(permits.size());
        const std::size_t n = permits[i].n;
        switch (in.pick(4)) {
          case 0:
            permits.erase(permits.begin() + static_cast<std::ptrdiff_t>(i));
            released(n);
            break;
          case 1:
            permits[i].p.release();
            BP_FUZZ_CHECK(!permits[i].p && permits[i].p.count() == 0);
            released(n);
            permits[i].p.release();
            permits[i].n = 0;
            break;
          case 2:
            BP_FUZZ_CHECK(permits[i].p.detach() == n);
            BP_FUZZ_CHECK(!permits[i].p);
            detached += n;
            permits[i].n = 0;
            break;
          default: {  // j = std::move(i): j's own permits go back first
            const std::size_t j = in.pick(permits.size());
            if (i == j) break;
            const std::size_t nj = permits[j].n;
            permits[j].p = std::move(permits[i].p);
            permits[j].n = n;
            permits[i].n = 0;
            BP_FUZZ_CHECK(!permits[i].p);
            BP_FUZZ_CHECK(permits[j].p.count() == n);
            released(nj);
            break;
          }
        }
        break;
      }
      case 8:  // close (idempotent): every waiter answers false
        sem.close();
        m.closed = true;
        for (auto* w : m.queue) m.refused.push_back(w);
        m.queue.clear();
        settle();
        break;
      case 9: {  // invalid initial counts
        const std::size_t bad = max_count + in.in_range<std::size_t>(1, 3);
        const auto what = bp::fuzz::thrown_invalid([&] { bp::semaphore s(bad); });
        BP_FUZZ_CHECK(what.find("initial") != std::string::npos);
        break;
      }
      default:
        break;
    }
    BP_FUZZ_CHECK(sem.available() == m.count);
    BP_FUZZ_CHECK(sem.waiting() == m.queue.size());
    BP_FUZZ_CHECK(sem.is_closed() == m.closed);
  }

  // Nobody may wait at destruction: close, and every queued waiter answers false.
  sem.close();
  m.closed = true;
  for (auto* w : m.queue) m.refused.push_back(w);
  m.queue.clear();
  settle();
  for (auto& w : waiters) BP_FUZZ_CHECK(!w->t.joinable());
  std::uint64_t held = 0;
  for (auto& hp : permits) held += hp.n;
  permits.clear();  // given back after close: still counted
  BP_FUZZ_CHECK(sem.available() == m.count + held);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bp::fuzz::input in(data, size);
  run(in);
  return 0;
}

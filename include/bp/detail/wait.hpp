// Internal: the one wait loop. Every waiting verb of the library (channel sends, receives and
// reservations, the rendezvous, semaphore, concurrency limiter, memory budget, throttles,
// watermark buffer, the Reactive Streams adapters) waits here, and only here:
//
//   1. spin   retry for a short, time-bounded while (detail/spin.hpp): credit that another
//             core is about to hand over arrives without a system call on either side; the
//             budget adapts per event count to what spinning has recently paid;
//   2. register on the primitive's event count (detail/event_count.hpp);
//   3. re-check: credit that arrived between 1 and 2 is seen now, or its notify sees us;
//   4. deadline: past it, answer "not done" (the caller says `timeout`);
//   5. park until a notify, the deadline or a spurious wake-up; then go to 1.
//
// A primitive describes a wait by two callables and owns nothing else of it:
//   attempt()  tries to take the credit, or finds the end (closed): true = done, the answer is
//              wherever the callable wrote it. It may run many times and must not wait.
//   settled()  false while another thread is half-way through a change that will make
//              attempt() succeed (a slot being published): the loop yields instead of parking,
//              since no notify may come for a change already counted. Most waits have none.
// The answer ("done" or "deadline passed") is the loop's; the vocabulary (`ok`, `closed`,
// `timeout`, ...) is the primitive's, written by attempt(). This split is what lets a waiter
// be something other than a parked thread without touching the primitives: the same
// attempt/settled pair, registered on the same event count, can resume a suspended coroutine.
//
// A wait for a moment in time rather than for another thread (the throttles' sleep) passes
// `no_spin`: spinning cannot make time pass sooner.
//
// Cancellation: when the calling verb runs inside a stop_scope (detail/stop.hpp), the loop
// registers a std::stop_callback that notifies `ec`, and gives up (false, as for the deadline)
// once the token is stopped; the scope then says `cancelled`. The attempt is always made
// before the token is looked at, so credit handed to a woken waiter is taken, not lost.
#pragma once

#include <cstdint>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>

#include "deadline.hpp"
#include "event_count.hpp"
#include "spin.hpp"
#include "stop.hpp"

namespace bp::detail {

struct always_settled {
  constexpr bool operator()() const noexcept { return true; }
};

struct no_spin_t {};
inline constexpr no_spin_t no_spin{};

// The loop. `probe` is what the spin phase retries: usually `attempt` itself; a cheaper test
// when attempt() reads lines other cores write (the channel's receive does not look for the end
// while spinning); `no_spin` to park at once. Returns true when attempt() (or probe()) said done,
// false when `deadline` passed first.
// Wakes the waiters of one event count when a stop is requested.
struct notify_on_stop {
  event_count* ec;
  void operator()() const noexcept { ec->notify_all(); }
};

template <class Attempt, class Probe, class Settled>
[[nodiscard]] bool wait_loop(event_count& ec, clock::time_point deadline, Attempt&& attempt,
                             Probe&& probe, Settled&& settled) {
  const std::stop_token* stop = stop_to_watch();
  std::optional<std::stop_callback<notify_on_stop>> on_stop;
  if (stop != nullptr) [[unlikely]]
    on_stop.emplace(*stop, notify_on_stop{&ec});
  for (;;) {
    if constexpr (!std::is_same_v<std::decay_t<Probe>, no_spin_t>) {
      if (stop == nullptr || !stop->stop_requested()) {
        const std::int64_t budget = ec.spin_budget();
        if (spin_for_budget([&] { return static_cast<bool>(probe()); }, deadline, budget)) {
          ec.spin_paid(budget);
          return true;
        }
        if (!expired(deadline)) ec.spin_wasted(budget);  // the budget ran out, not the caller's
      }
    }
    const auto key = ec.prepare_wait();
    if (attempt()) {
      ec.cancel_wait();
      return true;
    }
    if (expired(deadline)) {
      ec.cancel_wait();
      return false;
    }
    if (stop != nullptr && stop->stop_requested()) {
      ec.cancel_wait();
      current_stop.stopped = true;
      return false;
    }
    if (!settled()) {  // the credit is being made right now: retry, don't sleep
      ec.cancel_wait();
      std::this_thread::yield();
      continue;
    }
    ec.wait(key, deadline);
  }
}

// The common case: spin on the attempt itself, no settling to wait for.
template <class Attempt>
[[nodiscard]] bool wait_until(event_count& ec, clock::time_point deadline, Attempt&& attempt) {
  return wait_loop(ec, deadline, attempt, attempt, always_settled{});
}

}  // namespace bp::detail

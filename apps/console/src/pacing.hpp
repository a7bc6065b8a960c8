// pacing.hpp: how the scenario's threads keep the rates asked of them, and how they are woken.
//
//   console::pacer        one thread's schedule at a live rate.
//   console::run_switch   one side's (the producers' or the consumers') on/off switch: a
//                         std::stop_token per running period, and the wake-up for live changes.
//
// Each producer and consumer thread runs its own pacer instead of a shared timer: the rate is
// read on every step, so a change from the UI applies at once, and no thread depends on another
// to wake it. A thread never polls: it waits for its next slot on the switch's condition
// variable, which a rate change, a pause or a stop wakes at once. The schedule forgives lateness
// up to a bound (a thread woken late by a busy machine keeps its average rate) but not beyond
// it: a thread that waited on a full buffer or was paused must not then burst to "catch up",
// which would show a spike that the scenario never asked for.
//
// Pausing a side stops the stop_token of its running period; that token is what the side's
// threads hand to every blocking verb (channel send/recv, token bucket acquire, the signal
// strategy's demand wait), so a paused or stopped thread leaves any wait at once. Resuming opens
// a new period with a fresh token.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stop_token>

#include "strategy.hpp"

namespace bp::console {

// A steady-clock time as nanoseconds, the form kept in atomics shared between threads.
inline std::int64_t to_ns(clock_type::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Paces one thread at `rate` items/s. A thread that fell far behind (it waited, or was
// paused) does not burst to catch up.
struct pacer {
  clock_type::time_point last = clock_type::now();
  // When the next item is due at `rate`.
  [[nodiscard]] clock_type::time_point next_due(double rate) const;
  // Takes the slot due at `rate`, now that `now` >= next_due(rate).
  void take(double rate, clock_type::time_point now);
  void restart() { last = clock_type::now(); }
};

// Thread safety: every member may be called from any thread.
class run_switch {
 public:
  // Reads `on` under the switch's lock (so that the last of concurrent updates wins with the
  // latest value), opens or ends the running period to match, and wakes every thread waiting
  // on the switch so that it reads the live controls (rates, delayed start) again.
  void update(const std::atomic<bool>& on);
  // Ends the current period for good: wait_on answers nothing from now on.
  void close();
  // Waits until the side runs; the token of its running period, or nothing once `st` is
  // stopped or the switch closed.
  [[nodiscard]] std::optional<std::stop_token> wait_on(const std::stop_token& st);
  // Counts update() calls: read it before reading a live control, then pass it to
  // wait_until, so that a change made in between is not slept through.
  [[nodiscard]] std::uint64_t generation() const noexcept {
    return changes_.load(std::memory_order_acquire);
  }
  // Waits until `when`, an update() after `seen`, or `period` stopping, whichever comes first.
  void wait_until(clock_type::time_point when, std::uint64_t seen, const std::stop_token& period);
  // Waits until `period` stops (a thread with nothing left to do in this period).
  void wait_stopped(const std::stop_token& period);

 private:
  std::mutex m_;
  std::condition_variable_any cv_;
  std::stop_source period_;  // stopped while the side is off
  bool on_ = false;
  bool closed_ = false;
  std::atomic<std::uint64_t> changes_{0};
};

// Waits for the thread's next slot at the live `rate` (items/s shared by `threads` threads);
// false when `period` stopped first.
bool wait_slot(pacer& pace, run_switch& sw, const std::atomic<double>& rate, int threads,
               const std::stop_token& period);

}  // namespace bp::console

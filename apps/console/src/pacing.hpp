// pacing.hpp: how the scenario's threads keep the rates asked of them.
//
// Each producer and consumer thread runs its own pacer instead of a shared timer: the rate is
// read on every step, so a change from the UI applies at once, and no thread depends on
// another to wake it. A thread never sleeps longer than one slice, so it notices a stop, a
// reset or a pause within ~50 ms. The schedule forgives lateness up to a bound (a thread woken
// late by a busy machine keeps its average rate) but not beyond it: a thread that waited on a
// full buffer or was paused must not then burst to "catch up", which would show a spike that
// the scenario never asked for.
#pragma once

#include <chrono>
#include <cstdint>

#include "strategy.hpp"

namespace bp::console {

// Longest a scenario thread sleeps before it looks at its flags again.
inline constexpr std::chrono::milliseconds slice{50};

// A steady-clock time as nanoseconds, the form kept in atomics shared between threads.
inline std::int64_t to_ns(clock_type::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// Paces one thread at `rate` items/s (read live, so that rate changes apply at once). A thread
// that fell far behind (it waited, or was stopped) does not burst to catch up.
struct pacer {
  clock_type::time_point last = clock_type::now();
  // Waits (at most one slice) for the next slot; true when it is due.
  bool due(double rate);
  void restart() { last = clock_type::now(); }
};

}  // namespace bp::console

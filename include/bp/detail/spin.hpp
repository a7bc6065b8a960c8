// Internal: the bounded spin every blocking operation makes before it parks.
//
// A hand-off already under way on the other core lands within a microsecond or so; a futex
// sleep plus wake-up costs 30-50 us on the machines we measure (and the waker pays a system
// call). So a waiter first retries for a short while, and parks only when nothing came. The
// spin is bounded by time, not by a count of CPU pauses: a PAUSE takes ~3 ns on some x86 cores
// and ~40 ns on others, so a fixed count is 10x too short on one and 10x too long on another.
//
//   spin_budget_ns   how long a waiter retries before it parks (BP_SPIN_NS, default 10 us).
//                    A thread that waits for longer than this burns at most this much CPU per
//                    wait, then none: a blocked thread costs nothing.
//
// The clock is read once every 16 retries, and not at all when one of the first 16 succeeds.
#pragma once

#include <chrono>
#include <cstdint>

#include "config.hpp"

#ifndef BP_SPIN_NS
#define BP_SPIN_NS 10000
#endif

namespace bp::detail {

inline constexpr std::int64_t spin_budget_ns = BP_SPIN_NS;

// CPU pauses between two retries. Each retry reads the line the other core is about to write
// (a slot, an index), which turns that core's next store into an invalidation round trip:
// retrying less often shortens a ping-pong round trip (docs/design.md, Parking).
inline constexpr int pauses_per_retry = 4;

// Calls `attempt()` (which returns something testable as bool: an optional, a status pointer,
// ...) after a few CPU pauses, over and over, until it yields a true value, the budget is
// spent or `deadline` (the caller's own timeout) has passed. Returns the last value: true on
// success, the empty/false one otherwise. With a finite deadline that has already passed it
// returns at once, so a zero timeout still means "try once".
template <class Attempt>
auto spin_for_budget(Attempt&& attempt, std::chrono::steady_clock::time_point deadline =
                                            std::chrono::steady_clock::time_point::max())
    -> decltype(attempt()) {
  using steady = std::chrono::steady_clock;
  const bool bounded = deadline != steady::time_point::max();
  if (bounded && steady::now() >= deadline) return decltype(attempt()){};
  steady::time_point start{};
  for (unsigned i = 1;; ++i) {
    for (int k = 0; k < pauses_per_retry; ++k) cpu_relax();
    if (auto r = attempt()) return r;
    if ((i & 15u) != 0) continue;
    const auto now = steady::now();
    if (bounded && now >= deadline) return decltype(attempt()){};
    if (i == 16) {
      start = now;
    } else if (std::chrono::duration_cast<std::chrono::nanoseconds>(now - start).count() >=
               spin_budget_ns) {
      return decltype(attempt()){};
    }
  }
}

}  // namespace bp::detail

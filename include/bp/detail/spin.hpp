// Internal: the bounded spin every blocking operation makes before it parks.
//
// A hand-off already under way on the other core lands within a microsecond or so; a futex
// sleep plus wake-up costs 30-50 us on the machines we measure (and the waker pays a system
// call). So a waiter first retries for a short while, and parks only when nothing came. The
// spin is bounded by time, not by a count of CPU pauses: a PAUSE takes ~3 ns on some x86 cores
// and ~40 ns on others, so a fixed count is 10x too short on one and 10x too long on another.
//
//   spin_budget_ns   the longest a waiter retries before it parks (BP_SPIN_NS, default 10 us).
//                    A thread that waits for longer than this burns at most this much CPU per
//                    wait, then none: a blocked thread costs nothing.
//
// The budget adapts per event count (detail/event_count.hpp, spin_budget()): a spin that ends
// in a park halves it, a spin that catches its credit doubles it back, between spin_floor_ns
// and spin_budget_ns. Spinning pays only while the thread that will hand over the credit runs
// on another core. When it does not (a core taken by another process, a slow producer), the
// spins fail, the budget shrinks within a few waits, and the waiter leaves the CPU to the
// thread it waits for instead of burning the time slice that thread needs. BP_SPIN_ADAPTIVE=0
// keeps the full budget always (docs/design.md, Spinning on a busy machine, has the numbers).
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

#ifndef BP_SPIN_ADAPTIVE
#define BP_SPIN_ADAPTIVE 1
#endif

inline constexpr std::int64_t spin_budget_ns = BP_SPIN_NS;
inline constexpr bool spin_adaptive = BP_SPIN_ADAPTIVE != 0;
// The adaptive budget's floor. At 0 a waiter still makes the 16 retries before its first clock
// read (a hand-off already under way is caught), and a spin that pays again is noticed: each
// success adds spin_regrow_ns and doubles, so the full budget is back after ~6 paying waits.
inline constexpr std::int64_t spin_floor_ns = 0;
inline constexpr std::int64_t spin_regrow_ns = 256;

// CPU pauses between two retries. Each retry reads the line the other core is about to write
// (a slot, an index), which turns that core's next store into an invalidation round trip:
// retrying less often shortens a ping-pong round trip (docs/design.md, Parking).
inline constexpr int pauses_per_retry = 4;

// Calls `attempt()` (which returns something testable as bool: an optional, a status pointer,
// ...) after a few CPU pauses, over and over, until it yields a true value, the budget
// (`budget_ns`, counted from the 16th retry) is spent or `deadline` (the caller's own timeout)
// has passed. Returns the last value: true on
// success, the empty/false one otherwise. With a finite deadline that has already passed it
// returns at once, so a zero timeout still means "try once".
template <class Attempt>
auto spin_for_budget(
    Attempt&& attempt,
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
    std::int64_t budget_ns = spin_budget_ns) -> decltype(attempt()) {
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
               budget_ns) {
      return decltype(attempt()){};
    }
  }
}

}  // namespace bp::detail

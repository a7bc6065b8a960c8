// Internal: deadlines. Every waiting verb turns its timeout into one absolute steady_clock
// deadline on entry (so retries and spurious wake-ups never stretch it), and the throttles,
// which may run on a manual clock, use plain nanoseconds with the same saturating rule.
#pragma once

#include <chrono>
#include <cstdint>
#include <type_traits>

namespace bp::detail {

using clock = std::chrono::steady_clock;

// `now + timeout`, saturating: a timeout of years (or duration::max()) means "no deadline" in
// practice and must not overflow the clock's representation.
template <class Rep, class Period>
clock::time_point deadline_after(std::chrono::duration<Rep, Period> timeout) {
  const auto now = clock::now();
  if (timeout <= std::chrono::duration<Rep, Period>::zero()) return now;
  constexpr auto far = std::chrono::hours(24 * 365 * 100);
  if (timeout >= far) return clock::time_point::max();
  return now + std::chrono::duration_cast<clock::duration>(timeout);
}

// "No deadline".
constexpr clock::time_point forever() noexcept {
  return clock::time_point::max();
}

// A deadline on any clock as a steady_clock deadline (other clocks: converted once, as a
// timeout from now).
template <class Clock, class Duration>
clock::time_point to_steady(std::chrono::time_point<Clock, Duration> tp) {
  if constexpr (std::is_same_v<Clock, clock>) {
    return std::chrono::time_point_cast<clock::duration>(tp);
  } else {
    return deadline_after(tp - Clock::now());
  }
}

inline bool expired(clock::time_point deadline) noexcept {
  return deadline != forever() && clock::now() >= deadline;
}

inline constexpr std::int64_t ns_forever = INT64_MAX;

// Saturating `now + d` in nanoseconds (a timeout of duration::max() means forever).
template <class Rep, class Period>
std::int64_t ns_after(std::int64_t now, std::chrono::duration<Rep, Period> d) noexcept {
  if (d <= std::chrono::duration<Rep, Period>::zero()) return now;
  constexpr auto far = std::chrono::hours(24 * 365 * 100);
  if (d >= far) return ns_forever;
  return now + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

}  // namespace bp::detail

// Internal: sleeping on a bp::clock_ref (bp/clock.hpp) until a deadline in nanoseconds, the
// waiting half of the throttles and limiters.
#pragma once

#include <chrono>
#include <cstdint>

#include "../clock.hpp"
#include "event_count.hpp"
#include "futex.hpp"

namespace bp {

namespace detail {

inline constexpr std::int64_t ns_forever = INT64_MAX;

// Saturating `now + d` in nanoseconds (a timeout of duration::max() means forever).
template <class Rep, class Period>
std::int64_t ns_after(std::int64_t now, std::chrono::duration<Rep, Period> d) noexcept {
  if (d <= std::chrono::duration<Rep, Period>::zero()) return now;
  constexpr auto far = std::chrono::hours(24 * 365 * 100);
  if (d >= far) return ns_forever;
  return now + std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

// Parks the calling thread until `until_ns` on `clock`, until `stop()` holds, or until `ec`
// (the primitive's own event count, notified by close()) is notified; whichever comes first.
// Returns true when `until_ns` was reached, false when `stop()` ended the wait. Never spins:
// with the steady clock it parks on `ec` with the deadline; with a manual clock it parks on
// the clock's tick event, which advance() and the primitive's close() notify.
// What close() of a primitive calls after setting its closed flag: wakes everything that
// sleep_until_ns may be parked on.
inline void wake_sleepers(clock_ref clock, event_count& ec) noexcept {
  ec.notify_all();
  if (clock.is_manual()) clock.manual()->ticks().notify_all();
}

template <class Stop>
bool sleep_until_ns(clock_ref clock, event_count& ec, std::int64_t until_ns, Stop stop) {
  event_count& wait_on = clock.is_manual() ? clock.manual()->ticks() : ec;
  for (;;) {
    if (stop()) return false;
    if (clock.now_ns() >= until_ns) return true;
    const auto key = wait_on.prepare_wait();
    if (stop()) {
      wait_on.cancel_wait();
      return false;
    }
    const std::int64_t now = clock.now_ns();
    if (now >= until_ns) {
      wait_on.cancel_wait();
      return true;
    }
    if (clock.is_manual() || until_ns == ns_forever) {
      wait_on.wait(key);
    } else {
      wait_on.wait(key, clock::time_point(std::chrono::nanoseconds(until_ns)));
    }
  }
}

}  // namespace detail
}  // namespace bp

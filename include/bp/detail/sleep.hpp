// Internal: sleeping until a moment on a throttle's clock, the waiting half of the token and
// leaky buckets and the concurrency limiter's timing. A sleep is a wait in the one wait loop
// (detail/wait.hpp) whose credit is time itself, so it does not spin: spinning cannot make time
// pass sooner.
//
// `Clock` is bp::clock_ref (bp/clock.hpp) or anything with its shape: now_ns(), is_manual(),
// and manual()->ticks(), the event count a manual clock notifies when it advances. With the
// steady clock a sleeper parks on the primitive's own event count with the moment as its
// deadline; with a manual clock it parks on the clock's ticks, since its moment is not a
// steady_clock time.
#pragma once

#include <chrono>
#include <cstdint>

#include "deadline.hpp"
#include "event_count.hpp"
#include "wait.hpp"

namespace bp::detail {

// What close() of a primitive calls after setting its closed flag: wakes everything that
// sleep_until_ns may be parked on.
template <class Clock>
void wake_sleepers(const Clock& clock, event_count& ec) noexcept {
  ec.notify_all();
  if (clock.is_manual()) clock.manual()->ticks().notify_all();
}

// Parks the calling thread until `until_ns` on `clock`, or until `stop()` holds (the
// primitive's close, notified on `ec`), whichever comes first. Returns true when `until_ns`
// was reached, false when `stop()` (or the calling verb's std::stop_token) ended the wait.
template <class Clock, class Stop>
bool sleep_until_ns(const Clock& clock, event_count& ec, std::int64_t until_ns, Stop stop) {
  const bool manual = clock.is_manual();
  event_count& wait_on = manual ? clock.manual()->ticks() : ec;
  const clock::time_point park_deadline =
      manual || until_ns == ns_forever ? forever()
                                       : clock::time_point(std::chrono::nanoseconds(until_ns));
  bool stopped = false;
  auto attempt = [&] {
    if (stop()) return stopped = true;
    return clock.now_ns() >= until_ns;
  };
  // A stop_token of the calling verb (detail/stop.hpp) ends the sleep early as well: `false`.
  if (!wait_loop(wait_on, park_deadline, attempt, no_spin, always_settled{}) &&
      current_stop.stopped)
    return false;
  return !stopped;
}

}  // namespace bp::detail

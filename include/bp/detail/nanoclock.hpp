// The time source of the throttles and limiters: monotonic nanoseconds as std::int64_t.
//
//   bp::manual_clock  a clock that moves only when told to (advance / advance_to); threads
//                     waiting on a throttle driven by it wake when it moves. For
//                     deterministic tests and discrete-event simulations.
//   bp::clock_ref     what the primitives store: either std::chrono::steady_clock (the
//                     default) or a reference to a bp::manual_clock. Cheap to copy.
//
// Public names, documented in bp/rate.hpp and bp/concurrency_limiter.hpp; kept in one detail
// header so that both can use them without including each other.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "event_count.hpp"
#include "futex.hpp"

namespace bp {

// A clock that stands still until advanced. now_ns() starts at `start`.
//
// Thread safety: every member may be called from any thread. Memory ordering: an advance()
// happens-before any now_ns() that returns the new time. Waiters: every advance() wakes the
// threads parked on a primitive that uses this clock, so they re-check their deadline; with a
// manual clock a wait without a timeout ends only when someone advances the clock (or closes
// the primitive).
class manual_clock {
 public:
  explicit manual_clock(std::chrono::nanoseconds start = std::chrono::nanoseconds::zero())
      : ns_(start.count()) {}
  manual_clock(const manual_clock&) = delete;
  manual_clock& operator=(const manual_clock&) = delete;

  // seq_cst: a waiter's re-check after registering on ticks() (the event-count protocol).
  [[nodiscard]] std::int64_t now_ns() const noexcept { return ns_.load(std::memory_order_seq_cst); }
  [[nodiscard]] std::chrono::nanoseconds now() const noexcept {
    return std::chrono::nanoseconds(now_ns());
  }

  // Moves time forward by `d`; a negative `d` throws std::invalid_argument (time is monotonic).
  void advance(std::chrono::nanoseconds d) {
    if (d.count() < 0) throw std::invalid_argument("bp::manual_clock::advance: d is negative");
    ns_.fetch_add(d.count(), std::memory_order_seq_cst);
    ticks_.notify_all();
  }

  // Moves time forward to `t`; a `t` before now() is ignored (time never goes back).
  void advance_to(std::chrono::nanoseconds t) noexcept {
    std::int64_t cur = ns_.load(std::memory_order_relaxed);
    while (cur < t.count() &&
           !ns_.compare_exchange_weak(cur, t.count(), std::memory_order_seq_cst)) {
    }
    ticks_.notify_all();
  }

  // Internal: the event count advance() notifies (waiters park on it), and close() of a
  // primitive driven by this clock notifies too.
  detail::event_count& ticks() const noexcept { return ticks_; }

 private:
  std::atomic<std::int64_t> ns_;
  mutable detail::event_count ticks_;
};

// Which clock a primitive reads: std::chrono::steady_clock (default-constructed) or a
// bp::manual_clock that must outlive every primitive using it.
class clock_ref {
 public:
  constexpr clock_ref() noexcept = default;
  clock_ref(const manual_clock& c) noexcept : manual_(&c) {}  // NOLINT: implicit on purpose

  [[nodiscard]] std::int64_t now_ns() const noexcept {
    if (manual_) return manual_->now_ns();
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               detail::clock::now().time_since_epoch())
        .count();
  }
  [[nodiscard]] bool is_manual() const noexcept { return manual_ != nullptr; }
  [[nodiscard]] const manual_clock* manual() const noexcept { return manual_; }

 private:
  const manual_clock* manual_ = nullptr;
};

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

// bp/clock.hpp: the time source of the throttles and limiters (bp/rate.hpp,
// bp/concurrency_limiter.hpp): monotonic nanoseconds as std::int64_t.
//
//   bp::manual_clock  a clock that moves only when told to (advance / advance_to); threads
//                     waiting on a throttle driven by it wake when it moves. For
//                     deterministic tests and discrete-event simulations.
//   bp::clock_ref     what the primitives store: either std::chrono::steady_clock (the
//                     default) or a reference to a bp::manual_clock. Cheap to copy.
//
// Example (tests/rate_test.cpp has many):
//
//   bp::manual_clock clock;
//   bp::token_bucket bucket(10.0, 1, clock);   // 10 per second, burst 1, on the manual clock
//   bucket.try_acquire();                      // true: the bucket starts full
//   bucket.try_acquire();                      // false: no time has passed
//   clock.advance(100ms);
//   bucket.try_acquire();                      // true: one token accrued
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "detail/event_count.hpp"
#include "detail/futex.hpp"

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
  alignas(detail::cache_line) mutable detail::event_count ticks_;
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

}  // namespace bp

// bp/leaky_bucket.hpp: a leaky bucket, rate limiting with a smooth, constant outflow.
//
//   bp::leaky_bucket          lets units out at a constant `rate`, never two closer than
//                             1/rate: smooth outflow, a queue of at most `capacity` units
//                             (nginx limit_req, traffic shapers).
//   bp::leaky_bucket_options  the same arguments, for designated initializers.
//   bp::leaky_bucket_stats    queued, waits, timeouts, rejected; wait_times() the waits.
//
// See bp/rate.hpp for when to throttle and when to use backpressure instead.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stop_token>

#include "clock.hpp"
#include "detail/stop.hpp"
#include "reservation.hpp"
#include "status.hpp"
#include "wait_histogram.hpp"

namespace bp {

struct leaky_bucket_options {
  double rate_per_second = 0;
  std::size_t capacity = 1;
  clock_ref clock{};
};

// A leaky bucket (as a queue): units leave at a constant `rate_per_second`, n units taking
// n / rate, so the outflow never bursts: a unit leaves a full 1 / rate after the previous one
// (to the nanosecond), even when that one was taken late; at most `capacity` units wait in the
// queue. Over any window of length d, grants <= rate * d + 1 (+ n - 1 for an n-unit grant).
//
// Verbs as bp::token_bucket: try_acquire succeeds only when the queue is empty and the outflow
// idle (nothing left since the last grant's spacing); acquire parks for its turn; acquire_for
// answers `timeout` at once if its turn is farther than the timeout; reserve(n) queues n units and
// tells when they leave, or is !ok() when the queue (units reserved ahead, capacity) is full:
// the classic overflow. The waiting verbs never overflow: for a constant outflow, waiting for
// room in the queue and then for one's turn ends at the same moment as waiting for the turn.
//
// When to use: feeding a downstream that wants evenly spaced work (a device, a paced sender,
// a third-party API billed per second), smoothing bursts into a steady stream. When not to
// use: when idle time should be saved up as a burst (use bp::token_bucket).
//
// Thread safety, Memory ordering, Cancellation: as bp::token_bucket.
//
// Errors: rate_per_second not finite or not in (0, 1e9], capacity 0 or above 2^40, and any
// n > capacity throw std::invalid_argument naming the argument.
//
// Example:
//   bp::leaky_bucket pace(1000.0, 64);     // one unit per millisecond, 64 may queue
//   for (auto& pkt : packets) { if (!pace.acquire()) break; send(pkt); }
// Counters of one leaky bucket (best effort while in use, exact at rest). Grants made at once
// are not counted: that would add a shared write to the path that must stay cheapest.
struct leaky_bucket_stats {
  std::size_t queued = 0;      // units queued ahead of a new request now
  std::uint64_t waits = 0;     // acquires (and reservation waits) that slept for their turn
  std::uint64_t timeouts = 0;  // acquire_for answers `timeout` (the turn was too far away)
  std::uint64_t rejected = 0;  // try_acquire answers `full`
};

class leaky_bucket {
 public:
  leaky_bucket(double rate_per_second, std::size_t capacity, clock_ref clock = {})
      : core_(detail::validated_rate(rate_per_second, "bp::leaky_bucket"),
              detail::validated_size(capacity, "bp::leaky_bucket", "capacity"), true, clock),
        rate_(rate_per_second),
        capacity_(capacity) {}
  explicit leaky_bucket(const leaky_bucket_options& o)
      : leaky_bucket(o.rate_per_second, o.capacity, o.clock) {}

  leaky_bucket(const leaky_bucket&) = delete;
  leaky_bucket& operator=(const leaky_bucket&) = delete;

  // ok | full | closed.
  result try_acquire(std::size_t n = 1) {
    const auto k = checked(n, "bp::leaky_bucket::try_acquire");
    if (core_.closed()) return status::closed;
    if (k == 0) return status::ok;
    if (core_.rate().try_claim(k, k, bound(), 0)) return status::ok;
    core_.note_rejected();
    return status::full;
  }

  result acquire(std::size_t n = 1) {
    return acquire_impl(n, detail::ns_forever, "bp::leaky_bucket::acquire");
  }

  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return acquire_impl(n, detail::ns_after(0, timeout), "bp::leaky_bucket::acquire_for");
  }

  // As acquire_for with the time left until `deadline` (read on Clock) as the timeout.
  template <class Clock, class Duration>
  result acquire_until(std::size_t n, std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_for(n, deadline - Clock::now());
  }

  // Cancellable: `cancelled` once `stop` is stopped while waiting; the tokens set aside for
  // this call are given back.
  result acquire(std::size_t n, const std::stop_token& stop) {
    return detail::with_stop(
        stop, [&] { return acquire_impl(n, detail::ns_forever, "bp::leaky_bucket::acquire"); });
  }
  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout,
                     const std::stop_token& stop) {
    return detail::with_stop(stop, [&] {
      return acquire_impl(n, detail::ns_after(0, timeout), "bp::leaky_bucket::acquire_for");
    });
  }

  // co_await bucket.async_acquire(n[, options]): ok | closed | cancelled, as acquire(n, stop),
  // with the coroutine suspended instead of a thread (bp's timer wakes it when the tokens are
  // due; on a manual clock, the clock's advance()). async_acquire_for answers `timeout` at once
  // when the tokens cannot come within `timeout`, as acquire_for. The tokens are claimed when
  // the verb is called, so await it at once; a cancelled wait (or an awaiter never awaited)
  // gives them back. Cancel safe. Where the coroutine resumes: the timer's thread, or the
  // executor named by bp::resume_on; a close() resumes it on the closing thread.
  [[nodiscard]] auto async_acquire(std::size_t n = 1, async_options opts = {}) {
    const auto k = checked(n, "bp::leaky_bucket::async_acquire");
    return core_.async_acquire(k, k, detail::ns_forever, false, std::move(opts));
  }
  template <class Rep, class Period>
  [[nodiscard]] auto async_acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout,
                                       async_options opts = {}) {
    const auto k = checked(n, "bp::leaky_bucket::async_acquire_for");
    return core_.async_acquire(k, k, detail::ns_after(0, timeout), false, std::move(opts));
  }

  [[nodiscard]] reservation reserve(std::size_t n = 1) {
    const auto k = checked(n, "bp::leaky_bucket::reserve");
    if (core_.closed()) return reservation(status::closed);
    if (k == 0) return reservation(&core_, core_.rate().empty_claim(), 0, false);  // at once
    const auto c = core_.rate().try_claim(k, k, bound(), detail::ns_forever);
    if (!c) return reservation(status::full);
    return reservation(&core_, *c, k, false);
  }

  void close() noexcept { core_.close(); }
  [[nodiscard]] bool is_closed() const noexcept { return core_.closed(); }

  // Units queued ahead of a new request, including those leaving now (best effort).
  [[nodiscard]] std::size_t queued() const noexcept {
    return static_cast<std::size_t>(core_.rate().backlog());
  }
  [[nodiscard]] double rate() const noexcept { return rate_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  [[nodiscard]] leaky_bucket_stats stats() const noexcept {
    return {queued(), core_.waits(), core_.timeouts(), core_.rejected()};
  }
  // How long the acquires that slept for their turn slept, on the bucket's clock.
  [[nodiscard]] const wait_histogram& wait_times() const noexcept { return core_.wait_times(); }

 private:
  std::int64_t bound() const noexcept { return static_cast<std::int64_t>(capacity_); }
  std::int64_t checked(std::size_t n, const char* who) const {
    return detail::validated_n(n, capacity_, who, "capacity");
  }

  status acquire_impl(std::size_t n, std::int64_t max_wait_ns, const char* verb) {
    const auto k = checked(n, verb);
    if (core_.closed()) return status::closed;
    if (k == 0) return status::ok;
    const auto c = core_.rate().try_claim(k, k, detail::gcra::unbounded, max_wait_ns);
    if (!c) {
      if (core_.closed()) return status::closed;
      core_.note_timeout();
      return status::timeout;
    }
    return core_.wait(*c, k, false) ? status::ok : detail::closed_or_gave_up();
  }

  detail::bucket_core core_;
  const double rate_;
  const std::size_t capacity_;
};

}  // namespace bp

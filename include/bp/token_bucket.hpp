// bp/token_bucket.hpp: a token bucket, rate limiting that allows bursts.
//
//   bp::token_bucket          refills `rate` tokens per second up to `burst`: allows bursts,
//                             caps the average (Guava RateLimiter, golang.org/x/time/rate,
//                             tower's RateLimit).
//   bp::token_bucket_options  the same arguments, for designated initializers.
//   bp::token_bucket_stats    available, waits, timeouts, rejected; wait_times() the waits.
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

// Options for the buckets, for designated initializers:
//   bp::token_bucket api({.rate_per_second = 50, .burst = 20});
//   bp::leaky_bucket pace({.rate_per_second = 1000, .capacity = 64, .clock = test_clock});
struct token_bucket_options {
  double rate_per_second = 0;
  std::size_t burst = 1;
  clock_ref clock{};
};

// A token bucket: tokens accrue at the instants k / rate_per_second after construction, up to
// `burst`; a request for n tokens is granted when n are there. Starts full. Exact: from
// construction to any time t, grants <= floor(rate * t) + burst (integer arithmetic on the
// time axis, no drift), and a caller that polls coarsely loses nothing to its polling phase;
// over any window of length d, grants <= rate * d + burst + 1.
//
// Verbs: try_acquire (never waits), acquire (parks until granted), acquire_for (gives up at
// once, without waiting, when the tokens cannot come within the timeout: Guava's
// tryAcquire(timeout)), reserve (answers how long to wait). Waiters are served in the order
// they asked (each claims its future tokens with one CAS).
//
// When to use: a quota or an abuse limit where short bursts are fine (API clients, log
// lines, retries). When not to use: when the downstream must never see two requests closer
// than 1/rate (use bp::leaky_bucket), or when the limit should follow what the consumer can
// actually take (use a bounded bp::channel, bp::semaphore or bp::concurrency_limiter).
//
// Thread safety: every member may be called concurrently, except the destructor (no thread
// may be waiting then). try_acquire is lock-free (one clock read, one CAS); observers
// (available) are best effort.
//
// Memory ordering: tokens carry no data; a grant creates no happens-before edge with the
// grant that freed the capacity. close() happens-before every answer it causes.
//
// Errors: rate_per_second not finite or not in (0, 1e9], and burst 0 or above 2^40, throw
// std::invalid_argument naming the argument; so does any n > burst (such a request could
// never be granted). n == 0 is granted at once.
//
// Answers: each verb answers a bp::result (a bp::status that tests true only for `ok`):
// try_acquire ok | full | closed; acquire ok | closed; acquire_for / acquire_until
// ok | timeout | closed.
//
// Cancellation: close() is idempotent and wakes every waiter; waiting calls then answer
// `closed` and give their tokens back; every later call answers `closed` (reserve: !ok()).
//
// Example:
//   bp::token_bucket api(50.0, 20);                    // 50/s, bursts of 20
//   if (!api.acquire_for(1, 200ms)) return busy();     // `timeout` at once if > 200 ms away
// Counters of one token bucket (best effort while in use, exact at rest). Grants made at once
// are not counted: that would add a shared write to the path that must stay cheapest.
struct token_bucket_stats {
  std::size_t available = 0;   // tokens in the bucket now
  std::uint64_t waits = 0;     // acquires (and reservation waits) that slept for their tokens
  std::uint64_t timeouts = 0;  // acquire_for answers `timeout` (the grant was too far away)
  std::uint64_t rejected = 0;  // try_acquire answers `full`
};

class token_bucket {
 public:
  token_bucket(double rate_per_second, std::size_t burst, clock_ref clock = {})
      : core_(detail::validated_rate(rate_per_second, "bp::token_bucket"),
              detail::validated_size(burst, "bp::token_bucket", "burst"), false, clock),
        rate_(rate_per_second),
        burst_(burst) {}
  explicit token_bucket(const token_bucket_options& o)
      : token_bucket(o.rate_per_second, o.burst, o.clock) {}

  token_bucket(const token_bucket&) = delete;
  token_bucket& operator=(const token_bucket&) = delete;

  // Takes n tokens if they are there now. Never waits.
  // ok | full | closed.
  result try_acquire(std::size_t n = 1) {
    const auto k = checked(n, "bp::token_bucket::try_acquire");
    if (core_.closed()) return status::closed;
    if (k == 0) return status::ok;
    if (core_.rate().try_claim(k, slack(), detail::gcra::unbounded, 0)) return status::ok;
    core_.note_rejected();
    return status::full;
  }

  // Parks until n tokens are granted: ok | closed.
  result acquire(std::size_t n = 1) {
    return acquire_impl(n, detail::ns_forever, "bp::token_bucket::acquire");
  }

  // As acquire, but answers `timeout` at once (without waiting) if the tokens cannot be
  // granted within `timeout` on the bucket's clock: ok | timeout | closed.
  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return acquire_impl(n, detail::ns_after(0, timeout), "bp::token_bucket::acquire_for");
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
        stop, [&] { return acquire_impl(n, detail::ns_forever, "bp::token_bucket::acquire"); });
  }
  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout,
                     const std::stop_token& stop) {
    return detail::with_stop(stop, [&] {
      return acquire_impl(n, detail::ns_after(0, timeout), "bp::token_bucket::acquire_for");
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
    const auto k = checked(n, "bp::token_bucket::async_acquire");
    return core_.async_acquire(k, slack(), detail::ns_forever, true, std::move(opts));
  }
  template <class Rep, class Period>
  [[nodiscard]] auto async_acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout,
                                       async_options opts = {}) {
    const auto k = checked(n, "bp::token_bucket::async_acquire_for");
    return core_.async_acquire(k, slack(), detail::ns_after(0, timeout), true, std::move(opts));
  }

  // Sets n tokens aside now, possibly in the future; the reservation tells how long to wait.
  // Not ok() only when the bucket is closed.
  [[nodiscard]] reservation reserve(std::size_t n = 1) {
    const auto k = checked(n, "bp::token_bucket::reserve");
    if (core_.closed()) return reservation(status::closed);
    if (k == 0) return reservation(&core_, core_.rate().empty_claim(), 0, true);  // at once
    const auto c = core_.rate().try_claim(k, slack(), detail::gcra::unbounded, detail::ns_forever);
    return reservation(&core_, *c, k, true);
  }

  void close() noexcept { core_.close(); }
  [[nodiscard]] bool is_closed() const noexcept { return core_.closed(); }

  // Tokens in the bucket now (best effort: stale the moment it returns).
  [[nodiscard]] std::size_t available() const noexcept {
    return static_cast<std::size_t>(core_.rate().headroom(slack()));
  }
  [[nodiscard]] double rate() const noexcept { return rate_; }
  [[nodiscard]] std::size_t burst() const noexcept { return burst_; }

  [[nodiscard]] token_bucket_stats stats() const noexcept {
    return {available(), core_.waits(), core_.timeouts(), core_.rejected()};
  }
  // How long the acquires that slept for their tokens slept, on the bucket's clock.
  [[nodiscard]] const wait_histogram& wait_times() const noexcept { return core_.wait_times(); }

 private:
  std::int64_t slack() const noexcept { return static_cast<std::int64_t>(burst_); }
  std::int64_t checked(std::size_t n, const char* who) const {
    return detail::validated_n(n, burst_, who, "burst");
  }

  status acquire_impl(std::size_t n, std::int64_t max_wait_ns, const char* verb) {
    const auto k = checked(n, verb);
    if (core_.closed()) return status::closed;
    if (k == 0) return status::ok;
    const auto c = core_.rate().try_claim(k, slack(), detail::gcra::unbounded, max_wait_ns);
    if (!c) {
      if (core_.closed()) return status::closed;
      core_.note_timeout();
      return status::timeout;
    }
    return core_.wait(*c, k, true) ? status::ok : detail::closed_or_gave_up();
  }

  detail::bucket_core core_;
  const double rate_;
  const std::size_t burst_;
};

}  // namespace bp

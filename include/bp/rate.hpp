// bp/rate.hpp: rate limiting, the seed's Throttle strategy.
//
//   bp::token_bucket  refills `rate` tokens per second up to `burst`: allows bursts, caps the
//                     average (Guava RateLimiter, golang.org/x/time/rate, tower's RateLimit).
//   bp::leaky_bucket  lets units out at a constant `rate`, never two closer than 1/rate: smooth
//                     outflow, queue of at most `capacity` units (nginx limit_req, shapers).
//   bp::token_bucket_options, bp::leaky_bucket_options  the same arguments, for designated
//                     initializers.
//   bp::reservation   the answer of reserve(n): how long to wait before acting, cancellable
//                     (x/time/rate's Reservation).
//   bp::manual_clock, bp::clock_ref  (bp/clock.hpp) the injectable clock: both
//                     buckets read std::chrono::steady_clock unless given a bp::manual_clock.
//
// Rate limiting is a policy, backpressure is feedback (seed Q3): a bucket caps a producer at a
// fixed rate whatever the consumer could take; a bounded bp::channel, bp::semaphore or
// bp::concurrency_limiter slows it to what the consumer does take. Use a bucket to protect a
// service from abuse or to honour a quota; use backpressure inside a pipeline.
//
// Example (examples/rate_limit.cpp):
//
//   bp::token_bucket bucket(100.0, 10);          // 100 per second, bursts of 10
//   if (!bucket.try_acquire()) return reject();  // never waits: a clock read and a CAS
//   bucket.acquire(4);                           // parks until 4 tokens are there
//   auto r = bucket.reserve();                   // or: when may I go?
//   std::this_thread::sleep_for(r.delay());
//
//   bp::manual_clock clock;                      // tests: time moves when told to
//   bp::leaky_bucket smooth(10.0, 5, clock);     // one unit per 100 ms
//   clock.advance(100ms);
#pragma once

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "detail/event_count.hpp"
#include "detail/gcra.hpp"
#include "detail/nanoclock.hpp"

namespace bp {

namespace detail {

// What both buckets share: the GCRA state, the closed flag and where waiters park.
class bucket_core {
 public:
  bucket_core(double rate, std::size_t max_units, bool keep_phase, clock_ref clock)
      : gcra_(rate, static_cast<std::int64_t>(max_units), keep_phase, clock) {}

  // seq_cst on both sides: the flag is the change an event-count waiter re-checks.
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_seq_cst); }

  void close() noexcept {
    if (!closed_.exchange(true, std::memory_order_seq_cst)) wake_sleepers(gcra_.clock(), ec_);
  }

  // Parks until the claim acts; false (units given back) if the bucket closes first.
  bool wait(const gcra::claim& c, std::int64_t n, bool partial_restore) {
    if (sleep_until_ns(gcra_.clock(), ec_, c.act_ns, [this] { return closed(); })) return true;
    gcra_.cancel(c, n, partial_restore);
    return false;
  }

  gcra& rate() noexcept { return gcra_; }
  const gcra& rate() const noexcept { return gcra_; }

 private:
  gcra gcra_;
  std::atomic<bool> closed_{false};
  event_count ec_;
};

inline double validated_rate(double rate_per_second, const char* who) {
  if (!(rate_per_second > 0.0) || !std::isfinite(rate_per_second) || rate_per_second > 1e9) {
    throw std::invalid_argument(std::string(who) +
                                ": rate_per_second must be finite and in (0, 1e9], got " +
                                std::to_string(rate_per_second));
  }
  return rate_per_second;
}

inline std::size_t validated_size(std::size_t v, const char* who, const char* name) {
  constexpr std::size_t max = std::size_t{1} << 40;
  if (v == 0 || v > max) {
    throw std::invalid_argument(std::string(who) + ": " + name + " must be in [1, 2^40], got " +
                                std::to_string(v));
  }
  return v;
}

inline std::int64_t validated_n(std::size_t n, std::size_t limit, const char* who,
                                const char* limit_name) {
  if (n > limit) {
    throw std::invalid_argument(std::string(who) + ": n (" + std::to_string(n) + ") exceeds " +
                                limit_name + " (" + std::to_string(limit) + ")");
  }
  return static_cast<std::int64_t>(n);
}

}  // namespace detail

// Options for the buckets, for designated initializers:
//   bp::token_bucket api({.rate_per_second = 50, .burst = 20});
//   bp::leaky_bucket pace({.rate_per_second = 1000, .capacity = 64, .clock = test_clock});
struct token_bucket_options {
  double rate_per_second = 0;
  std::size_t burst = 1;
  clock_ref clock{};
};
struct leaky_bucket_options {
  double rate_per_second = 0;
  std::size_t capacity = 1;
  clock_ref clock{};
};

// The answer of reserve(n): the units are set aside for a moment that may lie in the future;
// delay() says how long until then. Acting earlier than delay() breaks the rate.
//
// A reservation does not give its units back when destroyed (x/time/rate's semantics: the
// common use is `sleep_for(r.delay()); act();`); cancel() does, if its moment has not come
// yet, as far as later reservations (which keep their moments) leave room: a token bucket
// returns the units not covered by reservations made after it (x/time/rate's CancelAt), a
// leaky bucket only returns them when the reservation is the latest. Move-only; it must not
// outlive the bucket it came from.
//
// Thread safety: one reservation is used by one thread at a time; different reservations of
// one bucket may be used concurrently.
class reservation {
 public:
  reservation() noexcept = default;
  reservation(reservation&& o) noexcept { *this = std::move(o); }
  reservation& operator=(reservation&& o) noexcept {
    core_ = std::exchange(o.core_, nullptr);
    claim_ = o.claim_;
    n_ = o.n_;
    partial_restore_ = o.partial_restore_;
    return *this;
  }

  // False when the bucket refused: it is closed, or (leaky bucket) its queue is full.
  [[nodiscard]] bool ok() const noexcept { return core_ != nullptr; }
  explicit operator bool() const noexcept { return ok(); }

  // Time left until the reserved moment on the bucket's clock; zero when due (or not ok).
  [[nodiscard]] std::chrono::nanoseconds delay() const noexcept {
    if (!core_) return std::chrono::nanoseconds::zero();
    const std::int64_t left = claim_.act_ns - core_->rate().clock().now_ns();
    return std::chrono::nanoseconds(left > 0 ? left : 0);
  }

  [[nodiscard]] std::size_t tokens() const noexcept { return static_cast<std::size_t>(n_); }

  // Parks until the reserved moment. False if not ok, or if the bucket closed first (the
  // units are then given back and the reservation is no longer ok).
  bool wait() {
    if (!core_) return false;
    if (core_->wait(claim_, n_, partial_restore_)) return true;
    core_ = nullptr;
    return false;
  }

  // Gives the units back unless the reserved moment has already come; afterwards !ok().
  void cancel() noexcept {
    if (core_) core_->rate().cancel(claim_, n_, partial_restore_);
    core_ = nullptr;
  }

 private:
  friend class token_bucket;
  friend class leaky_bucket;
  reservation(detail::bucket_core* core, detail::gcra::claim c, std::int64_t n,
              bool partial_restore) noexcept
      : core_(core), claim_(c), n_(n), partial_restore_(partial_restore) {}

  detail::bucket_core* core_ = nullptr;
  detail::gcra::claim claim_{};
  std::int64_t n_ = 0;
  bool partial_restore_ = true;
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
// Cancellation: close() is idempotent and wakes every waiter; waiting calls then answer false
// and give their tokens back; every later call answers false (reserve: !ok()).
//
// Example:
//   bp::token_bucket api(50.0, 20);                    // 50/s, bursts of 20
//   if (!api.acquire_for(1, 200ms)) return busy();     // false at once if > 200 ms away
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
  [[nodiscard]] bool try_acquire(std::size_t n = 1) {
    const auto k = checked(n, "bp::token_bucket::try_acquire");
    if (core_.closed()) return false;
    if (k == 0) return true;
    return core_.rate().try_claim(k, slack(), detail::gcra::unbounded, 0).has_value();
  }

  // Parks until n tokens are granted: true; false only when the bucket is closed.
  bool acquire(std::size_t n = 1) {
    return acquire_impl(n, detail::ns_forever, "bp::token_bucket::acquire");
  }

  // As acquire, but answers false at once (without waiting) if the tokens cannot be granted
  // within `timeout` on the bucket's clock.
  template <class Rep, class Period>
  [[nodiscard]] bool acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return acquire_impl(n, detail::ns_after(0, timeout), "bp::token_bucket::acquire_for");
  }

  // As acquire_for with the time left until `deadline` (read on Clock) as the timeout.
  template <class Clock, class Duration>
  [[nodiscard]] bool acquire_until(std::size_t n,
                                   std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_for(n, deadline - Clock::now());
  }

  // Sets n tokens aside now, possibly in the future; the reservation tells how long to wait.
  // Not ok() only when the bucket is closed.
  [[nodiscard]] reservation reserve(std::size_t n = 1) {
    const auto k = checked(n, "bp::token_bucket::reserve");
    if (core_.closed()) return {};
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

 private:
  std::int64_t slack() const noexcept { return static_cast<std::int64_t>(burst_); }
  std::int64_t checked(std::size_t n, const char* who) const {
    return detail::validated_n(n, burst_, who, "burst");
  }

  bool acquire_impl(std::size_t n, std::int64_t max_wait_ns, const char* verb) {
    const auto k = checked(n, verb);
    if (core_.closed()) return false;
    if (k == 0) return true;
    const auto c = core_.rate().try_claim(k, slack(), detail::gcra::unbounded, max_wait_ns);
    if (!c) return false;
    return core_.wait(*c, k, true);
  }

  detail::bucket_core core_;
  const double rate_;
  const std::size_t burst_;
};

// A leaky bucket (as a queue): units leave at a constant `rate_per_second`, n units taking
// n / rate, so the outflow never bursts: a unit leaves a full 1 / rate after the previous one
// (to the nanosecond), even when that one was taken late; at most `capacity` units wait in the
// queue. Over any window of length d, grants <= rate * d + 1 (+ n - 1 for an n-unit grant).
//
// Verbs as bp::token_bucket: try_acquire succeeds only when the queue is empty and the outflow
// idle (nothing left since the last grant's spacing); acquire parks for its turn; acquire_for
// answers false at once if its turn is farther than the timeout; reserve(n) queues n units and
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
//   for (auto& pkt : packets) { pace.acquire(); send(pkt); }
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

  [[nodiscard]] bool try_acquire(std::size_t n = 1) {
    const auto k = checked(n, "bp::leaky_bucket::try_acquire");
    if (core_.closed()) return false;
    if (k == 0) return true;
    return core_.rate().try_claim(k, k, bound(), 0).has_value();
  }

  bool acquire(std::size_t n = 1) {
    return acquire_impl(n, detail::ns_forever, "bp::leaky_bucket::acquire");
  }

  template <class Rep, class Period>
  [[nodiscard]] bool acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return acquire_impl(n, detail::ns_after(0, timeout), "bp::leaky_bucket::acquire_for");
  }

  // As acquire_for with the time left until `deadline` (read on Clock) as the timeout.
  template <class Clock, class Duration>
  [[nodiscard]] bool acquire_until(std::size_t n,
                                   std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_for(n, deadline - Clock::now());
  }

  [[nodiscard]] reservation reserve(std::size_t n = 1) {
    const auto k = checked(n, "bp::leaky_bucket::reserve");
    if (core_.closed()) return {};
    if (k == 0) return reservation(&core_, core_.rate().empty_claim(), 0, false);  // at once
    const auto c = core_.rate().try_claim(k, k, bound(), detail::ns_forever);
    if (!c) return {};
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

 private:
  std::int64_t bound() const noexcept { return static_cast<std::int64_t>(capacity_); }
  std::int64_t checked(std::size_t n, const char* who) const {
    return detail::validated_n(n, capacity_, who, "capacity");
  }

  bool acquire_impl(std::size_t n, std::int64_t max_wait_ns, const char* verb) {
    const auto k = checked(n, verb);
    if (core_.closed()) return false;
    if (k == 0) return true;
    const auto c = core_.rate().try_claim(k, k, detail::gcra::unbounded, max_wait_ns);
    if (!c) return false;
    return core_.wait(*c, k, false);
  }

  detail::bucket_core core_;
  const double rate_;
  const std::size_t capacity_;
};

}  // namespace bp

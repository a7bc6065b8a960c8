// bp/reservation.hpp: what the two throttles share (bp/token_bucket.hpp, bp/leaky_bucket.hpp).
//
//   bp::reservation  the answer of a bucket's reserve(n): how long to wait before acting,
//                    cancellable (x/time/rate's Reservation). Unlike the library's permits it
//                    gives nothing back when destroyed: a moment in time, once reserved, is
//                    spent unless cancel()led.
//   detail::bucket_core  the bucket's rate state (GCRA) and its sleepers.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <utility>

#include "clock.hpp"
#include "detail/async_op.hpp"
#include "detail/config.hpp"
#include "detail/event_count.hpp"
#include "detail/gcra.hpp"
#include "detail/sleep.hpp"
#include "detail/stop.hpp"
#include "status.hpp"
#include "wait_histogram.hpp"

namespace bp {

namespace detail {

using gcra = basic_gcra<clock_ref>;

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

  // Parks until the claim acts; false (units given back) if the bucket closes first. A claim
  // granted at once passes straight through: only a claim in the future is a wait, counted
  // and timed on the bucket's clock.
  bool wait(const gcra::claim& c, std::int64_t n, bool partial_restore) {
    std::int64_t start_ns = 0;
    if (c.wait_ns > 0) {
      waits_.fetch_add(1, std::memory_order_relaxed);
      start_ns = gcra_.clock().now_ns();
    }
    const bool acted = sleep_until_ns(gcra_.clock(), ec_, c.act_ns, [this] { return closed(); });
    if (c.wait_ns > 0) {
      const std::int64_t waited = gcra_.clock().now_ns() - start_ns;
      wait_.record_ns(waited > 0 ? static_cast<std::uint64_t>(waited) : 0);
    }
    if (acted) return true;
    gcra_.cancel(c, n, partial_restore);
    return false;
  }

  // The statistics both buckets report: waits (and their times), acquire_for refusals (the
  // grant was further away than the timeout), try_acquire refusals.
  void note_timeout() noexcept { timeouts_.fetch_add(1, std::memory_order_relaxed); }
  void note_rejected() noexcept { rejected_.fetch_add(1, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t waits() const noexcept {
    return waits_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t timeouts() const noexcept {
    return timeouts_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t rejected() const noexcept {
    return rejected_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] const wait_histogram& wait_times() const noexcept { return wait_; }

  gcra& rate() noexcept { return gcra_; }
  const gcra& rate() const noexcept { return gcra_; }

  // The state of one awaited acquire (detail::attempt_awaiter): the claim is made when the
  // verb is called (or the answer is known then: closed, timeout); the coroutine then sleeps
  // until the claim acts, on bp's timer (a real clock) or on the manual clock's ticks. A wait
  // that ends without its units (closed, cancelled) gives them back, as the blocking wait does;
  // so does an awaiter destroyed without being awaited.
  class acquire_wait {
   public:
    explicit acquire_wait(status answer) noexcept : answer_(answer) {}
    acquire_wait(bucket_core& core, const gcra::claim& c, std::int64_t n, bool partial) noexcept
        : core_(&core), claim_(c), n_(n), partial_(partial) {
      if (c.wait_ns > 0) {
        core.waits_.fetch_add(1, std::memory_order_relaxed);
        start_ns_ = core.gcra_.clock().now_ns();
      }
    }
    acquire_wait(acquire_wait&& o) noexcept
        : core_(std::exchange(o.core_, nullptr)),
          claim_(o.claim_),
          n_(o.n_),
          partial_(o.partial_),
          start_ns_(o.start_ns_),
          answer_(o.answer_) {}
    acquire_wait(const acquire_wait&) = delete;
    acquire_wait& operator=(const acquire_wait&) = delete;
    acquire_wait& operator=(acquire_wait&&) = delete;
    ~acquire_wait() {
      if (core_) core_->gcra_.cancel(claim_, n_, partial_);
    }

    // Where to park, and until when (the claim's moment on a real clock; a manual clock's
    // waiters are woken by its advance()).
    event_count& waits_on(bucket_core& core) const noexcept {
      return core.gcra_.clock().is_manual() ? core.gcra_.clock().manual()->ticks() : core.ec_;
    }
    [[nodiscard]] clock::time_point deadline() const noexcept {
      if (!core_ || core_->gcra_.clock().is_manual()) return forever();
      return clock::time_point(std::chrono::nanoseconds(claim_.act_ns));
    }

    bool attempt() noexcept {
      if (!core_) return true;
      return core_->closed() || core_->gcra_.clock().now_ns() >= claim_.act_ns;
    }

    // Reaching the deadline is the claim acting: `ok`, not `timeout`.
    bp::result result(bool cancelled, bool /*reached the moment*/) noexcept {
      if (!core_) return answer_;
      bucket_core& core = *std::exchange(core_, nullptr);
      if (claim_.wait_ns > 0) {
        const std::int64_t waited = core.gcra_.clock().now_ns() - start_ns_;
        core.wait_.record_ns(waited > 0 ? static_cast<std::uint64_t>(waited) : 0);
      }
      const bool acted = core.gcra_.clock().now_ns() >= claim_.act_ns;
      if (core.closed() && !acted) {
        core.gcra_.cancel(claim_, n_, partial_);
        return status::closed;
      }
      if (cancelled) {
        core.gcra_.cancel(claim_, n_, partial_);
        return status::cancelled;
      }
      return status::ok;
    }

   private:
    bucket_core* core_ = nullptr;
    gcra::claim claim_{};
    std::int64_t n_ = 0;
    bool partial_ = false;
    std::int64_t start_ns_ = 0;
    status answer_ = status::ok;
  };

  // The awaiter of a bucket's async_acquire[_for]: claims now (or answers at once), then waits.
  // max_wait_ns: a claim further away than that answers `timeout` at once (acquire_for).
  detail::attempt_awaiter<acquire_wait> async_acquire(std::int64_t n, std::int64_t slack,
                                                      std::int64_t max_wait_ns, bool partial,
                                                      async_options opts) {
    auto answer_now = [&](status s) {
      return detail::attempt_awaiter<acquire_wait>(ec_, acquire_wait(s), std::move(opts));
    };
    if (closed()) return answer_now(status::closed);
    if (n == 0) return answer_now(status::ok);
    const auto c = gcra_.try_claim(n, slack, gcra::unbounded, max_wait_ns);
    if (!c) {
      if (closed()) return answer_now(status::closed);
      note_timeout();
      return answer_now(status::timeout);
    }
    acquire_wait w(*this, *c, n, partial);
    event_count& ec = w.waits_on(*this);
    const auto deadline = w.deadline();
    return detail::attempt_awaiter<acquire_wait>(ec, std::move(w), std::move(opts), deadline);
  }

 private:
  gcra gcra_;
  std::atomic<bool> closed_{false};
  alignas(cache_line) event_count ec_;
  // Written only by waits and refusals, on a line of their own.
  alignas(cache_line) std::atomic<std::uint64_t> waits_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> rejected_{0};
  wait_histogram wait_;
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
    answer_ = o.answer_;
    return *this;
  }

  // False when the bucket refused: it is closed, or (leaky bucket) its queue is full.
  [[nodiscard]] bool ok() const noexcept { return core_ != nullptr; }
  explicit operator bool() const noexcept { return ok(); }
  // Why it is not ok (`closed`, `full`), or `ok`. After cancel() or a wait() cut short by
  // close(): `closed`.
  [[nodiscard]] status answer() const noexcept { return core_ ? status::ok : answer_; }

  // Time left until the reserved moment on the bucket's clock; zero when due (or not ok).
  [[nodiscard]] std::chrono::nanoseconds delay() const noexcept {
    if (!core_) return std::chrono::nanoseconds::zero();
    const std::int64_t left = claim_.act_ns - core_->rate().clock().now_ns();
    return std::chrono::nanoseconds(left > 0 ? left : 0);
  }

  [[nodiscard]] std::size_t tokens() const noexcept { return static_cast<std::size_t>(n_); }

  // Parks until the reserved moment: ok. Not ok: answer(). `closed` if the bucket closed
  // first (the units are then given back and the reservation is no longer ok).
  result wait() {
    if (!core_) return answer_;
    if (core_->wait(claim_, n_, partial_restore_)) return status::ok;
    core_ = nullptr;
    return answer_ = detail::closed_or_gave_up();
  }

  // Cancellable: `cancelled` once `stop` is stopped first; the units are then given back and
  // the reservation is no longer ok.
  result wait(const std::stop_token& stop) {
    return detail::with_stop(stop, [&] { return wait(); });
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
  explicit reservation(status why) noexcept : answer_(why) {}

  detail::bucket_core* core_ = nullptr;
  detail::gcra::claim claim_{};
  std::int64_t n_ = 0;
  bool partial_restore_ = true;
  status answer_ = status::closed;
};

}  // namespace bp

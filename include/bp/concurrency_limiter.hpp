// bp/concurrency_limiter.hpp: a limit on work in flight that adapts to the downstream, the
// TCP congestion window applied to requests (Netflix concurrency-limits).
//
//   bp::concurrency_limiter         admits a request while in flight < limit; each completed
//                                   request reports latency or a drop, and the algorithm moves
//                                   the limit.
//   bp::limiter_permit              RAII grant of one admitted request (a bp::grant):
//                                   on_success(), on_success(latency), on_dropped(),
//                                   on_ignore(); destroyed without an answer = on_ignore().
//                                   Also spelled concurrency_limiter::permit (and ::token, its
//                                   former name).
//   bp::fixed_limit, bp::aimd_limit, bp::vegas_limit, bp::gradient2_limit
//                                   the algorithms (options: bp::aimd_options, ...), from
//                                   bp/limit_algorithms.hpp.
//   bp::limit_sample                what a completed request tells its algorithm.
//   bp::concurrency_limiter_stats   limit, in flight, waits, timeouts, rejected, dropped;
//                                   wait_times() the waits.
//
// Example (examples/concurrency_limits.cpp):
//
//   bp::concurrency_limiter limiter(bp::vegas_limit({.initial_limit = 10}));
//   if (auto t = limiter.try_acquire()) {           // nothing waits: shed load when full
//     auto r = call_downstream();
//     r.ok() ? t.on_success() : t.on_dropped();     // latency measured since try_acquire
//   } else {
//     reply_503();
//   }
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <utility>
#include <variant>

#include "clock.hpp"
#include "detail/async_op.hpp"
#include "detail/config.hpp"
#include "detail/event_count.hpp"
#include "detail/sleep.hpp"
#include "detail/stop.hpp"
#include "detail/wait.hpp"
#include "detail/wait_timer.hpp"
#include "grant.hpp"
#include "limit_algorithms.hpp"
#include "status.hpp"
#include "wait_histogram.hpp"

namespace bp {

// The algorithms a limiter can run.
using limit_algorithm = std::variant<fixed_limit, aimd_limit, vegas_limit, gradient2_limit>;

// Admits requests while fewer than limit() are in flight; the limit follows the downstream.
//
// How the limit moves: every token answered with on_success / on_dropped feeds one
// bp::limit_sample (latency, in flight at admission, dropped) to the algorithm:
//   fixed_limit      never moves (a semaphore with this interface).
//   aimd_limit       +1 per round trip while in use, x0.9 on a drop or a latency above its
//                    timeout: simple, needs drops (or timeouts) as its signal.
//   vegas_limit      holds the estimated downstream queue between alpha and beta: reacts to
//                    latency before anything drops; needs a stable no-load latency.
//   gradient2_limit  compares latency with its long-term average: tolerates slowly changing
//                    latency; Netflix's default for servers.
// on_ignore() (and a token destroyed unanswered) frees the slot without a sample: use it for
// requests that failed for reasons that say nothing about capacity (bad input, cache hit).
//
// When to use: in front of a downstream whose capacity is unknown or changes (a database,
// a service under autoscaling), to keep latency near its unloaded value while using what is
// there; reject or queue what does not fit. When not to use: a known, fixed capacity (use
// bp::semaphore); a contractual rate (use bp::token_bucket).
//
// Thread safety: every member may be called concurrently, except the destructor (no thread
// may be waiting, every token must be gone). try_acquire is one CAS; a completion takes a
// mutex to update the algorithm (as Netflix's synchronized onSample), a few tens of ns.
//
// Memory ordering: a token's completion happens-before the admission that reuses its slot
// (seq_cst read-modify-writes on the in-flight count).
//
// Errors: invalid algorithm options throw std::invalid_argument naming the option.
//
// Answers: every acquire gives a bp::limiter_permit; an empty one says why in answer():
// `full` (try_acquire), `timeout` (acquire_for), `closed`.
//
// Cancellation: close() is idempotent: waiting acquires answer an empty permit (`closed`),
// later ones too; permits still out complete normally.
//
// Example:
//   bp::concurrency_limiter lim(bp::aimd_limit({.initial_limit = 10, .timeout = 200ms}));
//   auto t = lim.acquire_for(50ms);              // waits up to 50 ms for a slot
//   if (!t) return overloaded();
//   t.on_success(measured_latency);
class concurrency_limiter;
class limiter_permit;

namespace detail {
struct limiter_permit_traits {
  struct held {
    concurrency_limiter* lim = nullptr;
    std::int64_t start_ns = 0;
    std::size_t in_flight = 0;
  };
  static bool holds(const held& h) noexcept { return h.lim != nullptr; }
  static inline void give_back(held& h) noexcept;  // = on_ignore()
};
}  // namespace detail

// Counters of one limiter (best effort while requests are in flight, exact at rest).
struct concurrency_limiter_stats {
  std::size_t limit = 0;       // the current limit
  std::size_t in_flight = 0;   // requests admitted and not completed
  std::uint64_t waits = 0;     // acquires that had to wait for a slot
  std::uint64_t timeouts = 0;  // of those, the ones that answered `timeout`
  std::uint64_t rejected = 0;  // try_acquire answers `full`
  std::uint64_t dropped = 0;   // permits answered on_dropped (the downstream was overloaded)
};

class concurrency_limiter {
 public:
  using permit = limiter_permit;
  using token = limiter_permit;  // the former name, kept for source compatibility

  explicit concurrency_limiter(limit_algorithm algorithm = fixed_limit{}, clock_ref clock = {})
      : algorithm_(std::move(algorithm)), clock_(clock) {
    estimate_ = std::visit([](const auto& a) { return a.initial(); }, algorithm_);
    fixed_ = std::holds_alternative<fixed_limit>(algorithm_);
    limit_.store(to_limit(estimate_), std::memory_order_relaxed);
  }
  concurrency_limiter(const concurrency_limiter&) = delete;
  concurrency_limiter& operator=(const concurrency_limiter&) = delete;

  // A permit if fewer than limit() requests are in flight now; an empty one (`full`, `closed`)
  // otherwise.
  [[nodiscard]] inline limiter_permit try_acquire();

  // Waits for a slot; an empty permit only when closed.
  [[nodiscard]] inline limiter_permit acquire();

  // Waits up to `timeout` (real time: waiting is for completions, which happen in real time);
  // an empty permit answers `timeout` or `closed`.
  template <class Rep, class Period>
  [[nodiscard]] limiter_permit acquire_for(std::chrono::duration<Rep, Period> timeout);

  // co_await lim.async_acquire([opts]): a permit, or an empty one answering `closed` or
  // `cancelled` (docs/async.md). Await at once.
  [[nodiscard]] inline auto async_acquire(async_options opts = {});
  // As async_acquire, or an empty permit answering `timeout` once `timeout` (real time) passes
  // first. A coroutine resumed by its timeout runs on bp's timer thread unless the options name
  // an executor (bp::resume_on). Cancel safe: a wait that ends without a slot holds none.
  template <class Rep, class Period>
  [[nodiscard]] auto async_acquire_for(std::chrono::duration<Rep, Period> timeout,
                                       async_options opts = {});

  // Cancellable: an empty permit answering `cancelled` once `stop` is stopped while waiting.
  [[nodiscard]] inline limiter_permit acquire(const std::stop_token& stop);
  template <class Rep, class Period>
  [[nodiscard]] limiter_permit acquire_for(std::chrono::duration<Rep, Period> timeout,
                                           const std::stop_token& stop);

  void close() noexcept {
    closed_.store(true, std::memory_order_seq_cst);
    room_.notify_all();
  }
  [[nodiscard]] bool is_closed() const noexcept { return closed_.load(std::memory_order_seq_cst); }

  // The current limit and requests in flight (best effort: stale the moment they return).
  [[nodiscard]] std::size_t limit() const noexcept {
    return limit_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t in_flight() const noexcept {
    return in_flight_.load(std::memory_order_relaxed);
  }
  // The algorithm's estimate before rounding down to limit() (for plots).
  [[nodiscard]] double estimate() const {
    std::lock_guard lock(m_);
    return estimate_;
  }
  [[nodiscard]] clock_ref clock() const noexcept { return clock_; }

  [[nodiscard]] concurrency_limiter_stats stats() const noexcept {
    concurrency_limiter_stats s;
    s.limit = limit();
    s.in_flight = in_flight();
    s.waits = waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.rejected = rejected_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    return s;
  }
  // How long the acquires that waited for a slot waited (only waits are recorded).
  [[nodiscard]] const wait_histogram& wait_times() const noexcept { return wait_; }

 private:
  static std::size_t to_limit(double e) noexcept {
    return e < 1.0 ? 1 : static_cast<std::size_t>(e);
  }

  bool try_admit(std::size_t& in_flight_at_start) noexcept {
    // seq_cst loads: this is also the re-check of an event-count waiter.
    std::size_t cur = in_flight_.load(std::memory_order_seq_cst);
    for (;;) {
      if (cur >= limit_.load(std::memory_order_seq_cst)) return false;
      if (in_flight_.compare_exchange_weak(cur, cur + 1, std::memory_order_seq_cst)) {
        in_flight_at_start = cur + 1;
        return true;
      }
    }
  }

  friend class limiter_permit;
  struct acquire_wait;
  friend struct detail::limiter_permit_traits;

  inline limiter_permit admit_waiting(detail::clock::time_point deadline);

  // A permit's end: frees its slot, feeds the sample (unless ignored), wakes a waiter.
  // `now_ns` < 0: not read yet.
  void complete(std::size_t in_flight_at_start, std::int64_t rtt_ns, bool dropped, bool sample,
                std::int64_t now_ns) {
    if (sample && !fixed_) {
      const limit_sample s{std::chrono::nanoseconds(rtt_ns), now_ns < 0 ? clock_.now_ns() : now_ns,
                           in_flight_at_start, dropped};
      std::lock_guard lock(m_);
      estimate_ = std::visit([&](auto& a) { return a.update(s, estimate_); }, algorithm_);
      limit_.store(to_limit(estimate_), std::memory_order_seq_cst);
    }
    if (dropped) dropped_.fetch_add(1, std::memory_order_relaxed);
    in_flight_.fetch_sub(1, std::memory_order_seq_cst);
    room_.notify_all();  // a raised limit may admit several
  }

  alignas(detail::cache_line) std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> limit_{1};
  std::atomic<bool> closed_{false};
  alignas(detail::cache_line) detail::event_count room_;
  mutable std::mutex m_;
  limit_algorithm algorithm_;
  double estimate_ = 1;
  bool fixed_ = false;  // no samples to feed: completions skip the mutex
  clock_ref clock_;
  // Written only on the paths that refuse, wait or drop: a slot admitted at once adds nothing.
  alignas(detail::cache_line) std::atomic<std::uint64_t> waits_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> dropped_{0};
  wait_histogram wait_;
};

// The grant of one admitted request. Answer it once: on_success (latency measured from
// admission on the limiter's clock, or given), on_dropped (the downstream was overloaded:
// timeout, rejection), or on_ignore (no information). Destroyed unanswered = on_ignore.
// Move-only; empty (false) when the limiter did not admit the request, and answer() says why.
class limiter_permit : public grant<detail::limiter_permit_traits> {
 public:
  limiter_permit() noexcept = default;
  limiter_permit(limiter_permit&&) noexcept = default;
  limiter_permit& operator=(limiter_permit&&) noexcept = default;
  ~limiter_permit() = default;

  // In flight when this request was admitted (itself included).
  [[nodiscard]] std::size_t in_flight_at_start() const noexcept { return held_.in_flight; }

  void on_success() {
    if (held_.lim) finish_at(held_.lim->clock().now_ns(), false);
  }
  void on_success(std::chrono::nanoseconds latency) { finish(latency.count(), false, true, -1); }
  void on_dropped() {
    if (held_.lim) finish_at(held_.lim->clock().now_ns(), true);
  }
  void on_ignore() noexcept { give_back(); }

 private:
  friend class concurrency_limiter;
  explicit limiter_permit(status why) noexcept : grant(why) {}
  limiter_permit(concurrency_limiter* l, std::size_t in_flight) noexcept
      : grant(held_type{l, l->clock().now_ns(), in_flight}, status::ok) {}

  void finish(std::int64_t rtt_ns, bool dropped, bool sample, std::int64_t now_ns) noexcept {
    const held_type h = release_held();
    if (h.lim) h.lim->complete(h.in_flight, rtt_ns, dropped, sample, now_ns);
  }
  void finish_at(std::int64_t now_ns, bool dropped) noexcept {
    finish(now_ns - held_.start_ns, dropped, true, now_ns);
  }
};

inline void detail::limiter_permit_traits::give_back(held& h) noexcept {
  h.lim->complete(h.in_flight, 0, false, false, -1);
}

inline limiter_permit concurrency_limiter::try_acquire() {
  std::size_t n = 0;
  if (closed_.load(std::memory_order_relaxed)) return limiter_permit(status::closed);
  if (!try_admit(n)) {
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return limiter_permit(status::full);
  }
  return limiter_permit(this, n);
}

inline limiter_permit concurrency_limiter::acquire() {
  return admit_waiting(detail::forever());
}

template <class Rep, class Period>
limiter_permit concurrency_limiter::acquire_for(std::chrono::duration<Rep, Period> timeout) {
  return admit_waiting(detail::deadline_after(timeout));
}

// The state of one awaited acquire (detail::attempt_awaiter).
struct concurrency_limiter::acquire_wait {
  concurrency_limiter* lim;
  std::size_t n = 0;
  bool closed = false;

  bool attempt() {
    if (lim->is_closed()) return closed = true;
    return lim->try_admit(n);
  }
  // cancelled / timed_out: the wait ended without a slot (the attempt never succeeded).
  limiter_permit result(bool cancelled, bool timed_out) const {
    if (cancelled) return limiter_permit(status::cancelled);
    if (timed_out) return limiter_permit(status::timeout);
    return closed ? limiter_permit(status::closed) : limiter_permit(lim, n);
  }
};

inline auto concurrency_limiter::async_acquire(async_options opts) {
  return detail::attempt_awaiter<acquire_wait>(room_, acquire_wait{this}, std::move(opts));
}

template <class Rep, class Period>
auto concurrency_limiter::async_acquire_for(std::chrono::duration<Rep, Period> timeout,
                                            async_options opts) {
  return detail::attempt_awaiter<acquire_wait>(room_, acquire_wait{this}, std::move(opts),
                                               detail::deadline_after(timeout));
}

inline limiter_permit concurrency_limiter::acquire(const std::stop_token& stop) {
  return detail::with_stop(stop, [&] { return acquire(); });
}

template <class Rep, class Period>
limiter_permit concurrency_limiter::acquire_for(std::chrono::duration<Rep, Period> timeout,
                                                const std::stop_token& stop) {
  return detail::with_stop(stop, [&] { return acquire_for(timeout); });
}

inline limiter_permit concurrency_limiter::admit_waiting(detail::clock::time_point deadline) {
  std::size_t n = 0;
  bool closed = false;
  auto attempt = [&] {
    if (is_closed()) return closed = true;
    return try_admit(n);
  };
  if (attempt()) return closed ? limiter_permit(status::closed) : limiter_permit(this, n);
  waits_.fetch_add(1, std::memory_order_relaxed);
  const detail::wait_timer timer(wait_);
  if (detail::wait_until(room_, deadline, attempt)) {
    return closed ? limiter_permit(status::closed) : limiter_permit(this, n);
  }
  return limiter_permit(detail::gave_up(timeouts_));
}

}  // namespace bp

// Internal: the generic cell rate algorithm (GCRA) both buckets of bp/rate.hpp are faces of.
//
// The whole state is one 64-bit word, the theoretical arrival time `tat_`, counted in units
// (tokens) since the bucket's origin instead of in nanoseconds: the time axis is converted
// with `units_at(ns) = floor((ns - origin) * rate / 1e9)` on every call, so rounding never
// accumulates (the classic GCRA adds a rounded emission interval per grant and drifts by up to
// one nanosecond per grant: 0.1% at 3 million grants per second). Over any run from the
// origin, grants <= units_at(now) + tolerance exactly.
//
// A claim of n units moves `tat_` to max(tat_, now) + n and acts (is granted) once
// units_at(clock) >= tat_after - slack:
//   token bucket: slack = burst (up to `burst` units at once), queue bound none;
//   leaky bucket: slack = n     (consecutive grants spaced by n / rate), queue bound capacity.
// The claim is one CAS; future claims (reservations) are ordered by the CAS, so waiters are
// served first come, first served without a wait list.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <optional>

#include "config.hpp"
#include "nanoclock.hpp"

namespace bp::detail {

class gcra {
 public:
  static constexpr std::int64_t unbounded = INT64_MAX / 4;

  gcra(double rate_per_second, clock_ref clock)
      : per_ns_(rate_per_second / 1e9), clock_(clock), origin_(clock.now_ns()) {}

  struct claim {
    std::int64_t tat_after;  // tat_ right after this claim
    std::int64_t act_units;  // granted once units_at(now) >= act_units
    std::int64_t act_ns;     // the clock time of act_units (<= now when granted at once)
  };

  // Claims n units if the queue bound holds (tat_after - now <= bound) and the grant comes
  // within `max_wait_ns` (0: only at once). std::nullopt otherwise; nothing changed then.
  std::optional<claim> try_claim(std::int64_t n, std::int64_t slack, std::int64_t bound,
                                 std::int64_t max_wait_ns) noexcept {
    const std::int64_t now_ns = clock_.now_ns();
    const std::int64_t now = units_at(now_ns);
    std::int64_t tat = tat_.load(std::memory_order_relaxed);
    for (;;) {
      const std::int64_t after = (tat > now ? tat : now) + n;
      if (after - now > bound) return std::nullopt;
      const std::int64_t act = after - slack;
      std::int64_t act_ns = now_ns;
      if (act > now) {
        if (max_wait_ns <= 0) return std::nullopt;
        act_ns = time_of(act);
        if (max_wait_ns != ns_forever && act_ns - now_ns > max_wait_ns) return std::nullopt;
      }
      // Relaxed: units carry no data; the CAS only orders claims among themselves.
      if (tat_.compare_exchange_weak(tat, after, std::memory_order_relaxed)) {
        return claim{after, act, act_ns};
      }
    }
  }

  // Gives the units of a claim that has not acted yet back. `whole_restore`: the token bucket
  // may always lower tat_ by n (later claims stay conforming: what acted by any time still
  // fits in units_at + burst); the leaky bucket only when this was the latest claim, since
  // lowering tat_ under a later claim would let two grants leave at the same instant.
  void cancel(const claim& c, std::int64_t n, bool whole_restore) noexcept {
    std::int64_t tat = tat_.load(std::memory_order_relaxed);
    for (;;) {
      if (units_at(clock_.now_ns()) >= c.act_units) return;  // already acted: spent
      if (!whole_restore && tat != c.tat_after) return;
      if (tat_.compare_exchange_weak(tat, tat - n, std::memory_order_relaxed)) return;
    }
  }

  // Units a claim could take at once now, given the slack (best effort).
  [[nodiscard]] std::int64_t headroom(std::int64_t slack) const noexcept {
    const std::int64_t now = units_at(clock_.now_ns());
    const std::int64_t tat = tat_.load(std::memory_order_relaxed);
    const std::int64_t used = tat > now ? tat - now : 0;
    return slack > used ? slack - used : 0;
  }

  // Units owed to claims made but not yet acted, plus those acting now (best effort).
  [[nodiscard]] std::int64_t backlog() const noexcept {
    const std::int64_t now = units_at(clock_.now_ns());
    const std::int64_t tat = tat_.load(std::memory_order_relaxed);
    return tat > now ? tat - now : 0;
  }

  [[nodiscard]] std::int64_t units_at(std::int64_t ns) const noexcept {
    const std::int64_t dt = ns - origin_;
    if (dt <= 0) return 0;
    // Truncation is floor for non-negative values; monotonic in dt.
    return static_cast<std::int64_t>(static_cast<double>(dt) * per_ns_);
  }

  // The first clock time at which units_at() reaches `units` (saturating at ns_forever).
  [[nodiscard]] std::int64_t time_of(std::int64_t units) const noexcept {
    if (units <= 0) return origin_;
    const double guess = std::ceil(static_cast<double>(units) / per_ns_);
    const double room = static_cast<double>(ns_forever - origin_) - 4.0;
    if (!(guess < room)) return ns_forever;
    std::int64_t dt = static_cast<std::int64_t>(guess);
    while (units_at(origin_ + dt) < units) ++dt;
    while (dt > 0 && units_at(origin_ + dt - 1) >= units) --dt;
    return origin_ + dt;
  }

  [[nodiscard]] clock_ref clock() const noexcept { return clock_; }

 private:
  const double per_ns_;
  const clock_ref clock_;
  const std::int64_t origin_;
  alignas(cache_line) std::atomic<std::int64_t> tat_{0};
};

}  // namespace bp::detail

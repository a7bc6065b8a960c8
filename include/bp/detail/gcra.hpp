// Internal: the generic cell rate algorithm (GCRA) both buckets of bp/rate.hpp are faces of.
//
// The whole state is one 64-bit word, the theoretical arrival time `tat_`, counted in
// sub-units since the bucket's origin instead of in nanoseconds: one unit (token) is `scale_`
// sub-units (1 for the token bucket; for the leaky bucket a power of two up to 2^32 per second
// of rate: sub-nanosecond resolution), and the time axis is converted with `sub_at(ns) = floor((ns
// - origin) * rate * scale / 1e9)` on every call, exactly, in integers, with the rate as the
// fraction the caller meant (exact_rate below), so rounding never accumulates (the classic
// GCRA adds a rounded emission interval per grant and drifts by up to one nanosecond per grant:
// 0.1% at 3 million grants per second). Over any run from the origin, grants <= rate * t +
// tolerance exactly.
//
// A claim of n units moves `tat_` to max(tat_, now) + n and acts (is granted) once
// sub_at(clock) >= tat_after - slack:
//   token bucket: slack = burst (up to `burst` units at once), queue bound none;
//   leaky bucket: slack = n     (consecutive grants spaced by n / rate), queue bound capacity.
// The claim is one CAS; future claims (reservations) are ordered by the CAS, so waiters are
// served first come, first served without a wait list.
#pragma once

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <optional>

#include "config.hpp"
#include "deadline.hpp"

namespace bp::detail {

// `Clock` is bp::clock_ref (bp/clock.hpp), or anything with its now_ns().
template <class Clock>
class basic_gcra {
 public:
  static constexpr std::int64_t unbounded = INT64_MAX / 4;  // a bound that never binds

  // `max_units`: the largest tolerance or request the caller will pass (burst, capacity).
  // `keep_phase`: sub-unit resolution, so that the next unit of a grant made part-way through
  // an interval comes a full 1/rate later (the leaky bucket's spacing). Without it units
  // accrue on a tick clock at k / rate and a late taker keeps the phase of the ticks (the
  // token bucket: exact counts for callers that poll coarsely).
  basic_gcra(double rate_per_second, std::int64_t max_units, bool keep_phase, Clock clock)
      : scale_(keep_phase ? scale_for(rate_per_second, max_units) : 1),
        per_ns_(rate_per_second * static_cast<double>(scale_) / 1e9),
        exact_(rate_per_second, scale_),
        clock_(clock),
        origin_(clock.now_ns()) {}

  struct claim {
    std::int64_t tat_after;  // tat_ right after this claim (sub-units)
    std::int64_t act_sub;    // granted once sub_at(now) >= act_sub
    std::int64_t act_ns;     // the clock time of act_sub (<= now when granted at once)
    std::int64_t wait_ns;    // act_ns - now at the claim: 0 when granted at once
  };

  // Claims n units if the queue bound holds (tat_after - now <= bound) and the grant comes
  // within `max_wait_ns` (0: only at once). std::nullopt otherwise; nothing changed then.
  // n, slack and bound in units (bound may be `unbounded`).
  std::optional<claim> try_claim(std::int64_t n_units, std::int64_t slack_units,
                                 std::int64_t bound_units, std::int64_t max_wait_ns) noexcept {
    const std::int64_t n = n_units * scale_, slack = slack_units * scale_;
    const std::int64_t bound = bound_units == unbounded ? unbounded : bound_units * scale_;
    const std::int64_t now_ns = clock_.now_ns();
    const std::int64_t now = sub_at(now_ns);
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
        return claim{after, act, act_ns, act_ns - now_ns};
      }
    }
  }

  // A claim of no units: acts now, whatever is queued, and gives nothing back when cancelled.
  [[nodiscard]] claim empty_claim() const noexcept { return claim{0, 0, clock_.now_ns(), 0}; }

  // Gives the units of a claim that has not acted yet back, as far as that cannot let later
  // claims bunch up. Claims made after this one keep their moments, so only the units not
  // already covered by them can be returned: `n - (tat_ - tat_after)` (x/time/rate's
  // CancelAt) when `partial` (token bucket); all or nothing when `!partial` (leaky bucket: only
  // the latest claim gives its units back, since any overlap would let two units leave closer
  // than 1/rate).
  void cancel(const claim& c, std::int64_t n_units, bool partial) noexcept {
    const std::int64_t n = n_units * scale_;
    std::int64_t tat = tat_.load(std::memory_order_relaxed);
    for (;;) {
      if (sub_at(clock_.now_ns()) >= c.act_sub) return;  // already acted: spent
      const std::int64_t later = tat - c.tat_after;      // units claimed after this one
      if (later < 0) return;                             // cannot happen while not acted
      if (!partial && later != 0) return;
      const std::int64_t restore = n - later;
      if (restore <= 0) return;
      if (tat_.compare_exchange_weak(tat, tat - restore, std::memory_order_relaxed)) return;
    }
  }

  // Units a claim could take at once now, given the slack (best effort).
  [[nodiscard]] std::int64_t headroom(std::int64_t slack_units) const noexcept {
    const std::int64_t slack = slack_units * scale_;
    const std::int64_t now = sub_at(clock_.now_ns());
    const std::int64_t tat = tat_.load(std::memory_order_relaxed);
    const std::int64_t used = tat > now ? tat - now : 0;
    return slack > used ? (slack - used) / scale_ : 0;
  }

  // Units owed to claims made but not yet acted, plus those acting now (best effort).
  [[nodiscard]] std::int64_t backlog() const noexcept {
    const std::int64_t now = sub_at(clock_.now_ns());
    const std::int64_t tat = tat_.load(std::memory_order_relaxed);
    return tat > now ? (tat - now + scale_ - 1) / scale_ : 0;
  }

  // Sub-units accrued from the origin to clock time `ns`.
  [[nodiscard]] std::int64_t sub_at(std::int64_t ns) const noexcept {
    const std::int64_t dt = ns - origin_;
    if (dt <= 0) return 0;
    return exact_.floor_of(dt);
  }

  // The first clock time at which sub_at() reaches `sub` (saturating at ns_forever).
  [[nodiscard]] std::int64_t time_of(std::int64_t sub) const noexcept {
    if (sub <= 0) return origin_;
    const double guess = std::ceil(static_cast<double>(sub) / per_ns_);
    const double room = static_cast<double>(ns_forever - origin_) - 4.0;
    if (!(guess < room)) return ns_forever;
    std::int64_t dt = static_cast<std::int64_t>(guess);
    while (sub_at(origin_ + dt) < sub) ++dt;
    while (dt > 0 && sub_at(origin_ + dt - 1) >= sub) --dt;
    return origin_ + dt;
  }

  [[nodiscard]] const Clock& clock() const noexcept { return clock_; }

 private:
  // The largest power of two with rate * scale <= 2^32 per second (sub-units overflow int64
  // only after 68 years) and max_units * scale <= 2^60 (no overflow in tolerances).
  static std::int64_t scale_for(double rate, std::int64_t max_units) noexcept {
    std::int64_t s = 1;
    while (s < (std::int64_t{1} << 40) && rate * static_cast<double>(2 * s) <= 4294967296.0 &&
           max_units <= (std::int64_t{1} << 60) / (2 * s)) {
      s *= 2;
    }
    return s;
  }

  // floor(dt * rate * scale / 1e9), exactly, for the rate as the caller meant it: the first
  // continued-fraction convergent p/q of the double (q <= 2^20) for which p / q rounds back to
  // it (0.7 is 7/10, 333.3 is 3333/10, 1e6 / 7.0 is 1000000/7), or the double's exact binary
  // value when it has none. Integer arithmetic: a product in doubles lands below an integer at
  // some exact moments (11/s at 5 s gave 54 units, not 55) and is coarser than a nanosecond
  // beyond 2^53 ns.
  class exact_rate {
   public:
    static constexpr std::uint64_t max_denominator = std::uint64_t{1} << 20;

    exact_rate(double rate, std::int64_t scale) noexcept {
      int e = 0;
      const double f = std::frexp(rate, &e);  // rate = f * 2^e, f in [0.5, 1)
      const std::uint64_t mant = static_cast<std::uint64_t>(std::ldexp(f, 53));
      const int k = 53 - e;  // rate = mant / 2^k; k >= 23 for rate <= 1e9
      if (k < 128) {         // the convergents of mant / 2^k (construction only: 128-bit Euclid)
        uint128 a = mant, b = uint128{1} << k;
        std::uint64_t h0 = 0, h1 = 1, g0 = 1, g1 = 0;
        while (b != 0) {
          const uint128 t = a / b;
          if (g1 != 0 && t > (max_denominator - g0) / g1) break;
          const std::uint64_t h = static_cast<std::uint64_t>(t) * h1 + h0;
          const std::uint64_t g = static_cast<std::uint64_t>(t) * g1 + g0;
          h0 = h1, h1 = h, g0 = g1, g1 = g;
          if (static_cast<double>(h) / static_cast<double>(g) == rate) {
            num_ = h * static_cast<std::uint64_t>(scale);
            den_ = g * 1000000000u;
            per_ns_ = rate * static_cast<double>(scale) / 1e9;
            return;
          }
          const uint128 r = a - t * b;
          a = b, b = r;
        }
      }
      // The binary value: rate * scale = mant * 2^-shift, dt * mant fits 116 bits.
      const int shift = k - static_cast<int>(std::countr_zero(static_cast<std::uint64_t>(scale)));
      if (shift < 128) {
        num_ = mant;
        shift_ = shift;
      }  // else dt * rate * scale < 1 for every dt: floor_of answers 0
    }

    [[nodiscard]] std::int64_t floor_of(std::int64_t dt) const noexcept {
      const uint128 p = static_cast<uint128>(static_cast<std::uint64_t>(dt)) * num_;
      uint128 q = 0;
      if (den_ != 0) {
        // The estimate in doubles is off by less than 1/2 below 2^50 (four roundings of 2^-53
        // each): its floor is the answer or one away, which one product tells without dividing.
        const double est = static_cast<double>(dt) * per_ns_;
        if (est < 0x1p50) {
          std::uint64_t e = static_cast<std::uint64_t>(est);
          const uint128 lo = static_cast<uint128>(e) * den_;
          if (lo > p) {
            --e;
          } else if (p - lo >= den_) {
            ++e;
          }
          return static_cast<std::int64_t>(e);
        }
        q = p / den_;
      } else {
        // Division by 1e9 by 32-bit limbs: each a 64-bit division by a constant.
        const uint128 x = p >> shift_;
        std::uint64_t rem = 0;
        for (int limb = 3; limb >= 0; --limb) {
          const std::uint64_t cur =
              (rem << 32) | static_cast<std::uint64_t>((x >> (32 * limb)) & 0xffffffffu);
          q = (q << 32) | (cur / 1000000000u);
          rem = cur % 1000000000u;
        }
      }
      return q > static_cast<uint128>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(q);
    }

   private:
    __extension__ typedef unsigned __int128 uint128;
    std::uint64_t num_ = 0;
    std::uint64_t den_ = 0;  // 0: the binary value, num_ * 2^-shift_ / 1e9
    double per_ns_ = 0;      // num_ / den_, the estimate floor_of starts from
    int shift_ = 0;
  };

  const std::int64_t scale_;
  const double per_ns_;  // the estimate time_of() starts from
  const exact_rate exact_;
  const Clock clock_;
  const std::int64_t origin_;
  alignas(cache_line) std::atomic<std::int64_t> tat_{0};
};

}  // namespace bp::detail

// Differential fuzz target: bp::token_bucket and bp::leaky_bucket on a bp::manual_clock against
// a GCRA model written from docs/throttle.md (not from the code). One thread drives every verb,
// so every answer, delay and observer is fully determined by the contract:
//   - the state is one theoretical arrival time (TAT) counted in units since construction, and
//     the clock is converted with units(t) = floor((t - origin) * rate / 1e9), exactly, with
//     the rate taken as the fraction the docs define (a convergent of the double, or its binary
//     value); the model computes it with 128-bit integers;
//   - token bucket: a request for n is granted at once when max(TAT, now) + n - burst <= now
//     (burst tolerance tau = burst - 1 emission intervals), and a reservation acts at the first
//     nanosecond at which that holds;
//   - leaky bucket: a request acts at max(TAT, now) (the previous units have left), and a
//     reservation is refused when more than `capacity` units would be queued;
//   - cancel(): nothing once the moment has come; otherwise the token bucket gives back the
//     units not covered by claims made after it (TAT - its own end), the leaky bucket gives all
//     back only when it is the latest claim;
//   - n == 0 is granted at once; n > burst (capacity) and bad constructor arguments throw
//     std::invalid_argument naming the argument; after close() every call answers false.
// acquire / acquire_for and reservation::wait park on a manual clock until someone advances it,
// which a single thread never would: they are called only when the model says they answer at
// once (granted now, closed, or the grant is farther than the timeout).
//
// Assumption where the docs are silent: the leaky bucket's sub-unit resolution. The docs say it
// counts in sub-units, "up to 2^32 per second of rate"; the model takes the sub-unit `s` per unit
// as the largest power of two with rate * s <= 2^32, s <= 2^40 and capacity * s <= 2^60 (what
// include/bp/detail/gcra.hpp states), and converts the clock exactly as above with rate * s.
// Reservation moments far beyond any clock (past 2^62 ns) are only checked to be far.
#include <bp/rate.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using namespace std::chrono_literals;
__extension__ typedef unsigned __int128 u128;

constexpr std::int64_t forever = INT64_MAX;
constexpr std::int64_t far_away = std::int64_t{1} << 62;

// units(dt) = floor(dt * rate * s / 1e9) for the rate as docs/throttle.md defines it: the
// first continued-fraction convergent p/q of the double (q <= 2^20) for which p / q rounds back
// to it, or else the double's exact binary value. Both as a fraction num / den of 128-bit
// integers.
struct exact_rate {
  u128 num = 0, den = 1;

  exact_rate(double rate, std::int64_t s) {
    int e = 0;
    const double f = std::frexp(rate, &e);
    const u128 mant = static_cast<std::uint64_t>(std::ldexp(f, 53));
    const int k = 53 - e;  // rate = mant / 2^k
    if (k < 128) {
      // Euclid on mant / 2^k, convergents h/g.
      u128 a = mant, b = u128{1} << k, h0 = 0, h1 = 1, g0 = 1, g1 = 0;
      while (b != 0) {
        const u128 t = a / b;
        const u128 g = t * g1 + g0;
        if (g > (u128{1} << 20)) break;
        const u128 h = t * h1 + h0;
        h0 = h1, h1 = h, g0 = g1, g1 = g;
        if (static_cast<double>(static_cast<std::uint64_t>(h)) /
                static_cast<double>(static_cast<std::uint64_t>(g)) ==
            rate) {
          num = h * static_cast<u128>(s);
          den = g * 1000000000u;
          return;
        }
        const u128 r = a - t * b;
        a = b, b = r;
      }
    }
    // The binary value: rate * s = mant * 2^-(k - log2 s).
    int shift = k;
    for (std::int64_t v = s; v > 1; v /= 2) --shift;
    num = mant;
    den = 0;
    binary_shift = shift;
  }
  int binary_shift = 0;  // den == 0: units = floor(floor(dt * num / 2^binary_shift) / 1e9)

  std::int64_t units(std::int64_t dt) const {
    if (dt <= 0) return 0;
    const u128 p = static_cast<u128>(static_cast<std::uint64_t>(dt)) * num;  // < 2^116
    u128 q = 0;
    if (den != 0)
      q = p / den;
    else if (binary_shift < 128)
      q = (p >> binary_shift) / 1000000000u;
    return q > static_cast<u128>(INT64_MAX) ? INT64_MAX : static_cast<std::int64_t>(q);
  }

  // The smallest dt in [0, limit] with units(dt) >= u, or -1 if there is none.
  std::int64_t first_at(std::int64_t u, std::int64_t limit) const {
    if (u <= 0) return 0;
    if (units(limit) < u) return -1;
    std::int64_t lo = 0, hi = limit;  // units(lo) < u <= units(hi)
    while (hi - lo > 1) {
      const std::int64_t mid = lo + (hi - lo) / 2;
      (units(mid) >= u ? hi : lo) = mid;
    }
    return hi;
  }
};

struct model_reservation {
  bp::reservation r;
  bool ok = false;
  std::int64_t n = 0;          // units
  std::int64_t tat_after = 0;  // sub-units: the TAT right after its claim
  std::int64_t act = 0;        // sub-units: acts once sub(now) >= act
  std::int64_t act_ns = 0;     // the clock time of `act` (<= the claim's time when at once)
};

struct model {
  bool leaky = false;
  double rate = 1;
  std::int64_t limit = 1;  // burst or capacity
  std::int64_t s = 1;      // sub-units per unit
  exact_rate conv{1.0, 1};
  std::int64_t origin = 0;
  std::int64_t tat = 0;  // sub-units
  bool closed = false;

  model(bool is_leaky, double r, std::int64_t lim, std::int64_t origin_ns)
      : leaky(is_leaky),
        rate(r),
        limit(lim),
        s(is_leaky ? scale(r, lim) : 1),
        conv(r, is_leaky ? scale(r, lim) : 1),
        origin(origin_ns) {}

  static std::int64_t scale(double r, std::int64_t lim) {
    std::int64_t v = 1;
    while (v < (std::int64_t{1} << 40) && r * static_cast<double>(2 * v) <= 4294967296.0 &&
           lim <= (std::int64_t{1} << 60) / (2 * v))
      v *= 2;
    return v;
  }

  std::int64_t sub(std::int64_t now_ns) const { return conv.units(now_ns - origin); }

  // The clock time at which sub() reaches `u` (forever if never).
  std::int64_t time_of(std::int64_t u) const {
    if (u <= 0) return origin;
    const std::int64_t dt = conv.first_at(u, forever - origin);
    return dt < 0 ? forever : origin + dt;
  }

  struct claim {
    std::int64_t after, act, act_ns;
    bool now;  // acts at once
  };

  // What a claim of n units would be now; `bounded`: the leaky bucket's queue limit applies
  // (reserve and try_acquire). Nullopt-like `refused` when the queue is full.
  claim make(std::int64_t n_units, std::int64_t now_ns, bool bounded, bool& refused) const {
    const std::int64_t now = sub(now_ns);
    const std::int64_t n = n_units * s;
    const std::int64_t after = std::max(tat, now) + n;
    refused = leaky && bounded && after - now > limit * s;
    const std::int64_t act = after - (leaky ? n : limit * s);
    if (act <= now) return {after, act, now_ns, true};
    return {after, act, time_of(act), false};
  }

  // cancel() / a wait that found the bucket closed.
  void give_back(const model_reservation& r, std::int64_t now_ns) {
    if (sub(now_ns) >= r.act) return;  // its moment came: spent
    const std::int64_t later = tat - r.tat_after;
    if (later < 0) return;  // earlier cancels already pulled the TAT below its end
    if (leaky && later != 0) return;
    const std::int64_t restore = r.n * s - later;
    if (restore > 0) tat -= restore;
  }
};

double pick_rate(bp::fuzz::input& in) {
  static constexpr double table[] = {
      100.0,       0.7,         333.3,        142857.14, 12345.678, 3e6,      1e9, 11.0, 7.0,
      1.0,         1e9 / 1024., 1e9 / 3.0,    0.001,     1e-6,      2.5e8,    10., 0.5,  3.0,
      999999937.0, 4294967.296, 1e9 / 65536., 0.3,       33.0,      1e5 / 3., 1e8, 1e-9, 17.0};
  switch (in.pick(4)) {
    case 0:
      return table[in.pick(std::size(table))];
    case 1:
      return static_cast<double>(in.in_range<std::uint32_t>(1, 1000000000));
    case 2:
      return static_cast<double>(in.in_range<std::uint32_t>(1, 100000)) /
             static_cast<double>(in.in_range<std::uint32_t>(1, 1000));
    default:  // any double: the bucket accepts those in (0, 1e9]
      return std::ldexp(static_cast<double>(in.in_range<std::uint32_t>(1, 0xffffffu)),
                        in.in_range<int>(-60, 5));
  }
}

// The bad arguments: each must throw std::invalid_argument naming the argument.
void run_invalid(bp::fuzz::input& in) {
  bp::manual_clock clock;
  const double bad_rates[] = {0.0,
                              -0.0,
                              -1.0,
                              std::numeric_limits<double>::quiet_NaN(),
                              std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity(),
                              1e9 * (1 + 1e-15),
                              2e9,
                              -std::numeric_limits<double>::denorm_min()};
  const double r = bad_rates[in.pick(std::size(bad_rates))];
  const bool leaky = in.boolean();
  const std::size_t ok_limit = in.in_range<std::size_t>(1, 8);
  auto what = bp::fuzz::thrown_invalid([&] {
    if (leaky)
      bp::leaky_bucket b(r, ok_limit, clock);
    else
      bp::token_bucket b(r, ok_limit, clock);
  });
  BP_FUZZ_CHECK(bp::fuzz::names(what, "rate_per_second"));

  const std::size_t bad_limits[] = {0, (std::size_t{1} << 40) + 1, SIZE_MAX};
  const std::size_t l = bad_limits[in.pick(std::size(bad_limits))];
  what = bp::fuzz::thrown_invalid([&] {
    if (leaky)
      bp::leaky_bucket b({.rate_per_second = 10.0, .capacity = l, .clock = clock});
    else
      bp::token_bucket b({.rate_per_second = 10.0, .burst = l, .clock = clock});
  });
  BP_FUZZ_CHECK(bp::fuzz::names(what, leaky ? "capacity" : "burst"));

  // The largest legal arguments are accepted.
  if (leaky) {
    bp::leaky_bucket b(1e9, std::size_t{1} << 40, clock);
    BP_FUZZ_CHECK(b.capacity() == std::size_t{1} << 40);
  } else {
    bp::token_bucket b(std::numeric_limits<double>::denorm_min(), std::size_t{1} << 40, clock);
    BP_FUZZ_CHECK(b.burst() == std::size_t{1} << 40);
  }
}

template <class Bucket>
void run(bp::fuzz::input& in, bool leaky) {
  const double rate = pick_rate(in);
  if (!(rate > 0.0) || rate > 1e9) return;
  std::int64_t limit = 1;
  switch (in.pick(4)) {
    case 0:
      limit = 1;
      break;
    case 1:
      limit = in.in_range<std::int64_t>(1, 8);
      break;
    case 2:
      limit = in.in_range<std::int64_t>(1, 1000);
      break;
    default:
      limit = std::int64_t{1} << in.in_range<int>(0, 40);
      break;
  }
  const std::int64_t start = in.boolean() ? 0 : in.in_range<std::int64_t>(0, 1000000000000LL);
  bp::manual_clock clock{std::chrono::nanoseconds(start)};
  Bucket b(rate, static_cast<std::size_t>(limit), clock);
  model m(leaky, rate, limit, start);
  std::vector<model_reservation> res;
  const char* limit_name = leaky ? "capacity" : "burst";

  auto now = [&] { return clock.now_ns(); };
  // A request size: mostly small, sometimes 0, the limit, or above it.
  auto pick_n = [&]() -> std::size_t {
    switch (in.pick(6)) {
      case 0:
        return 0;
      case 1:
        return static_cast<std::size_t>(limit);
      case 2:
        return static_cast<std::size_t>(limit) + in.in_range<std::size_t>(1, 3);
      case 3:
        return in.in_range<std::size_t>(1, static_cast<std::size_t>(limit));
      default:
        return std::min<std::size_t>(in.in_range<std::size_t>(1, 4),
                                     static_cast<std::size_t>(limit));
    }
  };
  auto expect_throw_n = [&](auto&& call) {
    const auto what = bp::fuzz::thrown_invalid(call);
    BP_FUZZ_CHECK(bp::fuzz::names(what, "n (") && bp::fuzz::names(what, limit_name));
  };

  for (int step = 0; step < 192 && !in.empty(); ++step) {
    switch (in.pick(12)) {
      case 0: {  // advance the clock: 0, a nanosecond, a little, a lot
        std::int64_t d = 0;
        switch (in.pick(6)) {
          case 0:
            d = 0;
            break;
          case 1:
            d = 1;
            break;
          case 2:
            d = in.in_range<std::int64_t>(0, 1000);
            break;
          case 3:
            d = in.in_range<std::int64_t>(0, 1000000000);
            break;
          case 4:
            d = in.in_range<std::int64_t>(0, 100000000000LL);
            break;
          default:
            d = in.in_range<std::int64_t>(0, std::int64_t{1} << 50);
            break;
        }
        if (now() + d > (std::int64_t{1} << 58)) break;  // stay within years of the origin
        clock.advance(std::chrono::nanoseconds(d));
        break;
      }
      case 1: {  // advance to a unit boundary: the next unit's moment, or a nanosecond before
        const std::int64_t k = in.in_range<std::int64_t>(0, 3);
        std::int64_t target =
            m.time_of(std::max(m.sub(now()) + 1, m.tat - (leaky ? 0 : limit * m.s)) + k * m.s);
        if (in.boolean()) target -= 1;
        if (target > (std::int64_t{1} << 58)) break;
        clock.advance_to(std::chrono::nanoseconds(target));
        break;
      }
      case 2: {  // advance to a reservation's moment, or a nanosecond before it
        if (res.empty()) break;
        std::int64_t target = res[in.pick(res.size())].act_ns;
        if (in.boolean()) target -= 1;
        if (target > (std::int64_t{1} << 58)) break;
        clock.advance_to(std::chrono::nanoseconds(target));
        break;
      }
      case 3: {  // try_acquire
        const std::size_t n = pick_n();
        if (static_cast<std::int64_t>(n) > limit) {
          expect_throw_n([&] { (void)b.try_acquire(n); });
          break;
        }
        bool want = !m.closed;
        if (want && n > 0) {
          bool refused = false;
          const auto c = m.make(static_cast<std::int64_t>(n), now(), true, refused);
          want = !refused && c.now;
          if (want) m.tat = c.after;
        }
        BP_FUZZ_CHECK(b.try_acquire(n) == want);
        break;
      }
      case 4: {  // acquire, acquire_for with a timeout: only when the answer comes at once
        const std::size_t n = pick_n();
        const int mode = static_cast<int>(in.pick(3));
        std::int64_t timeout = 0;
        if (mode == 1) {
          switch (in.pick(4)) {
            case 0:
              timeout = 0;
              break;
            case 1:
              timeout = -in.in_range<std::int64_t>(0, 1000);
              break;
            case 2:
              timeout = in.in_range<std::int64_t>(0, 1000000000);
              break;
            default:
              timeout = in.in_range<std::int64_t>(0, std::int64_t{1} << 50);
              break;
          }
        }
        auto call = [&] {
          if (mode == 0) return b.acquire(n);
          if (mode == 1) return b.acquire_for(n, std::chrono::nanoseconds(timeout));
          // acquire_until on the steady clock: a deadline already past is a zero timeout
          return b.acquire_until(n, std::chrono::steady_clock::now() - 1s);
        };
        if (static_cast<std::int64_t>(n) > limit) {
          expect_throw_n(call);
          break;
        }
        bool want = !m.closed;
        if (want && n > 0) {
          bool refused = false;
          const auto c = m.make(static_cast<std::int64_t>(n), now(), false, refused);
          if (!c.now) {
            if (mode == 0) break;  // would park until the clock moves
            const std::int64_t max_wait = mode == 1 ? std::max<std::int64_t>(timeout, 0) : 0;
            if (max_wait > 0 && c.act_ns - now() <= max_wait) break;  // would park
            want = false;
          } else {
            m.tat = c.after;
          }
        }
        BP_FUZZ_CHECK(call() == want);
        break;
      }
      case 5: {  // reserve
        const std::size_t n = pick_n();
        if (static_cast<std::int64_t>(n) > limit) {
          expect_throw_n([&] { (void)b.reserve(n); });
          break;
        }
        model_reservation mr;
        mr.r = b.reserve(n);
        mr.n = static_cast<std::int64_t>(n);
        bool want = !m.closed;
        if (want && n == 0) {  // granted at once, changes nothing
          mr.act = 0;
          mr.act_ns = now();
          mr.tat_after = m.tat;
        } else if (want) {
          bool refused = false;
          const auto c = m.make(mr.n, now(), true, refused);
          want = !refused;
          if (want) {
            m.tat = c.after;
            mr.tat_after = c.after;
            mr.act = c.act;
            mr.act_ns = c.act_ns;
          }
        }
        BP_FUZZ_CHECK(mr.r.ok() == want);
        BP_FUZZ_CHECK(static_cast<bool>(mr.r) == want);
        mr.ok = want;
        if (want) {
          BP_FUZZ_CHECK(mr.r.tokens() == n);
          res.push_back(std::move(mr));
        } else {
          BP_FUZZ_CHECK(mr.r.delay() == 0ns);
        }
        break;
      }
      case 6: {  // a reservation is cancelled (twice is harmless), moved, or dropped
        if (res.empty()) break;
        const std::size_t i = in.pick(res.size());
        switch (in.pick(3)) {
          case 0:
            if (res[i].ok) m.give_back(res[i], now());
            res[i].ok = false;
            res[i].r.cancel();
            BP_FUZZ_CHECK(!res[i].r.ok());
            BP_FUZZ_CHECK(res[i].r.delay() == 0ns);
            break;
          case 1: {  // moved: the moved-from one is empty, the new one carries on
            bp::reservation moved = std::move(res[i].r);
            BP_FUZZ_CHECK(!res[i].r.ok());
            res[i].r = std::move(moved);
            break;
          }
          default:  // destroying a reservation does not cancel it
            res.erase(res.begin() + static_cast<std::ptrdiff_t>(i));
            break;
        }
        break;
      }
      case 7: {  // reservation::wait when it answers at once
        if (res.empty()) break;
        auto& mr = res[in.pick(res.size())];
        bool want = mr.ok;
        if (mr.ok) {
          if (m.closed) {
            m.give_back(mr, now());
            want = false;
            mr.ok = false;
          } else if (mr.act_ns > now()) {
            break;  // would park until the clock moves
          }
        }
        BP_FUZZ_CHECK(mr.r.wait() == want);
        BP_FUZZ_CHECK(mr.r.ok() == mr.ok);
        break;
      }
      case 8:  // close (idempotent)
        b.close();
        m.closed = true;
        break;
      default:
        break;
    }

    // Observers after every step.
    BP_FUZZ_CHECK(b.is_closed() == m.closed);
    BP_FUZZ_CHECK(b.rate() == rate);
    const std::int64_t now_sub = m.sub(now());
    if constexpr (std::is_same_v<Bucket, bp::token_bucket>) {
      BP_FUZZ_CHECK(b.burst() == static_cast<std::size_t>(limit));
      const std::int64_t used = m.tat > now_sub ? m.tat - now_sub : 0;
      BP_FUZZ_CHECK(b.available() == static_cast<std::size_t>(limit > used ? limit - used : 0));
    } else {
      BP_FUZZ_CHECK(b.capacity() == static_cast<std::size_t>(limit));
      const std::int64_t q = m.tat > now_sub ? (m.tat - now_sub + m.s - 1) / m.s : 0;
      BP_FUZZ_CHECK(b.queued() == static_cast<std::size_t>(q));
    }
    for (const auto& mr : res) {
      BP_FUZZ_CHECK(mr.r.ok() == mr.ok);
      if (!mr.ok) continue;
      const std::int64_t left = mr.act_ns - now();
      const auto got = mr.r.delay().count();
      if (mr.act_ns > far_away)
        BP_FUZZ_CHECK(got >= far_away / 2);
      else
        BP_FUZZ_CHECK(got == (left > 0 ? left : 0));
    }
  }
  // Nobody may wait at destruction: nothing does here (single thread).
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bp::fuzz::input in(data, size);
  switch (in.pick(5)) {
    case 0:
      run_invalid(in);
      break;
    case 1:
    case 2:
      run<bp::token_bucket>(in, false);
      break;
    default:
      run<bp::leaky_bucket>(in, true);
      break;
  }
  return 0;
}

// Internal: demand accounting shared by every publisher, operator and subscriber of bp::rs.
// Demand is a signed 64-bit counter; additions saturate at `unbounded` (INT64_MAX, rule 3.17)
// and once unbounded it is never decremented again.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

#include "../interfaces.hpp"

namespace bp::rs::detail {

// a + b for a, b >= 0, saturating at `unbounded`.
[[nodiscard]] constexpr std::int64_t add_cap(std::int64_t a, std::int64_t b) noexcept {
  return b > unbounded - a ? unbounded : a + b;
}

// a * b for a, b >= 0, saturating at `unbounded`.
[[nodiscard]] constexpr std::int64_t mul_cap(std::int64_t a, std::int64_t b) noexcept {
  if (a == 0 || b == 0) return 0;
  return a > unbounded / b ? unbounded : a * b;
}

// Adds n > 0 to `demand` (saturating); returns the previous value.
// Memory ordering: acq_rel, so the requester's writes before request() happen-before the
// delivery loop that reads the new demand.
inline std::int64_t add_demand(std::atomic<std::int64_t>& demand, std::int64_t n) noexcept {
  std::int64_t cur = demand.load(std::memory_order_relaxed);
  for (;;) {
    if (cur == unbounded) return cur;
    if (demand.compare_exchange_weak(cur, add_cap(cur, n), std::memory_order_acq_rel,
                                     std::memory_order_relaxed))
      return cur;
  }
}

// Subtracts `emitted` delivered elements unless demand is unbounded; returns the new value.
inline std::int64_t consume_demand(std::atomic<std::int64_t>& demand,
                                   std::int64_t emitted) noexcept {
  std::int64_t cur = demand.load(std::memory_order_relaxed);
  for (;;) {
    if (cur == unbounded) return cur;
    if (demand.compare_exchange_weak(cur, cur - emitted, std::memory_order_acq_rel,
                                     std::memory_order_relaxed))
      return cur - emitted;
  }
}

// The rule 3.9 answer to request(n <= 0).
[[nodiscard]] inline std::exception_ptr non_positive_request(std::int64_t n) {
  return std::make_exception_ptr(std::invalid_argument(
      "bp::rs: request(n) requires n > 0 (Reactive Streams rule 3.9), got n = " +
      std::to_string(n)));
}

[[noreturn]] inline void throw_null_subscriber(const char* who) {
  throw std::invalid_argument(std::string(who) +
                              ": subscriber is null (Reactive Streams rule 1.9)");
}

}  // namespace bp::rs::detail

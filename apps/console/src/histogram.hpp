// histogram.hpp: the latency histogram behind the p50 / p99 figures of the console.
//
// Consumers record one latency per item on a hot path, and the sampler reads quantiles 15 times
// a second over a sliding window. A fixed array of log-linear buckets serves both: recording is
// one relaxed atomic increment (no lock, no allocation), a window is the difference of two
// copies of the array, and a quantile is one pass over 256 counters. The buckets are 8 per
// power of two of microseconds, so a quantile read from them is within 1/8 of the true value,
// from 1 us up to far beyond any latency the console can produce.
#pragma once

#include <array>
#include <cstdint>

namespace bp::console {

class latency_histogram {
 public:
  static constexpr int buckets = 256;
  using counts = std::array<std::uint64_t, buckets>;

  static int bucket_of(std::uint64_t micros) noexcept;
  static double value_of(int bucket) noexcept;  // representative value in microseconds
  // The q-quantile (0 < q <= 1) of the latencies counted in `h`, in microseconds; -1 when `h`
  // is empty.
  static double quantile(const counts& h, double q) noexcept;
};

}  // namespace bp::console

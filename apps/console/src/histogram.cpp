// histogram.cpp: bucket arithmetic of the latency histogram (see histogram.hpp). Below 8 us a
// bucket is one microsecond; above, the three bits after the most significant one pick one of
// 8 sub-buckets of the power of two, which keeps the relative error bounded at every scale.
#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bp::console {

int latency_histogram::bucket_of(std::uint64_t us) noexcept {
  if (us < 8) return static_cast<int>(us);
  const int msb = std::bit_width(us) - 1;  // >= 3
  const int sub = static_cast<int>((us >> (msb - 3)) & 7);
  return std::min((msb - 2) * 8 + sub, buckets - 1);
}

double latency_histogram::value_of(int b) noexcept {
  if (b < 8) return b;
  const int msb = b / 8 + 2;
  const int sub = b % 8;
  const double lo = std::ldexp(8 + sub, msb - 3);
  return lo + std::ldexp(1, msb - 3) / 2;  // the middle of the bucket
}

double latency_histogram::quantile(const counts& h, double q) noexcept {
  std::uint64_t total = 0;
  for (auto c : h) total += c;
  if (total == 0) return -1;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * double(total)));
  std::uint64_t seen = 0;
  for (int b = 0; b < buckets; ++b) {
    seen += h[b];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return value_of(b);
  }
  return value_of(buckets - 1);
}

}  // namespace bp::console

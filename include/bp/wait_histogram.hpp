// bp/wait_histogram.hpp: how long waiting verbs waited.
//
//   bp::wait_histogram           a lock-free fixed-bucket histogram of wait times, from 1 us to
//                                10 s on a 1-2-5 log scale; every primitive that can make a
//                                caller wait keeps one (or two) and records into it only when a
//                                caller actually waited.
//   bp::wait_histogram_snapshot  its counts, copied out: plain data for exporters and tests.
//
// Example (examples/metrics.cpp):
//
//   bp::channel<int> ch(8);
//   ...
//   const bp::wait_histogram_snapshot w = ch.send_wait_times().snapshot();
//   std::printf("%llu sends waited, %.3f ms on average\n",
//               static_cast<unsigned long long>(w.count), w.mean_seconds() * 1e3);
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace bp {

// A histogram's counts at one moment.
//
// buckets[i] counts the waits that took at most upper_bound_ns[i] (and more than the bound
// before it); the last bucket, past every bound, counts the waits longer than 10 s. count is
// the sum of the buckets, so an exporter's +Inf bucket always equals its count.
struct wait_histogram_snapshot {
  static constexpr std::size_t bound_count = 22;
  static constexpr std::size_t bucket_count = bound_count + 1;
  // 1, 2, 5 per decade from 1 us to 10 s: the range of waits a flow-control primitive sees
  // (a futex round trip is a few us; a timeout of seconds is the longest wait worth sorting).
  static constexpr std::array<std::uint64_t, bound_count> upper_bound_ns = {
      1'000,         2'000,         5'000,         10'000,        20'000,      50'000,
      100'000,       200'000,       500'000,       1'000'000,     2'000'000,   5'000'000,
      10'000'000,    20'000'000,    50'000'000,    100'000'000,   200'000'000, 500'000'000,
      1'000'000'000, 2'000'000'000, 5'000'000'000, 10'000'000'000};

  std::array<std::uint64_t, bucket_count> buckets{};
  std::uint64_t count = 0;   // waits recorded
  std::uint64_t sum_ns = 0;  // their total duration

  [[nodiscard]] double sum_seconds() const noexcept { return static_cast<double>(sum_ns) / 1e9; }
  [[nodiscard]] double mean_seconds() const noexcept {
    return count == 0 ? 0.0 : sum_seconds() / static_cast<double>(count);
  }
};

// A lock-free histogram of wait times.
//
// record() is two relaxed fetch_adds (a bucket and the sum) and a search of 22 bounds: it is
// meant for the slow path only. The primitives call it after a caller has waited (parked, or
// slept for a token), never on an operation that completed at once, so a primitive that never
// makes anyone wait pays nothing for its histograms but the memory (about 200 bytes each).
//
// Thread safety: record() and snapshot() may run concurrently from any number of threads.
// Memory ordering: relaxed; a snapshot taken while waits are being recorded may miss the ones
// in flight, and may see a wait in its bucket before its duration is in the sum. At rest it is
// exact.
class wait_histogram {
 public:
  using snapshot_type = wait_histogram_snapshot;

  wait_histogram() = default;
  wait_histogram(const wait_histogram&) = delete;
  wait_histogram& operator=(const wait_histogram&) = delete;

  template <class Rep, class Period>
  void record(std::chrono::duration<Rep, Period> waited) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(waited).count();
    record_ns(ns > 0 ? static_cast<std::uint64_t>(ns) : 0);
  }

  void record_ns(std::uint64_t ns) noexcept {
    const auto& b = snapshot_type::upper_bound_ns;
    const auto i = static_cast<std::size_t>(std::lower_bound(b.begin(), b.end(), ns) - b.begin());
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  }

  [[nodiscard]] snapshot_type snapshot() const noexcept {
    snapshot_type s;
    for (std::size_t i = 0; i < snapshot_type::bucket_count; ++i) {
      s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
      s.count += s.buckets[i];
    }
    s.sum_ns = sum_ns_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::array<std::atomic<std::uint64_t>, snapshot_type::bucket_count> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace bp

// Internal: the per-worker counters behind bp::pipeline's report(). Not part of the public API.
//
// Every worker owns one stage_counters block (a cache line of its own) and is its only writer:
// it accumulates in plain locals and publishes them with relaxed stores after each item, so
// metering adds no read-modify-write and no shared line to the item path. report() sums the
// blocks with relaxed loads; a sum may mix two moments of one worker, which is fine for
// figures that are best effort by contract.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "config.hpp"

namespace bp::detail {

struct alignas(cache_line) stage_counters {
  std::atomic<std::int64_t> busy_ns{0};     // in the stage's own work (function, rate, limit)
  std::atomic<std::int64_t> idle_ns{0};     // waiting for input
  std::atomic<std::int64_t> blocked_ns{0};  // waiting for room in the output link
  std::atomic<std::int64_t> reorder_ns{0};  // ordered stages: waiting for the reorder window
  std::atomic<std::uint64_t> items_in{0};
  std::atomic<std::uint64_t> items_out{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> discarded{0};
  std::atomic<std::uint64_t> fill_permille_sum{0};  // samples of the input link's fill
  std::atomic<std::uint64_t> fill_samples{0};
};

// One worker's view of its counters. Time is read with steady_clock only where the worker
// changes activity (input arrived, work done, output accepted), three reads per item; with
// timing off no clock is read at all and only the item counters move.
class stage_meter {
 public:
  using clock = std::chrono::steady_clock;

  stage_meter(stage_counters& c, bool timing) noexcept : c_(c), timing_(timing) {
    if (timing_) last_ = clock::now();
  }

  // Ends the current interval and books it to one activity.
  void idle() noexcept { lap(idle_); }
  void busy() noexcept { lap(busy_); }
  void blocked() noexcept { lap(blocked_); }
  void reorder() noexcept { lap(reorder_); }

  std::uint64_t in = 0, out = 0, errors = 0, discarded = 0, fill_sum = 0, fill_samples = 0;

  void publish() noexcept {
    constexpr auto r = std::memory_order_relaxed;
    c_.busy_ns.store(busy_, r);
    c_.idle_ns.store(idle_, r);
    c_.blocked_ns.store(blocked_, r);
    c_.reorder_ns.store(reorder_, r);
    c_.items_in.store(in, r);
    c_.items_out.store(out, r);
    c_.errors.store(errors, r);
    c_.discarded.store(discarded, r);
    c_.fill_permille_sum.store(fill_sum, r);
    c_.fill_samples.store(fill_samples, r);
  }

 private:
  void lap(std::int64_t& bucket) noexcept {
    if (!timing_) return;
    const auto now = clock::now();
    bucket += std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_).count();
    last_ = now;
  }

  stage_counters& c_;
  const bool timing_;
  clock::time_point last_{};
  std::int64_t busy_ = 0, idle_ = 0, blocked_ = 0, reorder_ = 0;
};

}  // namespace bp::detail

// Internal: the per-worker counters behind bp::pipeline's report(). Not part of the public API.
//
// Every worker owns one stage_counters block (a cache line of its own) and is its only writer:
// it accumulates in plain locals and publishes them with relaxed stores after each item, so
// metering adds no read-modify-write and no shared line to the item path. report() reads the
// blocks with relaxed loads; a sum may mix two moments of one worker, which is fine for
// figures that are best effort by contract.
//
// Time is read only where a worker is about to wait (its input link is empty, its output link
// full, the reorder window closed) and when it wakes: an item that flows through without
// waiting costs no clock read at all. Busy time is the rest of the worker's life: its start
// and end are stamped once, and report() subtracts the waits. A wait in progress is published
// as it begins (its kind and start), so a report taken while a worker is parked counts it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "config.hpp"

namespace bp::detail {

enum class wait_kind : int { none, idle, blocked, reorder };

struct alignas(cache_line) stage_counters {
  std::atomic<std::int64_t> start_ns{0};       // steady_clock, since its epoch; 0: not started
  std::atomic<std::int64_t> end_ns{0};         // 0: still running
  std::atomic<std::int64_t> idle_ns{0};        // waiting for input
  std::atomic<std::int64_t> blocked_ns{0};     // waiting for room in the output link
  std::atomic<std::int64_t> reorder_ns{0};     // ordered stages: waiting for the reorder window
  std::atomic<std::int64_t> wait_since_ns{0};  // the wait in progress began then; 0: none
  std::atomic<wait_kind> waiting{wait_kind::none};
  std::atomic<std::uint64_t> items_in{0};
  std::atomic<std::uint64_t> items_out{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::uint64_t> discarded{0};
  std::atomic<std::uint64_t> fill_permille_sum{0};  // samples of the input link's fill
  std::atomic<std::uint64_t> fill_samples{0};
};

inline std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One worker's view of its counters. With timing off no clock is read at all and only the
// item counters move.
class stage_meter {
 public:
  stage_meter(stage_counters& c, bool timing) noexcept : c_(c), timing_(timing) {
    if (timing_) c_.start_ns.store(steady_ns(), std::memory_order_relaxed);
  }
  stage_meter(const stage_meter&) = delete;
  stage_meter& operator=(const stage_meter&) = delete;
  ~stage_meter() {
    publish();
    if (timing_) c_.end_ns.store(steady_ns(), std::memory_order_relaxed);
  }

  // Runs f(), which may wait, and books the time it took to `kind`.
  template <class F>
  decltype(auto) wait(wait_kind kind, F&& f) {
    if (!timing_) return f();
    const std::int64_t t0 = steady_ns();
    c_.waiting.store(kind, std::memory_order_relaxed);
    c_.wait_since_ns.store(t0, std::memory_order_relaxed);
    struct end_of_wait {
      stage_meter& m;
      wait_kind kind;
      std::int64_t t0;
      ~end_of_wait() { m.end_wait(kind, t0); }
    } guard{*this, kind, t0};
    return f();
  }

  std::uint64_t in = 0, out = 0, errors = 0, discarded = 0, fill_sum = 0, fill_samples = 0;
  std::uint64_t ticks = 0;  // calls of sample_fill, to sample every k-th

  void publish() noexcept {
    constexpr auto r = std::memory_order_relaxed;
    c_.items_in.store(in, r);
    c_.items_out.store(out, r);
    c_.errors.store(errors, r);
    c_.discarded.store(discarded, r);
    c_.fill_permille_sum.store(fill_sum, r);
    c_.fill_samples.store(fill_samples, r);
  }

 private:
  void end_wait(wait_kind kind, std::int64_t t0) noexcept {
    constexpr auto r = std::memory_order_relaxed;
    const std::int64_t d = steady_ns() - t0;
    std::int64_t& total = kind == wait_kind::idle      ? idle_
                          : kind == wait_kind::blocked ? blocked_
                                                       : reorder_;
    total += d;
    c_.wait_since_ns.store(0, r);
    c_.waiting.store(wait_kind::none, r);
    (kind == wait_kind::idle      ? c_.idle_ns
     : kind == wait_kind::blocked ? c_.blocked_ns
                                  : c_.reorder_ns)
        .store(total, r);
  }

  stage_counters& c_;
  const bool timing_;
  std::int64_t idle_ = 0, blocked_ = 0, reorder_ = 0;
};

// What one worker's counters say about time, read while it may still run.
struct worker_times {
  std::int64_t busy = 0, idle = 0, blocked = 0, reorder = 0;
};

inline worker_times read_times(const stage_counters& c, std::int64_t now) noexcept {
  constexpr auto r = std::memory_order_relaxed;
  worker_times t;
  const std::int64_t start = c.start_ns.load(r);
  if (start == 0) return t;
  const std::int64_t end = c.end_ns.load(r);
  t.idle = c.idle_ns.load(r);
  t.blocked = c.blocked_ns.load(r);
  t.reorder = c.reorder_ns.load(r);
  const std::int64_t since = c.wait_since_ns.load(r);
  const wait_kind kind = c.waiting.load(r);
  if (end == 0 && since != 0 && now > since) {
    const std::int64_t d = now - since;
    if (kind == wait_kind::idle) t.idle += d;
    if (kind == wait_kind::blocked) t.blocked += d;
    if (kind == wait_kind::reorder) t.reorder += d;
  }
  const std::int64_t life = (end != 0 ? end : now) - start;
  const std::int64_t waits = t.idle + t.blocked + t.reorder;
  t.busy = life > waits ? life - waits : 0;
  return t;
}

}  // namespace bp::detail

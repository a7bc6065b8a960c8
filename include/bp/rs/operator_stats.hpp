// bp/rs/operator_stats.hpp: what a flow-control operator of a Reactive Streams chain did.
//
//   bp::rs::operator_stats           counters shared by every subscription of one operator:
//                                    elements received from upstream, delivered downstream,
//                                    dropped, evicted, rejected, discarded at cancel, and the
//                                    demand requested upstream. Attach it with .with_stats(p)
//                                    on on_backpressure_buffer / _latest / _drop, limit_rate,
//                                    observe_on; register it in a bp::metrics::registry.
//   bp::rs::operator_stats_snapshot  its numbers at one moment.
//
// Example:
//
//   auto st = std::make_shared<bp::rs::operator_stats>();
//   auto pub = source | bp::rs::on_backpressure_buffer(64, bp::overflow::drop_oldest)
//                           .with_stats(st);
//   auto r = registry.add("ingest", st);   // bp_rs_operator_dropped_total{rs_operator="ingest"}
//
// An operator without stats attached pays one null-pointer test per element.
#pragma once

#include <atomic>
#include <cstdint>

namespace bp::rs {

struct operator_stats_snapshot {
  std::uint64_t received = 0;   // elements upstream signalled (on_next)
  std::uint64_t delivered = 0;  // elements (or batches, for batch) passed downstream
  std::uint64_t dropped = 0;    // refused: drop_newest, or on_backpressure_drop without demand
  std::uint64_t evicted = 0;    // buffered elements evicted by newer ones (drop_oldest, latest)
  std::uint64_t rejected = 0;   // elements that overflowed a rejecting buffer (then on_error)
  std::uint64_t discarded = 0;  // buffered elements thrown away at cancel
  std::uint64_t requested = 0;  // demand requested upstream (an unbounded request counts 0)
  // Elements held by the operator now: exact at rest.
  [[nodiscard]] std::uint64_t buffered() const noexcept {
    const std::uint64_t out = delivered + dropped + evicted + rejected + discarded;
    return received > out ? received - out : 0;
  }
};

// Relaxed counters; any number of operators (and subscriptions) may share one.
// Thread safety: every member may be called concurrently.
class operator_stats {
 public:
  operator_stats() = default;
  operator_stats(const operator_stats&) = delete;
  operator_stats& operator=(const operator_stats&) = delete;

  void add_received() noexcept { received_.fetch_add(1, std::memory_order_relaxed); }
  void add_delivered() noexcept { delivered_.fetch_add(1, std::memory_order_relaxed); }
  void add_dropped() noexcept { dropped_.fetch_add(1, std::memory_order_relaxed); }
  void add_evicted() noexcept { evicted_.fetch_add(1, std::memory_order_relaxed); }
  void add_rejected() noexcept { rejected_.fetch_add(1, std::memory_order_relaxed); }
  void add_discarded() noexcept { discarded_.fetch_add(1, std::memory_order_relaxed); }
  void add_requested(std::int64_t n) noexcept {
    if (n > 0) requested_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
  }

  [[nodiscard]] operator_stats_snapshot snapshot() const noexcept {
    operator_stats_snapshot s;
    s.received = received_.load(std::memory_order_relaxed);
    s.delivered = delivered_.load(std::memory_order_relaxed);
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.evicted = evicted_.load(std::memory_order_relaxed);
    s.rejected = rejected_.load(std::memory_order_relaxed);
    s.discarded = discarded_.load(std::memory_order_relaxed);
    s.requested = requested_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> evicted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> discarded_{0};
  std::atomic<std::uint64_t> requested_{0};
};

}  // namespace bp::rs

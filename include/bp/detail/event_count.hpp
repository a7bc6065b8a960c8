// Internal: an event count, the "wait until something may have changed" half of every blocking
// operation in the library. Threads that find no credit (no item, no free slot, no token)
// register, re-check, and park; threads that create credit call notify, which costs one fence
// and one load when nobody waits (no system call, no shared write).
//
// Protocol (the waiter side):
//     auto key = ec.prepare_wait();      // register as a waiter, read the epoch
//     if (condition_now_true()) { ec.cancel_wait(); ... }
//     else ec.wait(key, deadline);      // parks unless the epoch moved since prepare_wait
// The notifier makes its change visible first, then calls notify_one/notify_all.
//
// Memory ordering: a Dekker pair made only of seq_cst operations, which the C++ model (and
// TSan) reason about directly, with no standalone fence. The notifier publishes its change with
// a seq_cst store or RMW, then loads `waiters_` (seq_cst); the waiter increments `waiters_`
// (seq_cst RMW), then re-checks the condition with seq_cst loads. In the single total order S
// either the notifier's load comes after the increment (it sees the waiter and wakes it) or the
// waiter's re-check comes after the publication (it sees the change). A wake cannot be lost,
// and notify needs no lock. On x86 the seq_cst store is one `xchg`; seq_cst loads are plain.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>

#include "config.hpp"
#include "futex.hpp"

namespace bp::detail {

class event_count {
 public:
  [[nodiscard]] std::uint32_t prepare_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    return epoch_.load(std::memory_order_acquire);
  }

  void cancel_wait() noexcept { waiters_.fetch_sub(1, std::memory_order_relaxed); }

  // Parks until notified (or a spurious wake-up). Returns false if the deadline passed.
  bool wait(std::uint32_t key, clock::time_point deadline = clock::time_point::max()) noexcept {
    const bool in_time = futex_wait(epoch_, key, deadline);
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return in_time;
  }

  // The caller's change must have been published with a seq_cst store or RMW (see above).
  void notify_one() noexcept { wake_if_waiting(1); }
  void notify_all() noexcept { wake_if_waiting(INT_MAX); }

  // Wakes up to `count` parked waiters if any are registered; free (one load) when none are.
  void wake_if_waiting(int count) noexcept {
    if (waiters_.load(std::memory_order_seq_cst) == 0) return;
    epoch_.fetch_add(1, std::memory_order_release);
    futex_wake(epoch_, count);
  }

  // How many threads are registered right now (a seq_cst load: usable in the protocol above).
  [[nodiscard]] std::uint32_t waiters() const noexcept {
    return waiters_.load(std::memory_order_seq_cst);
  }

 private:
  alignas(cache_line) std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace bp::detail

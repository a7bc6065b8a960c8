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
// Memory ordering: the waiter's registration (seq_cst RMW + fence) and the notifier's fence
// form a Dekker pair: either the notifier sees `waiters_ > 0` and bumps the epoch (so the park
// returns at once or is woken), or the waiter's re-check sees the notifier's change. That is
// why notify needs no lock and a wake can never be lost.
#pragma once

#include <atomic>
#include <climits>
#include <cstdint>

#include "config.hpp"
#include "futex.hpp"

namespace bp::detail {

// A sequentially consistent fence: orders "publish my change" before "look for waiters".
inline void full_fence() noexcept {
  // TSan does not model standalone fences and GCC warns about them under -fsanitize=thread.
  // The fence only orders the waiter-count check (wake-ups), never data, so TSan's race
  // detection loses nothing by ignoring it; a fake RMW here would instead invent a
  // happens-before edge between unrelated threads and hide real races.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic pop
#endif
}

class event_count {
 public:
  [[nodiscard]] std::uint32_t prepare_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    full_fence();
    return epoch_.load(std::memory_order_acquire);
  }

  void cancel_wait() noexcept { waiters_.fetch_sub(1, std::memory_order_relaxed); }

  // Parks until notified (or a spurious wake-up). Returns false if the deadline passed.
  bool wait(std::uint32_t key, clock::time_point deadline = clock::time_point::max()) noexcept {
    const bool in_time = futex_wait(epoch_, key, deadline);
    waiters_.fetch_sub(1, std::memory_order_relaxed);
    return in_time;
  }

  void notify_one() noexcept {
    full_fence();
    wake_if_waiting(1);
  }
  void notify_all() noexcept {
    full_fence();
    wake_if_waiting(INT_MAX);
  }

  // For a caller that has already issued full_fence() after its change (one fence can serve
  // several event counts).
  void wake_if_waiting(int count) noexcept {
    if (waiters_.load(std::memory_order_relaxed) == 0) return;
    epoch_.fetch_add(1, std::memory_order_release);
    futex_wake(epoch_, count);
  }

  // How many threads are registered right now (exact only after a full_fence()).
  [[nodiscard]] std::uint32_t waiters() const noexcept {
    return waiters_.load(std::memory_order_relaxed);
  }

 private:
  alignas(cache_line) std::atomic<std::uint32_t> epoch_{0};
  std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace bp::detail

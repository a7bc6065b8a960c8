// Internal: an event count, the "wait until something may have changed" half of every blocking
// operation in the library. Threads that find no credit (no item, no free slot, no token)
// register, re-check, and park; threads that create credit call notify, which costs one load
// when nobody waits (no system call, no shared write).
//
// Protocol (the waiter side):
//     auto key = ec.prepare_wait();      // register as a waiter, read the epoch
//     if (condition_now_true()) { ec.cancel_wait(); ... }
//     else ec.wait(key, deadline);      // parks unless the epoch moved since prepare_wait
// The notifier makes its change visible first, then calls notify_one/notify_all.
//
// Memory ordering: a Dekker pair. The notifier publishes its change, then loads `state_`
// (seq_cst) — after a fence in notify_one/notify_all, or with no fence in wake_if_waiting when
// the change itself was a seq_cst store or RMW (the channel's hot path); the waiter increments
// the waiter count in `state_` (seq_cst RMW + fence), then re-checks the condition. In the single
// total order S either the notifier's load comes after the increment (it sees the waiter and wakes
// it) or the waiter's re-check comes after the publication (it sees the change). A wake cannot be
// lost, and notify needs no lock. On x86 a seq_cst RMW is the `lock` instruction the publisher
// needs anyway (the ring's ticket CAS); seq_cst loads are plain loads.
//
// Pending signals: `state_` also counts wake-ups issued but not yet consumed by a waiter, so a
// notify only wakes when more threads wait than have already been signalled.
//
// Suspended coroutines (async waiters) wait here too, without a thread. An async waiter is a
// node in the awaiting coroutine's frame: it registers and re-checks exactly as a thread does,
// then, instead of parking on the futex, links itself into this event count's list
// (park_async). A notifier that owes wake-ups takes nodes off the list before it wakes
// threads, accounts for them as the waiters leaving, and calls each node's on_wake after
// everything else (no lock held), typically to re-run the attempt and resume the coroutine.
// The epoch plays the futex's part: a node whose key is stale when it links (a notify came
// after its registration) is not linked but retried, as a futex wait with a stale key returns
// at once. The list's lock is only taken by waiters that suspend and by notifiers that find
// the list non-empty; threads-only use pays one extra load on the wake path, none on the
// no-waiter path.
#pragma once

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>
#include <thread>

#include "config.hpp"
#include "futex.hpp"
#include "spin.hpp"

namespace bp::detail {

// A sequentially consistent fence, for publishers whose change was not itself a seq_cst RMW.
inline void full_fence() noexcept {
  // TSan does not model standalone fences and GCC warns about them under -fsanitize=thread.
  // This fence only orders a waiter-count check (wake-ups), never data, so TSan's race
  // detection loses nothing by ignoring it.
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
#endif
  std::atomic_thread_fence(std::memory_order_seq_cst);
#if defined(__GNUC__) && !defined(__clang__) && defined(__SANITIZE_THREAD__)
#pragma GCC diagnostic pop
#endif
}

// A waiter without a thread: linked into one event count at a time. `on_wake` is called by the
// notifier that took it off the list (the waiter count already accounted for), once per park.
struct async_waiter {
  async_waiter* next = nullptr;
  async_waiter* prev = nullptr;
  void (*on_wake)(async_waiter&) noexcept = nullptr;
  bool linked = false;  // guarded by the event count's list lock
};

enum class park_result { parked, retry, aborted };

class event_count {
 public:
  [[nodiscard]] std::uint32_t prepare_wait() noexcept {
    // The key is read *before* registering: a notifier that counts this waiter as signalled
    // bumps the epoch after that count, so the key is then stale and the park returns at once,
    // consuming the signal. (Read after registering, the key could already include that bump:
    // the waiter would sleep while its signal stays counted, and later notifies skip it.)
    const std::uint32_t key = epoch_.load(std::memory_order_acquire);
    state_.fetch_add(one_waiter, std::memory_order_seq_cst);
    full_fence();  // slow path only: makes the re-check safe whatever its memory orders
    return key;
  }

  void cancel_wait() noexcept { leave(); }

  // Parks until notified (or a spurious wake-up). Returns false if the deadline passed.
  bool wait(std::uint32_t key, clock::time_point deadline = clock::time_point::max()) noexcept {
    const bool in_time = futex_wait(epoch_, key, deadline);
    leave();
    return in_time;
  }

  // For any publisher (a plain store, a mutex, ...): a fence, then wake_if_waiting.
  void notify_one() noexcept {
    full_fence();
    wake_if_waiting(1);
  }
  void notify_all() noexcept {
    full_fence();
    wake_if_waiting(INT_MAX);
  }

  // Wakes up to `count` registered waiters that no earlier notify has signalled yet. Free (one
  // load) when there are none, so a consumer freeing slots one by one while the woken producer
  // has not run yet (a busy machine) makes one system call, not one per slot. Without a fence:
  // only for a caller whose change was published by a seq_cst store or RMW (the channel's ticket
  // CAS); everyone else calls notify_one/notify_all.
  void wake_if_waiting(int count) noexcept {
    std::uint64_t s = state_.load(std::memory_order_seq_cst);
    std::uint64_t add = 0;
    for (;;) {
      const std::uint64_t waiting = s >> 32, signalled = s & signal_mask;
      if (waiting <= signalled) return;
      add = std::min<std::uint64_t>(static_cast<std::uint64_t>(count), waiting - signalled);
      if (state_.compare_exchange_weak(s, s + add, std::memory_order_seq_cst)) break;
    }
    // The epoch moves before the list is looked at: an async waiter that links after this
    // notify looked sees the new epoch and retries instead of staying linked with its signal
    // spent (seq_cst on both sides: a store-buffer pair with park_async).
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    int threads = static_cast<int>(add);
    async_waiter* woken = nullptr;
    if (async_head_.load(std::memory_order_seq_cst) != nullptr)
      threads -= take_async(threads, woken);
    if (threads > 0) futex_wake(epoch_, threads);
    while (woken != nullptr) {
      async_waiter* w = woken;
      woken = w->next;  // read first: on_wake may end the waiter's life
      w->on_wake(*w);
    }
  }

  // --- async waiters -------------------------------------------------------------------------
  // Protocol: key = prepare_wait(); re-check; then park_async(w, key, abort) or cancel_wait().
  //   parked   w is linked; a notifier (or unpark_async) will take it off
  //   retry    a notify came since `key`: w is not linked and no longer counts; re-check again
  //   aborted  abort() said so (checked under the list lock): w was not linked, no longer counts
  template <class Abort>
  park_result park_async(async_waiter& w, std::uint32_t key, Abort&& abort) noexcept {
    lock_list();
    if (abort()) {
      unlock_list();
      leave();
      return park_result::aborted;
    }
    // Link first, then look at the epoch: a store-buffer pair with wake_if_waiting's epoch
    // increment and head load (all seq_cst). Either the notifier sees this node on the list, or
    // this load sees its increment and the node is taken back off.
    w.next = nullptr;
    w.prev = async_tail_;
    w.linked = true;
    if (async_tail_ != nullptr) {
      async_tail_->next = &w;
    } else {
      async_head_.store(&w, std::memory_order_seq_cst);
    }
    async_tail_ = &w;
    if (epoch_.load(std::memory_order_seq_cst) != key) {
      unlink(w);
      unlock_list();
      leave();
      return park_result::retry;
    }
    unlock_list();
    return park_result::parked;
  }

  // Takes `w` off the list if it is still there (it leaves the waiter count): true. False when a
  // notifier has already taken it and will call (or is calling) its on_wake.
  bool unpark_async(async_waiter& w) noexcept {
    lock_list();
    if (!w.linked) {
      unlock_list();
      return false;
    }
    unlink(w);
    unlock_list();
    leave();
    return true;
  }

  // Some thread was woken (signalled) and has not run far enough to take its signal yet: it is
  // runnable but not running, typically waiting for a CPU. A hint (relaxed), for schedulers.
  [[nodiscard]] bool woken_not_running() const noexcept {
    return (state_.load(std::memory_order_relaxed) & signal_mask) != 0;
  }

  // The spin budget of this event count's waiting threads (detail/spin.hpp, adaptive spin):
  // halved by a spin that ended in a park, doubled back by one that caught its credit, between
  // spin_floor_ns and spin_budget_ns. Written only by waiters and only when it changes, so a
  // budget that has settled (always paying on a quiet machine, never paying on a busy one)
  // costs the notifiers' line nothing.
  [[nodiscard]] std::int64_t spin_budget() const noexcept {
    if constexpr (!spin_adaptive) return spin_budget_ns;
    return spin_ns_.load(std::memory_order_relaxed);
  }
  void spin_paid(std::int64_t budget) noexcept {
    if (!spin_adaptive || budget >= spin_budget_ns) return;
    spin_ns_.store(std::min<std::int64_t>(spin_budget_ns, budget * 2 + spin_regrow_ns),
                   std::memory_order_relaxed);
  }
  void spin_wasted(std::int64_t budget) noexcept {
    if (!spin_adaptive || budget <= spin_floor_ns) return;
    spin_ns_.store(std::max<std::int64_t>(spin_floor_ns, budget / 2), std::memory_order_relaxed);
  }

  // How many threads are registered right now (a seq_cst load: usable in the protocol above).
  [[nodiscard]] std::uint32_t waiters() const noexcept {
    return static_cast<std::uint32_t>(state_.load(std::memory_order_seq_cst) >> 32);
  }

 private:
  static constexpr std::uint64_t one_waiter = std::uint64_t{1} << 32;
  static constexpr std::uint64_t signal_mask = one_waiter - 1;

  // A waiter leaves (woken, timed out, or never parked) and consumes one pending signal if there
  // is one. Keeping `signalled <= waiting` is what matters: too few pending signals only costs
  // an extra wake-up; too many would make a later notify skip a waiter that needs it.
  void leave() noexcept {
    std::uint64_t s = state_.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t signalled = s & signal_mask;
      const std::uint64_t next = s - one_waiter - (signalled ? 1 : 0);
      if (state_.compare_exchange_weak(s, next, std::memory_order_relaxed)) return;
    }
  }

  void lock_list() noexcept {
    for (int spins = 0; list_lock_.exchange(true, std::memory_order_acquire);) {
      // Held for a few pointer writes: pause, and yield if its holder was preempted.
      if (++spins < 64) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }
  void unlock_list() noexcept { list_lock_.store(false, std::memory_order_release); }

  void unlink(async_waiter& w) noexcept {  // under the list lock
    if (w.prev != nullptr) {
      w.prev->next = w.next;
    } else {
      async_head_.store(w.next, std::memory_order_seq_cst);
    }
    (w.next != nullptr ? w.next->prev : async_tail_) = w.prev;
    w.next = w.prev = nullptr;
    w.linked = false;
  }

  // Takes up to `max` async waiters off the list, oldest first, each leaving the waiter count
  // with the signal just issued for it; returns how many, chained through `next` into `out`.
  int take_async(int max, async_waiter*& out) noexcept {
    int taken = 0;
    async_waiter* last = nullptr;
    lock_list();
    while (taken < max) {
      async_waiter* w = async_head_.load(std::memory_order_relaxed);
      if (w == nullptr) break;
      unlink(*w);
      (last != nullptr ? last->next : out) = w;
      last = w;
      ++taken;
    }
    unlock_list();
    for (int i = 0; i < taken; ++i) leave();
    return taken;
  }

  // High half: registered waiters. Low half: wake-ups issued that no waiter has consumed yet.
  // Not aligned here: an event count inside a waiter's node lives in a stack frame or a
  // coroutine frame (whose allocation ignores over-alignment); primitives that share one
  // between cores declare it `alignas(detail::cache_line)`.
  std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint32_t> epoch_{0};
  std::atomic<bool> list_lock_{false};
  std::atomic<async_waiter*> async_head_{nullptr};
  async_waiter* async_tail_ = nullptr;
  std::atomic<std::int64_t> spin_ns_{spin_budget_ns};
};

}  // namespace bp::detail

// bp/semaphore.hpp: a counting semaphore, the seed's "limit outstanding work" pattern.
//
//   bp::semaphore  a pool of permits: acquire takes n (waiting while there are too few),
//                  release gives them back. First come, first served; close() wakes every
//                  waiter.
//   bp::permit     move-only RAII ownership of n permits, given back on destruction (tokio's
//                  SemaphorePermit).
//
// Example (examples/semaphore_limit.cpp):
//
//   bp::semaphore slots(8);                        // at most 8 requests in flight
//   for (auto& req : requests) {
//     bp::permit p = slots.acquire_permit();       // waits while 8 are out
//     if (!p) break;                               // closed
//     pool.submit([p = std::move(p), &req] { handle(req); });  // released when done
//   }
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/config.hpp"
#include "detail/futex.hpp"

namespace bp {

class semaphore;

// Ownership of n permits of one semaphore; destruction (or release()) gives them back. An
// empty permit (default-constructed, moved-from, or the answer of a failed acquire) owns
// nothing and converts to false. It must not outlive its semaphore.
class permit {
 public:
  permit() noexcept = default;
  permit(permit&& o) noexcept : sem_(std::exchange(o.sem_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  permit& operator=(permit&& o) noexcept {
    if (this != &o) {
      release();
      sem_ = std::exchange(o.sem_, nullptr);
      n_ = std::exchange(o.n_, 0);
    }
    return *this;
  }
  permit(const permit&) = delete;
  permit& operator=(const permit&) = delete;
  ~permit() { release(); }

  explicit operator bool() const noexcept { return sem_ != nullptr; }
  [[nodiscard]] std::size_t count() const noexcept { return n_; }

  // Gives the permits back now; the permit is empty afterwards.
  inline void release() noexcept;

  // Keeps the permits taken: the caller will release them on the semaphore itself.
  std::size_t detach() noexcept {
    sem_ = nullptr;
    return std::exchange(n_, 0);
  }

 private:
  friend class semaphore;
  permit(semaphore* s, std::size_t n) noexcept : sem_(s), n_(n) {}
  semaphore* sem_ = nullptr;
  std::size_t n_ = 0;
};

// A counting semaphore with n-permit operations, timeouts and close.
//
// Fairness: first come, first served. A waiter queues in FIFO order; release() hands permits
// to the waiters at the head of the queue directly (a waiter for 5 permits is not overtaken by
// later requests for 1), and try_acquire does not barge past queued waiters. The price: while
// the head waits for more permits than are free, later (smaller) requests wait too.
//
// Verbs: try_acquire(n) never waits; acquire(n) waits (false only when closed);
// acquire_for / acquire_until give up at the timeout; release(n) gives back. The *_permit
// variants return a bp::permit that releases on destruction (empty when not acquired).
//
// Thread safety: every member may be called concurrently, except the destructor (no thread
// may be waiting then). The uncontended path is one CAS; a waiter queues under a mutex and
// parks on a futex word in its own stack frame: nothing is allocated per acquire, and a
// waiting thread burns no CPU.
//
// Memory ordering: a release(n) happens-before the acquire that obtains those permits (seq_cst
// read-modify-writes on the count, or the hand-off under the mutex). close() happens-before
// every `false` it causes.
//
// Errors: an initial count or an n above 2^62 throws std::invalid_argument naming the
// argument. n == 0 is granted at once (false once closed). The permits in existence, free and
// taken, must stay below 2^63 (release() does not check the sum). Acquiring more permits than
// will ever be released waits forever: use a timeout.
//
// Cancellation: close() is idempotent; every waiter answers false at once, later acquires
// answer false; release() still works (permits returned after close are kept but unusable).
//
// When to use: bounding work in flight (connections, requests, buffers) when the bound is a
// fixed number. When not to use: when the right bound is unknown or changes with the
// downstream's health (use bp::concurrency_limiter), or when the bound is a rate (use
// bp::token_bucket).
//
// Example:
//   bp::semaphore sem(4);
//   if (auto p = sem.acquire_permit_for(2, 100ms)) use_two(); else shed_load();
class semaphore {
 public:
  static constexpr std::size_t max_count = std::size_t{1} << 62;

  explicit semaphore(std::size_t initial) : permits_(checked(initial, "initial")) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  // --- raw counting ------------------------------------------------------------------------

  // Takes n permits if they are free now and nobody queues ahead. Never waits.
  [[nodiscard]] bool try_acquire(std::size_t n = 1) {
    const auto k = checked(n, "n");
    if (closed_.load(std::memory_order_seq_cst)) return false;
    if (k == 0) return true;
    if (queued_.load(std::memory_order_seq_cst) != 0) return false;  // no barging
    return take(k);
  }

  // Waits for n permits: true; false only when the semaphore is (or gets) closed.
  bool acquire(std::size_t n = 1) { return acquire_impl(n, detail::forever()); }

  template <class Rep, class Period>
  [[nodiscard]] bool acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return acquire_impl(n, detail::deadline_after(timeout));
  }

  template <class Clock, class Duration>
  [[nodiscard]] bool acquire_until(std::size_t n,
                                   std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_impl(n, detail::to_steady(deadline));
  }

  // Gives n permits back (they need not have come from an acquire: this also raises the count).
  void release(std::size_t n = 1) {
    const auto k = checked(n, "n");
    if (k == 0) return;
    permits_.fetch_add(k, std::memory_order_seq_cst);
    // Dekker pair with the waiter's `queued_` increment then re-check under the mutex: either
    // we see it queued, or it sees our permits.
    if (queued_.load(std::memory_order_seq_cst) == 0) return;
    std::lock_guard lock(m_);
    dispatch();
  }

  // --- RAII permits --------------------------------------------------------------------------

  [[nodiscard]] permit try_acquire_permit(std::size_t n = 1) {
    return try_acquire(n) ? permit(this, n) : permit();
  }
  [[nodiscard]] permit acquire_permit(std::size_t n = 1) {
    return acquire(n) ? permit(this, n) : permit();
  }
  template <class Rep, class Period>
  [[nodiscard]] permit acquire_permit_for(std::size_t n,
                                          std::chrono::duration<Rep, Period> timeout) {
    return acquire_for(n, timeout) ? permit(this, n) : permit();
  }
  template <class Clock, class Duration>
  [[nodiscard]] permit acquire_permit_until(std::size_t n,
                                            std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_until(n, deadline) ? permit(this, n) : permit();
  }

  // --- state ---------------------------------------------------------------------------------

  // Idempotent; every waiter answers false.
  void close() {
    std::lock_guard lock(m_);
    if (closed_.exchange(true, std::memory_order_seq_cst)) return;
    while (node* w = queue_.pop()) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      finish(*w, state_closed);
    }
  }
  [[nodiscard]] bool is_closed() const noexcept { return closed_.load(std::memory_order_seq_cst); }

  // Free permits now, and threads queued now (best effort: stale the moment they return).
  [[nodiscard]] std::size_t available() const noexcept {
    const auto p = permits_.load(std::memory_order_relaxed);
    return p > 0 ? static_cast<std::size_t>(p) : 0;
  }
  [[nodiscard]] std::size_t waiting() const noexcept {
    return queued_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr std::uint32_t state_waiting = 0, state_granted = 1, state_closed = 2;

  struct node {
    node* next = nullptr;
    node* prev = nullptr;
    std::int64_t n = 0;
    std::atomic<std::uint32_t> state{state_waiting};
  };

  struct queue {  // intrusive FIFO of parked nodes, under m_
    node* head = nullptr;
    node* tail = nullptr;
    bool empty() const noexcept { return head == nullptr; }
    void push(node& w) noexcept {
      w.prev = tail;
      w.next = nullptr;
      (tail ? tail->next : head) = &w;
      tail = &w;
    }
    node* pop() noexcept {
      node* w = head;
      if (w) unlink(*w);
      return w;
    }
    void unlink(node& w) noexcept {
      (w.prev ? w.prev->next : head) = w.next;
      (w.next ? w.next->prev : tail) = w.prev;
      w.next = w.prev = nullptr;
    }
  };

  static std::int64_t checked(std::size_t v, const char* name) {
    if (v > max_count) {
      throw std::invalid_argument(std::string("bp::semaphore: ") + name + " (" + std::to_string(v) +
                                  ") exceeds 2^62");
    }
    return static_cast<std::int64_t>(v);
  }

  bool take(std::int64_t k) noexcept {
    std::int64_t p = permits_.load(std::memory_order_seq_cst);
    while (p >= k) {
      if (permits_.compare_exchange_weak(p, p - k, std::memory_order_seq_cst)) return true;
    }
    return false;
  }

  // Under m_: hands permits to the head of the queue while they suffice.
  void dispatch() noexcept {
    while (node* w = queue_.head) {
      if (!take(w->n)) return;
      queue_.pop();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      finish(*w, state_granted);
    }
  }

  static void finish(node& w, std::uint32_t st) noexcept {  // under m_
    w.state.store(st, std::memory_order_release);
    detail::futex_wake(w.state, 1);
  }

  bool acquire_impl(std::size_t n, detail::clock::time_point deadline) {
    const auto k = checked(n, "n");
    if (closed_.load(std::memory_order_seq_cst)) return false;
    if (k == 0) return true;
    if (queued_.load(std::memory_order_seq_cst) == 0 && take(k)) return true;
    std::unique_lock lock(m_);
    if (closed_.load(std::memory_order_relaxed)) return false;
    queued_.fetch_add(1, std::memory_order_seq_cst);
    if (queue_.empty() && take(k)) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      return true;
    }
    if (deadline != detail::forever() && detail::clock::now() >= deadline) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    node self;
    self.n = k;
    queue_.push(self);
    lock.unlock();
    bool in_time = true;
    while (self.state.load(std::memory_order_acquire) == state_waiting && in_time)
      in_time = detail::futex_wait(self.state, state_waiting, deadline);
    lock.lock();  // once we hold m_, the waker is done with `self`
    switch (self.state.load(std::memory_order_relaxed)) {
      case state_granted:
        return true;
      case state_closed:
        return false;
      default:  // timed out: leave the queue; the waiters behind us may fit now
        queue_.unlink(self);
        queued_.fetch_sub(1, std::memory_order_relaxed);
        dispatch();
        return false;
    }
  }

  alignas(detail::cache_line) std::atomic<std::int64_t> permits_;
  std::atomic<std::uint32_t> queued_{0};
  std::atomic<bool> closed_{false};
  std::mutex m_;
  queue queue_;
};

inline void permit::release() noexcept {
  if (sem_) sem_->release(std::exchange(n_, 0));
  sem_ = nullptr;
}

}  // namespace bp

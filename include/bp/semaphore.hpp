// bp/semaphore.hpp: a counting semaphore, for limiting outstanding work to a fixed number.
//
//   bp::semaphore  a pool of permits: acquire takes n (waiting while there are too few),
//                  release gives them back. First come, first served; close() wakes every
//                  waiter.
//   bp::permit     move-only RAII ownership of n permits, given back on destruction (tokio's
//                  SemaphorePermit); a bp::grant like every permit of the library.
//   bp::semaphore_stats  available, waiting, waits, timeouts, rejected; wait_times() the
//                  waits.
//
// Example (examples/semaphore_limit.cpp):
//
//   bp::semaphore slots(8);                        // at most 8 requests in flight
//   for (auto& req : requests) {
//     bp::permit p = slots.acquire_permit();       // waits while 8 are out
//     if (!p) break;                               // closed (p.answer() says so)
//     pool.submit([p = std::move(p), &req] { handle(req); });  // released when done
//   }
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <utility>

#include "detail/async_op.hpp"
#include "detail/config.hpp"
#include "detail/deadline.hpp"
#include "detail/stop.hpp"
#include "detail/wait_timer.hpp"
#include "detail/waiter_queue.hpp"
#include "grant.hpp"
#include "status.hpp"
#include "wait_histogram.hpp"

namespace bp {

class semaphore;

namespace detail {
struct permit_traits {
  struct held {
    semaphore* sem = nullptr;
    std::size_t n = 0;
  };
  static bool holds(const held& h) noexcept { return h.sem != nullptr; }
  static inline void give_back(held& h) noexcept;
};
}  // namespace detail

// Ownership of n permits of one semaphore; destruction (or release()) gives them back. An
// empty permit (default-constructed, moved-from, or the answer of a failed acquire) owns
// nothing, converts to false, and its answer() says why (`timeout`, `closed`, `full`). It must
// not outlive its semaphore.
class permit : public grant<detail::permit_traits> {
 public:
  permit() noexcept = default;
  permit(permit&&) noexcept = default;
  permit& operator=(permit&&) noexcept = default;
  ~permit() = default;

  [[nodiscard]] std::size_t count() const noexcept { return held_.n; }

  // Gives the permits back now; the permit is empty afterwards.
  void release() noexcept { give_back(); }

  // Keeps the permits taken: the caller will release them on the semaphore itself.
  std::size_t detach() noexcept { return release_held().n; }

 private:
  friend class semaphore;
  explicit permit(status why) noexcept : grant(why) {}
  permit(semaphore* s, std::size_t n) noexcept : grant(held_type{s, n}, status::ok) {}
};

// A counting semaphore with n-permit operations, timeouts and close.
//
// Fairness: first come, first served. A waiter queues in FIFO order; release() hands permits
// to the waiters at the head of the queue directly (a waiter for 5 permits is not overtaken by
// later requests for 1), and try_acquire does not barge past queued waiters. The price: while
// the head waits for more permits than are free, later (smaller) requests wait too.
//
// Verbs: try_acquire(n) never waits (ok | full | closed); acquire(n) waits (ok | closed);
// acquire_for / acquire_until give up at the timeout (ok | timeout | closed); release(n) gives
// back. Each answers a bp::result: a bp::status that tests true only for `ok`. The *_permit
// variants return a bp::permit that releases on destruction (empty when not acquired, with
// the answer in permit::answer()).
//
// Thread safety: every member may be called concurrently, except the destructor (no thread
// may be waiting then). The uncontended path is one CAS; a waiter queues under a mutex in a
// node on its own stack frame and waits in the library's one wait loop (detail/wait.hpp):
// nothing is allocated per acquire, and a parked thread burns no CPU.
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
// Cancellation: close() is idempotent; every waiter answers `closed` at once, later acquires
// answer `closed`; release() still works (permits returned after close are kept but unusable).
//
// When to use: bounding work in flight (connections, requests, buffers) when the bound is a
// fixed number. When not to use: when the right bound is unknown or changes with the
// downstream's health (use bp::concurrency_limiter), or when the bound is a rate (use
// bp::token_bucket).
//
// Example:
//   bp::semaphore sem(4);
//   if (auto p = sem.acquire_permit_for(2, 100ms)) use_two(); else shed_load();
// Counters of one semaphore (best effort while it is in use, exact at rest). Acquires granted
// at once are not counted: that would put a shared write on the path that must stay cheapest.
struct semaphore_stats {
  std::size_t available = 0;   // free permits now
  std::size_t waiting = 0;     // threads queued now
  std::uint64_t waits = 0;     // acquires that had to queue
  std::uint64_t timeouts = 0;  // of those, the ones that answered `timeout`
  std::uint64_t rejected = 0;  // try_acquire answers `full`
};

class semaphore {
 public:
  static constexpr std::size_t max_count = std::size_t{1} << 62;

  explicit semaphore(std::size_t initial) : permits_(checked(initial, "initial")) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  // --- raw counting ------------------------------------------------------------------------

  // Takes n permits if they are free now and nobody queues ahead. Never waits:
  // ok | full | closed.
  result try_acquire(std::size_t n = 1) {
    const auto k = checked(n, "n");
    if (closed_.load(std::memory_order_seq_cst)) return status::closed;
    if (k == 0) return status::ok;
    if (queued_.load(std::memory_order_seq_cst) == 0 && take(k)) return status::ok;
    rejected_.fetch_add(1, std::memory_order_relaxed);  // full; or someone queues: no barging
    return status::full;
  }

  // Waits for n permits: ok | closed.
  result acquire(std::size_t n = 1) { return acquire_impl(n, detail::forever()); }

  // ok | timeout | closed.
  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return acquire_impl(n, detail::deadline_after(timeout));
  }

  template <class Clock, class Duration>
  result acquire_until(std::size_t n, std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_impl(n, detail::to_steady(deadline));
  }

  // Cancellable: `cancelled` once `stop` is stopped while waiting (no permit was taken, and the
  // place in the queue is given up).
  result acquire(std::size_t n, const std::stop_token& stop) {
    return detail::with_stop(stop, [&] { return acquire_impl(n, detail::forever()); });
  }
  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout,
                     const std::stop_token& stop) {
    const auto deadline = detail::deadline_after(timeout);
    return detail::with_stop(stop, [&] { return acquire_impl(n, deadline); });
  }

  // Gives n permits back (they need not have come from an acquire: this also raises the count).
  void release(std::size_t n = 1) {
    const auto k = checked(n, "n");
    if (k == 0) return;
    permits_.fetch_add(k, std::memory_order_seq_cst);
    // Dekker pair with the waiter's `queued_` increment then re-check under the mutex: either
    // we see it queued, or it sees our permits.
    if (queued_.load(std::memory_order_seq_cst) == 0) return;
    detail::trampoline_scope after_unlock;  // coroutines served here resume once m_ is free
    std::lock_guard lock(m_);
    dispatch();
  }

  // --- awaiting (C++20 coroutines) -----------------------------------------------------------
  // co_await sem.async_acquire(n[, options]): ok | closed | cancelled, in the same FIFO queue
  // as waiting threads (no barging either way). The awaiter lives in the coroutine's frame
  // and must be awaited at once. Cancel safe: a cancelled acquire holds no permit and leaves
  // the queue. Resumes inline on the releasing thread or on bp::resume_on's executor.
  class acquire_awaiter;
  [[nodiscard]] inline acquire_awaiter async_acquire(std::size_t n = 1, async_options opts = {});
  // With a timeout: `timeout` once it passes first (the place in the queue is given up). A
  // coroutine resumed by its timeout runs on bp's timer thread unless the options name an
  // executor.
  template <class Rep, class Period>
  [[nodiscard]] acquire_awaiter async_acquire_for(std::size_t n,
                                                  std::chrono::duration<Rep, Period> timeout,
                                                  async_options opts = {});

  // --- RAII permits --------------------------------------------------------------------------

  [[nodiscard]] permit try_acquire_permit(std::size_t n = 1) {
    return make_permit(n, try_acquire(n));
  }
  [[nodiscard]] permit acquire_permit(std::size_t n = 1) { return make_permit(n, acquire(n)); }
  [[nodiscard]] permit acquire_permit(std::size_t n, const std::stop_token& stop) {
    return make_permit(n, acquire(n, stop));
  }
  template <class Rep, class Period>
  [[nodiscard]] permit acquire_permit_for(std::size_t n,
                                          std::chrono::duration<Rep, Period> timeout) {
    return make_permit(n, acquire_for(n, timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] permit acquire_permit_until(std::size_t n,
                                            std::chrono::time_point<Clock, Duration> deadline) {
    return make_permit(n, acquire_until(n, deadline));
  }

  // --- state ---------------------------------------------------------------------------------

  // Idempotent; every waiter answers `closed`.
  void close() {
    detail::trampoline_scope after_unlock;
    std::lock_guard lock(m_);
    if (closed_.exchange(true, std::memory_order_seq_cst)) return;
    while (node* w = queue_.pop()) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      queue::serve(*w, detail::served::closed);
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

  [[nodiscard]] semaphore_stats stats() const noexcept {
    semaphore_stats s;
    s.available = available();
    s.waiting = waiting();
    s.waits = waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.rejected = rejected_.load(std::memory_order_relaxed);
    return s;
  }
  // How long the acquires that queued waited (only those are recorded).
  [[nodiscard]] const wait_histogram& wait_times() const noexcept { return wait_; }

 private:
  struct node : detail::waiter_node<node> {
    std::int64_t n = 0;
  };
  using queue = detail::waiter_queue<node>;

  permit make_permit(std::size_t n, result r) { return r ? permit(this, n) : permit(r.value()); }

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
    while (node* w = queue_.front()) {
      if (!take(w->n)) return;
      queue_.pop();
      queued_.fetch_sub(1, std::memory_order_relaxed);
      queue::serve(*w, detail::served::granted);
    }
  }

  // What every acquire does first: ok or closed at once, or std::nullopt when it must queue
  // (then `lock` holds m_ and the acquire is counted in queued_).
  std::optional<status> admit_or_queue(std::int64_t k, std::unique_lock<std::mutex>& lock) {
    if (closed_.load(std::memory_order_seq_cst)) return status::closed;
    if (k == 0) return status::ok;
    if (queued_.load(std::memory_order_seq_cst) == 0 && take(k)) return status::ok;
    lock.lock();
    if (closed_.load(std::memory_order_relaxed)) return status::closed;
    queued_.fetch_add(1, std::memory_order_seq_cst);
    if (queue_.empty() && take(k)) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      return status::ok;
    }
    return std::nullopt;
  }

  status acquire_impl(std::size_t n, detail::clock::time_point deadline) {
    const auto k = checked(n, "n");
    // A waiter that gives up dispatches under m_: coroutines it serves resume after the unlock.
    detail::trampoline_scope after_unlock;
    std::unique_lock lock(m_, std::defer_lock);
    if (auto r = admit_or_queue(k, lock)) return *r;
    if (detail::expired(deadline)) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      timeouts_.fetch_add(1, std::memory_order_relaxed);
      return status::timeout;
    }
    node self;
    self.n = k;
    queue_.push(self);
    waits_.fetch_add(1, std::memory_order_relaxed);
    const detail::wait_timer timer(wait_);
    if (auto a = detail::answer_of(queue_.wait(self, lock, deadline))) return *a;
    // Timed out or cancelled (and unlinked): the waiters behind us may fit now.
    queued_.fetch_sub(1, std::memory_order_relaxed);
    dispatch();
    return detail::gave_up(timeouts_);
  }

  // The first half of an acquire for a waiter that is not a thread: ok or closed at once, or
  // std::nullopt with `self` queued.
  std::optional<status> start_acquire(node& self, std::int64_t k) {
    std::unique_lock lock(m_, std::defer_lock);
    if (auto r = admit_or_queue(k, lock)) return r;
    self.n = k;
    queue_.push(self);
    return std::nullopt;
  }
  // The second half: the answer once `self` was served, or `cancelled` (it leaves the queue).
  status finish_acquire(node& self) {
    detail::trampoline_scope after_unlock;
    std::lock_guard lock(m_);
    if (auto a = detail::answer_of(queue_.settle(self))) return *a;
    queued_.fetch_sub(1, std::memory_order_relaxed);
    dispatch();
    return status::cancelled;
  }

  alignas(detail::cache_line) std::atomic<std::int64_t> permits_;
  std::atomic<std::uint32_t> queued_{0};
  std::atomic<bool> closed_{false};
  std::mutex m_;
  queue queue_;
  // Written only by refused or queued acquires.
  alignas(detail::cache_line) std::atomic<std::uint64_t> waits_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> rejected_{0};
  wait_histogram wait_;
};

inline void detail::permit_traits::give_back(held& h) noexcept {
  h.sem->release(h.n);
}

class semaphore::acquire_awaiter {
 public:
  acquire_awaiter(semaphore& s, std::int64_t k, async_options opts,
                  detail::clock::time_point deadline = detail::forever()) noexcept
      : sem_(&s), k_(k), wait_(node_, std::move(opts)) {
    wait_.set_deadline(deadline);
  }

  bool await_ready() {
    answer_ = sem_->start_acquire(node_, k_);
    return answer_.has_value();
  }
  bool await_suspend(std::coroutine_handle<> h) noexcept { return wait_.await_suspend(h); }
  result await_resume() {
    if (answer_) return *answer_;
    const status s = sem_->finish_acquire(node_);
    return s == status::cancelled && wait_.timed_out() ? status::timeout : s;
  }

 private:
  semaphore* sem_;
  std::int64_t k_;
  node node_;
  std::optional<status> answer_;
  detail::served_op<node> wait_;
};

inline semaphore::acquire_awaiter semaphore::async_acquire(std::size_t n, async_options opts) {
  return acquire_awaiter(*this, checked(n, "n"), std::move(opts));
}

template <class Rep, class Period>
semaphore::acquire_awaiter semaphore::async_acquire_for(std::size_t n,
                                                        std::chrono::duration<Rep, Period> timeout,
                                                        async_options opts) {
  return acquire_awaiter(*this, checked(n, "n"), std::move(opts), detail::deadline_after(timeout));
}

}  // namespace bp

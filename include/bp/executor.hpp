// bp/executor.hpp: where coroutines (and plain callables) run.
//
//   bp::executor          the concept: `e.post(std::coroutine_handle<>)` resumes the handle
//                         later on one of e's threads; executors are cheap handles, copied by
//                         value, equal when they refer to the same pool.
//   bp::inline_executor   runs what it is given at once, on the posting thread (the default).
//   bp::thread_pool       N threads sharing one FIFO queue; get_executor() posts to it.
//   bp::run_loop          a queue that the thread calling run() (or run_once, poll) drains.
//   bp::schedule(ex)      `co_await bp::schedule(ex)` continues the coroutine on ex.
//
// Example (examples/async_runtime.cpp):
//
//   bp::thread_pool pool(4);
//   auto on_pool = [&]() -> bp::task<int> {
//     co_await bp::schedule(pool.get_executor());  // from here on, on one of the pool's threads
//     co_return 42;
//   };
//   int v = bp::sync_wait(on_pool());  // bp/task.hpp
//
// Allocation: posting a coroutine handle allocates nothing while the backlog fits the queue
// (a ring of 24-byte entries, pre-sized by the constructor, 1024 by default); a larger backlog
// doubles the ring (one allocation per doubling) and it never shrinks, so the queue settles at
// the largest backlog it has held. Posting a callable allocates one node for it (a coroutine
// handle needs none: its frame is the operation state).
//
// Failure: post(coroutine_handle) is noexcept and never drops a handle; if the ring cannot grow
// (out of memory) the program terminates rather than lose a suspended coroutine. A posted
// callable that throws terminates the program too, on a run_loop as on a pool: there is nobody
// to hand the exception to (a task's exception travels to its awaiter instead).
#pragma once

#include <algorithm>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "detail/deadline.hpp"
#include "detail/event_count.hpp"
#include "detail/growable_ring.hpp"
#include "detail/trampoline.hpp"
#include "detail/wait.hpp"

namespace bp {

// An executor takes a suspended coroutine and resumes it later, exactly once, on a thread of
// its choosing. Executors are values: copy them freely, compare them to ask "same place?".
template <class E>
concept executor = std::copy_constructible<E> && std::equality_comparable<E> &&
    requires(E& e, std::coroutine_handle<> h) {
  e.post(h);
};

namespace detail {

// One unit of queued work: a function and its argument. A coroutine handle is stored as
// (resume, address), a callable as (invoke-and-delete, node), so both share one queue.
struct work_item {
  void (*run)(void*) noexcept = nullptr;
  void* arg = nullptr;

  static void resume_handle(void* address) noexcept {
    resume_flat(std::coroutine_handle<>::from_address(address));
  }
  static work_item of(std::coroutine_handle<> h) noexcept { return {&resume_handle, h.address()}; }

  template <class F>
  static work_item of_callable(F&& f) {
    using fn = std::decay_t<F>;
    auto node = std::make_unique<fn>(std::forward<F>(f));
    return {[](void* p) noexcept { std::unique_ptr<fn>(static_cast<fn*>(p))->operator()(); },
            node.release()};
  }

  void operator()() const noexcept { run(arg); }
};

template <class F>
concept plain_callable = std::invocable < std::decay_t<F>
& > &&!std::convertible_to<F, std::coroutine_handle<>>;

// The queue behind thread_pool and run_loop: FIFO, any number of posting and running threads.
// A mutex guards a growable ring (a post is a few stores under an uncontended lock); threads
// with nothing to run park on an event count, so an idle executor costs no CPU, and a post
// while nobody is parked costs one load beyond the lock.
class work_queue {
 public:
  explicit work_queue(std::size_t capacity) { ring_.reserve(capacity); }

  // Notifies before the lock is released: once an item is popped, its work may end and the
  // queue's owner destroy the queue (a pool whose last task was just posted by a timer or
  // another pool's thread), so a poster touches nothing of the queue after unlocking.
  void push(work_item w) noexcept {
    std::lock_guard lock(m_);
    ring_.reserve_one();  // allocates only when the backlog is larger than ever before
    ring_.push(std::move(w));
    ready_.notify_one();
  }

  [[nodiscard]] bool try_pop(work_item& out) noexcept {
    std::lock_guard lock(m_);
    if (ring_.empty()) return false;
    out = ring_.pop();
    return true;
  }

  // Waits for an item (true) or for close() with nothing left (false). Parks at once rather than
  // spinning: the queue is behind a mutex, and retrying would fight the posters for it.
  [[nodiscard]] bool pop_wait(work_item& out) {
    if (try_pop(out)) return true;  // the busy case: no registration on the event count
    bool got = false;
    auto attempt = [&] {
      std::lock_guard lock(m_);
      if (!ring_.empty()) {
        out = ring_.pop();
        return got = true;
      }
      return closed_;
    };
    (void)wait_loop(ready_, forever(), attempt, no_spin, always_settled{});
    return got;
  }

  // After close(), pop_wait returns false once the queue is empty (items still run first).
  void close() noexcept {
    {
      std::lock_guard lock(m_);
      closed_ = true;
    }
    ready_.notify_all();
  }
  void reopen() noexcept {
    std::lock_guard lock(m_);
    closed_ = false;
  }

  // Runs whatever is still queued, including what those items post, on the calling thread.
  void drain() {
    for (work_item w; try_pop(w);) w();
  }

 private:
  std::mutex m_;
  growable_ring<work_item> ring_;
  bool closed_ = false;
  event_count ready_;
};

// The awaiter of schedule(ex): always suspends, then lets ex resume the coroutine.
template <class E>
struct schedule_awaiter {
  E ex;
  static constexpr bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { ex.post(h); }
  static constexpr void await_resume() noexcept {}
};

// Marks the calling thread as running `q`'s work for as long as it lives (nests: a loop run from
// work of another restores the outer mark).
class running_queue {
 public:
  explicit running_queue(const work_queue& q) noexcept : outer_(std::exchange(current(), &q)) {}
  ~running_queue() { current() = outer_; }
  running_queue(const running_queue&) = delete;
  running_queue& operator=(const running_queue&) = delete;

  static const work_queue*& current() noexcept {
    static thread_local const work_queue* queue = nullptr;
    return queue;
  }

 private:
  const work_queue* outer_;
};

// The executor of a thread_pool or run_loop (`Owner`): a pointer to its queue.
template <class Owner>
class queue_executor {
 public:
  void post(std::coroutine_handle<> h) const noexcept { queue_->push(work_item::of(h)); }
  // Allocates one node for the callable.
  template <plain_callable F>
  void post(F&& f) const {
    queue_->push(work_item::of_callable(std::forward<F>(f)));
  }
  // `co_await ex.schedule()`: the same as `co_await bp::schedule(ex)`.
  [[nodiscard]] schedule_awaiter<queue_executor> schedule() const noexcept { return {*this}; }
  // True while the calling thread runs this executor's work (a pool thread; the thread inside
  // a run_loop's run, run_once or poll).
  [[nodiscard]] bool running_in_this_thread() const noexcept {
    return running_queue::current() == queue_;
  }
  friend bool operator==(const queue_executor&, const queue_executor&) noexcept = default;

 private:
  friend Owner;
  explicit queue_executor(work_queue& q) noexcept : queue_(&q) {}
  work_queue* queue_;
};

}  // namespace detail

// Runs everything at once on the posting thread. The default for resumptions: a coroutine
// waiting on a primitive continues on the thread that made its credit available. The resumed
// coroutine runs on a trampoline (bp/detail/trampoline.hpp), so resuming from inside another
// coroutine does not deepen the stack by more than one level per post.
struct inline_executor {
  void post(std::coroutine_handle<> h) const noexcept { detail::resume_flat(h); }
  template <detail::plain_callable F>
  void post(F&& f) const {
    std::forward<F>(f)();
  }
  // `co_await inline_executor{}.schedule()` does not suspend: it is already there.
  [[nodiscard]] std::suspend_never schedule() const noexcept { return {}; }
  friend bool operator==(inline_executor, inline_executor) noexcept { return true; }
};

// `co_await bp::schedule(ex)`: suspends and continues on ex (posted through ex.post).
template <executor E>
[[nodiscard]] auto schedule(E ex) noexcept {
  if constexpr (std::is_same_v<E, inline_executor>) {
    return std::suspend_never{};
  } else {
    return detail::schedule_awaiter<E>{std::move(ex)};
  }
}

// A fixed set of threads running posted work in FIFO order (one shared queue, so a long item
// delays nothing but itself on a pool of more than one thread). Idle threads park without CPU.
//
// Lifetime: the destructor closes the pool, lets its threads run everything already queued,
// including work that queued work posts, then joins them. Posting from outside the pool after
// the destructor has started is a bug (the pool is going away); posting from the pool's own
// threads while it drains is fine. Do not destroy a pool from one of its own threads, nor while
// a coroutine is suspended somewhere with the pool's executor as the place to resume it.
class thread_pool {
 public:
  using executor_type = detail::queue_executor<thread_pool>;

  // `threads` = 0 means std::thread::hardware_concurrency() (at least 1). `queue_capacity`
  // entries (24 bytes each, rounded up to a power of two) are allocated now: a backlog
  // up to that size never allocates; a larger one grows the queue once per doubling.
  explicit thread_pool(std::size_t threads = 0, std::size_t queue_capacity = 1024)
      : queue_(queue_capacity) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    threads_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        const detail::running_queue running(queue_);
        for (detail::work_item w; queue_.pop_wait(w);) w();
      });
    }
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  ~thread_pool() {
    queue_.close();
    // A thread leaves only when the queue is closed and empty; a thread still running an item
    // picks up whatever that item posts, so the last one out leaves nothing behind.
    for (auto& t : threads_) t.join();
  }

  [[nodiscard]] executor_type get_executor() noexcept { return executor_type(queue_); }
  [[nodiscard]] std::size_t size() const noexcept { return threads_.size(); }
  // True on one of this pool's threads.
  [[nodiscard]] bool running_in_this_thread() const noexcept {
    return detail::running_queue::current() == &queue_;
  }

 private:
  detail::work_queue queue_;
  std::vector<std::thread> threads_;
};

// A queue of work run by whichever thread calls run(), run_once() or poll(): a single-threaded
// event loop (P2300's run_loop, asio's io_context with one thread). Posting is thread-safe.
//
// The rule for run(): it runs work, waiting (without CPU) when there is none, until finish() has
// been called and the queue is empty; then it returns and re-arms the loop, so run() may be
// called again. finish() may be called from any thread, also from work running on the loop.
// The destructor runs whatever is still queued on the destroying thread, so nothing posted is
// lost.
class run_loop {
 public:
  using executor_type = detail::queue_executor<run_loop>;

  // `queue_capacity`: as for thread_pool, the backlog that never allocates.
  explicit run_loop(std::size_t queue_capacity = 1024) : queue_(queue_capacity) {}
  run_loop(const run_loop&) = delete;
  run_loop& operator=(const run_loop&) = delete;
  ~run_loop() { queue_.drain(); }

  [[nodiscard]] executor_type get_executor() noexcept { return executor_type(queue_); }

  // Runs work until finish() was called and nothing is queued (see the class comment).
  void run() {
    const detail::running_queue running(queue_);
    for (detail::work_item w; queue_.pop_wait(w);) w();
    queue_.reopen();
  }

  // Runs one item, waiting for one if none is queued. Returns false, without waiting, if
  // finish() was called and nothing is queued (then the loop is re-armed, as after run()).
  bool run_once() {
    const detail::running_queue running(queue_);
    detail::work_item w;
    if (!queue_.pop_wait(w)) {
      queue_.reopen();
      return false;
    }
    w();
    return true;
  }

  // Runs what is queued now (and what that posts), never waits; returns how many items ran.
  std::size_t poll() {
    const detail::running_queue running(queue_);
    std::size_t n = 0;
    for (detail::work_item w; queue_.try_pop(w); ++n) w();
    return n;
  }

  // Makes run() return once the queue is empty. Thread-safe.
  void finish() noexcept { queue_.close(); }

 private:
  detail::work_queue queue_;
};

}  // namespace bp

// bp/task.hpp: the coroutine runtime's vocabulary: a lazy task, a blocking bridge, fan-out.
//
//   bp::task<T>         a lazy coroutine returning T (or void, or T&): nothing runs until it is
//                       co_awaited (or handed to sync_wait, when_all, async_scope::spawn).
//   bp::sync_wait(a)    runs an awaitable from ordinary code: blocks the calling thread (parked,
//                       no CPU) until it completes; returns its value or rethrows its exception.
//   bp::sync_wait(loop, a)  the same, running `loop` (a bp::run_loop) on the calling thread
//                       meanwhile: for single-threaded programs whose work is posted to it.
//   bp::when_all(a...)  awaits several awaitables concurrently: a tuple of their results
//                       (void as std::monostate); also a std::vector form.
//   bp::async_scope     owns fire-and-forget work: spawn(ex, a) starts `a` on executor `ex`,
//                       join() waits for everything spawned and rethrows the first failure.
//
// Example (examples/async_runtime.cpp):
//
//   bp::task<int> answer() { co_return 42; }
//   bp::task<int> twice() {
//     auto [a, b] = co_await bp::when_all(answer(), answer());
//     co_return a + b;
//   }
//   int main() { return bp::sync_wait(twice()) == 84 ? 0 : 1; }
//
// Where a coroutine runs: a task runs on the thread that awaits it until it suspends on
// something; it then continues wherever that something resumes it (the thread that made a
// primitive's credit available, by default, or the executor named with bp::schedule or the
// verb's executor argument). When a task completes, its awaiter continues on the same thread.
//
// Stack: awaiting a task that completes at once costs no stack, however long the loop or deep
// the recursion (a million levels are tested): control passes through a per-thread trampoline
// (bp/detail/trampoline.hpp) rather than nested calls.
//
// Allocation: each coroutine frame is one allocation (the compiler may elide it for a task that
// is awaited where it is created); awaiting, completing and resuming allocate nothing. sync_wait
// and async_scope::spawn add one small driver frame; when_all one per argument.
#pragma once

#include <atomic>
#include <climits>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "detail/futex.hpp"
#include "detail/trampoline.hpp"
#include "executor.hpp"

namespace bp {

template <class T = void>
class task;

namespace detail {

// What `co_await a` gives: the awaiter (member or free operator co_await, or `a` itself) and
// the type of its await_resume().
template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}

template <class A>
using await_result_t =
    decltype(std::declval<decltype(get_awaiter(std::declval<A>()))&>().await_resume());

class task_promise_base {
 public:
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct final_awaiter {
    static constexpr bool await_ready() noexcept { return false; }
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      transfer(h.promise().continuation_);
    }
    static constexpr void await_resume() noexcept {}
  };
  final_awaiter final_suspend() noexcept { return {}; }

  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  std::coroutine_handle<> continuation_;

 protected:
  void rethrow_if_failed() const {
    if (exception_) std::rethrow_exception(exception_);
  }

 private:
  std::exception_ptr exception_;
};

template <class T>
class task_promise : public task_promise_base {
 public:
  task<T> get_return_object() noexcept;
  template <class U = T>
  requires std::convertible_to<U&&, T>
  void return_value(U&& v) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(v));
  }
  T result() {
    rethrow_if_failed();
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <class T>
class task_promise<T&> : public task_promise_base {
 public:
  task<T&> get_return_object() noexcept;
  void return_value(T& v) noexcept { value_ = std::addressof(v); }
  T& result() {
    rethrow_if_failed();
    return *value_;
  }

 private:
  T* value_ = nullptr;
};

template <>
class task_promise<void> : public task_promise_base {
 public:
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void result() { rethrow_if_failed(); }
};

// Starts a task and makes `waiter` its continuation; the result stays in the task.
struct start_awaiter {
  std::coroutine_handle<> task;
  task_promise_base& promise;
  static constexpr bool await_ready() noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiter) noexcept {
    promise.continuation_ = waiter;
    transfer(task);
  }
  static constexpr void await_resume() noexcept {}
};

// A coroutine that starts when its creator resumes it and frees itself when it ends: the
// driver behind sync_wait, when_all and async_scope (never exposed, never lost: each driver's
// owner waits for its completion signal).
struct driver {
  struct promise_type {
    driver get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }  // drivers catch what they run
  };
  std::coroutine_handle<promise_type> handle;
};

// A one-shot flag another thread can wait for, parked on a futex. Setting it makes a system
// call only when the waiter is actually parked (a task that completed before sync_wait began
// to wait costs none).
class completion_flag {
 public:
  void set() noexcept {
    if (word_.exchange(done, std::memory_order_acq_rel) == parked) {
      // The waiter may return (and this flag go out of scope) between the exchange and the
      // wake: a private futex wake on a stack address that has moved on wakes nobody, or at
      // worst causes a spurious wake-up, which every futex waiter tolerates.
      futex_wake(word_, INT_MAX);
    }
  }
  void wait() noexcept {
    std::uint32_t s = idle;
    if (!word_.compare_exchange_strong(s, parked, std::memory_order_acquire)) return;  // done
    do {
      futex_wait(word_, parked);
    } while (word_.load(std::memory_order_acquire) != done);
  }

 private:
  static constexpr std::uint32_t idle = 0, parked = 1, done = 2;
  std::atomic<std::uint32_t> word_{idle};
};

// The runtime's access to a task's handle and result.
struct task_access;

template <class A>
using task_for = task<await_result_t<A>>;

template <class A>
task_for<A> as_task(A a);

}  // namespace detail

// A lazy, move-only coroutine producing a T. Await it once (`co_await std::move(t)` or
// `co_await make_task()`); its exception, if it ends by throwing, is rethrown to the awaiter.
// Destroying a task that was never awaited destroys its frame without running it.
template <class T>
class [[nodiscard]] task {
 public:
  using promise_type = detail::task_promise<T>;
  using value_type = T;

  task() noexcept = default;
  task(task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
  task& operator=(task&& o) noexcept {
    if (this != &o) {
      if (h_) h_.destroy();
      h_ = std::exchange(o.h_, {});
    }
    return *this;
  }
  ~task() {
    if (h_) h_.destroy();
  }

  // False for a default-constructed or moved-from task (which must not be awaited).
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }

  auto operator co_await() && noexcept { return awaiter{h_}; }
  auto operator co_await() & noexcept { return awaiter{h_}; }

 private:
  friend promise_type;
  friend struct detail::task_access;

  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}

  struct awaiter {
    std::coroutine_handle<promise_type> h;
    static constexpr bool await_ready() noexcept { return false; }
    void await_suspend(std::coroutine_handle<> waiter) noexcept {
      h.promise().continuation_ = waiter;
      detail::transfer(h);
    }
    T await_resume() { return h.promise().result(); }
  };

  std::coroutine_handle<promise_type> h_;
};

namespace detail {

template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept {
  return task<T&>(std::coroutine_handle<task_promise>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<task_promise>::from_promise(*this));
}

struct task_access {
  template <class T>
  static std::coroutine_handle<task_promise<T>> handle(task<T>& t) noexcept {
    return t.h_;
  }
  // The result of a completed task (or its exception, rethrown).
  template <class T>
  static T result(task<T>& t) {
    return t.h_.promise().result();
  }
};

// Runs `t` to completion, continues on `ex`, then calls done() there.
template <class T, class Done, class E = inline_executor>
driver run_then(task<T>& t, Done done, E ex = {}) {
  auto h = task_access::handle(t);
  co_await start_awaiter{h, h.promise()};
  co_await bp::schedule(std::move(ex));
  done();
}

// Any awaitable as a task (a task stays itself).
template <class A>
task<await_result_t<A>> await_as_task(A a) {
  co_return co_await std::move(a);
}
template <class A>
requires std::is_void_v<await_result_t<A>> task<void> await_as_task(A a) {
  co_await std::move(a);
}
template <class A>
task_for<A> as_task(A a) {
  if constexpr (std::is_same_v<A, task_for<A>>) {
    return a;
  } else {
    return await_as_task(std::move(a));
  }
}

}  // namespace detail

// Runs `a` and blocks the calling thread until it completes (parked on a futex: no CPU while
// waiting). The awaitable starts on the calling thread; it may finish on any thread. Returns
// the result (a reference for task<T&>) or rethrows the exception it ended with. Do not call it
// from a thread whose work the awaitable needs (a run_loop's only thread, a pool of one thread
// from inside that pool): use sync_wait(loop, a) for the former, co_await for the latter.
template <class A>
detail::await_result_t<A> sync_wait(A&& a) {
  auto t = detail::as_task(std::forward<A>(a));
  detail::completion_flag done;
  detail::resume_flat(detail::run_then(t, [&done] { done.set(); }).handle);
  done.wait();
  return detail::task_access::result(t);
}

// Runs `a` on the calling thread together with `loop`: the calling thread runs the loop's work
// (run_once, one item at a time) until `a` has completed, so work `a` posts to the loop makes
// progress. `a` may complete on any thread: its completion is posted to the loop as one last
// item, so no second wake-up mechanism is needed. Work still queued then stays queued for the
// next run. A finish() called on the loop before is consumed (the loop is re-armed).
template <class A>
detail::await_result_t<A> sync_wait(run_loop& loop, A&& a) {
  auto t = detail::as_task(std::forward<A>(a));
  bool done = false;  // set by an item the loop runs: written and read on this thread only
  detail::resume_flat(detail::run_then(
                          t, [&done] { done = true; }, loop.get_executor())
                          .handle);
  while (!done) (void)loop.run_once();
  return detail::task_access::result(t);
}

namespace detail {

// Counts a when_all's outstanding children plus one for the awaiting coroutine itself, so the
// last child cannot resume the awaiter before it has finished starting them all.
class when_all_latch {
 public:
  explicit when_all_latch(std::size_t children) noexcept : count_(children + 1) {}

  bool await_ready() const noexcept { return count_.load(std::memory_order_acquire) == 1; }
  bool await_suspend(std::coroutine_handle<> waiter) noexcept {
    waiter_ = waiter;
    for (driver& d : drivers_) resume_flat(d.handle);
    return count_.fetch_sub(1, std::memory_order_acq_rel) != 1;
  }
  static constexpr void await_resume() noexcept {}

  template <class T>
  void add(task<T>& t) {
    drivers_.push_back(run_then(t, [this] { arrive(); }));
  }

 private:
  void arrive() noexcept {
    if (count_.fetch_sub(1, std::memory_order_acq_rel) == 1) transfer(waiter_);
  }

  std::atomic<std::size_t> count_;
  std::coroutine_handle<> waiter_;
  std::vector<driver> drivers_;
};

template <class T>
using when_all_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
when_all_value_t<T> take_value(task<T>& t) {
  if constexpr (std::is_void_v<T>) {
    task_access::result(t);
    return {};
  } else {
    return detail::task_access::result(t);
  }
}

}  // namespace detail

// Awaits every argument concurrently (each starts on the awaiting thread in argument order and
// runs until it first suspends) and completes when all have completed, on the thread that
// completed the last one. Results come back in argument order, void ones as std::monostate.
// If any failed, every argument still runs to completion, then the first failure in argument
// order is rethrown (the other results are discarded).
template <class... A>
task<std::tuple<detail::when_all_value_t<detail::await_result_t<A>>...>> when_all(A... as) {
  std::tuple<detail::task_for<A>...> tasks{detail::as_task(std::move(as))...};
  detail::when_all_latch latch(sizeof...(A));
  std::apply([&](auto&... t) { (latch.add(t), ...); }, tasks);
  co_await latch;
  co_return std::apply(
      [](auto&... t) {
        return std::tuple<detail::when_all_value_t<detail::await_result_t<A>>...>{
            detail::take_value(t)...};
      },
      tasks);
}

// The range form: all of `as` concurrently; a vector of their results in order (or nothing,
// for void), the first failure in order rethrown after all have completed.
template <class A>
task<std::vector<detail::await_result_t<A>>> when_all(std::vector<A> as) requires(
    !std::is_void_v<detail::await_result_t<A>>) {
  std::vector<detail::task_for<A>> tasks;
  tasks.reserve(as.size());
  for (auto& a : as) tasks.push_back(detail::as_task(std::move(a)));
  detail::when_all_latch latch(tasks.size());
  for (auto& t : tasks) latch.add(t);
  co_await latch;
  std::vector<detail::await_result_t<A>> out;
  out.reserve(tasks.size());
  for (auto& t : tasks) out.push_back(detail::task_access::result(t));
  co_return out;
}
template <class A>
task<void> when_all(std::vector<A> as) requires std::is_void_v<detail::await_result_t<A>> {
  std::vector<task<void>> tasks;
  tasks.reserve(as.size());
  for (auto& a : as) tasks.push_back(detail::as_task(std::move(a)));
  detail::when_all_latch latch(tasks.size());
  for (auto& t : tasks) latch.add(t);
  co_await latch;
  for (auto& t : tasks) detail::task_access::result(t);
}

// Owns work started without an awaiter: nothing spawned is ever silently detached. join()
// blocks (parked) until everything spawned so far, and whatever that spawns, has completed,
// then rethrows the first exception any of it ended with. The destructor joins too, but
// swallows the exception: call join() to see it.
class async_scope {
 public:
  async_scope() = default;
  async_scope(const async_scope&) = delete;
  async_scope& operator=(const async_scope&) = delete;
  ~async_scope() { wait_idle(); }

  // Starts `a` on `ex` (posted there: spawn returns at once unless ex is inline) and counts it
  // until it completes. One allocation: the driver's frame (plus `a`'s own, if a task).
  template <executor E, class A>
  void spawn(E ex, A&& a) {
    active_.fetch_add(1, std::memory_order_relaxed);
    detail::resume_flat(run(this, std::move(ex), detail::as_task(std::forward<A>(a))).handle);
  }
  // Starts `a` at once on the calling thread, until it first suspends.
  template <class A>
  void spawn(A&& a) {
    spawn(inline_executor{}, std::forward<A>(a));
  }

  void join() {
    wait_idle();
    std::lock_guard lock(m_);
    if (auto e = std::exchange(first_failure_, nullptr)) std::rethrow_exception(e);
  }

  // How many spawned awaitables have not completed yet (a snapshot).
  [[nodiscard]] std::size_t active() const noexcept {
    return active_.load(std::memory_order_acquire);
  }

 private:
  // The spawned coroutine: frees its frame first, then leaves the scope, so when join() returns
  // nothing of the spawned work (not even a destructor in its frame) is still running.
  struct scoped {
    struct promise_type {
      async_scope* scope;
      // The coroutine's first parameter is its scope.
      template <class... Rest>
      explicit promise_type(async_scope* s, Rest&...) noexcept : scope(s) {}
      scoped get_return_object() noexcept {
        return {std::coroutine_handle<promise_type>::from_promise(*this)};
      }
      std::suspend_always initial_suspend() noexcept { return {}; }
      struct final_awaiter {
        static constexpr bool await_ready() noexcept { return false; }
        void await_suspend(std::coroutine_handle<promise_type> h) noexcept {
          async_scope* s = h.promise().scope;
          h.destroy();
          s->leave();
        }
        static constexpr void await_resume() noexcept {}
      };
      final_awaiter final_suspend() noexcept { return {}; }
      void return_void() noexcept {}
      void unhandled_exception() noexcept { std::terminate(); }
    };
    std::coroutine_handle<promise_type> handle;
  };

  template <class E, class T>
  static scoped run(async_scope* self, E ex, task<T> t) {
    try {
      co_await bp::schedule(std::move(ex));
      (void)co_await std::move(t);
    } catch (...) {
      self->fail(std::current_exception());
    }
  }

  void fail(std::exception_ptr e) noexcept {
    std::lock_guard lock(m_);
    if (!first_failure_) first_failure_ = std::move(e);
  }
  void leave() noexcept {
    if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) detail::futex_wake(active_, INT_MAX);
  }
  void wait_idle() noexcept {
    for (std::uint32_t n; (n = active_.load(std::memory_order_acquire)) != 0;) {
      detail::futex_wait(active_, n);
    }
  }

  std::atomic<std::uint32_t> active_{0};
  std::mutex m_;
  std::exception_ptr first_failure_;
};

}  // namespace bp

// Internal: the waiting core's coroutine half. A suspended coroutine waits on a primitive's
// event count the way a thread does (detail/wait.hpp), with the same two callables:
//
//   attempt()  takes the credit or finds the end and writes the answer; never waits
//   settled()  false while another thread is half-way through a change (see wait.hpp)
//
// and no thread. The awaiter (this class, in the coroutine's frame: no allocation) registers,
// re-checks and links itself into the event count (event_count::park_async). A notifier takes
// it off and calls wake(): the attempt runs again on the notifier's thread, and the coroutine
// resumes there (inline, the default) or is posted to the executor the caller named. A
// coroutine never spins: spinning would stall the thread the coroutine shares with others.
//
// Inline resumption runs on a per-thread trampoline: a wake that happens while this thread is
// already running a wake or a resumed coroutine is queued and run after it, so chains of
// coroutines handing values to each other (a ping-pong through two channels) never grow the
// stack.
//
// Cancellation: a std::stop_token in the options registers a stop callback that takes the
// awaiter off the list and resumes it with `cancelled`. Whoever takes the awaiter off the list
// (a notifier, the stop callback) owns it until it resumes; the attempt always runs before the
// token is looked at, so credit handed to a woken waiter is taken, never lost.
#pragma once

#include <coroutine>
#include <new>
#include <optional>
#include <stop_token>
#include <thread>
#include <type_traits>
#include <utility>

#include "deadline.hpp"
#include "event_count.hpp"
#include "timer.hpp"
#include "trampoline.hpp"

namespace bp {

// Where a coroutine resumed by a primitive runs: `inline` (the default) on the thread that made
// its credit available (a sender's thread resumes the receiver's coroutine, through a per-thread
// trampoline), or posted to an executor: any object with `post(std::coroutine_handle<>)`
// (bp::thread_pool's and bp::run_loop's executors, or your own).
class resume_target {
  template <class E>
  static constexpr bool held_by_value = std::is_trivially_copyable_v<E> &&
                                        sizeof(E) <= sizeof(void*) && alignof(E) <= alignof(void*);

 public:
  constexpr resume_target() noexcept = default;

  // A small, trivially copyable executor (bp::thread_pool::executor_type, ...) is copied in.
  template <class E>
  requires(!std::is_same_v<std::remove_cvref_t<E>, resume_target>) &&
      held_by_value<std::remove_cvref_t<E>>&& requires(std::remove_cvref_t<E>& ex,
                                                       std::coroutine_handle<> h) {
    ex.post(h);
  }
  explicit resume_target(E&& ex) noexcept {
    using X = std::remove_cvref_t<E>;
    ::new (static_cast<void*>(storage_)) X(ex);
    post_ = [](void* s, std::coroutine_handle<> h) noexcept {
      std::launder(reinterpret_cast<X*>(s))->post(h);
    };
  }
  // Anything else with post(handle) is held by reference and must outlive the wait.
  template <class E>
  requires(!std::is_same_v<E, resume_target>) &&
      (!held_by_value<E>)&&requires(E& ex, std::coroutine_handle<> h) {
    ex.post(h);
  }
  explicit resume_target(E& ex) noexcept {
    E* p = &ex;
    ::new (static_cast<void*>(storage_))(E*)(p);
    post_ = [](void* s, std::coroutine_handle<> h) noexcept {
      (*std::launder(reinterpret_cast<E**>(s)))->post(h);
    };
  }

  [[nodiscard]] bool is_inline() const noexcept { return post_ == nullptr; }
  void post(std::coroutine_handle<> h) noexcept { post_(storage_, h); }

 private:
  alignas(void*) unsigned char storage_[sizeof(void*)] = {};
  void (*post_)(void*, std::coroutine_handle<>) noexcept = nullptr;
};

// Resume on `ex`: a small executor value (bp::thread_pool's get_executor(), bp::run_loop's) is
// copied; any other object with post(std::coroutine_handle<>) is held by reference and must
// outlive the wait.
template <class Executor>
requires requires(std::remove_cvref_t<Executor>& ex, std::coroutine_handle<> h) {
  ex.post(h);
}
resume_target resume_on(Executor&& ex) noexcept {
  return resume_target(std::forward<Executor>(ex));
}

// The optional arguments of every awaitable verb: a stop token (the wait answers `cancelled`
// once it is stopped) and where to resume. Implicit from either, or both in braces:
//   co_await ch.async_recv(out, stop);
//   co_await ch.async_recv(out, bp::resume_on(pool));
//   co_await ch.async_recv(out, {stop, bp::resume_on(pool)});
struct async_options {
  std::stop_token stop{};
  resume_target on{};

  async_options() = default;
  async_options(std::stop_token s) noexcept : stop(std::move(s)) {}  // NOLINT: implicit
  async_options(resume_target r) noexcept : on(r) {}                 // NOLINT: implicit
  async_options(std::stop_token s, resume_target r) noexcept : stop(std::move(s)), on(r) {}
};

namespace detail {

// The base of every awaiter. Op (CRTP) provides:
//   bool attempt();                     // as in wait.hpp
//   bool settled();                     // optional; true if absent
// and reads `cancelled()` in its await_resume.
template <class Op>
class async_op : private async_waiter, private trampoline_job {
 public:
  async_op(const async_op&) = delete;
  async_op& operator=(const async_op&) = delete;

  bool await_ready() { return self().attempt(); }

  bool await_suspend(std::coroutine_handle<> h) noexcept {
    handle_ = h;
    if (opts_.stop.stop_possible()) on_stop_.emplace(opts_.stop, stopper{this});
    if (deadline_ != forever()) {
      timer_.when = deadline_;
      timer_.op = this;
      timer_.fire = &async_op::deadline_passed;
      timer_armed_ = true;
      timer_service::instance().schedule(timer_);
    }
    if (!arm()) return true;  // parked: nothing here may touch *this any more
    disarm_timer();
    return false;
  }

 protected:
  async_op(event_count& ec, async_options opts) noexcept : ec_(&ec), opts_(std::move(opts)) {
    on_wake = &async_op::woken;
  }
  ~async_op() = default;

  [[nodiscard]] bool cancelled() const noexcept { return cancelled_; }
  // The deadline given by set_deadline passed first (the verb answers `timeout`).
  [[nodiscard]] bool timed_out() const noexcept { return timed_out_; }
  // For the verbs with a timeout: set before the wait starts (forever() is no deadline). A
  // coroutine resumed by its deadline runs on bp's timer thread unless resume_on names another.
  void set_deadline(clock::time_point deadline) noexcept { deadline_ = deadline; }
  // Waits on `ec` instead (set before the wait starts: a hand-off node's own event count).
  void wait_on(event_count& ec) noexcept { ec_ = &ec; }
  // For awaiters that need a stop check of their own (a hand-off queue): is a stop requested?
  [[nodiscard]] bool stop_requested() const noexcept { return opts_.stop.stop_requested(); }

 private:
  struct stopper {
    async_op* op;
    void operator()() const noexcept {
      if (!op->ec_->unpark_async(*op)) return;  // a notifier owns it: it will see the stop
      op->cancelled_ = true;
      op->finish();
    }
  };

  struct deadline_timer : timer_node {
    async_op* op = nullptr;
  };

  // The deadline's timer fired (on the timer thread): as the stop callback, with `timeout`.
  static void deadline_passed(timer_node& t) noexcept {
    async_op& op = *static_cast<deadline_timer&>(t).op;
    if (!op.ec_->unpark_async(op)) return;  // a notifier owns it: its re-arm sees the deadline
    op.timed_out_ = true;
    op.finish();
  }

  void disarm_timer() noexcept {
    if (!timer_armed_) return;
    timer_armed_ = false;
    (void)timer_service::instance().cancel(timer_);
  }

  // What ends a wait without its credit, checked under the event count's list lock.
  bool should_give_up() noexcept {
    if (opts_.stop.stop_requested()) return cancelled_ = true;
    if (deadline_ != forever() && expired(deadline_)) return timed_out_ = true;
    return false;
  }

  Op& self() noexcept { return static_cast<Op&>(*this); }

  bool settled_now() {
    if constexpr (requires(Op & o) { o.settled(); }) {
      return self().settled();
    } else {
      return true;
    }
  }

  // True when the wait is over (the answer written or cancelled), false when parked.
  bool arm() noexcept {
    for (;;) {
      const auto key = ec_->prepare_wait();
      if (self().attempt()) {
        ec_->cancel_wait();
        return true;
      }
      if (!settled_now()) {  // a change is being published right now: it makes no notify
        ec_->cancel_wait();
        std::this_thread::yield();
        continue;
      }
      switch (ec_->park_async(*this, key, [this] { return should_give_up(); })) {
        case park_result::parked:
          return false;
        case park_result::retry:
          continue;
        case park_result::aborted:  // should_give_up() said which
          return true;
      }
    }
  }

  // Called by the notifier that took us off the list: try again on the trampoline.
  static void woken(async_waiter& w) noexcept {
    auto& op = static_cast<async_op&>(w);
    op.run = &async_op::rearm_job;
    run_on_trampoline(op);
  }
  static void rearm_job(trampoline_job& j) noexcept {
    auto& op = static_cast<async_op&>(j);
    // A woken waiter's credit is almost always there: take it before registering again (the
    // registration's read-modify-writes are most of a wake's cost).
    if (op.self().attempt() || op.arm()) op.finish();
  }
  static void resume_job(trampoline_job& j) noexcept {
    resume_flat(static_cast<async_op&>(j).handle_);
  }

  // The wait is over: resume the coroutine where it asked.
  void finish() noexcept {
    disarm_timer();  // returns once the timer cannot touch us (it may be what called us)
    if (!opts_.on.is_inline()) {
      opts_.on.post(handle_);
      return;
    }
    run = &async_op::resume_job;
    run_on_trampoline(*this);
  }

  event_count* ec_;
  std::coroutine_handle<> handle_{};
  bool cancelled_ = false;
  bool timed_out_ = false;
  bool timer_armed_ = false;
  clock::time_point deadline_ = forever();
  deadline_timer timer_{};
  async_options opts_;
  std::optional<std::stop_callback<stopper>> on_stop_;  // last: destroyed first
};

// The awaiter of a verb whose wait is one attempt on one event count. `Wait` holds the verb's
// state and provides `bool attempt()` (as above) and `result(bool cancelled)`, the verb's
// answer; the primitive's awaitable verb returns attempt_awaiter<Wait>{ec, wait, opts}.
template <class Wait>
class attempt_awaiter : public async_op<attempt_awaiter<Wait>> {
  using op = async_op<attempt_awaiter<Wait>>;
  friend op;

 public:
  // With a deadline, `Wait` may provide `result(bool cancelled, bool timed_out)` instead.
  attempt_awaiter(
      event_count& ec, Wait w, async_options opts,
      clock::time_point deadline = forever()) noexcept(std::is_nothrow_move_constructible_v<Wait>)
      : op(ec, std::move(opts)), wait_(std::move(w)) {
    this->set_deadline(deadline);
  }

  decltype(auto) await_resume() {
    if constexpr (requires { wait_.result(true, true); }) {
      return wait_.result(this->cancelled(), this->timed_out());
    } else {
      return wait_.result(this->cancelled());
    }
  }

 private:
  bool attempt() { return wait_.attempt(); }
  bool settled() {
    if constexpr (requires { wait_.settled(); }) {
      return wait_.settled();
    } else {
      return true;
    }
  }

  Wait wait_;
};

// An awaiter whose answer is another awaiter's, transformed by `f` (a budgeted channel's
// receive unwraps the channel's). The inner awaiter is built in place: awaiters do not move.
template <class Inner, class F>
class mapped_awaiter {
 public:
  template <class Make>
  mapped_awaiter(Make&& make, F f) : inner_(std::forward<Make>(make)()), f_(std::move(f)) {}
  mapped_awaiter(const mapped_awaiter&) = delete;
  mapped_awaiter& operator=(const mapped_awaiter&) = delete;

  bool await_ready() { return inner_.await_ready(); }
  auto await_suspend(std::coroutine_handle<> h) noexcept { return inner_.await_suspend(h); }
  decltype(auto) await_resume() { return f_(inner_.await_resume()); }

 private:
  Inner inner_;
  F f_;
};

}  // namespace detail
}  // namespace bp

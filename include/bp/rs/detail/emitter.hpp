// Internal: the one demand/drain core of bp::rs. Every publisher and every buffering operator is
// an `emitter`: a subscription whose deliveries all run inside one "work in progress" drain loop
// (RxJava's and Reactor's queue-drain pattern).
//
// How it works: request(), cancel() and "the source has something new" all increment `wip_`.
// The thread that moves it from 0 to 1 owns the loop and delivers as much as demand and the
// source allow; the others return at once, their increment telling the owner to take another
// pass. Hence:
//   - signals are serial without a lock (rule 1.3), whatever thread calls request or cancel;
//   - a request made from inside on_next only bumps `wip_` and returns: the outer loop picks the
//     demand up on its next pass, so the stack never grows (rule 3.3, trampolining);
//   - cancel and terminal signals are acted on inside the loop, which then keeps `wip_` above
//     zero for ever: no signal can follow (rules 1.7, 3.6, 3.7), and the loop, the only user of
//     the subscriber reference, drops it (rule 3.13).
//
// Derived (CRTP) supplies the source:
//   std::optional<T> poll();                        // next element now, or nullopt (may throw)
//   std::optional<std::exception_ptr> terminal();   // nullopt: not done; else null = complete
// and may hide these hooks:
//   void on_request(std::int64_t n);  // after demand was added (e.g. forward it upstream)
//   void schedule_drain();            // run run_drain() now (default) or on an executor
//   void on_emitted();                // after each on_next (e.g. replenish upstream)
//   void on_release();                // cancelled or terminated: let go of upstream resources
//
// Memory ordering: every wip_ RMW is acq_rel, so whatever a thread did before its increment
// (adding demand, enqueueing an element, setting `done`) happens-before the pass that follows;
// consecutive owners of the loop are ordered the same way (rule 1.3's happens-before).
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <utility>

#include "../../detail/config.hpp"
#include "../interfaces.hpp"
#include "demand.hpp"

namespace bp::rs::detail {

template <class T, class Derived>
class emitter : public subscription, public std::enable_shared_from_this<emitter<T, Derived>> {
 public:
  explicit emitter(std::shared_ptr<subscriber<T>> down) noexcept : down_(std::move(down)) {}

  void request(std::int64_t n) final {
    if (ended_.load(std::memory_order_acquire)) return;  // rule 3.6: a no-op once cancelled
    if (n <= 0) {
      std::int64_t none = 1;  // keep the first offending value for the message
      bad_.compare_exchange_strong(none, n, std::memory_order_acq_rel);
    } else {
      // Already unbounded: nothing new to act on (saves filter's re-requests a wip round trip).
      if (add_demand(requested_, n) == unbounded) return;
      derived().on_request(n);
    }
    drain();
  }

  void cancel() final {
    if (!cancelled_.exchange(true, std::memory_order_acq_rel)) drain();
  }

  // Asks for a pass of the loop: runs it here unless another thread owns it.
  void drain() {
    if (wip_.fetch_add(1, std::memory_order_acq_rel) == 0) derived().schedule_drain();
  }

  // Default hooks (Derived hides what it needs).
  void on_request(std::int64_t) noexcept {}
  void schedule_drain() { run_drain(); }
  void on_emitted() noexcept {}
  void on_release() noexcept {}

  // The loop. Only the owner (the thread that moved wip_ from 0) may call it.
  void run_drain() {
    // A subscriber may drop its last reference to us from inside on_next (cancel, then reset).
    auto keep_alive = this->shared_from_this();
    int missed = 1;
    for (;;) {
      if (pass()) return;  // terminated: wip_ stays above zero, nothing runs again
      missed = wip_.fetch_sub(missed, std::memory_order_acq_rel) - missed;
      if (missed == 0) return;
    }
  }

 protected:
  // Outstanding demand (best effort: stale the moment it returns).
  [[nodiscard]] std::int64_t requested() const noexcept {
    return requested_.load(std::memory_order_acquire);
  }
  [[nodiscard]] bool is_cancelled() const noexcept {
    return cancelled_.load(std::memory_order_acquire);
  }

 private:
  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  // One pass: true once terminated (cancelled, completed or failed).
  bool pass() {
    if (stopped()) return true;
    const std::int64_t r = requested_.load(std::memory_order_acquire);
    std::int64_t e = 0;
    try {
      while (e != r) {
        std::optional<T> v = derived().poll();
        if (!v) break;
        down_->on_next(std::move(*v));
        ++e;
        derived().on_emitted();
        if (stopped()) return true;
      }
      if (auto t = derived().terminal()) {
        finish(*t);
        return true;
      }
    } catch (...) {
      finish(std::current_exception());  // rule 1.4: a failing source signals on_error
      return true;
    }
    if (e != 0) consume_demand(requested_, e);
    return false;
  }

  bool stopped() {
    if (cancelled_.load(std::memory_order_acquire)) {
      release();
      return true;
    }
    if (const std::int64_t b = bad_.load(std::memory_order_acquire); b <= 0) {
      cancelled_.store(true, std::memory_order_release);
      finish(non_positive_request(b));  // rule 3.9, and the subscription is cancelled
      return true;
    }
    return false;
  }

  void release() noexcept {
    ended_.store(true, std::memory_order_release);
    down_.reset();
    derived().on_release();
  }

  void finish(std::exception_ptr e) {
    ended_.store(true, std::memory_order_release);
    auto down = std::move(down_);
    derived().on_release();
    if (!down) return;
    if (e)
      down->on_error(std::move(e));
    else
      down->on_complete();
  }

  std::shared_ptr<subscriber<T>> down_;  // touched only by the loop's owner
  alignas(bp::detail::cache_line) std::atomic<int> wip_{0};
  std::atomic<std::int64_t> requested_{0};
  std::atomic<std::int64_t> bad_{1};  // <= 0: the first non-positive request(n), to report
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> ended_{false};  // the loop terminated: request is a no-op (no upstream call)
};

// Creates an emitter, hands it to the subscriber (rule 1.9: on_subscribe first), then runs one
// pass so that sources that end without demand (empty, error) signal at once.
template <class E, class T, class... A>
void start_emitter(std::shared_ptr<subscriber<T>> s, A&&... a) {
  auto e = std::make_shared<E>(s, std::forward<A>(a)...);
  s->on_subscribe(e);
  e->drain();
}

}  // namespace bp::rs::detail

// Internal: the core of the pass-through operators (map, filter, take, on_backpressure_drop).
// A relay is the subscriber its upstream signals and the subscription its downstream holds; it
// adds no queue and no thread, so upstream's serial signals stay serial downstream (rule 1.3).
//
// Its one piece of state is `state_`: cancelled (downstream cancelled), done (a terminal signal
// went down) and a count of signals being relayed now (more than one only when a signal nests:
// downstream requests from inside on_subscribe and upstream answers synchronously). It exists for
// rule 3.13: cancel may come from any thread while upstream is in the middle of on_next, so the
// downstream reference is dropped by whoever sees the other side finished: cancel drops it if no
// signal is in flight, otherwise the in-flight signal drops it on its way out. Exactly one of them
// does.
//
// Memory ordering: enter (CAS, acquire) and leave (fetch_sub, acq_rel) bracket every use of the
// downstream reference; cancel's fetch_or (acq_rel) is ordered against both, so the reset never
// overlaps a use.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <utility>

#include "../interfaces.hpp"
#include "demand.hpp"

namespace bp::rs::detail {

template <class In, class Out, class Derived>
class relay : public subscriber<In>,
              public subscription,
              public std::enable_shared_from_this<relay<In, Out, Derived>> {
 public:
  explicit relay(std::shared_ptr<subscriber<Out>> down) noexcept : down_(std::move(down)) {}

  void on_subscribe(std::shared_ptr<subscription> s) final {
    if (!s) throw std::invalid_argument("bp::rs operator: on_subscribe(nullptr) (rule 2.13)");
    if (up_) {  // rule 2.5: we already have a subscription
      s->cancel();
      return;
    }
    up_ = std::move(s);
    if (!enter()) return;
    down_->on_subscribe(this->shared_from_this());
    // Downstream may have cancelled from on_subscribe, or requested n <= 0 and upstream may have
    // answered with on_error already: then upstream is over and on_start (take(0)'s cancel,
    // on_backpressure_drop's request) must not call it (rules 2.3, 2.4).
    if (!(state_.load(std::memory_order_acquire) & (cancelled | done))) derived().on_start();
    leave();
  }

  void on_next(In v) final {
    if (!enter()) return;  // cancelled or done: late elements are tolerated (rule 2.8)
    try {
      derived().next(std::move(v));
    } catch (...) {  // a failing user function: cancel upstream, fail downstream
      up_->cancel();
      terminate(std::current_exception());
    }
    leave();
  }

  void on_error(std::exception_ptr e) final {
    if (!enter()) return;
    terminate(std::move(e));
    leave();
  }

  void on_complete() final {
    if (!enter()) return;
    terminate(nullptr);
    leave();
  }

  void request(std::int64_t n) final {
    if (state_.load(std::memory_order_acquire) & (cancelled | done)) return;  // rule 3.6
    derived().forward_request(n);
  }

  void cancel() final {
    const unsigned s = state_.fetch_or(cancelled, std::memory_order_acq_rel);
    if (s & (cancelled | done)) return;  // rule 3.7
    up_->cancel();
    if (s < busy) down_.reset();  // else the signal in flight drops it in leave()
  }

  // Default hooks.
  void on_start() {}
  void forward_request(std::int64_t n) { up_->request(n); }

 protected:
  // Inside a signal only.
  void emit(Out v) { down_->on_next(std::move(v)); }
  void terminate(std::exception_ptr e) {
    if (state_.fetch_or(done, std::memory_order_acq_rel) & (cancelled | done)) return;
    if (e)
      down_->on_error(std::move(e));
    else
      down_->on_complete();
  }
  [[nodiscard]] bool is_cancelled() const noexcept {
    return state_.load(std::memory_order_acquire) & cancelled;
  }
  subscription& upstream() noexcept { return *up_; }

 private:
  static constexpr unsigned cancelled = 1, done = 2, busy = 4;  // busy: one nesting level

  Derived& derived() noexcept { return static_cast<Derived&>(*this); }

  bool enter() noexcept {
    unsigned s = state_.load(std::memory_order_relaxed);
    do {
      if (s & (cancelled | done)) return false;
    } while (!state_.compare_exchange_weak(s, s + busy, std::memory_order_acquire,
                                           std::memory_order_relaxed));
    return true;
  }

  void leave() noexcept {
    const unsigned s = state_.fetch_sub(busy, std::memory_order_acq_rel);
    if (s < 2 * busy && (s & (cancelled | done))) down_.reset();
  }

  std::shared_ptr<subscriber<Out>> down_;
  std::shared_ptr<subscription> up_;  // set once, before downstream can see us
  std::atomic<unsigned> state_{0};
};

}  // namespace bp::rs::detail

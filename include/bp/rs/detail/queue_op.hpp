// Internal: the buffering operator behind observe_on, limit_rate, on_backpressure_buffer and
// on_backpressure_latest. Upstream pushes into a bp::channel (try_send: never waits; its
// overflow policy is the operator's), downstream is served by the emitter drain loop, on the
// signalling thread or on an executor. What differs between the four operators is only
// configuration:
//
//   operator                     capacity  upstream demand                 ring full
//   limit_rate(n)                n         n, then 75% at low tide         (cannot happen)
//   observe_on(ex, n)            n         n, then 75% at low tide         (cannot happen)
//   on_backpressure_buffer(c, p) c         unbounded (block: c + refills)  the overflow policy
//   on_backpressure_latest()     1         unbounded                       drop_oldest
//
// "Cannot happen" means: only an upstream that breaks rule 1.1 fills it; that is reported as
// on_error(bp::rs::overflow_error) and upstream is cancelled, never silently dropped.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <utility>

#include "../../channel.hpp"
#include "../../status.hpp"
#include "../executor.hpp"
#include "../interfaces.hpp"
#include "../operator_stats.hpp"
#include "emitter.hpp"

namespace bp::rs {

// What on_backpressure_buffer(capacity, overflow::reject) signals when its buffer is full, and
// what a buffering operator signals when upstream sends more than was requested (rule 1.1).
class overflow_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {

template <class T>
struct queue_config {
  std::size_t capacity = 1;
  std::int64_t prefetch = unbounded;  // what is requested upstream at first; refills at 75%
  overflow policy = overflow::reject;
  std::function<void(T&&)> on_drop{};       // drop_newest / drop_oldest victims
  executor ex{};                            // empty: deliver on the signalling thread
  std::shared_ptr<operator_stats> stats{};  // counted into when set
};

template <channel_element T>
class queue_op : public subscriber<T>, public emitter<T, queue_op<T>> {
  using base = emitter<T, queue_op<T>>;

 public:
  queue_op(std::shared_ptr<subscriber<T>> down, queue_config<T> cfg)
      : base(down),
        pending_down_(std::move(down)),
        q_(cfg.capacity, channel_policy(cfg.policy), victim_handler(cfg)),
        prefetch_(cfg.prefetch),
        limit_(cfg.prefetch == unbounded ? unbounded : cfg.prefetch - cfg.prefetch / 4),
        on_drop_(std::move(cfg.on_drop)),
        ex_(std::move(cfg.ex)),
        stats_(std::move(cfg.stats)) {}

  // --- upstream side: upstream's signals are serial (rule 1.3) ---
  void on_subscribe(std::shared_ptr<subscription> s) override {
    if (!s) throw std::invalid_argument("bp::rs operator: on_subscribe(nullptr) (rule 2.13)");
    if (up_) {  // rule 2.5
      s->cancel();
      return;
    }
    up_ = std::move(s);
    auto down = std::move(pending_down_);
    down->on_subscribe(this->shared_from_this());
    if (stats_ && prefetch_ != unbounded) stats_->add_requested(prefetch_);
    up_->request(prefetch_);
  }

  void on_next(T v) override {
    if (done_.load(std::memory_order_relaxed)) return;
    if (stats_) stats_->add_received();
    switch (q_.try_send(std::move(v))) {
      case status::ok:  // drop_oldest evictions went to on_drop inside the channel
        break;
      case status::dropped:  // drop_newest: v was not taken
        if (stats_) stats_->add_dropped();
        if (on_drop_) on_drop_(std::move(v));
        return;
      default:  // full: reject, or an upstream exceeding its demand: fail, cancel upstream
        if (stats_) stats_->add_rejected();
        error_ = std::make_exception_ptr(
            overflow_error("bp::rs: buffer of " + std::to_string(q_.capacity()) +
                           " is full (on_backpressure_buffer reject, or upstream broke rule 1.1)"));
        overflowed_.store(true, std::memory_order_release);
        done_.store(true, std::memory_order_release);  // the drain loop cancels upstream
        break;
    }
    this->drain();
  }

  void on_error(std::exception_ptr e) override {
    if (done_.load(std::memory_order_relaxed)) return;
    error_ = std::move(e);
    upstream_ended_.store(true, std::memory_order_relaxed);
    done_.store(true, std::memory_order_release);
    this->drain();
  }

  void on_complete() override {
    if (done_.load(std::memory_order_relaxed)) return;
    upstream_ended_.store(true, std::memory_order_relaxed);
    done_.store(true, std::memory_order_release);
    this->drain();
  }

  // --- emitter hooks (run by the drain loop's owner) ---
  std::optional<T> poll() noexcept {
    if (overflowed_.load(std::memory_order_acquire)) return std::nullopt;  // error cuts ahead
    auto v = q_.try_recv();
    if (v && stats_) stats_->add_delivered();
    return v;
  }

  std::optional<std::exception_ptr> terminal() noexcept {
    if (!done_.load(std::memory_order_acquire)) return std::nullopt;
    if (overflowed_.load(std::memory_order_acquire)) return error_;
    if (q_.size() != 0) return std::nullopt;  // done: deliver what is buffered first
    return error_;
  }

  void on_emitted() {
    if (limit_ == unbounded) return;
    if (++consumed_ == limit_) {  // low tide: ask for what was consumed (Reactor's limitRate)
      consumed_ = 0;
      // Not once upstream signalled its terminal: the buffer is draining what is left, and
      // upstream's subscription is over (rules 2.3, 2.4).
      if (upstream_ended_.load(std::memory_order_acquire)) return;
      if (stats_) stats_->add_requested(limit_);
      up_->request(limit_);
    }
  }

  void on_release() noexcept {
    // Not after upstream's own terminal signal: it is over, and rule 2.3 forbids calling its
    // subscription from (what may still be inside) on_complete / on_error.
    if (up_ &&
        !(done_.load(std::memory_order_acquire) && upstream_ended_.load(std::memory_order_relaxed)))
      up_->cancel();
    while (q_.try_recv()) {
      if (stats_) stats_->add_discarded();
    }
  }

  void schedule_drain() {
    if (!ex_) {
      this->run_drain();
      return;
    }
    // At most one task is scheduled at a time (wip_ went 0 -> 1): the member keeps us alive
    // until it runs, and the task captures one pointer, which fits std::function's small buffer.
    scheduled_self_ = this->shared_from_this();
    ex_([this] {
      auto keep = std::move(scheduled_self_);
      this->run_drain();
    });
  }

 private:
  static overflow channel_policy(overflow p) noexcept {
    return p == overflow::drop_newest || p == overflow::drop_oldest ? p : overflow::reject;
  }
  static typename bp::channel<T>::drop_handler victim_handler(const queue_config<T>& cfg) {
    if (cfg.policy != overflow::drop_oldest) return {};
    if (cfg.stats)
      return [stats = cfg.stats, on_drop = cfg.on_drop](T&& v) {
        stats->add_evicted();
        if (on_drop) on_drop(std::move(v));
      };
    if (cfg.on_drop) return cfg.on_drop;
    return {};
  }

  std::shared_ptr<subscriber<T>> pending_down_;  // until on_subscribe hands it the subscription
  std::shared_ptr<subscription> up_;
  bp::channel<T> q_;
  const std::int64_t prefetch_, limit_;
  std::int64_t consumed_ = 0;  // drain loop only
  std::function<void(T&&)> on_drop_;
  executor ex_;
  std::shared_ptr<operator_stats> stats_;
  std::shared_ptr<base> scheduled_self_;
  std::exception_ptr error_;  // written before done_ / overflowed_ (release)
  std::atomic<bool> done_{false};
  std::atomic<bool> overflowed_{false};
  std::atomic<bool> upstream_ended_{false};  // done_ came from on_complete / on_error
};

}  // namespace detail
}  // namespace bp::rs

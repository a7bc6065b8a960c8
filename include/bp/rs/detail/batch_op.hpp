// Internal: batch(n, max_wait). Collects up to n elements into a std::vector; a batch goes out
// when it is full, when upstream completes (the partial one), or, with max_wait > 0, when its
// first element has waited max_wait (a timer thread per subscription flushes it; the thread
// belongs to the operator and is joined by its last reference, see owned_pump.hpp). Downstream
// demand of k batches becomes k*n upstream (saturating). Ready batches wait in a queue served
// by the emitter drain loop; they never exceed outstanding upstream demand, so memory stays
// bounded by demand * n elements.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../../detail/deadline.hpp"
#include "../../detail/event_count.hpp"
#include "../../detail/wait.hpp"
#include "../interfaces.hpp"
#include "emitter.hpp"
#include "owned_pump.hpp"

namespace bp::rs::detail {

template <class T>
class batch_op : public subscriber<T>, public emitter<std::vector<T>, batch_op<T>> {
  using base = emitter<std::vector<T>, batch_op<T>>;
  using clock = std::chrono::steady_clock;

 public:
  batch_op(std::shared_ptr<subscriber<std::vector<T>>> down, std::size_t n,
           clock::duration max_wait)
      : base(down), pending_down_(std::move(down)), n_(n), max_wait_(max_wait) {}

  void on_subscribe(std::shared_ptr<subscription> s) override {
    if (!s) throw std::invalid_argument("bp::rs::batch: on_subscribe(nullptr) (rule 2.13)");
    if (up_) {  // rule 2.5
      s->cancel();
      return;
    }
    up_ = std::move(s);
    if (max_wait_ > clock::duration::zero()) {
      auto self = std::static_pointer_cast<batch_op>(this->shared_from_this());
      timer_thread_.start([self]() mutable {  // ends on release or upstream's end
        self->timer_loop();
        self.reset();  // may be the last reference: then ~batch_op runs on this thread
      });
    }
    auto down = std::move(pending_down_);
    down->on_subscribe(this->shared_from_this());
  }

  void on_next(T v) override {
    bool started = false, full = false;
    {
      std::lock_guard lock(m_);
      if (stopped_) return;
      if (current_.empty()) {
        current_.reserve(n_);
        first_at_ = clock::now();
        started = true;
      }
      current_.push_back(std::move(v));
      if (current_.size() >= n_) {
        ready_.push_back(std::move(current_));
        current_ = {};
        full = true;
      }
    }
    if (started) changed();  // the timer has a due time now
    if (full) this->drain();
  }

  void on_error(std::exception_ptr e) override { end(std::move(e)); }
  void on_complete() override { end(nullptr); }

  // --- emitter hooks ---
  void on_request(std::int64_t k) {
    {
      // Upstream is over once it signalled a terminal: what is left is already in ready_, and
      // rule 2.4 (docs/streams.md: no calls on the subscription after a terminal) applies.
      std::lock_guard lock(m_);
      if (done_) return;
    }
    up_->request(mul_cap(k, static_cast<std::int64_t>(n_)));
  }

  std::optional<std::vector<T>> poll() {
    std::lock_guard lock(m_);
    if (ready_.empty()) return std::nullopt;
    auto b = std::move(ready_.front());
    ready_.pop_front();
    return b;
  }

  std::optional<std::exception_ptr> terminal() {
    std::lock_guard lock(m_);
    if (!done_ || !ready_.empty()) return std::nullopt;
    return error_;
  }

  void on_release() noexcept {
    bool upstream_ended = false;
    {
      std::lock_guard lock(m_);
      upstream_ended = done_;
    }
    if (up_ && !upstream_ended) up_->cancel();  // rule 2.3: not after upstream's terminal
    {
      std::lock_guard lock(m_);
      stopped_ = true;
      ready_.clear();
      current_.clear();
    }
    changed();
  }

 private:
  void end(std::exception_ptr e) {
    {
      std::lock_guard lock(m_);
      if (done_ || stopped_) return;
      if (!e && !current_.empty()) ready_.push_back(std::move(current_));
      current_ = {};
      error_ = std::move(e);
      done_ = true;
    }
    changed();
    this->drain();
  }

  // Tells the timer that its state moved (a batch started, the operator ended).
  void changed() noexcept {
    changes_.fetch_add(1, std::memory_order_seq_cst);
    timer_.notify_all();
  }

  // Emits a batch that has waited max_wait since its first element. Sleeps in the library's one
  // wait loop until that due time, or until changed() says a batch started or the operator
  // ended; no spin: it waits for a moment in time or for a rare change.
  void timer_loop() {
    for (;;) {
      bp::detail::clock::time_point due = bp::detail::forever();
      const std::uint64_t seen = changes_.load(std::memory_order_seq_cst);
      {
        std::unique_lock lock(m_);
        if (stopped_ || done_) return;
        if (!current_.empty()) {
          due = first_at_ + max_wait_;
          if (clock::now() >= due) {
            ready_.push_back(std::move(current_));
            current_ = {};
            lock.unlock();
            this->drain();
            continue;
          }
        }
      }
      (void)bp::detail::wait_loop(
          timer_, due, [&] { return changes_.load(std::memory_order_seq_cst) != seen; },
          bp::detail::no_spin, bp::detail::always_settled{});
    }
  }

  std::shared_ptr<subscriber<std::vector<T>>> pending_down_;
  std::shared_ptr<subscription> up_;
  const std::size_t n_;
  const clock::duration max_wait_;
  std::atomic<std::uint64_t> changes_{0};  // bumped by changed()
  bp::detail::event_count timer_;          // the timer thread waits here
  std::mutex m_;                           // guards everything below; never held while signalling
  std::vector<T> current_;
  std::deque<std::vector<T>> ready_;
  clock::time_point first_at_{};
  std::exception_ptr error_;
  bool done_ = false;
  bool stopped_ = false;
  owned_pump timer_thread_;  // last: joined before the members above are destroyed
};

}  // namespace bp::rs::detail

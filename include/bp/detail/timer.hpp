// Internal: the deadlines of awaitable verbs. A coroutine that awaits with a timeout has no
// thread to park with a deadline, so one process-wide thread (started on first use) keeps the
// pending deadlines in a binary heap and fires each when it passes. A timer is a node in the
// awaiter (no allocation per wait; the heap's array grows with the most timers ever pending at
// once and never shrinks). The thread parks on an event count until the earliest deadline, and
// burns no CPU while nothing is due.
//
// Lifetime: cancel() returns only once the timer is not firing (or is firing on the calling
// thread, from inside its own fire()), so the node may be destroyed right after, as with
// std::stop_callback.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "deadline.hpp"
#include "event_count.hpp"

namespace bp::detail {

struct timer_node {
  static constexpr std::size_t unscheduled = static_cast<std::size_t>(-1);
  clock::time_point when{};
  void (*fire)(timer_node&) noexcept = nullptr;
  std::size_t index = unscheduled;  // its place in the heap, guarded by the service's mutex
};

class timer_service {
 public:
  static timer_service& instance() {
    static timer_service service;
    return service;
  }

  timer_service(const timer_service&) = delete;
  timer_service& operator=(const timer_service&) = delete;

  // Schedules `n` (n.when and n.fire set; not scheduled already).
  void schedule(timer_node& n) {
    bool earliest = false;
    {
      std::lock_guard lock(m_);
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
      heap_.push_back(&n);
      n.index = heap_.size() - 1;
      sift_up(n.index);
      earliest = heap_.front() == &n;
    }
    if (earliest) changed_.notify_one();
  }

  // Unschedules `n`: true if it had not fired (it never will). False if it has fired or is
  // firing; then this returns once its fire() has returned, unless called from inside it.
  bool cancel(timer_node& n) noexcept {
    std::unique_lock lock(m_);
    if (n.index != timer_node::unscheduled) {
      remove(n.index);
      return true;
    }
    if (firing_ == &n && std::this_thread::get_id() != thread_.get_id()) {
      lock.unlock();
      while (firing_node() == &n) std::this_thread::yield();  // fire() is a few instructions
    }
    return false;
  }

 private:
  timer_service() = default;
  ~timer_service() {
    {
      std::lock_guard lock(m_);
      stopping_ = true;
    }
    changed_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  timer_node* firing_node() noexcept {
    std::lock_guard lock(m_);
    return firing_;
  }

  void run() {
    std::unique_lock lock(m_);
    for (;;) {
      if (stopping_) return;
      if (!heap_.empty() && heap_.front()->when <= clock::now()) {
        timer_node* n = heap_.front();
        remove(0);
        firing_ = n;
        lock.unlock();
        n->fire(*n);
        lock.lock();
        firing_ = nullptr;
        continue;
      }
      const clock::time_point until = heap_.empty() ? forever() : heap_.front()->when;
      const auto key = changed_.prepare_wait();
      lock.unlock();
      // Re-checked after registering: a schedule() that made an earlier deadline notified us.
      (void)changed_.wait(key, until);
      lock.lock();
    }
  }

  bool before(std::size_t a, std::size_t b) const noexcept {
    return heap_[a]->when < heap_[b]->when;
  }
  void swap_at(std::size_t a, std::size_t b) noexcept {
    std::swap(heap_[a], heap_[b]);
    heap_[a]->index = a;
    heap_[b]->index = b;
  }
  void sift_up(std::size_t i) noexcept {
    while (i > 0 && before(i, (i - 1) / 2)) {
      swap_at(i, (i - 1) / 2);
      i = (i - 1) / 2;
    }
  }
  void sift_down(std::size_t i) noexcept {
    for (;;) {
      std::size_t m = i;
      const std::size_t l = 2 * i + 1, r = l + 1;
      if (l < heap_.size() && before(l, m)) m = l;
      if (r < heap_.size() && before(r, m)) m = r;
      if (m == i) return;
      swap_at(i, m);
      i = m;
    }
  }
  void remove(std::size_t i) noexcept {
    heap_[i]->index = timer_node::unscheduled;
    const std::size_t last = heap_.size() - 1;
    if (i != last) {
      heap_[i] = heap_[last];
      heap_[i]->index = i;
    }
    heap_.pop_back();
    if (i < heap_.size()) {
      sift_down(i);
      sift_up(i);
    }
  }

  std::mutex m_;
  std::vector<timer_node*> heap_;
  timer_node* firing_ = nullptr;
  bool stopping_ = false;
  event_count changed_;
  std::thread thread_;
};

}  // namespace bp::detail

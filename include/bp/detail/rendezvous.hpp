// Internal: the capacity-0 channel (Go's unbuffered channel). A send completes only when a
// receiver has taken the value, so there is no buffer: a waiting sender or receiver is a node
// on its own stack, linked into a queue under a mutex, and the other side hands the value over
// directly (moving from the sender's variable into the receiver's optional). A sender that
// times out or is closed out unlinks itself; its value was never touched.
//
// Memory ordering: every hand-off happens under `m_`; a parked thread sleeps on its node's
// `state` word and, once woken, locks `m_` once more so the waker has left the node before the
// node's stack frame goes away.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

#include "futex.hpp"

namespace bp::detail {

template <class T>
class rendezvous {
 public:
  enum class outcome { done, empty, closed, timeout };

  // Sender side. `wait == false` is try_send: succeeds only if a receiver is already waiting.
  // A sender about to park counts itself in `send_waits` first (visible while it waits).
  outcome send(T& v, bool wait, clock::time_point deadline,
               std::atomic<std::uint64_t>& send_waits) {
    std::unique_lock lock(m_);
    if (closed_) return outcome::closed;
    if (node* r = receivers_.pop()) {
      r->dest->emplace(std::move(v));
      ++handed_;
      finish(*r, state_done);
      return outcome::done;
    }
    if (!wait) return outcome::empty;
    node self;
    self.src = &v;
    senders_.push(self);
    send_waits.fetch_add(1, std::memory_order_relaxed);
    return park(self, lock, deadline);
  }

  // Receiver side. `wait == false` is try_recv: succeeds only if a sender is already waiting.
  outcome recv(std::optional<T>& out, bool wait, clock::time_point deadline) {
    std::unique_lock lock(m_);
    if (node* s = senders_.pop()) {
      out.emplace(std::move(*s->src));
      ++handed_;
      finish(*s, state_done);
      return outcome::done;
    }
    if (closed_) return outcome::closed;
    if (!wait) return outcome::empty;
    node self;
    self.dest = &out;
    receivers_.push(self);
    return park(self, lock, deadline);
  }

  // Every parked sender answers `closed` (value untouched), every parked receiver the end.
  bool close() {
    std::lock_guard lock(m_);
    if (closed_) return false;
    closed_ = true;
    while (node* n = senders_.pop()) finish(*n, state_closed);
    while (node* n = receivers_.pop()) finish(*n, state_closed);
    closed_flag_.store(true, std::memory_order_release);
    return true;
  }

  [[nodiscard]] bool is_closed() const noexcept {
    return closed_flag_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint64_t handed() const noexcept {
    return handed_.load(std::memory_order_relaxed);
  }

 private:
  static constexpr std::uint32_t state_waiting = 0, state_done = 1, state_closed = 2;

  struct node {
    node* next = nullptr;
    node* prev = nullptr;
    T* src = nullptr;                  // sender: the caller's value
    std::optional<T>* dest = nullptr;  // receiver: where the value goes
    std::atomic<std::uint32_t> state{state_waiting};
  };

  struct queue {  // intrusive FIFO of parked nodes
    node* head = nullptr;
    node* tail = nullptr;
    void push(node& n) {
      n.prev = tail;
      n.next = nullptr;
      (tail ? tail->next : head) = &n;
      tail = &n;
    }
    node* pop() {
      node* n = head;
      if (n) unlink(*n);
      return n;
    }
    void unlink(node& n) {
      (n.prev ? n.prev->next : head) = n.next;
      (n.next ? n.next->prev : tail) = n.prev;
      n.next = n.prev = nullptr;
    }
  };

  static void finish(node& n, std::uint32_t st) {  // called with m_ held
    n.state.store(st, std::memory_order_release);
    futex_wake(n.state, 1);
  }

  outcome park(node& self, std::unique_lock<std::mutex>& lock, clock::time_point deadline) {
    lock.unlock();
    bool in_time = true;
    while (self.state.load(std::memory_order_acquire) == state_waiting && in_time)
      in_time = futex_wait(self.state, state_waiting, deadline);
    lock.lock();  // the waker (if any) has finished with `self` once we hold the lock
    switch (self.state.load(std::memory_order_relaxed)) {
      case state_done:
        return outcome::done;
      case state_closed:
        return outcome::closed;
      default:
        (self.src ? senders_ : receivers_).unlink(self);
        return outcome::timeout;
    }
  }

  std::mutex m_;
  queue senders_;
  queue receivers_;
  bool closed_ = false;
  std::atomic<bool> closed_flag_{false};
  std::atomic<std::uint64_t> handed_{0};
};

}  // namespace bp::detail

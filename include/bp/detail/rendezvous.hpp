// Internal: the capacity-0 channel (Go's unbuffered channel). A send completes only when a
// receiver has taken the value, so there is no buffer: a waiting sender or receiver is a node
// on its own stack in a waiter queue (detail/waiter_queue.hpp), and the other side hands the
// value over directly (moving from the sender's variable into the receiver's optional). A
// sender that times out or is closed out unlinks itself; its value was never touched.
//
// Memory ordering: every hand-off happens under `m_`, and a waiter locks `m_` again after its
// wait, so the value moved into its optional is visible to it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <utility>

#include "deadline.hpp"
#include "wait_timer.hpp"
#include "waiter_queue.hpp"

namespace bp::detail {

template <class T>
class rendezvous {
 public:
  enum class outcome { done, empty, closed, timeout };

  struct node : waiter_node<node> {
    T* src = nullptr;                  // sender: the caller's value
    std::optional<T>* dest = nullptr;  // receiver: where the value goes
  };

  // Sender side. `wait == false` is try_send: succeeds only if a receiver is already waiting.
  // A sender about to park counts itself in `send_waits` first (visible while it waits), and
  // records how long it was parked in `wait_times` (a bp::wait_histogram).
  template <class Histogram>
  outcome send(T& v, bool wait, clock::time_point deadline, std::atomic<std::uint64_t>& send_waits,
               Histogram& wait_times) {
    trampoline_scope after_unlock;  // a coroutine served here resumes once m_ is free
    std::unique_lock lock(m_);
    node self;
    const outcome o = offer_send(wait ? &self : nullptr, v);
    if (o != outcome::empty || !wait) return o;
    send_waits.fetch_add(1, std::memory_order_relaxed);
    const wait_timer<Histogram> timer(wait_times);
    return park(self, lock, deadline);
  }

  // Receiver side. `wait == false` is try_recv: succeeds only if a sender is already waiting.
  // Counts and times its parking as send() does.
  template <class Histogram>
  outcome recv(std::optional<T>& out, bool wait, clock::time_point deadline,
               std::atomic<std::uint64_t>& recv_waits, Histogram& wait_times) {
    trampoline_scope after_unlock;
    std::unique_lock lock(m_);
    node self;
    const outcome o = offer_recv(wait ? &self : nullptr, out);
    if (o != outcome::empty || !wait) return o;
    recv_waits.fetch_add(1, std::memory_order_relaxed);
    const wait_timer<Histogram> timer(wait_times);
    return park(self, lock, deadline);
  }

  // Every parked sender answers `closed` (value untouched), every parked receiver the end.
  bool close() {
    trampoline_scope after_unlock;
    std::lock_guard lock(m_);
    if (closed_) return false;
    closed_ = true;
    while (node* n = senders_.pop()) queue::serve(*n, served::closed);
    while (node* n = receivers_.pop()) queue::serve(*n, served::closed);
    closed_flag_.store(true, std::memory_order_release);
    return true;
  }

  [[nodiscard]] bool is_closed() const noexcept {
    return closed_flag_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint64_t handed() const noexcept {
    return handed_.load(std::memory_order_relaxed);
  }

  // The halves of send and recv for a waiter that is not a thread (a coroutine waiting on
  // `self.ready` until waiter_queue::is_served(self)). start_send / start_recv answer done or
  // closed at once, or `empty` with `self` queued; finish() answers after the wait: done,
  // closed, or timeout when `self` was never served (it is unlinked: the value untouched).
  outcome start_send(node& self, T& v, std::atomic<std::uint64_t>& send_waits) {
    trampoline_scope after_unlock;
    std::lock_guard lock(m_);
    const outcome o = offer_send(&self, v);
    if (o == outcome::empty) send_waits.fetch_add(1, std::memory_order_relaxed);
    return o;
  }
  outcome start_recv(node& self, std::optional<T>& out) {
    trampoline_scope after_unlock;
    std::lock_guard lock(m_);
    return offer_recv(&self, out);
  }
  outcome finish(node& self) {
    std::lock_guard lock(m_);
    return outcome_of((self.src ? senders_ : receivers_).settle(self));
  }

 private:
  using queue = waiter_queue<node>;

  // Under m_: hands `v` to the first waiting receiver (done), or answers closed, or queues
  // `self` if given (empty: nobody waits; `self` is now in the queue unless null).
  outcome offer_send(node* self, T& v) {
    if (closed_) return outcome::closed;
    if (node* r = receivers_.pop()) {
      r->dest->emplace(std::move(v));
      ++handed_;
      queue::serve(*r, served::granted);
      return outcome::done;
    }
    if (self != nullptr) {
      self->src = &v;
      senders_.push(*self);
    }
    return outcome::empty;
  }
  // Under m_: takes the first waiting sender's value (done), or answers closed (and drained:
  // senders still queued at close were closed out), or queues `self` if given.
  outcome offer_recv(node* self, std::optional<T>& out) {
    if (node* s = senders_.pop()) {
      out.emplace(std::move(*s->src));
      ++handed_;
      queue::serve(*s, served::granted);
      return outcome::done;
    }
    if (closed_) return outcome::closed;
    if (self != nullptr) {
      self->dest = &out;
      receivers_.push(*self);
    }
    return outcome::empty;
  }

  outcome park(node& self, std::unique_lock<std::mutex>& lock, clock::time_point deadline) {
    return outcome_of((self.src ? senders_ : receivers_).wait(self, lock, deadline));
  }

  // done when served, closed, or timeout when never served (the caller tells a timeout from a
  // cancellation).
  static outcome outcome_of(served how) noexcept {
    const auto a = answer_of(how);
    return !a ? outcome::timeout : *a == status::ok ? outcome::done : outcome::closed;
  }

  std::mutex m_;
  queue senders_;
  queue receivers_;
  bool closed_ = false;
  std::atomic<bool> closed_flag_{false};
  std::atomic<std::uint64_t> handed_{0};
};

}  // namespace bp::detail

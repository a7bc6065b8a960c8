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
#include <functional>
#include <mutex>
#include <optional>
#include <utility>

#include "deadline.hpp"
#include "select_claim.hpp"
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
    // A select's case: the select's decision (detail/select_claim.hpp) and the case's index.
    select_claim* selector = nullptr;
    std::uint32_t case_index = 0;
    bool queued = false;  // a select's node: in a queue (guarded by m_)
  };

  // What a select's attempt on one of its capacity-0 cases found.
  enum class select_try { done, closed, not_ready, decided };

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
  // A select's attempt on a send (`self.src` set) or receive case, under m_: hands the value
  // over to a waiting party (done), or answers closed, or finds the select already decided by
  // another party (decided: `completed` says which case), or not_ready. With `enlist`, a
  // not-ready case leaves `self` queued (once) for a party that comes later to complete it.
  select_try select_attempt(node& self, std::optional<T>* out, select_claim& claim, bool enlist,
                            std::uint32_t& completed) {
    trampoline_scope after_unlock;
    std::lock_guard lock(m_);
    if (!claim.begin(completed)) return select_try::decided;
    if (closed_) {  // a receive: closed and drained (close() closed out every queued sender)
      claim.end(self.case_index);
      return select_try::closed;
    }
    node* lower = nullptr;  // a busy select we gave way to
    if (node* partner = take_partner(self.src ? receivers_ : senders_, &claim, lower)) {
      if (self.src) {
        partner->dest->emplace(std::move(*self.src));
      } else {
        out->emplace(std::move(*partner->src));
      }
      ++handed_;
      queue::serve(*partner, served::granted);
      claim.end(self.case_index);
      return select_try::done;
    }
    if ((enlist || lower != nullptr) && !self.queued) {
      self.selector = &claim;
      self.dest = out;
      (self.src ? senders_ : receivers_).push(self);
      self.queued = true;
    }
    claim.end(std::nullopt);
    // We gave way to a busy select at a lower address: our node is queued now; wake that select
    // so that it polls again and finds us (it waits for us if we are busy then).
    if (lower != nullptr) lower->ready.notify_one();
    return select_try::not_ready;
  }

  // A select is done with `self` (under m_): unlinked if it is still queued. Once this returns,
  // no other party touches `self`.
  void select_leave(node& self) {
    std::lock_guard lock(m_);
    if (self.queued && self.mark.load(std::memory_order_relaxed) == served::waiting)
      (self.src ? senders_ : receivers_).unlink(self);
    self.queued = false;
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
    node* unused = nullptr;
    if (node* r = take_partner(receivers_, nullptr, unused)) {
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
    node* unused = nullptr;
    if (node* s = take_partner(senders_, nullptr, unused)) {
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

  // Under m_: takes the first waiter of `q` that may be served. A select's node is claimed first
  // (detail/select_claim.hpp); one whose select decided otherwise is taken off (abandoned) and
  // skipped, and so is `mine`'s own. A busy select is waited for, unless `mine` (a select itself)
  // must give way to it: it is skipped then, and `lower` is set to its node.
  node* take_partner(queue& q, select_claim* mine, node*& lower) {
    for (node* n = q.front(); n != nullptr;) {
      if (n->selector == nullptr) {
        q.unlink(*n);
        return n;
      }
      if (n->selector == mine) {
        n = n->next;
        continue;
      }
      switch (n->selector->claim(n->case_index)) {
        case select_claim::result::claimed:
          q.unlink(*n);
          n->queued = false;
          return n;
        case select_claim::result::taken: {
          node* next = n->next;
          q.unlink(*n);
          n->queued = false;
          n->mark.store(served::abandoned, std::memory_order_relaxed);
          n = next;
          continue;
        }
        case select_claim::result::busy:
          if (!n->selector->waited_for_by(mine)) {
            lower = n;
            n = n->next;
            continue;
          }
          n->selector->wait_not_busy();
          continue;  // look at `n` again
      }
    }
    return nullptr;
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

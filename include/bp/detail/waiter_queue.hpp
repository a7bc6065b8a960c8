// Internal: a first-come-first-served queue of waiters that are handed their credit directly,
// for the primitives whose waiters must be served in order and given something specific: the
// semaphore (n permits to the head, so a request for 5 is not overtaken by later requests for
// 1) and the rendezvous (a value moved from one waiter's variable into another's).
//
// A waiter is a node on its own stack frame, linked into the queue under the owner's mutex.
// The owner decides under that mutex whom to serve, and serve() marks the node and notifies
// its event count; the waiter itself waits in the one wait loop (detail/wait.hpp) for its mark,
// so a hand-off from the other core lands during the spin, and a parked waiter burns no CPU.
//
// Lifetime: serve() runs under the owner's mutex, and a waiter locks that mutex once more after
// its wait, so the server has left the node before the node's stack frame goes away. A waiter
// whose deadline passed unlinks itself under the mutex; if it was served in the meantime, the
// mark says so and the hand-off stands.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

#include "../status.hpp"
#include "async_op.hpp"
#include "deadline.hpp"
#include "event_count.hpp"
#include "wait.hpp"

namespace bp::detail {

// waiting until served; granted or closed by whoever served it; abandoned: a select's node
// taken off by a party that found the select already decided (nobody waits on it any more).
enum class served : std::uint32_t { waiting = 0, granted = 1, closed = 2, abandoned = 3 };

// What a waiter's mark answers: ok when granted, closed, or std::nullopt when it was never
// served (its wait timed out or was cancelled).
inline std::optional<status> answer_of(served how) noexcept {
  switch (how) {
    case served::granted:
      return status::ok;
    case served::closed:
      return status::closed;
    case served::waiting:
    case served::abandoned:
      break;
  }
  return std::nullopt;
}

// Derive the owner's node type from this (CRTP keeps the queue free of casts).
template <class Node>
struct waiter_node {
  Node* next = nullptr;
  Node* prev = nullptr;
  std::atomic<served> mark{served::waiting};
  event_count ready;
};

template <class Node>
class waiter_queue {
 public:
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  [[nodiscard]] Node* front() const noexcept { return head_; }

  void push(Node& n) noexcept {
    n.prev = tail_;
    n.next = nullptr;
    (tail_ ? tail_->next : head_) = &n;
    tail_ = &n;
  }
  Node* pop() noexcept {
    Node* n = head_;
    if (n) unlink(*n);
    return n;
  }
  void unlink(Node& n) noexcept {
    (n.prev ? n.prev->next : head_) = n.next;
    (n.next ? n.next->prev : tail_) = n.prev;
    n.next = n.prev = nullptr;
  }

  // Under the owner's mutex: tells a node it was served (or closed out) and wakes it.
  static void serve(Node& n, served how) noexcept {
    n.mark.store(how, std::memory_order_seq_cst);
    n.ready.notify_one();
  }

  // `lock` holds the owner's mutex and `self` is queued. Unlocks, waits for the mark or the
  // deadline, locks again. Returns the mark; on `waiting` (the deadline passed) `self` has been
  // unlinked and the caller answers `timeout`.
  served wait(Node& self, std::unique_lock<std::mutex>& lock, clock::time_point deadline) {
    lock.unlock();
    (void)wait_until(self.ready, deadline, [&] { return is_served(self); });
    lock.lock();  // the server, if any, is done with `self` once we hold the mutex
    return settle(self);
  }

  // The halves of wait() for a waiter that is not a thread (a coroutine waits on `self.ready`
  // for is_served, detail/async_op.hpp): under the owner's mutex after the wait, settle()
  // returns the mark and unlinks `self` if it was never served (cancelled, timed out).
  static bool is_served(const Node& self) noexcept {
    return self.mark.load(std::memory_order_seq_cst) != served::waiting;
  }
  served settle(Node& self) noexcept {
    const served how = self.mark.load(std::memory_order_relaxed);
    if (how == served::waiting) unlink(self);
    return how;
  }

 private:
  Node* head_ = nullptr;
  Node* tail_ = nullptr;
};

// A coroutine's wait for its node to be served: the node's own event count, is_served.
template <class Node>
class served_op : public async_op<served_op<Node>> {
 public:
  served_op(Node& n, async_options opts) noexcept
      : async_op<served_op<Node>>(n.ready, std::move(opts)), node_(&n) {}
  bool attempt() const noexcept { return waiter_queue<Node>::is_served(*node_); }
  using async_op<served_op<Node>>::cancelled;
  using async_op<served_op<Node>>::timed_out;
  using async_op<served_op<Node>>::set_deadline;

 private:
  Node* node_;
};

}  // namespace bp::detail

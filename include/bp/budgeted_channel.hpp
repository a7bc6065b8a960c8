// bp/budgeted_channel.hpp: a bounded channel whose items also hold bytes of a shared
// bp::memory_budget (Kafka's producer: `buffer.memory` shared by every partition's queue).
//
//   bp::budgeted_channel<T>          bp::channel<T> composed with a memory_budget stream and a
//                                    size function: a send first reserves the item's bytes, a
//                                    receive (or an eviction, or the channel's destruction) gives
//                                    them back. Same verbs and bp::status answers as bp::channel.
//   bp::budgeted_channel_options<T>  capacity, policy, size function, drop handler, max_block.
//
// Example (compiled twin: examples/memory_budget_basics.cpp):
//
//   bp::memory_budget budget(64 << 20);                       // shared by every channel
//   bp::budgeted_channel<std::string> orders(budget, {.capacity = 1024});
//   bp::budgeted_channel<std::string> audit(budget, {.capacity = 1024,
//                                                    .policy = bp::overflow::drop_oldest});
//   if (orders.send_for(std::move(msg), 100ms) == bp::status::timeout) shed(msg);
//   while (auto m = orders.recv()) handle(*m);                // bytes go back per receive
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <functional>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "channel.hpp"
#include "detail/async_op.hpp"
#include "detail/deadline.hpp"
#include "detail/send_verbs.hpp"
#include "memory_budget.hpp"
#include "status.hpp"
#include "task.hpp"
#include "wait_histogram.hpp"

namespace bp {

template <class T>
struct budgeted_channel_options {
  // Items, as bp::channel's capacity (0 is a rendezvous, block only). The byte bound is the
  // budget's; the item bound still caps the number of buffered values.
  std::size_t capacity = 0;
  overflow policy = overflow::block;
  // The bytes an item counts for, taken once per send.
  std::function<std::size_t(const T&)> size = default_item_size{};
  // As bp::channel's: receives every accepted value that will never be delivered (evicted, or
  // buffered at destruction). Its bytes are given back before it runs.
  std::function<void(T&&)> on_undelivered{};
  // Bounds how long send() waits in all (Kafka's max.block.ms); past it send() answers
  // timeout. The default, duration::max(), means send() waits without limit (ok | closed, as
  // bp::channel's send).
  std::chrono::nanoseconds max_block = std::chrono::nanoseconds::max();
};

template <class T>
concept budgeted_channel_element = channel_element<T> && std::is_nothrow_move_assignable_v<T>;

// A bounded MPMC FIFO channel whose items also hold budget bytes.
//
// A send first reserves size(value) bytes on the channel's own stream of the budget (so the
// budget's fairness rule shares the bytes between channels), then sends as bp::channel does.
// When the budget has no room, each policy answers by its rule:
//   policy        budget spent                                             send() returns
//   block         waits for bytes (then for a slot), up to the deadline    ok | timeout | closed
//   drop_newest   discards the value being sent                            dropped
//   drop_oldest   evicts this channel's oldest values until the bytes fit  ok (evictions
//                 (the drop handler gets them); if none is left to evict,  counted) | dropped
//                 discards the value
//   reject        nothing is enqueued                                      full
// try_send on a block channel answers full when either the bytes or a slot are missing.
// send_for/send_until bound the whole wait (bytes, then slot). Any answer but ok leaves the
// value with the caller (an rvalue argument is left with its value) and holds no bytes.
// The bytes come back when the value is received, evicted, or destroyed with the channel.
//
// Counters: stats() answers bp::channel_stats with the same invariants as bp::channel; budget
// refusals count as `dropped` (drop_newest, drop_oldest) or `rejected` (reject, try_send), and
// values evicted to make room for bytes count as `evicted`.
//
// When to use: many queues (partitions, tenants, connections) whose item capacities would add
// up to more memory than the process may spend, with items of varying size. When not to use:
// items of one fixed size and one queue: bp::channel's capacity already bounds the bytes.
//
// Thread safety: as bp::channel: every member may be called concurrently, except the
// destructor; observers are best effort.
//
// Memory ordering: as bp::channel (a successful send happens-before the receive of its value)
// and bp::memory_budget (bytes given back happen-before the grant that reuses them).
//
// Errors: bp::channel's construction errors (naming `capacity` or `policy`); a value whose size
// exceeds the budget's capacity throws std::invalid_argument naming `item` (nothing is sent); an
// empty size function throws naming `size`. The budget must outlive the channel.
//
// Cancellation: close() is idempotent: senders waiting for bytes or slots answer closed,
// receivers drain what is buffered. Closing the budget makes sends answer closed too.
//
// Example:
//   bp::budgeted_channel<std::vector<std::byte>> q(budget, {.capacity = 256,
//                                                           .max_block = 60s});
//   std::thread consumer([&] { for (auto& frame : q) write_to_disk(frame); });
//   if (q.send(std::move(frame)) == bp::status::timeout) alert("budget exhausted for 60 s");
template <budgeted_channel_element T>
class budgeted_channel : public detail::send_verbs<budgeted_channel<T>, T, status> {
  struct entry {
    T value;
    memory_permit reserved;
  };

 public:
  using value_type = T;

  budgeted_channel(memory_budget& budget, budgeted_channel_options<T> options)
      : size_(checked(std::move(options.size))),
        max_block_(options.max_block),
        stream_(budget.open_stream()),
        evict_handler_(wrap(std::move(options.on_undelivered))),
        ch_(options.capacity, options.policy, evict_handler_) {}

  budgeted_channel(memory_budget& budget, std::size_t capacity, overflow policy = overflow::block)
      : budgeted_channel(budget,
                         budgeted_channel_options<T>{.capacity = capacity, .policy = policy}) {}

  budgeted_channel(const budgeted_channel&) = delete;
  budgeted_channel& operator=(const budgeted_channel&) = delete;

  // --- sending ---------------------------------------------------------------------------------

  // send, try_send, send_for, send_until, each for `T&&` and `const T&` (detail::send_verbs).
  // send() waits at most max_block (forever when unset), as does a send_for/send_until whose
  // timeout is beyond any clock (duration::max()).
  using detail::send_verbs<budgeted_channel<T>, T, status>::send;
  using detail::send_verbs<budgeted_channel<T>, T, status>::try_send;
  using detail::send_verbs<budgeted_channel<T>, T, status>::send_for;
  using detail::send_verbs<budgeted_channel<T>, T, status>::send_until;

  // co_await q.async_send(std::move(v)[, options]): as send(v, stop), with the coroutine
  // suspended (first for the bytes, then for a slot) instead of a thread; max_block bounds both
  // waits together, as for send(). It is a bp::task: one coroutine frame per call, started when
  // awaited. Cancel safe: any answer but ok leaves the value with the caller and holds no bytes.
  [[nodiscard]] task<status> async_send(T&& value, async_options opts = {}) {
    return async_send_impl(value, std::move(opts));
  }
  [[nodiscard]] task<status> async_send(const T& value, async_options opts = {}) {
    T copy(value);
    co_return co_await async_send_impl(copy, std::move(opts));
  }

  // --- receiving -------------------------------------------------------------------------------

  // co_await q.async_recv([options]): as recv(stop), with the coroutine suspended instead of a
  // thread; the value's bytes go back to the budget when it is taken. Cancel safe.
  [[nodiscard]] auto async_recv(async_options opts = {}) {
    using inner = detail::channel_recv_op<channel<entry>, false>;
    return detail::mapped_awaiter<inner, std::optional<T> (*)(std::optional<entry>)>(
        [&] { return ch_.async_recv(std::move(opts)); }, &budgeted_channel::unwrap);
  }

  [[nodiscard]] std::optional<T> recv() { return unwrap(ch_.recv()); }
  [[nodiscard]] std::optional<T> try_recv() { return unwrap(ch_.try_recv()); }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
    return unwrap(ch_.recv_for(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) {
    return unwrap(ch_.recv_until(deadline));
  }
  // std::nullopt when closed and drained, or when `stop` was stopped first.
  [[nodiscard]] std::optional<T> recv(const std::stop_token& stop) {
    return unwrap(ch_.recv(stop));
  }

  // --- state -----------------------------------------------------------------------------------

  // Idempotent; wakes senders waiting for bytes or slots (they answer closed) and receivers.
  void close() {
    ch_.close();
    stream_.close();
  }
  [[nodiscard]] bool is_closed() const noexcept { return ch_.is_closed(); }
  [[nodiscard]] std::size_t size() const noexcept { return ch_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return ch_.capacity(); }
  [[nodiscard]] overflow policy() const noexcept { return ch_.policy(); }
  // Budget bytes held by this channel's buffered values (best effort).
  [[nodiscard]] std::size_t bytes() const noexcept { return stream_.in_use(); }
  [[nodiscard]] const memory_budget::stream& budget_stream() const noexcept { return stream_; }

  [[nodiscard]] channel_stats stats() const noexcept {
    channel_stats s = ch_.stats();
    const auto evicted = budget_evicted_.load(std::memory_order_relaxed);
    s.received -= evicted;  // our evictions went through try_recv
    s.evicted += evicted;
    s.dropped += budget_dropped_.load(std::memory_order_relaxed);
    s.rejected += budget_rejected_.load(std::memory_order_relaxed);
    return s;
  }
  // The channel's wait times: sends that waited for a slot (a wait for bytes is the memory
  // budget's: memory_budget::wait_times()), receives that waited for a value.
  [[nodiscard]] const wait_histogram& send_wait_times() const noexcept {
    return ch_.send_wait_times();
  }
  [[nodiscard]] const wait_histogram& recv_wait_times() const noexcept {
    return ch_.recv_wait_times();
  }

  // range-for: receives until closed and drained.
  using iterator = detail::recv_iterator<T, budgeted_channel,
                                         static_cast<std::optional<T> (budgeted_channel::*)()>(
                                             &budgeted_channel::recv)>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  static std::function<std::size_t(const T&)> checked(std::function<std::size_t(const T&)> f) {
    if (!f) throw std::invalid_argument("bp::budgeted_channel: size function is empty");
    return f;
  }

  static std::function<void(entry&&)> wrap(std::function<void(T&&)> handler) {
    if (!handler) return {};
    return [h = std::move(handler)](entry&& e) {
      e.reserved.release();
      h(std::move(e.value));
    };
  }

  static std::optional<T> unwrap(std::optional<entry> e) {
    if (!e) return std::nullopt;
    e->reserved.release();
    return std::optional<T>(std::move(e->value));
  }

  memory_permit reserve(std::size_t bytes, bool may_wait, detail::clock::time_point deadline) {
    if (!may_wait || ch_.policy() != overflow::block) return stream_.try_reserve(bytes);
    return deadline == detail::forever() ? stream_.reserve(bytes)
                                         : stream_.reserve_until(bytes, deadline);
  }

  // drop_oldest: give back our own oldest values until `bytes` fit (or nothing is left).
  memory_permit reserve_evicting(std::size_t bytes) {
    auto r = stream_.try_reserve(bytes);
    while (r.status() == status::full) {
      auto old = ch_.try_recv();
      if (!old) break;
      budget_evicted_.fetch_add(1, std::memory_order_relaxed);
      old->reserved.release();
      if (evict_handler_) evict_handler_(std::move(*old));
      r = stream_.try_reserve(bytes);
    }
    return r;
  }

  friend class detail::send_verbs<budgeted_channel<T>, T, status>;
  status send_value(T& value, bool may_wait, detail::clock::time_point deadline) {
    if (may_wait && deadline == detail::forever() && max_block_ != std::chrono::nanoseconds::max())
      deadline = detail::deadline_after(max_block_);
    return send_impl(value, may_wait, deadline);
  }

  std::size_t checked_size(const T& value) const {
    const std::size_t n = size_(value);
    if (const auto cap = stream_.budget()->capacity(); n > cap)
      throw std::invalid_argument("bp::budgeted_channel: item of " + std::to_string(n) +
                                  " bytes exceeds the memory budget's capacity of " +
                                  std::to_string(cap));
    return n;
  }

  // The answer when the bytes were not granted: the budget's own (timeout, closed, cancelled),
  // or the policy's for `full`.
  status refused(const memory_permit& r) noexcept {
    if (r.status() != status::full) return r.status();
    switch (ch_.policy()) {
      case overflow::drop_newest:
      case overflow::drop_oldest:
        budget_dropped_.fetch_add(1, std::memory_order_relaxed);
        return status::dropped;
      case overflow::block:
      case overflow::reject:
        break;
    }
    budget_rejected_.fetch_add(1, std::memory_order_relaxed);
    return status::full;
  }

  task<status> async_send_impl(T& value, async_options opts) {
    if (ch_.is_closed()) co_return status::closed;
    const std::size_t n = checked_size(value);
    const bool bounded = max_block_ != std::chrono::nanoseconds::max();
    const auto deadline = bounded ? detail::deadline_after(max_block_) : detail::forever();
    memory_permit r;
    if (ch_.policy() == overflow::drop_oldest) {
      r = reserve_evicting(n);
    } else if (ch_.policy() != overflow::block) {
      r = stream_.try_reserve(n);
    } else if (bounded) {
      r = co_await stream_.async_reserve_for(n, deadline - detail::clock::now(), opts);
    } else {
      r = co_await stream_.async_reserve(n, opts);
    }
    if (!r) co_return refused(r);
    entry e{std::move(value), std::move(r)};
    const status s =
        bounded ? co_await ch_.async_send_for(std::move(e), deadline - detail::clock::now(), opts)
                : co_await ch_.async_send(std::move(e), opts);
    if (s != status::ok) value = std::move(e.value);  // not taken: back to the caller
    co_return s;
  }

  status send_impl(T& value, bool may_wait, detail::clock::time_point deadline) {
    if (ch_.is_closed()) return status::closed;
    const std::size_t n = checked_size(value);
    auto r = ch_.policy() == overflow::drop_oldest ? reserve_evicting(n)
                                                   : reserve(n, may_wait, deadline);
    if (!r) return refused(r);
    entry e{std::move(value), std::move(r)};
    const status s = !may_wait                       ? ch_.try_send(std::move(e))
                     : deadline == detail::forever() ? ch_.send(std::move(e))
                                                     : ch_.send_until(std::move(e), deadline);
    if (s != status::ok) value = std::move(e.value);  // not taken: back to the caller
    return s;                                         // e's bytes (if not taken) go back as it dies
  }

  const std::function<std::size_t(const T&)> size_;
  const std::chrono::nanoseconds max_block_;
  memory_budget::stream stream_;                      // before ch_: buffered values die first
  const std::function<void(entry&&)> evict_handler_;  // the user's, bytes given back first
  channel<entry> ch_;
  std::atomic<std::uint64_t> budget_dropped_{0};
  std::atomic<std::uint64_t> budget_rejected_{0};
  std::atomic<std::uint64_t> budget_evicted_{0};
};

}  // namespace bp

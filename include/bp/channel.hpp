// bp/channel.hpp: the bounded channel: the Block and Drop strategies.
//
//   bp::channel<T>          MPMC FIFO queue of fixed capacity; what happens when it is full is
//                           a bp::overflow policy. Capacity 0 is a rendezvous (Go's unbuffered
//                           channel).
//   bp::channel_options<T>  capacity, policy and the drop handler, for designated initializers.
//   bp::channel_stats       counters: sent, received, dropped, evicted, rejected,
//                           high_watermark, send_waits, recv_waits, timeouts; the wait
//                           times are in send_wait_times() / recv_wait_times().
//   bp::send_permit<T>      slots claimed ahead by reserve() (bp/send_permit.hpp).
//   bp::sender<T>,          copyable ends of one channel with ownership-based closing: the
//   bp::receiver<T>         channel closes when the last sender or the last receiver is gone
//   bp::make_channel<T>     (bp/channel_ends.hpp, included here); make_channel creates a
//                           channel and returns {sender, receiver}.
//
// Example (examples/quick_start.cpp):
//
//   auto [tx, rx] = bp::make_channel<int>(8);          // overflow::block
//   std::thread producer([tx = std::move(tx)]() mutable {
//     for (int i = 0; i < 100; ++i) (void)tx.send(i);  // waits while 8 items are buffered
//   });                                                // last sender gone: channel closes
//   long sum = 0;
//   for (int v : rx) sum += v;                         // drains, then ends
//   producer.join();
#pragma once

#include <algorithm>
#include <chrono>
#include <climits>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "channel_fwd.hpp"
#include "detail/async_op.hpp"
#include "detail/channel_ops.hpp"
#include "detail/config.hpp"
#include "detail/event_count.hpp"
#include "detail/futex.hpp"
#include "detail/recv_iterator.hpp"
#include "detail/recv_verbs.hpp"
#include "detail/rendezvous.hpp"
#include "detail/ring.hpp"
#include "detail/send_verbs.hpp"
#include "detail/spin.hpp"
#include "detail/stop.hpp"
#include "detail/wait_timer.hpp"
#include "send_permit.hpp"
#include "status.hpp"
#include "task.hpp"
#include "wait_histogram.hpp"

namespace bp {

// Counters of one channel. Each is exact once every thread using the channel is done; while
// operations are in flight a snapshot may be momentarily inconsistent between fields.
// Invariants at rest:
//   sent == received + size() + evicted
//   sent + dropped + rejected == number of sends not answered `closed` or `timeout`
struct channel_stats {
  std::uint64_t sent = 0;          // values accepted into the buffer (or handed over, cap 0)
  std::uint64_t received = 0;      // values delivered to receivers
  std::uint64_t dropped = 0;       // values refused by drop_newest (or drop_oldest, see channel)
  std::uint64_t evicted = 0;       // drop_oldest: buffered values evicted by newer ones
  std::uint64_t rejected = 0;      // `full` answers to send / try_send
  std::size_t high_watermark = 0;  // largest size() seen
  std::uint64_t send_waits = 0;    // sends that had to wait for room (or for a receiver)
  std::uint64_t recv_waits = 0;    // receives that had to wait for a value (or a sender)
  std::uint64_t timeouts = 0;      // waits (send, receive, reserve) that answered `timeout`;
                                   // a batch receive's linger window running out counts too
};

// The answer to a batch send (send_n, try_send_n, send_n_for): the first `count` values of the
// range were taken (moved from), in order; `answer` is `ok` when all were, otherwise the answer
// the value at position `count` got (dropped, full, closed, timeout). That value and the ones
// after it were not taken and are untouched.
struct send_n_result {
  std::size_t count = 0;
  status answer = status::ok;
  friend bool operator==(const send_n_result&, const send_n_result&) = default;
};

// Options for a channel, to be written with designated initializers:
//   bp::channel<Frame> ch({.capacity = 64, .policy = bp::overflow::drop_oldest,
//                          .on_undelivered = [](Frame&& f) { pool.recycle(std::move(f)); }});
template <class T>
struct channel_options {
  std::size_t capacity = 0;
  overflow policy = overflow::block;
  // Receives every value the channel accepted but will never deliver: evicted by drop_oldest,
  // or still buffered when the channel is destroyed (Kotlin's onUndeliveredElement). Runs on
  // the thread that evicts or destroys; it must not throw (std::terminate if it does) and must
  // not use the channel.
  std::function<void(T&&)> on_undelivered{};
};

// A range whose elements are T lvalues that a batch send may move from (vector<T>, array,
// std::span<T>, deque...).
template <class R, class T>
concept batch_range = std::ranges::forward_range<R> && std::ranges::sized_range<R> &&
    std::same_as<std::ranges::range_reference_t<R>, T&>;

// A bounded multi-producer multi-consumer FIFO channel.
//
// A full channel answers according to its `overflow` policy:
//   policy        full buffer                                  send() returns
//   block         waits until a slot frees (or close)          ok, or closed
//   drop_newest   discards the value being sent                dropped
//   drop_oldest   evicts the oldest buffered value, enqueues   ok (eviction counted), or
//                 (refuses if the oldest slot is reserved)     dropped
//   reject        enqueues nothing; the caller decides         full
// A value the channel does not take (any answer but ok) stays with the caller: an rvalue
// argument is left unmoved. try_send never waits (a full `block` channel answers full);
// send_for/send_until answer timeout when time runs out first.
//
// When to use: `block` when every item matters (orders, events: slowness propagates upstream
// instead of memory growing); `drop_oldest` when freshness matters (telemetry, UI state);
// `drop_newest` when the first items of a burst matter more (sampling, rate-capped logs);
// `reject` when the producer has its own fallback (answer 503, spill to disk, retry later).
// When not to use: if the consumer should pull exactly n items, see bp::rs (Signal); if the
// producer should run at a fixed rate whatever the consumer does, see bp::token_bucket.
//
// Thread safety: every member may be called concurrently from any number of threads, except
// the destructor. Observers (size, stats, is_closed) are best effort: stale the moment they
// return while other threads operate.
//
// Memory ordering: a successful send happens-before the recv that returns its value. close()
// happens-before any operation that answers `closed` or ends a receive loop because of it.
//
// Blocking: a waiting thread retries for up to 10 us (detail/spin.hpp), then parks on a futex
// and burns no CPU until woken. Nothing is allocated per item: the ring of `capacity` slots is
// allocated once, in the constructor.
//
// Closing: close() is idempotent and wakes every waiter. Senders then answer `closed`;
// receivers still get everything buffered before close(), then std::nullopt. On a capacity-0
// channel a sender still waiting at close() answers `closed` and its value is not delivered.
// A drop_oldest send racing with close() may evict one buffered value (handed to the drop
// handler and counted) and then answer `closed`.
//
// Errors: invalid construction arguments throw std::invalid_argument naming the argument;
// allocation failure of the ring throws std::bad_alloc. No operation throws after that, except
// what copying a `const T&` argument throws.
template <channel_element T>
class channel : public detail::send_verbs<channel<T>, T, status>,
                public detail::recv_verbs<channel<T>, T> {
 public:
  using value_type = T;
  using drop_handler = std::function<void(T&&)>;

  explicit channel(std::size_t capacity, overflow policy = overflow::block,
                   drop_handler on_undelivered = {})
      : ring_(validated_capacity(capacity, policy)),
        policy_(policy),
        on_undelivered_(std::move(on_undelivered)) {}

  explicit channel(channel_options<T> options)
      : channel(options.capacity, options.policy, std::move(options.on_undelivered)) {}

  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  // Values still buffered go to the drop handler (if any), then are destroyed.
  ~channel() {
    if (!on_undelivered_ || capacity() == 0) return;
    std::uint64_t passed = 0;
    while (auto v = ring_.try_pop(passed)) hand_to_drop_handler(std::move(*v));
  }

  // --- sending ---------------------------------------------------------------------------------

  // send, try_send (never waits: ok | dropped | full | closed), send_for, send_until: each for
  // `T&&` and `const T&`, from detail::send_verbs (see the table above for the answers).
  using detail::send_verbs<channel<T>, T, status>::send;
  using detail::send_verbs<channel<T>, T, status>::try_send;
  using detail::send_verbs<channel<T>, T, status>::send_for;
  using detail::send_verbs<channel<T>, T, status>::send_until;

  // --- batch sending ---------------------------------------------------------------------------
  // Each sends the values of a range of T lvalues (a vector, array, span...) in order, as if by
  // one send per value, stopping at the first value not taken (see send_n_result). Runs of free
  // slots are claimed with one atomic operation and receivers are woken once per run, so a batch
  // costs much less than the same number of single sends.

  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result send_n(R&& values) {
    return send_n_impl(values, true, detail::forever());
  }
  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result try_send_n(R&& values) {
    return send_n_impl(values, false, detail::forever());
  }
  template <class R, class Rep, class Period>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result send_n_for(R&& values, std::chrono::duration<Rep, Period> timeout) {
    return send_n_impl(values, true, detail::deadline_after(timeout));
  }
  // Cancellable: stops at the value it was waiting to send when `stop` is stopped (answer
  // `cancelled`; that value and the ones after it are untouched).
  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result send_n(R&& values, const std::stop_token& stop) {
    return detail::with_stop(stop, [&] { return send_n_impl(values, true, detail::forever()); });
  }

  // --- receiving -------------------------------------------------------------------------------
  // recv, try_recv, recv_for, recv_until: each as std::optional<T> (std::nullopt: closed and
  // drained, nothing buffered now, or timeout) and as `status recv(T& out)` (ok | full |
  // timeout | closed, where closed means closed and drained; on capacity 0 `full` means no
  // sender is waiting), and cancellable with a trailing std::stop_token (`cancelled`), from
  // detail::recv_verbs.
  using detail::recv_verbs<channel<T>, T>::recv;
  using detail::recv_verbs<channel<T>, T>::try_recv;
  using detail::recv_verbs<channel<T>, T>::recv_for;
  using detail::recv_verbs<channel<T>, T>::recv_until;

  // --- batch receiving -------------------------------------------------------------------------
  // Appends up to `max` values to `out` and returns how many. recv_many waits only until at least
  // one value is available (or the channel is closed and drained: 0), then takes what is there,
  // up to `max`, without waiting for more. try_recv_many never waits; recv_many_for answers 0
  // when the timeout passes first. `out` is grown (at most once, before any value is taken), so
  // a reused vector allocates nothing in steady state.

  std::size_t recv_many(std::vector<T>& out, std::size_t max) {
    return recv_many_impl(out, max, true, detail::forever());
  }
  std::size_t try_recv_many(std::vector<T>& out, std::size_t max) {
    return recv_many_impl(out, max, false, detail::forever());
  }
  template <class Rep, class Period>
  std::size_t recv_many_for(std::vector<T>& out, std::size_t max,
                            std::chrono::duration<Rep, Period> timeout) {
    return recv_many_impl(out, max, true, detail::deadline_after(timeout));
  }
  // Cancellable: 0 when `stop` is stopped before a value comes (check stop.stop_requested() to
  // tell it from the end).
  std::size_t recv_many(std::vector<T>& out, std::size_t max, const std::stop_token& stop) {
    return detail::with_stop(stop,
                             [&] { return recv_many_impl(out, max, true, detail::forever()); });
  }

  // --- lingering batch receive (Kafka's linger.ms) ---------------------------------------------
  // Appends up to `max` values to `out` and returns how many, waiting for a fuller batch:
  // recv_batch waits (without limit) for the first value, then keeps taking values until `max`
  // were taken or `linger` has passed since the first one arrived, whichever comes first. A
  // closed channel ends the batch early with what was gathered (0 once closed and drained).
  // recv_batch_for bounds the wait for the first value by `timeout` (0 when it passes first).
  // Between values the thread parks as recv_many_for does: lingering burns no CPU.
  // Use it to trade latency for batch size (one write per 1000 rows, not per row); recv_many
  // takes only what is buffered at once. `out` may grow more than once, each time before values
  // are taken (a throwing allocation loses nothing); reserve `max` beforehand to allocate nothing.
  template <class Rep, class Period>
  std::size_t recv_batch(std::vector<T>& out, std::size_t max,
                         std::chrono::duration<Rep, Period> linger) {
    return recv_batch_impl(out, max, linger, detail::forever());
  }
  template <class Rep1, class Period1, class Rep2, class Period2>
  std::size_t recv_batch_for(std::vector<T>& out, std::size_t max,
                             std::chrono::duration<Rep1, Period1> linger,
                             std::chrono::duration<Rep2, Period2> timeout) {
    return recv_batch_impl(out, max, linger, detail::deadline_after(timeout));
  }

  // --- reservations ----------------------------------------------------------------------------
  // Claims `n` slots now and returns a send_permit whose send() cannot fail (tokio's reserve):
  // wait for room first, then compute or fetch the values. Reserving waits for room whatever the
  // policy (try_reserve never waits: answer `full`; reserve_for: `timeout`); `closed` once
  // closed. The permit's unused slots are given back when it is destroyed or release()d.
  // n must be in [1, capacity()]: std::invalid_argument otherwise (capacity 0 has no slots).
  // The channel must outlive its permits.

  [[nodiscard]] send_permit<T> reserve(std::size_t n = 1) {
    return reserve_impl(n, true, detail::forever());
  }
  [[nodiscard]] send_permit<T> try_reserve(std::size_t n = 1) {
    return reserve_impl(n, false, detail::forever());
  }
  template <class Rep, class Period>
  [[nodiscard]] send_permit<T> reserve_for(std::size_t n,
                                           std::chrono::duration<Rep, Period> timeout) {
    return reserve_impl(n, true, detail::deadline_after(timeout));
  }
  // Cancellable: an empty permit answering `cancelled` once `stop` is stopped while waiting.
  [[nodiscard]] send_permit<T> reserve(std::size_t n, const std::stop_token& stop) {
    return detail::with_stop(stop, [&] { return reserve_impl(n, true, detail::forever()); });
  }

  // --- awaiting (C++20 coroutines) -------------------------------------------------------------
  // The same verbs for a coroutine: `co_await` suspends it instead of parking a thread, with the
  // blocking verb's answers, plus `cancelled` when the options' std::stop_token is stopped
  // first. The awaiter lives in the coroutine's frame (nothing is allocated per wait) and must
  // be awaited at once, in the full-expression that made it. Where the coroutine resumes:
  // inline on the thread that made room or sent the value (through a per-thread trampoline, so
  // chains of hand-offs do not grow the stack), or on the executor named by bp::resume_on.
  // Cancel safe: a cancelled or unchosen wait took nothing; an rvalue sent stays with the caller
  // unless the answer is `ok`. See docs/async.md.

  // ok | dropped | full | closed | cancelled, as send(). Suspends only where send() would wait.
  [[nodiscard]] detail::channel_send_op<channel> async_send(T&& value, async_options opts = {}) {
    return detail::channel_send_op<channel>(*this, value, std::move(opts));
  }
  // std::nullopt once closed and drained, or when cancelled.
  [[nodiscard]] detail::channel_recv_op<channel, false> async_recv(async_options opts = {}) {
    return detail::channel_recv_op<channel, false>(*this, nullptr, std::move(opts));
  }
  // ok | closed | cancelled; the value is moved into `out` on ok.
  [[nodiscard]] detail::channel_recv_op<channel, true> async_recv(T& out, async_options opts = {}) {
    return detail::channel_recv_op<channel, true>(*this, &out, std::move(opts));
  }
  // With a timeout: `timeout` (std::nullopt) once it passes first. A coroutine resumed by its
  // timeout runs on bp's timer thread unless the options name an executor.
  template <class Rep, class Period>
  [[nodiscard]] detail::channel_send_op<channel> async_send_for(
      T&& value, std::chrono::duration<Rep, Period> timeout, async_options opts = {}) {
    return detail::channel_send_op<channel>(*this, value, std::move(opts),
                                            detail::deadline_after(timeout));
  }
  template <class Rep, class Period>
  [[nodiscard]] detail::channel_recv_op<channel, false> async_recv_for(
      std::chrono::duration<Rep, Period> timeout, async_options opts = {}) {
    return detail::channel_recv_op<channel, false>(*this, nullptr, std::move(opts),
                                                   detail::deadline_after(timeout));
  }
  template <class Rep, class Period>
  [[nodiscard]] detail::channel_recv_op<channel, true> async_recv_for(
      T& out, std::chrono::duration<Rep, Period> timeout, async_options opts = {}) {
    return detail::channel_recv_op<channel, true>(*this, &out, std::move(opts),
                                                  detail::deadline_after(timeout));
  }

  // The batch verbs. async_recv_many: as recv_many(out, max, stop), 0 once closed and drained
  // or when cancelled (check the token to tell them apart); suspends only while nothing is
  // buffered. async_send_n: as send_n(values, stop), stopping at the first value not taken;
  // it is a bp::task (one coroutine frame per call, not per value), so the values must outlive
  // the co_await, and it starts only when awaited.
  [[nodiscard]] detail::channel_recv_many_op<channel> async_recv_many(std::vector<T>& out,
                                                                      std::size_t max,
                                                                      async_options opts = {}) {
    return detail::channel_recv_many_op<channel>(*this, out, max, std::move(opts));
  }
  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] task<send_n_result> async_send_n(R& values, async_options opts = {}) {
    send_n_result r;
    auto it = std::ranges::begin(values);
    auto remaining = static_cast<std::size_t>(std::ranges::distance(values));
    // Runs of free slots go in at once, as send_n; a full channel (or a rendezvous) takes the
    // single-value path, which applies the policy and suspends where send() would wait.
    while (remaining != 0) {
      if (!push_runs(it, remaining, r)) co_return r;
      if (remaining == 0) break;
      r.answer = co_await detail::channel_send_op<channel>(*this, *it, opts);
      if (r.answer != status::ok) co_return r;
      ++it;
      ++r.count;
      --remaining;
    }
    co_return r;
  }

  // As reserve(n, stop): a permit (answer ok), or an empty one answering closed or cancelled;
  // async_reserve_for also `timeout`. n must be in [1, capacity()] (std::invalid_argument,
  // thrown by the call). Cancel safe: a cancelled wait holds no slot.
  [[nodiscard]] auto async_reserve(std::size_t n = 1, async_options opts = {}) {
    check_reserve(n);
    return detail::attempt_awaiter<detail::channel_reserve_wait<channel>>(
        not_full_, detail::channel_reserve_wait<channel>(*this, n), std::move(opts));
  }
  template <class Rep, class Period>
  [[nodiscard]] auto async_reserve_for(std::size_t n, std::chrono::duration<Rep, Period> timeout,
                                       async_options opts = {}) {
    check_reserve(n);
    return detail::attempt_awaiter<detail::channel_reserve_wait<channel>>(
        not_full_, detail::channel_reserve_wait<channel>(*this, n), std::move(opts),
        detail::deadline_after(timeout));
  }

  // --- state -----------------------------------------------------------------------------------

  // Idempotent. Wakes every waiting sender (they answer `closed`) and receiver.
  void close() {
    if (capacity() == 0) {
      rendezvous_.close();
      return;
    }
    if (ring_.close()) {
      not_empty_.notify_all();
      not_full_.notify_all();
    }
  }

  [[nodiscard]] bool is_closed() const noexcept {
    return capacity() == 0 ? rendezvous_.is_closed() : ring_.is_closed();
  }

  // Items buffered now (best effort under concurrency), never more than capacity(); always 0 on
  // a rendezvous channel.
  [[nodiscard]] std::size_t size() const noexcept {
    if (capacity() == 0) return 0;
    if (reserved_.load(std::memory_order_relaxed) == 0) return ring_.size();
    const auto st = stats();  // with reservations: values only, not reserved slots or tombstones
    const std::uint64_t n = st.sent - std::min(st.sent, st.received + st.evicted);
    return n > capacity() ? capacity() : static_cast<std::size_t>(n);
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.capacity(); }
  [[nodiscard]] overflow policy() const noexcept { return policy_; }

  [[nodiscard]] channel_stats stats() const noexcept {
    channel_stats s;
    s.evicted = evicted_.load(std::memory_order_relaxed);
    if (capacity() == 0) {
      s.sent = s.received = rendezvous_.handed();
    } else {
      // Tickets are values pushed, or reserved; pops are receives, evictions or tombstones.
      const std::uint64_t reserved = reserved_.load(std::memory_order_relaxed);
      const std::uint64_t permit_sent = permit_sent_.load(std::memory_order_relaxed);
      s.received = ring_.popped() - s.evicted - ring_.skipped();
      // A reservation is counted just before its tickets are claimed: saturate, not wrap.
      const std::uint64_t tickets = ring_.pushed() + permit_sent;
      s.sent = tickets - std::min(tickets, reserved);
    }
    s.dropped = dropped_.load(std::memory_order_relaxed);
    s.rejected = rejected_.load(std::memory_order_relaxed);
    s.high_watermark = high_watermark_.load(std::memory_order_relaxed);
    s.send_waits = send_waits_.load(std::memory_order_relaxed);
    s.recv_waits = recv_waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    return s;
  }

  // How long the sends (and reservations) that waited for room waited, and the receives that
  // waited for a value. Only waits are recorded: an operation that completes at once reads no
  // clock. Counts equal stats().send_waits and recv_waits at rest.
  [[nodiscard]] const wait_histogram& send_wait_times() const noexcept { return send_wait_; }
  [[nodiscard]] const wait_histogram& recv_wait_times() const noexcept { return recv_wait_; }

  // --- range-for: `for (T v : ch)` receives until closed and drained ----------------------------

  using iterator = detail::recv_iterator<T, channel, detail::recv_verbs<channel<T>, T>::next>;

  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  static std::size_t validated_capacity(std::size_t capacity, overflow policy) {
    switch (policy) {
      case overflow::block:
      case overflow::drop_newest:
      case overflow::drop_oldest:
      case overflow::reject:
        break;
      default:
        throw std::invalid_argument("bp::channel: policy is not a bp::overflow value (" +
                                    std::to_string(static_cast<int>(policy)) + ")");
    }
    if (capacity == 0 && policy != overflow::block)
      throw std::invalid_argument(
          "bp::channel: capacity 0 (a rendezvous channel) requires policy overflow::block, got " +
          std::string(to_string(policy)));
    constexpr std::size_t max_capacity = std::size_t{1} << 40;
    if (capacity > max_capacity)
      throw std::invalid_argument("bp::channel: capacity " + std::to_string(capacity) +
                                  " exceeds the maximum of 2^40 slots");
    return capacity;
  }

  static constexpr int evict_grace_retries = 4;   // see send_evicting
  static constexpr int evict_stall_retries = 64;  // ditto: a few microseconds at most
  static constexpr int evict_stall_yields = 16;   // ditto: then a few time slices offered

  // A send refused for fullness (a lossy policy, or try_send) while a receiver this channel woke
  // has not run yet: that receiver is most likely waiting for a CPU, often this one (a busy
  // machine puts sender and receiver on one core). A sender that never waits would keep it off
  // for the rest of its time slice, and the buffer would turn over once per slice (measured in
  // docs/design.md, Performance limits). Yielding here lets the receiver in; it costs nothing
  // otherwise (one relaxed load of a line nobody writes while nobody waits).
  void yield_to_woken_receiver() noexcept {
    if (not_empty_.woken_not_running()) std::this_thread::yield();
  }

  void hand_to_drop_handler(T&& v) noexcept { on_undelivered_(std::move(v)); }

  // After a push of `count` values ending at ticket `last`: track the high watermark, wake as
  // many receivers as there are new values.
  void after_push(std::uint64_t last, std::size_t count = 1) noexcept {
    std::size_t seen = high_watermark_.load(std::memory_order_relaxed);
    if (seen < capacity() && reserved_.load(std::memory_order_relaxed) != 0) {
      update_high_watermark();  // tail - head would count reserved, unfilled slots as values
    } else if (seen < capacity()) {
      const std::size_t n = ring_.size_after_push_above(last, seen);
      while (n > seen &&
             !high_watermark_.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
      }
    }
    not_empty_.wake_if_waiting(count > INT_MAX ? INT_MAX : static_cast<int>(count));
  }

  // After `count` slots were freed (values popped, tombstones passed): wake as many senders.
  void after_pop(std::uint64_t count) noexcept {
    not_full_.wake_if_waiting(count > INT_MAX ? INT_MAX : static_cast<int>(count));
  }

  // Pops one value (a receive or an eviction), waking senders for every slot freed.
  std::optional<T> pop_one() noexcept {
    std::uint64_t passed = 0;
    auto v = ring_.try_pop(passed);
    if (v || passed) after_pop(passed + (v ? 1 : 0));
    return v;
  }

  // Takes up to `max` buffered values. A run of values ends at a slot that holds none: a
  // given-back reservation is passed and the next run taken; an unfilled one ends the batch.
  template <class Out>
  std::size_t pop_many(Out& sink, std::size_t max) noexcept {
    std::size_t total = 0;
    while (total < max) {
      std::uint64_t passed = 0;
      const std::size_t k = ring_.try_pop_n(sink, max - total, passed);
      if (k || passed) after_pop(k + passed);
      total += k;
      if (k == 0 || reserved_.load(std::memory_order_relaxed) == 0) break;
    }
    return total;
  }

  // One push attempt: ok or closed, or std::nullopt when the buffer is full.
  std::optional<status> push_once(T& value) noexcept {
    std::uint64_t ticket = 0;
    switch (ring_.try_push(value, ticket)) {
      case detail::push_result::ok:
        after_push(ticket);
        return status::ok;
      case detail::push_result::closed:
        return status::closed;
      case detail::push_result::full:
        break;
    }
    return std::nullopt;
  }

  status send_impl(T& value, bool may_wait, detail::clock::time_point deadline) {
    if (capacity() == 0) return send_rendezvous(value, may_wait, deadline);
    if (auto r = push_once(value)) return *r;
    if (pass_tombstones())
      if (auto r = push_once(value)) return *r;
    if (policy_ != overflow::block || !may_wait) yield_to_woken_receiver();
    switch (policy_) {
      case overflow::drop_newest:
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return status::dropped;
      case overflow::reject:
        rejected_.fetch_add(1, std::memory_order_relaxed);
        return status::full;
      case overflow::drop_oldest:
        return send_evicting(value);
      case overflow::block:
        break;
    }
    if (!may_wait) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return status::full;
    }
    return send_waiting(value, deadline);
  }

  status send_evicting(T& value) {
    // A short grace before evicting (4 retries, 16 CPU pauses, a few hundred ns): with a receiver
    // draining, a slot usually frees within it, so nothing is evicted needlessly and the sender
    // does not fight the receiver for the oldest slot on every send.
    for (int i = 0; i < evict_grace_retries; ++i) {
      for (int k = 0; k < detail::pauses_per_retry; ++k) detail::cpu_relax();
      if (auto r = push_once(value)) return *r;
    }
    for (int stalled = 0;;) {
      if (auto old = pop_one()) {
        evicted_.fetch_add(1, std::memory_order_relaxed);
        if (on_undelivered_) hand_to_drop_handler(std::move(*old));
      } else if (!pass_tombstones()) {
        // Nothing to evict. Either the oldest slot is reserved and holds no value yet (its
        // permit's value is promised delivery and the values behind it keep FIFO order, so
        // nothing may jump it), or another thread is half-way through a push or pop on it. The
        // first lasts as long as the permit's owner wants; the second as long as that thread is
        // descheduled. A send that never waits cannot wait for the first: the new value is
        // refused at once. For the second it spins briefly, then offers the CPU a few times (the
        // thread half-way through is most often waiting for this very core), and only then
        // refuses the new value.
        if (ring_.head_reserved() || ++stalled > evict_stall_retries + evict_stall_yields) {
          if (ring_.is_closed()) return status::closed;
          dropped_.fetch_add(1, std::memory_order_relaxed);
          return status::dropped;
        }
        if (stalled > evict_stall_retries)
          std::this_thread::yield();
        else
          detail::cpu_relax();
      }
      if (auto r = push_once(value)) return *r;  // else another sender took the freed slot
    }
  }

  status send_waiting(T& value, detail::clock::time_point deadline) {
    send_waits_.fetch_add(1, std::memory_order_relaxed);
    const detail::wait_timer timer(send_wait_);
    std::optional<status> answer;
    auto attempt = [&] { return static_cast<bool>(answer = push_once(value)); };
    // Room being freed right now (a pop half-way through, or given-back slots to pass) makes
    // no further notify: wait for it by yielding, not parking.
    auto settled = [&] { return ring_.settled_full() && !pass_tombstones(); };
    if (!detail::wait_loop(not_full_, deadline, attempt, attempt, settled)) {
      return detail::gave_up(timeouts_);
    }
    return *answer;
  }

  status send_rendezvous(T& value, bool may_wait, detail::clock::time_point deadline) {
    switch (rendezvous_.send(value, may_wait, deadline, send_waits_, send_wait_)) {
      case rendezvous_t::outcome::done:
        return status::ok;
      case rendezvous_t::outcome::closed:
        return status::closed;
      case rendezvous_t::outcome::timeout:
        return detail::gave_up(timeouts_);
      case rendezvous_t::outcome::empty:
        break;
    }
    rejected_.fetch_add(1, std::memory_order_relaxed);
    return status::full;
  }

  status recv_into(T& out, bool may_wait, detail::clock::time_point deadline) {
    if (auto v = recv_impl(may_wait, deadline)) {
      out = std::move(*v);
      return status::ok;
    }
    const bool ended = capacity() == 0 ? rendezvous_.is_closed() : ring_.closed_and_drained();
    if (ended) return status::closed;
    return may_wait ? detail::gave_up() : status::full;
  }

  std::optional<T> recv_impl(bool may_wait, detail::clock::time_point deadline) {
    if (capacity() == 0) return recv_rendezvous(may_wait, deadline);
    std::optional<T> v = pop_one();
    if (v || !may_wait || ring_.closed_and_drained()) return v;
    return recv_waiting(deadline);
  }

  // The blocking branches live in functions of their own, so that the path that completes at
  // once stays small enough to be inlined into every receive verb.
  std::optional<T> recv_rendezvous(bool may_wait, detail::clock::time_point deadline) {
    std::optional<T> out;
    if (rendezvous_.recv(out, may_wait, deadline, recv_waits_, recv_wait_) ==
        rendezvous_t::outcome::timeout)
      (void)detail::gave_up(timeouts_);  // counts a timeout, not a cancellation
    return out;
  }

  std::optional<T> recv_waiting(detail::clock::time_point deadline) {
    recv_waits_.fetch_add(1, std::memory_order_relaxed);
    const detail::wait_timer timer(recv_wait_);
    std::optional<T> v;
    // The spin only pops: looking for the end on each retry would pull the producers' line.
    auto probe = [&] { return (v = pop_one()).has_value(); };
    auto attempt = [&] { return probe() || ring_.closed_and_drained(); };
    auto settled = [&] { return ring_.settled_empty(); };  // else a push is publishing its value
    if (!detail::wait_loop(not_empty_, deadline, attempt, probe, settled))
      (void)detail::gave_up(timeouts_);  // counts a timeout, not a cancellation
    return v;
  }

  template <class R>
  send_n_result send_n_impl(R& values, bool may_wait, detail::clock::time_point deadline) {
    send_n_result r;
    auto it = std::ranges::begin(values);
    auto remaining = static_cast<std::size_t>(std::ranges::distance(values));
    while (remaining != 0) {
      if (!push_runs(it, remaining, r)) return r;
      if (remaining == 0) break;
      // Full (or a rendezvous): the single-value path applies the policy and waits if it must.
      r.answer = send_impl(*it, may_wait, deadline);
      if (r.answer != status::ok) return r;
      ++it;
      ++r.count;
      --remaining;
    }
    return r;
  }

  // Sends what fits of the `remaining` values from `it` at once: each run of free slots is
  // claimed with one atomic operation, and receivers are woken once per run. Stops at a full
  // channel (true) or a closed one (false, r.answer = closed). A capacity-0 channel has no runs.
  template <class It>
  bool push_runs(It& it, std::size_t& remaining, send_n_result& r) {
    while (remaining != 0 && capacity() != 0) {
      std::uint64_t ticket = 0;
      bool closed = false;
      const std::size_t k = ring_.try_push_n(it, remaining, ticket, closed);
      if (k == 0) {
        if (!closed) return true;
        r.answer = status::closed;
        return false;
      }
      after_push(ticket + k - 1, k);
      r.count += k;
      remaining -= k;
    }
    return true;
  }

  std::size_t recv_many_impl(std::vector<T>& out, std::size_t max, bool may_wait,
                             detail::clock::time_point deadline) {
    if (max == 0) return 0;
    // Reserve before taking anything: push_back below then cannot throw while slots are claimed.
    const std::size_t most = std::min(max, capacity() + 1);
    if (out.capacity() - out.size() < most) out.reserve(out.size() + most);
    auto sink = std::back_inserter(out);
    if (capacity() != 0) {
      if (const std::size_t k = pop_many(sink, max)) return k;
      if (!may_wait) return 0;
    }
    auto first = recv_impl(may_wait, deadline);  // waits for one value (or the end / timeout)
    if (!first) return 0;
    out.push_back(std::move(*first));
    if (capacity() == 0 || max == 1) return 1;
    return 1 + pop_many(sink, max - 1);
  }

  template <class Rep, class Period>
  std::size_t recv_batch_impl(std::vector<T>& out, std::size_t max,
                              std::chrono::duration<Rep, Period> linger,
                              detail::clock::time_point first_deadline) {
    std::size_t got = recv_many_impl(out, max, true, first_deadline);
    if (got == 0 || got >= max) return got;
    // The linger window opens when the first value is in hand, not when the call began: a
    // batch after an idle spell still gets its full window to fill.
    const auto until = detail::deadline_after(linger);
    while (got < max) {
      const std::size_t k = recv_many_impl(out, max - got, true, until);
      if (k == 0) break;  // the window closed, or the channel is closed and drained
      got += k;
    }
    return got;
  }

  friend class send_permit<T>;
  friend struct detail::send_permit_traits<channel>;
  friend class detail::send_verbs<channel<T>, T, status>;
  friend class detail::recv_verbs<channel<T>, T>;
  friend class sender<T>;
  friend struct detail::select_access;
  template <class>
  friend class detail::channel_send_op;
  template <class, bool>
  friend class detail::channel_recv_op;
  template <class>
  friend class detail::channel_recv_many_op;
  template <class>
  friend class detail::channel_reserve_wait;

  status send_value(T& value, bool may_wait, detail::clock::time_point deadline) {
    return send_impl(value, may_wait, deadline);
  }

  send_permit<T> reserve_impl(std::size_t n, bool may_wait, detail::clock::time_point deadline) {
    check_reserve(n);
    std::uint64_t ticket = 0;
    auto answer = reserve_once(n, ticket);
    if (!answer && may_wait) {
      send_waits_.fetch_add(1, std::memory_order_relaxed);
      const detail::wait_timer timer(send_wait_);
      auto done = [&] { return static_cast<bool>(answer = reserve_once(n, ticket)); };
      auto settled = [&] { return reserve_settled(n); };
      if (!detail::wait_loop(not_full_, deadline, done, done, settled)) {
        answer = detail::gave_up(timeouts_);
      }
    }
    return make_permit(n, ticket, answer.value_or(status::full));
  }

  void check_reserve(std::size_t n) const {
    if (n == 0 || n > capacity())
      throw std::invalid_argument(
          "bp::channel::reserve: n must be in [1, capacity()], got n = " + std::to_string(n) +
          " with capacity " + std::to_string(capacity()));
  }

  // One attempt to claim n slots: ok or closed, or std::nullopt (full). The slots are counted
  // as reserved before they are claimed, so no observer ever counts a reserved slot as a value
  // (size(), the high watermark). Slots given back at the head are free as soon as they are
  // passed: a zero timeout must not answer `full` for them.
  std::optional<status> reserve_once(std::size_t n, std::uint64_t& ticket) noexcept {
    auto claim = [&]() -> std::optional<status> {
      reserved_.fetch_add(n, std::memory_order_relaxed);
      switch (ring_.try_claim_n(n, ticket)) {
        case detail::push_result::ok:
          return status::ok;
        case detail::push_result::closed:
          reserved_.fetch_sub(n, std::memory_order_relaxed);
          return status::closed;
        case detail::push_result::full:
          break;
      }
      reserved_.fetch_sub(n, std::memory_order_relaxed);
      return std::nullopt;
    };
    if (auto a = claim()) return a;
    if (pass_tombstones()) return claim();
    return std::nullopt;
  }
  bool reserve_settled(std::size_t n) noexcept {
    return ring_.settled_full(n) && !pass_tombstones();
  }
  send_permit<T> make_permit(std::size_t n, std::uint64_t ticket, status a) noexcept {
    return send_permit<T>(a == status::ok ? this : nullptr, ticket, a == status::ok ? n : 0, a);
  }

  // A permit publishes with a plain store long after its ticket CAS, so it wakes with a fence;
  // receivers may be asleep on its reserved slot at the head, and values behind it, so all wake.
  void permit_publish(std::uint64_t ticket, T&& value) noexcept {
    ring_.publish(ticket, std::move(value));
    permit_sent_.fetch_add(1, std::memory_order_relaxed);
    if (high_watermark_.load(std::memory_order_relaxed) < capacity()) update_high_watermark();
    not_empty_.notify_all();
  }

  void permit_skip(std::uint64_t first, std::size_t count) noexcept {
    for (std::size_t i = 0; i < count; ++i) ring_.skip(first + i);
    pass_tombstones();
    not_empty_.notify_all();
  }

  // Given-back slots at the head are freed at once, not only when a receiver reaches them: a
  // sender facing a full channel passes them too (only channels that ever reserved pay this).
  bool pass_tombstones() noexcept {
    if (reserved_.load(std::memory_order_relaxed) == 0) return false;
    const std::uint64_t n = ring_.pass_tombstones();
    if (n) after_pop(n);
    return n != 0;
  }

  void update_high_watermark() noexcept {
    const std::size_t n = size();
    std::size_t seen = high_watermark_.load(std::memory_order_relaxed);
    while (n > seen && !high_watermark_.compare_exchange_weak(seen, n, std::memory_order_relaxed)) {
    }
  }

  using rendezvous_t = detail::rendezvous<T>;

  detail::ring<T> ring_;
  alignas(detail::cache_line) detail::event_count not_empty_;  // receivers wait here
  alignas(detail::cache_line) detail::event_count not_full_;   // block-policy senders wait here
  rendezvous_t rendezvous_;                                    // used only when capacity() == 0
  const overflow policy_;
  drop_handler on_undelivered_;

  // Rarely written counters share one line, away from the ring's indices.
  alignas(detail::cache_line) std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> evicted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> send_waits_{0};
  std::atomic<std::size_t> high_watermark_{0};
  std::atomic<std::uint64_t> reserved_{0};     // tickets claimed by reservations
  std::atomic<std::uint64_t> permit_sent_{0};  // values published through reservations
  // Written only by operations that waited.
  alignas(detail::cache_line) std::atomic<std::uint64_t> recv_waits_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  wait_histogram send_wait_;
  wait_histogram recv_wait_;
};

}  // namespace bp

// The ends (sender, receiver, make_channel) come with the channel.
#include "channel_ends.hpp"  // IWYU pragma: export

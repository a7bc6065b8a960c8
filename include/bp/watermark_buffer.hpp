// bp/watermark_buffer.hpp: Node.js writable-stream semantics (highWaterMark and 'drain').
//
//   bp::watermark_buffer<T>          a FIFO bounded by advice, not by force: write() buffers the
//                                    item and answers whether the producer should keep writing
//                                    (false once buffered bytes reach the high watermark); a
//                                    `drain` callback fires when they fall back to the low one.
//                                    It can draw every item's bytes from a bp::memory_budget,
//                                    which is what bounds the sum over many buffers.
//   bp::watermark_buffer_options<T>  watermarks, size function, drain callback, budget.
//   bp::watermark_buffer_stats       counters: writes, reads, peak bytes, drains, ...
//   bp::write_result                 the answer to a write: status + keep_writing.
//
// Example (compiled twin: examples/memory_budget_basics.cpp; examples/memory_budget.cpp runs 500
// of these under one budget):
//
//   bp::memory_budget budget(64 << 20);
//   bp::watermark_buffer<std::string> out({.high_watermark = 1 << 20,
//                                          .on_drain = [&] { resume_reading(conn); },
//                                          .budget = &budget});
//   if (!out.write(std::move(chunk))) pause_reading(conn);  // like `if (!ws.write(c))` in Node
//   while (auto c = out.try_read()) socket.send(*c);        // the consumer side
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/async_op.hpp"
#include "detail/deadline.hpp"
#include "detail/event_count.hpp"
#include "detail/growable_ring.hpp"
#include "detail/stop.hpp"
#include "detail/wait.hpp"
#include "detail/wait_timer.hpp"
#include "memory_budget.hpp"
#include "status.hpp"
#include "wait_histogram.hpp"

namespace bp {

// The answer to a write. `if (buf.write(x))` reads as Node's `if (ws.write(x))`: true when the
// item was buffered and the producer may go on.
struct write_result {
  // ok: the item is buffered. full (try_write: the budget has no room right now), timeout,
  // closed: the item was not buffered and stays with the caller.
  bp::status status = bp::status::ok;
  // Node's return value: false once the buffered bytes (this item included) reached the high
  // watermark, or when the item was not buffered. After a false answer on a buffered item, the
  // drain callback fires once the buffered bytes fall to the low watermark.
  bool keep_writing = true;

  explicit operator bool() const noexcept { return status == bp::status::ok && keep_writing; }
};

template <class T>
struct watermark_buffer_options {
  // write() answers keep_writing == false once buffered bytes reach this (Node's
  // highWaterMark, whose default for byte streams is 16 KiB). Must be at least 1.
  std::size_t high_watermark = 16 * 1024;
  // The drain callback fires when buffered bytes fall to this after a false answer (scaled
  // down with the high watermark in effect when a budget lowered it). Node
  // drains at 0 (its default here); a higher mark resumes the producer before the consumer
  // starves. Must not exceed high_watermark.
  std::size_t low_watermark = 0;
  // The bytes an item counts for, taken once when it is written.
  std::function<std::size_t(const T&)> size = default_item_size{};
  // Fires once per crossing, on the thread whose read brought the bytes down, outside any lock:
  // it may write to this buffer (Node's producers resume in their 'drain' handler) but must not
  // destroy it. With a budget, write from it with try_write or write_for: a write() waiting for
  // budget bytes there would stall the reader that is meant to give them back. It must not throw
  // (std::terminate if it does).
  std::function<void()> on_drain{};
  // When set, each item's bytes are reserved from this budget (on a stream of its own opened
  // by the buffer) before the item is buffered, and given back when it is read. The budget must
  // outlive the buffer.
  memory_budget* budget = nullptr;
};

// Counters of one buffer, exact once every thread using it is done.
struct watermark_buffer_stats {
  std::uint64_t writes = 0;        // items buffered
  std::uint64_t reads = 0;         // items read
  std::uint64_t over_high = 0;     // writes that answered keep_writing == false
  std::uint64_t drains = 0;        // times the drain callback fired (or would have)
  std::uint64_t refused = 0;       // writes not buffered: full, timeout or closed
  std::size_t buffered_bytes = 0;  // bytes buffered now
  std::size_t peak_bytes = 0;      // largest buffered_bytes seen
  std::uint64_t read_waits = 0;    // reads that had to wait for an item
  std::uint64_t drain_waits = 0;   // wait_drain calls that had to wait for the low mark
  std::uint64_t timeouts = 0;      // of those waits, the ones that answered `timeout`
};

template <class T>
concept watermark_element = std::is_object_v<T> && std::is_nothrow_move_constructible_v<T> &&
    std::is_nothrow_destructible_v<T>;

// A FIFO of items whose high watermark is advice to the producer, with Node.js writable
// semantics: write() always buffers (the high watermark is not a hard limit: the producer is
// expected to pause on `false`, exactly as in Node), answers false once the buffered bytes
// reach the high watermark, and the drain callback fires once per such crossing when reads
// bring the bytes down to the low watermark. The reading side is pull-based: read / try_read /
// read_for / read_until.
//
// With a budget, the hard limit is the budget: each item's bytes are reserved before it is
// buffered, so write() waits while the budget is spent (Kafka's max.block.ms: write_for answers
// timeout, try_write answers full), and the budget's fairness rule shares it between buffers.
// The advice adapts too (a global budget that adjusts the per-stream thresholds): the high
// watermark in effect is max(1, min(high_watermark, fair_share / 4 * 3)) (a quarter of the share
// kept back for items in flight), and the drain of a crossing below high_watermark fires once
// the buffer is empty. 500 buffers of 1 MiB under a 64 MiB budget therefore each ask their producer
// to pause at ~96 KiB while all are busy, and producers rarely have to block in the budget at all.
// Without a budget no write ever waits.
//
// When to use: a producer that can pause (a socket reader, a file reader, a generator) feeding
// a consumer of unknown speed, especially many such pairs under one memory budget. When not to
// use: when the producer cannot pause and must be blocked or refused per item, use
// bp::channel (a hard capacity) or bp::budgeted_channel (a hard byte budget).
//
// Thread safety: every member may be called concurrently from any number of threads, except
// the destructor. Observers are best effort.
//
// Memory ordering: a write that buffers an item happens-before the read that returns it (one
// mutex). A read that brings bytes to the low watermark happens-before its drain callback and
// the return of wait_drain* calls it releases.
//
// Blocking: readers waiting for items, producers in wait_drain*, and (with a budget) writers
// waiting for bytes park (a condition variable; the budget's event count) and burn no CPU.
// Storage is a ring that grows to the largest backlog seen and never allocates after that.
//
// Errors: high_watermark 0, low_watermark > high_watermark, an empty size function throw
// std::invalid_argument naming the argument; so does writing an item whose size exceeds the
// budget's capacity (`item`). A size function that throws propagates out of write (nothing
// buffered); growing the ring may throw std::bad_alloc (nothing buffered, item still ours).
//
// Cancellation: close() (Node's end()) is idempotent: writes answer closed, waiting writers
// (for budget bytes), readers and wait_drain callers wake; readers get what is buffered, then
// std::nullopt.
//
// Example:
//   bp::watermark_buffer<std::string> buf({.high_watermark = 64 << 10, .low_watermark = 16 << 10});
//   std::thread producer([&] {
//     for (auto& chunk : chunks)
//       if (!buf.write(std::move(chunk))) (void)buf.wait_drain_for(1s);
//     buf.close();
//   });
//   while (auto c = buf.read()) consume(*c);
template <watermark_element T>
class watermark_buffer {
 public:
  using value_type = T;

  explicit watermark_buffer(watermark_buffer_options<T> options)
      : high_(options.high_watermark),
        low_(options.low_watermark),
        size_(std::move(options.size)),
        on_drain_(std::move(options.on_drain)) {
    if (high_ == 0)
      throw std::invalid_argument("bp::watermark_buffer: high_watermark must be at least 1 byte");
    if (low_ > high_)
      throw std::invalid_argument("bp::watermark_buffer: low_watermark " + std::to_string(low_) +
                                  " exceeds high_watermark " + std::to_string(high_));
    if (!size_) throw std::invalid_argument("bp::watermark_buffer: size function is empty");
    if (options.budget) stream_ = options.budget->open_stream();
  }

  watermark_buffer(const watermark_buffer&) = delete;
  watermark_buffer& operator=(const watermark_buffer&) = delete;

  // --- writing ---------------------------------------------------------------------------------

  // Buffers the item. With a budget, waits for its bytes first (until they fit or close).
  [[nodiscard]] write_result write(T&& item) { return write_impl(item, true, detail::forever()); }
  [[nodiscard]] write_result write(const T& item) requires std::copy_constructible<T> {
    T copy(item);
    return write(std::move(copy));
  }

  // Never waits: with a budget that has no room right now, answers full.
  [[nodiscard]] write_result try_write(T&& item) {
    return write_impl(item, false, detail::forever());
  }

  template <class Rep, class Period>
  [[nodiscard]] write_result write_for(T&& item, std::chrono::duration<Rep, Period> timeout) {
    return write_impl(item, true, detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] write_result write_until(T&& item,
                                         std::chrono::time_point<Clock, Duration> deadline) {
    return write_impl(item, true, detail::to_steady(deadline));
  }

  // Waits until a pending drain has fired (at once when none is pending): ok, timeout, closed.
  [[nodiscard]] status wait_drain() { return wait_drain_impl(detail::forever()); }
  template <class Rep, class Period>
  [[nodiscard]] status wait_drain_for(std::chrono::duration<Rep, Period> timeout) {
    return wait_drain_impl(detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] status wait_drain_until(std::chrono::time_point<Clock, Duration> deadline) {
    return wait_drain_impl(detail::to_steady(deadline));
  }
  // co_await buf.async_wait_drain([opts]): ok | closed | cancelled, as wait_drain (a writer
  // coroutine suspended until the buffer drains, Node's 'drain' event). Await at once.
  [[nodiscard]] auto async_wait_drain(async_options opts = {}) {
    return detail::attempt_awaiter<drain_wait>(drained_, drain_wait{this}, std::move(opts));
  }

  // Cancellable: `cancelled` once `stop` is stopped first.
  [[nodiscard]] status wait_drain(const std::stop_token& stop) {
    return detail::with_stop(stop, [&] { return wait_drain_impl(detail::forever()); });
  }
  template <class Rep, class Period>
  [[nodiscard]] status wait_drain_for(std::chrono::duration<Rep, Period> timeout,
                                      const std::stop_token& stop) {
    const auto deadline = detail::deadline_after(timeout);
    return detail::with_stop(stop, [&] { return wait_drain_impl(deadline); });
  }

  // --- reading ---------------------------------------------------------------------------------

  // Waits while empty; std::nullopt once closed and drained.
  [[nodiscard]] std::optional<T> read() { return read_impl(true, detail::forever()); }
  // std::nullopt when nothing is buffered right now.
  [[nodiscard]] std::optional<T> try_read() { return read_impl(false, detail::forever()); }
  // std::nullopt when closed and drained, or when the timeout passes first.
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> read_for(std::chrono::duration<Rep, Period> timeout) {
    return read_impl(true, detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<T> read_until(std::chrono::time_point<Clock, Duration> deadline) {
    return read_impl(true, detail::to_steady(deadline));
  }

  // --- state -----------------------------------------------------------------------------------

  // Node's end(): idempotent; later writes answer closed, every waiter wakes, readers drain.
  void close() {
    {
      std::lock_guard lock(m_);
      if (closed_) return;
      closed_ = true;
    }
    stream_.close();  // writers waiting for budget bytes answer closed
    readable_.notify_all();
    drained_.notify_all();
  }
  [[nodiscard]] bool is_closed() const {
    std::lock_guard lock(m_);
    return closed_;
  }

  // Bytes buffered now (Node's writableLength).
  [[nodiscard]] std::size_t buffered_bytes() const {
    std::lock_guard lock(m_);
    return bytes_;
  }
  // Items buffered now.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(m_);
    return ring_.size();
  }
  // A write answered false and the drain has not fired yet (Node's writableNeedDrain).
  [[nodiscard]] bool need_drain() const {
    std::lock_guard lock(m_);
    return need_drain_;
  }
  [[nodiscard]] std::size_t high_watermark() const noexcept { return high_; }
  // high_watermark(), or less while the budget's fair share is smaller (best effort).
  [[nodiscard]] std::size_t high_watermark_in_effect() const noexcept {
    if (!stream_) return high_;
    return std::max<std::size_t>(1, std::min(high_, stream_.fair_share() / 4 * 3));
  }
  [[nodiscard]] std::size_t low_watermark() const noexcept { return low_; }
  // The budget stream this buffer draws from (empty without a budget).
  [[nodiscard]] const memory_budget::stream& budget_stream() const noexcept { return stream_; }

  [[nodiscard]] watermark_buffer_stats stats() const {
    std::lock_guard lock(m_);
    watermark_buffer_stats s = stats_;
    s.buffered_bytes = bytes_;
    s.read_waits = read_waits_.load(std::memory_order_relaxed);
    s.drain_waits = drain_waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    return s;
  }

  // How long the reads that waited for an item, and the wait_drain calls that waited for the
  // low mark, waited (only waits are recorded). A writer's wait is the memory budget's: see
  // memory_budget::wait_times().
  [[nodiscard]] const wait_histogram& read_wait_times() const noexcept { return read_wait_; }
  [[nodiscard]] const wait_histogram& drain_wait_times() const noexcept { return drain_wait_; }

 private:
  struct entry {
    T value;
    std::size_t bytes;
    memory_permit reserved;
  };

  write_result refuse(status why) {
    std::lock_guard lock(m_);
    ++stats_.refused;
    return {why, false};
  }

  write_result write_impl(T& item, bool may_wait, detail::clock::time_point deadline) {
    if (is_closed()) return refuse(status::closed);
    const std::size_t n = size_(item);
    memory_permit reserved;
    if (stream_) {
      if (n > stream_.budget()->capacity())
        throw std::invalid_argument("bp::watermark_buffer: item of " + std::to_string(n) +
                                    " bytes exceeds the memory budget's capacity of " +
                                    std::to_string(stream_.budget()->capacity()));
      reserved = !may_wait                       ? stream_.try_reserve(n)
                 : deadline == detail::forever() ? stream_.reserve(n)
                                                 : stream_.reserve_until(n, deadline);
      if (!reserved) return refuse(reserved.status());
    }
    bool keep;
    {
      std::lock_guard lock(m_);
      if (closed_) {
        ++stats_.refused;
        return {status::closed, false};
      }
      ring_.reserve_one();  // may throw bad_alloc: nothing moved yet
      ring_.push(entry{std::move(item), n, std::move(reserved)});
      bytes_ += n;
      ++stats_.writes;
      if (bytes_ > stats_.peak_bytes) stats_.peak_bytes = bytes_;
      const std::size_t limit = high_watermark_in_effect();
      keep = bytes_ < limit;
      if (!keep) {
        need_drain_ = true;
        // Below the configured mark (a budget's share) the drain fires once the buffer is
        // empty, Node's own drain: each pause then moves a whole window of the share, so 500
        // streams under one budget pause and resume about half as often as with a drain mark
        // scaled down from low_watermark (docs/memory.md has the measurements).
        drain_at_ = limit == high_ ? low_ : 0;
        ++stats_.over_high;
      }
    }
    readable_.notify_one();  // one load when nobody waits
    return {status::ok, keep};
  }

  // Waits in the library's wait loop without its spin: the buffer is guarded by a mutex, and
  // retrying would fight the writer for it.
  std::optional<T> read_impl(bool may_wait, detail::clock::time_point deadline) {
    std::optional<T> out;
    auto attempt = [&] { return try_read(out); };
    if (attempt() || !may_wait) return out;
    read_waits_.fetch_add(1, std::memory_order_relaxed);
    const detail::wait_timer timer(read_wait_);
    if (!detail::wait_loop(readable_, deadline, attempt, detail::no_spin, detail::always_settled{}))
      (void)detail::gave_up(timeouts_);  // counts a timeout, not a cancellation
    return out;
  }

  // One read: true with a value in `out`, or true at the end (closed and empty); false when
  // nothing is buffered yet.
  bool try_read(std::optional<T>& out) {
    std::unique_lock lock(m_);
    if (ring_.empty()) return closed_;
    entry e = ring_.pop();
    bytes_ -= e.bytes;
    ++stats_.reads;
    const bool fire = need_drain_ && bytes_ <= drain_at_;
    if (fire) {
      need_drain_ = false;
      ++stats_.drains;
    }
    lock.unlock();
    e.reserved.release();  // the budget gets its bytes back before anyone resumes writing
    if (fire) drained_.notify_all();
    if (fire && on_drain_) run_drain_handler();
    out.emplace(std::move(e.value));
    return true;
  }

  void run_drain_handler() const noexcept { on_drain_(); }

  // The state of one awaited drain (detail::attempt_awaiter).
  struct drain_wait {
    watermark_buffer* buf;
    status answer = status::ok;

    bool attempt() {
      std::lock_guard lock(buf->m_);
      if (!buf->need_drain_) return true;
      if (buf->closed_) answer = status::closed;
      return buf->closed_;
    }
    status result(bool cancelled) const { return cancelled ? status::cancelled : answer; }
  };

  status wait_drain_impl(detail::clock::time_point deadline) {
    status answer = status::ok;
    auto attempt = [&] {
      std::lock_guard lock(m_);
      if (!need_drain_) return true;
      if (closed_) answer = status::closed;
      return closed_;
    };
    if (attempt()) return answer;
    drain_waits_.fetch_add(1, std::memory_order_relaxed);
    const detail::wait_timer timer(drain_wait_);
    if (!detail::wait_loop(drained_, deadline, attempt, detail::no_spin,
                           detail::always_settled{})) {
      return detail::gave_up(timeouts_);
    }
    return answer;
  }

  const std::size_t high_;
  const std::size_t low_;
  const std::function<std::size_t(const T&)> size_;
  const std::function<void()> on_drain_;
  memory_budget::stream stream_;  // declared before ring_: items die first, then the stream

  mutable std::mutex m_;
  alignas(detail::cache_line) detail::event_count readable_;  // notified by writes and close()
  alignas(detail::cache_line)
      detail::event_count drained_;  // notified when the buffer drains to the low mark, and close()
  detail::growable_ring<entry> ring_;
  std::size_t bytes_ = 0;
  bool need_drain_ = false;
  std::size_t drain_at_ = 0;  // the low mark of the current crossing
  bool closed_ = false;
  watermark_buffer_stats stats_;
  std::atomic<std::uint64_t> read_waits_{0};  // written only by reads and drains that wait
  std::atomic<std::uint64_t> drain_waits_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  wait_histogram read_wait_;
  wait_histogram drain_wait_;
};

}  // namespace bp

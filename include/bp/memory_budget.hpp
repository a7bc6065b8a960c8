// bp/memory_budget.hpp: one byte budget shared by many streams, so that many buffers that are
// each small (500 streams x a 1 MB high watermark) cannot add up to too much (500 MB).
//
//   bp::memory_budget               a global budget of bytes (Kafka's `buffer.memory`): a
//                                   reservation that does not fit waits up to a timeout
//                                   (`max.block.ms`), then answers bp::status::timeout.
//   bp::memory_budget::stream       one registered user of the budget (a connection, a channel, a
//                                   writer). The budget shares its bytes fairly between the
//                                   streams that are active right now.
//   bp::memory_permit               move-only RAII grant of bytes (a bp::grant; also spelled
//                                   memory_budget::permit, or ::reservation, its former
//                                   name); gives them back when destroyed, can be released in
//                                   part or split.
//   bp::memory_budget_stats         counters: in use, peak, waits, timeouts, ...
//   bp::item_size<T>, bp::default_item_size
//                                   what an item costs when no size function is given: size() *
//                                   sizeof(element) for contiguous ranges, sizeof(T) for trivially
//                                   copyable types; specialize item_size for a type with heap
//                                   data (any other type warns at compile time).
//
// Example (compiled twin: examples/memory_budget_basics.cpp; examples/memory_budget.cpp runs the
// full scenario: 500 streams x 1 MiB high watermark under 64 MiB):
//
//   bp::memory_budget budget(64 << 20);                  // 64 MiB for the whole process
//   auto conn = budget.open_stream();                    // one per connection
//   auto bytes = conn.reserve_for(chunk.size(), 100ms);  // waits while the budget is spent
//   if (!bytes) return bytes.status();                   // timeout or closed: chunk not buffered
//   queue.push({std::move(chunk), std::move(bytes)});    // bytes come back when the entry dies
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <ranges>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <type_traits>
#include <utility>

#include "detail/async_op.hpp"
#include "detail/config.hpp"
#include "detail/deadline.hpp"
#include "detail/event_count.hpp"
#include "detail/stop.hpp"
#include "detail/wait.hpp"
#include "detail/wait_timer.hpp"
#include "grant.hpp"
#include "status.hpp"
#include "wait_histogram.hpp"

namespace bp {

// Counters of one budget. Each is exact once every thread using the budget is done; while
// operations are in flight a snapshot may be momentarily inconsistent between fields.
struct memory_budget_stats {
  std::size_t capacity = 0;        // the budget, in bytes
  std::size_t in_use = 0;          // bytes held by live reservations; never above capacity
  std::size_t peak = 0;            // largest in_use seen
  std::size_t streams = 0;         // open stream handles
  std::size_t active_streams = 0;  // streams holding bytes or waiting for them (plus the default)
  std::uint64_t granted = 0;       // reservations granted (of a non-zero size)
  std::uint64_t waits = 0;         // reservations that had to wait
  std::uint64_t timeouts = 0;      // waits that answered `timeout`
  std::uint64_t refused = 0;       // try_reserve answers `full`
  // Reservations that waited and how long: memory_budget::wait_times().
};

// The bytes an item counts for when no size function is given: a contiguous range (std::string,
// std::vector<std::byte>, ...) counts its elements' bytes, anything else sizeof(T).
namespace detail {
template <class T>
[[deprecated(
    "bp: this item type is not trivially copyable and not a contiguous range, so it may own heap "
    "data a memory budget cannot see, and only sizeof(T) is counted: pass a size function "
    "(.size) or specialize bp::item_size<T>")]] constexpr std::size_t
sizeof_without_heap_data() noexcept {
  return sizeof(T);
}
}  // namespace detail

// What one item costs a memory budget when no size function is given. Specialize it for a
// type that owns heap data (a struct holding a string or a vector):
//   template <> struct bp::item_size<Msg> {
//     std::size_t operator()(const Msg& m) const noexcept { return sizeof m + m.body.size(); }
//   };
// The primary template counts a contiguous range's elements (a string, a vector: size() *
// sizeof(element)) and a trivially copyable type's sizeof(T). Any other type could own heap
// data the budget would not see: it is counted as sizeof(T) with a deprecation warning at
// compile time saying so, never silently.
template <class T>
struct item_size {
  [[nodiscard]] std::size_t operator()(const T& item) const noexcept {
    if constexpr (std::ranges::contiguous_range<const T&> && std::ranges::sized_range<const T&>) {
      return std::ranges::size(item) * sizeof(std::ranges::range_value_t<const T&>);
    } else if constexpr (std::is_trivially_copyable_v<T>) {
      return sizeof(T);
    } else {
      return detail::sizeof_without_heap_data<T>();
    }
  }
};

// The default size function of the budgeted buffers: bp::item_size<T>.
struct default_item_size {
  template <class T>
  [[nodiscard]] std::size_t operator()(const T& item) const noexcept {
    return item_size<T>{}(item);
  }
};

namespace detail {

// The shared state of one stream. Its word packs what decides whether the stream is active, so
// that a single atomic RMW both changes it and tells whether the stream became (in)active:
//   bits 0..47   bytes held by the stream's reservations
//   bits 48..62  threads waiting for bytes on this stream
//   bit  63      the stream handle is gone; the last reservation to give its bytes back frees it
// The state lives on the heap so that stream handles can move while reservations point at it.
struct budget_stream_state {
  static constexpr std::uint64_t bytes_mask = (std::uint64_t{1} << 48) - 1;
  static constexpr std::uint64_t waiter_one = std::uint64_t{1} << 48;
  static constexpr std::uint64_t detached = std::uint64_t{1} << 63;
  static constexpr std::uint64_t live_mask = ~detached;

  std::atomic<std::uint64_t> word{0};
  std::atomic<bool> closed{false};

  [[nodiscard]] std::size_t held() const noexcept {
    return static_cast<std::size_t>(word.load(std::memory_order_seq_cst) & bytes_mask);
  }
};

}  // namespace detail

// A byte budget shared by many streams (Kafka's producer `buffer.memory` + `max.block.ms`).
//
// Bytes are granted as reservations: `try_reserve` never waits (ok | full | closed), `reserve`
// waits until the bytes fit (ok | closed), `reserve_for`/`reserve_until` wait at most that long
// (ok | timeout | closed). A reservation gives its bytes back when destroyed (or released), and
// that wakes the waiters. The sum of live reservations never exceeds capacity().
//
// Fairness. Streams register with open_stream(); a stream is *active* while it holds bytes or
// waits for them, and its fair share is capacity() / (number of active streams), so the share
// grows and shrinks as streams come and go. A stream may hold more than its share only while no
// one else needs the bytes: as soon as a waiting stream holds less than its share, no other
// stream is granted bytes beyond its own share until that waiter is served. One hot stream can
// therefore use the whole budget when it is alone, and is pushed back to its share as its bytes
// drain once others arrive; it can never starve them. Among several waiting streams under their
// share the order is not strictly FIFO: each is served once enough bytes come back.
// The budget's own try_reserve/reserve_* use a built-in default stream.
//
// When to use: many buffers (connections, channels, writers) whose per-buffer limits add up to
// more memory than the process may use: each keeps its own limit (a watermark, a capacity) and
// the budget bounds their sum. When not to use: one buffer alone (its own bound suffices); a
// limit on work in flight rather than bytes (see bp::channel's capacity).
//
// Thread safety: every member of memory_budget, stream and reservation may be called from any
// thread; one stream handle may be used by many threads at once (not moved or destroyed while
// in use); one reservation object is not to be used by two threads at once. Observers (in_use,
// peak, fair_share, stats, ...) are best effort: stale the moment they return.
//
// Memory ordering: giving bytes back happens-before the grant that reuses them (both are
// seq_cst RMWs on the in-use counter). close() happens-before every answer `closed` it causes.
// Every change a waiter may be waiting for (bytes back, a needy waiter leaving, a stream going
// idle, close) is a seq_cst RMW or store followed by the event count's waiter check, and a
// waiter re-checks with seq_cst loads after registering: no wake-up can be lost.
//
// Blocking: a reservation that does not fit retries briefly (a few microseconds at most: bytes
// often come back that fast), then parks on a futex (bp::detail::event_count) and burns no CPU
// until bytes come back, the deadline passes, or close() is called. Bytes coming back wake every
// parked waiter (any of them may fit now): cheap for the tens of waiting threads this is meant
// for, a thundering herd for thousands. Nothing is allocated per reservation: a grant is one
// compare-exchange on the in-use counter and one fetch-add on the stream; a stream's state is
// allocated once by open_stream().
//
// Errors: a capacity of 0 or above 2^47 throws std::invalid_argument naming `capacity`; asking
// for more bytes than the whole budget throws std::invalid_argument naming `bytes` (it could
// never be granted), and so do reservation::release(n) / split(n) beyond the bytes held.
// open_stream() may throw std::bad_alloc. Nothing else throws.
//
// Cancellation: close() is idempotent; every waiting reservation answers `closed` and later
// ones too. Reservations already granted stay valid and still give their bytes back.
// stream::close() does the same for one stream only.
//
// Lifetime: the budget must outlive its streams and reservations. A reservation may outlive the
// stream that made it (an item still buffered after its writer is gone).
//
// Example:
//   bp::memory_budget budget(64 << 20);
//   auto s = budget.open_stream();
//   if (auto r = s.reserve_for(4096, 50ms)) {
//     buffer.push(std::move(chunk), std::move(r));   // r.bytes() == 4096 until the item dies
//   } else if (r.status() == bp::status::timeout) {
//     ++slow_downs;                                  // chunk is still ours: shed or retry
//   }
class memory_budget;
class memory_permit;

namespace detail {
struct memory_permit_traits {
  struct held {
    memory_budget* budget = nullptr;
    budget_stream_state* state = nullptr;
    std::size_t bytes = 0;
  };
  static bool holds(const held& h) noexcept { return h.bytes != 0; }
  static inline void give_back(held& h) noexcept;
};
}  // namespace detail

class memory_budget {
  using state = detail::budget_stream_state;
  friend class memory_permit;
  friend struct detail::memory_permit_traits;

 public:
  using permit = memory_permit;
  using reservation = memory_permit;  // the former name, kept for source compatibility
  class stream;

  static constexpr std::size_t max_capacity = std::size_t{1} << 47;

  explicit memory_budget(std::size_t capacity) : capacity_(validated_capacity(capacity)) {}
  memory_budget(const memory_budget&) = delete;
  memory_budget& operator=(const memory_budget&) = delete;

  // Registers a new stream (allocates its small shared state once).
  [[nodiscard]] stream open_stream();

  // The same verbs as stream's, on the budget's default stream.
  [[nodiscard]] reservation try_reserve(std::size_t bytes);
  [[nodiscard]] reservation reserve(std::size_t bytes);
  template <class Rep, class Period>
  [[nodiscard]] reservation reserve_for(std::size_t bytes,
                                        std::chrono::duration<Rep, Period> timeout);
  template <class Clock, class Duration>
  [[nodiscard]] reservation reserve_until(std::size_t bytes,
                                          std::chrono::time_point<Clock, Duration> deadline);
  [[nodiscard]] reservation reserve(std::size_t bytes, const std::stop_token& stop);
  template <class Rep, class Period>
  [[nodiscard]] reservation reserve_for(std::size_t bytes,
                                        std::chrono::duration<Rep, Period> timeout,
                                        const std::stop_token& stop);

  class reserve_awaiter;
  [[nodiscard]] reserve_awaiter async_reserve(std::size_t bytes, async_options opts = {});
  template <class Rep, class Period>
  [[nodiscard]] reserve_awaiter async_reserve_for(std::size_t bytes,
                                                  std::chrono::duration<Rep, Period> timeout,
                                                  async_options opts = {});

  // Idempotent. Every waiting reservation answers `closed`, and so do later ones.
  void close() noexcept {
    closed_.store(true, std::memory_order_seq_cst);
    room_.notify_all();
  }
  [[nodiscard]] bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire); }

  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  // Bytes held by live reservations (best effort), never above capacity().
  [[nodiscard]] std::size_t in_use() const noexcept {
    return in_use_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t available() const noexcept { return capacity_ - in_use(); }
  [[nodiscard]] std::size_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
  // Streams holding bytes or waiting for them right now (best effort), at least 1.
  [[nodiscard]] std::size_t active_streams() const noexcept {
    return static_cast<std::size_t>(
        std::max<std::int64_t>(1, active_.load(std::memory_order_seq_cst)));
  }
  // capacity() / active_streams(): what each active stream is entitled to right now.
  [[nodiscard]] std::size_t fair_share() const noexcept { return capacity_ / active_streams(); }

  [[nodiscard]] memory_budget_stats stats() const noexcept {
    memory_budget_stats s;
    s.capacity = capacity_;
    s.in_use = in_use();
    s.peak = peak();
    s.streams = streams_.load(std::memory_order_relaxed);
    s.active_streams = static_cast<std::size_t>(
        std::max<std::int64_t>(0, active_.load(std::memory_order_relaxed)));
    s.granted = granted_.load(std::memory_order_relaxed);
    s.waits = waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.refused = refused_.load(std::memory_order_relaxed);
    return s;
  }
  // How long the reservations that had to wait waited (only those are recorded); its count
  // equals stats().waits at rest.
  [[nodiscard]] const wait_histogram& wait_times() const noexcept { return wait_; }

 private:
  static std::size_t validated_capacity(std::size_t capacity) {
    if (capacity == 0)
      throw std::invalid_argument("bp::memory_budget: capacity must be at least 1 byte");
    if (capacity > max_capacity)
      throw std::invalid_argument("bp::memory_budget: capacity " + std::to_string(capacity) +
                                  " exceeds the maximum of 2^47 bytes");
    return capacity;
  }

  // Adds to a stream's word; the stream becomes active if it held nothing and had no waiter.
  void stream_add(state& s, std::uint64_t delta) noexcept {
    const std::uint64_t old = s.word.fetch_add(delta, std::memory_order_seq_cst);
    if ((old & state::live_mask) == 0) active_.fetch_add(1, std::memory_order_seq_cst);
  }

  // Subtracts from a stream's word; frees the state when that was the last use of a detached one.
  void stream_sub(state& s, std::uint64_t delta) noexcept {
    const std::uint64_t now = s.word.fetch_sub(delta, std::memory_order_seq_cst) - delta;
    if ((now & state::live_mask) != 0) return;
    active_.fetch_sub(1, std::memory_order_seq_cst);
    if (now == state::detached) delete &s;
  }

  void note_peak(std::size_t now) noexcept {
    std::size_t seen = peak_.load(std::memory_order_relaxed);
    while (now > seen && !peak_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
  }

  // One attempt to take `bytes`. Unless `privileged` (a waiter under its fair share), a stream
  // may not go beyond its share while such a waiter exists.
  bool try_take(state& s, std::size_t bytes, bool privileged) noexcept {
    if (!privileged && needy_.load(std::memory_order_seq_cst) != 0 &&
        s.held() + bytes > fair_share())
      return false;
    std::size_t cur = in_use_.load(std::memory_order_seq_cst);
    do {
      if (bytes > capacity_ - cur) return false;
    } while (!in_use_.compare_exchange_weak(cur, cur + bytes, std::memory_order_seq_cst,
                                            std::memory_order_seq_cst));
    stream_add(s, bytes);
    granted_.fetch_add(1, std::memory_order_relaxed);
    note_peak(cur + bytes);
    return true;
  }

  void give_back(state& s, std::size_t bytes) noexcept {
    // A seq_cst RMW publishes, then the waiter check (a seq_cst load): the event count's Dekker
    // pair without its fence, which this hot path does not need.
    in_use_.fetch_sub(bytes, std::memory_order_seq_cst);
    stream_sub(s, bytes);  // may free `s`: not touched below
    room_.wake_if_waiting(INT_MAX);
  }

  void wake_all() noexcept { room_.notify_all(); }

  // One reservation that has to wait, from its first failed attempt to its end (a thread's
  // wait or a coroutine's): it registers as a waiter of its stream (which makes the stream
  // active, shrinking the others' share), is needy while it holds less than its share (which
  // stops the others from growing past theirs), and leaves (which may let others go on: they
  // are no longer held back for it, and the share grew).
  class waiting_take {
   public:
    waiting_take(memory_budget& b, state& s, std::size_t bytes) noexcept
        : b_(&b), s_(&s), bytes_(bytes) {
      b.waits_.fetch_add(1, std::memory_order_relaxed);
      b.stream_add(s, state::waiter_one);
    }
    waiting_take(const waiting_take&) = delete;
    waiting_take& operator=(const waiting_take&) = delete;
    ~waiting_take() {
      if (needy_) b_->needy_.fetch_sub(1, std::memory_order_seq_cst);
      b_->stream_sub(*s_, state::waiter_one);
      b_->room_.notify_all();
    }

    // True once the wait is over: answer() is ok (the bytes are taken) or closed.
    bool attempt() noexcept {
      memory_budget& b = *b_;
      const bool now_needy = s_->held() < b.fair_share();
      if (now_needy != needy_) {
        needy_ = now_needy;
        if (needy_) {
          b.needy_.fetch_add(1, std::memory_order_seq_cst);
        } else {
          b.needy_.fetch_sub(1, std::memory_order_seq_cst);
          b.room_.notify_all();  // streams held back for us may go on
        }
      }
      if (b.closed_.load(std::memory_order_seq_cst) || s_->closed.load(std::memory_order_seq_cst)) {
        answer_ = bp::status::closed;
        return true;
      }
      if (b.try_take(*s_, bytes_, needy_)) {
        answer_ = bp::status::ok;
        return true;
      }
      return false;
    }
    [[nodiscard]] std::optional<bp::status> answer() const noexcept { return answer_; }

   private:
    memory_budget* b_;
    state* s_;
    std::size_t bytes_;
    bool needy_ = false;
    std::optional<bp::status> answer_;
  };

  reservation acquire(state& s, std::size_t bytes, bool may_wait,
                      detail::clock::time_point deadline);
  bp::status acquire_waiting(state& s, std::size_t bytes, detail::clock::time_point deadline);
  void check_bytes(std::size_t bytes) const {
    if (bytes > capacity_)
      throw std::invalid_argument("bp::memory_budget: bytes " + std::to_string(bytes) +
                                  " exceeds the budget's capacity of " + std::to_string(capacity_) +
                                  " (it could never be granted)");
  }
  static reservation make_permit(memory_budget* b, state* s, std::size_t bytes,
                                 bp::status answer) noexcept;

  const std::size_t capacity_;
  state default_stream_;
  std::atomic<bool> closed_{false};

  // Written on every grant and give-back: one line.
  alignas(detail::cache_line) std::atomic<std::size_t> in_use_{0};
  std::atomic<std::size_t> peak_{0};
  std::atomic<std::uint64_t> granted_{0};

  // Read on every grant, written on activity changes and by waiters.
  alignas(detail::cache_line) std::atomic<std::int64_t> active_{0};
  std::atomic<std::uint32_t> needy_{0};  // waiters holding less than their fair share

  alignas(detail::cache_line) detail::event_count room_;  // waiting reservations park here
  std::atomic<std::size_t> streams_{0};
  std::atomic<std::uint64_t> waits_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> refused_{0};
  wait_histogram wait_;
};

// A grant of bytes from a memory_budget, given back when destroyed. Move-only.
//
// status() is the answer of the call that made it: ok (bytes() are held), or full, timeout,
// closed (nothing is held). `if (r)` tests for ok. A moved-from or released reservation holds
// 0 bytes and keeps its status; a default-constructed one holds 0 bytes and answers ok.
//
// Thread safety: one reservation object is used by one thread at a time; different
// reservations of the same budget or stream may be used concurrently.
//
// Errors: release(n) and split(n) with n > bytes() throw std::invalid_argument naming `bytes`.
//
// Example:
//   auto r = s.reserve(batch_bytes);            // one wait for a whole batch
//   for (auto& item : batch) q.push({std::move(item), r.split(size(item))});
// Ownership of bytes of one stream of a budget: a bp::grant. Destruction (or release()) gives
// them back. answer() says what the reserve verb answered; the permit tests true when that was
// `ok` (also for a grant of 0 bytes, and after the bytes were released).
class memory_permit : public grant<detail::memory_permit_traits> {
 public:
  memory_permit() noexcept : grant(held_type{}, bp::status::ok) {}
  memory_permit(memory_permit&&) noexcept = default;
  memory_permit& operator=(memory_permit&&) noexcept = default;
  ~memory_permit() = default;

  // The former spelling of answer().
  [[nodiscard]] bp::status status() const noexcept { return answer_; }
  explicit operator bool() const noexcept { return answer_ == bp::status::ok; }
  [[nodiscard]] std::size_t bytes() const noexcept { return held_.bytes; }

  // Gives every byte back (wakes waiters). Idempotent.
  void release() noexcept {
    if (held_.bytes == 0) return;
    held_.budget->give_back(*held_.state, std::exchange(held_.bytes, 0));
  }

  // Gives `bytes` back and keeps the rest.
  void release(std::size_t bytes) {
    check(bytes, "release");
    if (bytes == 0) return;
    held_.bytes -= bytes;
    held_.budget->give_back(*held_.state, bytes);
  }

  // Keeps at most `bytes`, gives the rest back.
  void shrink_to(std::size_t bytes) noexcept {
    if (bytes >= held_.bytes) return;
    const std::size_t surplus = held_.bytes - bytes;
    held_.bytes = bytes;
    held_.budget->give_back(*held_.state, surplus);
  }

  // Moves `bytes` of this grant into a new permit of the same stream (no budget traffic).
  [[nodiscard]] memory_permit split(std::size_t bytes) {
    check(bytes, "split");
    held_.bytes -= bytes;
    return memory_permit(held_.budget, held_.state, bytes, bp::status::ok);
  }

 private:
  friend class memory_budget;

  explicit memory_permit(bp::status answer) noexcept : grant(answer) {}
  memory_permit(memory_budget* b, detail::budget_stream_state* s, std::size_t bytes,
                bp::status answer) noexcept
      : grant(held_type{b, s, bytes}, answer) {}

  void check(std::size_t bytes, const char* what) const {
    if (bytes > held_.bytes)
      throw std::invalid_argument(std::string("bp::memory_permit::") + what + ": bytes " +
                                  std::to_string(bytes) + " exceeds the " +
                                  std::to_string(held_.bytes) + " bytes held");
  }
};

inline void detail::memory_permit_traits::give_back(held& h) noexcept {
  h.budget->give_back(*h.state, h.bytes);
}

// One registered user of a memory_budget: the unit the fairness rule shares bytes between.
// Move-only handle; destroying it (or moving over it) unregisters the stream, while
// reservations it made stay valid and give their bytes back later.
//
// Verbs: try_reserve never waits (ok | full | closed; `full` also when the bytes are there but
// a waiting stream under its fair share comes first); reserve waits (ok | closed);
// reserve_for / reserve_until wait at most that long (ok | timeout | closed). A reservation of
// 0 bytes is granted at once (unless closed).
//
// Thread safety: many threads may reserve on one stream at once; moving or destroying the
// handle must not race with its use. An empty (default-constructed or moved-from) stream
// answers `closed`.
//
// Errors: bytes > the budget's capacity() throws std::invalid_argument naming `bytes`.
//
// Cancellation: close() makes this stream's waiting and later reservations answer `closed`
// (the budget stays open for the others); granted reservations stay valid.
//
// Example:
//   std::vector<bp::memory_budget::stream> conns;
//   for (int i = 0; i < 500; ++i) conns.push_back(budget.open_stream());
//   auto r = conns[7].reserve_for(chunk_bytes, 100ms);
class memory_budget::stream {
 public:
  stream() noexcept = default;
  stream(stream&& o) noexcept
      : budget_(std::exchange(o.budget_, nullptr)), state_(std::exchange(o.state_, nullptr)) {}
  stream& operator=(stream&& o) noexcept {
    if (this != &o) {
      detach();
      budget_ = std::exchange(o.budget_, nullptr);
      state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream() { detach(); }

  [[nodiscard]] reservation try_reserve(std::size_t bytes) {
    return state_ ? budget_->acquire(*state_, bytes, false, detail::forever()) : closed_answer();
  }
  [[nodiscard]] reservation reserve(std::size_t bytes) {
    return state_ ? budget_->acquire(*state_, bytes, true, detail::forever()) : closed_answer();
  }
  template <class Rep, class Period>
  [[nodiscard]] reservation reserve_for(std::size_t bytes,
                                        std::chrono::duration<Rep, Period> timeout) {
    return state_ ? budget_->acquire(*state_, bytes, true, detail::deadline_after(timeout))
                  : closed_answer();
  }
  template <class Clock, class Duration>
  [[nodiscard]] reservation reserve_until(std::size_t bytes,
                                          std::chrono::time_point<Clock, Duration> deadline) {
    return state_ ? budget_->acquire(*state_, bytes, true, detail::to_steady(deadline))
                  : closed_answer();
  }
  // Cancellable: an empty reservation answering `cancelled` once `stop` is stopped first.
  [[nodiscard]] reservation reserve(std::size_t bytes, const std::stop_token& stop) {
    return detail::with_stop(stop, [&] { return reserve(bytes); });
  }
  template <class Rep, class Period>
  [[nodiscard]] reservation reserve_for(std::size_t bytes,
                                        std::chrono::duration<Rep, Period> timeout,
                                        const std::stop_token& stop) {
    return detail::with_stop(stop, [&] { return reserve_for(bytes, timeout); });
  }

  // co_await s.async_reserve(bytes[, options]): as reserve(bytes, stop), with the coroutine
  // suspended instead of a thread: ok | closed | cancelled (async_reserve_for: | timeout). The
  // coroutine resumes on the thread that gave the bytes back (or closed), on bp's timer thread
  // for a timeout, or on the executor named by bp::resume_on. Cancel safe: a cancelled wait
  // holds no bytes.
  [[nodiscard]] reserve_awaiter async_reserve(std::size_t bytes, async_options opts = {});
  template <class Rep, class Period>
  [[nodiscard]] reserve_awaiter async_reserve_for(std::size_t bytes,
                                                  std::chrono::duration<Rep, Period> timeout,
                                                  async_options opts = {});

  // Idempotent: this stream's waiting and later reservations answer `closed`.
  void close() noexcept {
    if (!state_) return;
    state_->closed.store(true, std::memory_order_seq_cst);
    budget_->wake_all();
  }
  [[nodiscard]] bool is_closed() const noexcept {
    return !state_ || state_->closed.load(std::memory_order_acquire) || budget_->is_closed();
  }

  explicit operator bool() const noexcept { return state_ != nullptr; }
  // Bytes held by this stream's live reservations (best effort).
  [[nodiscard]] std::size_t in_use() const noexcept { return state_ ? state_->held() : 0; }
  // The budget's fair share right now (best effort).
  [[nodiscard]] std::size_t fair_share() const noexcept {
    return budget_ ? budget_->fair_share() : 0;
  }
  [[nodiscard]] memory_budget* budget() const noexcept { return budget_; }

 private:
  friend class memory_budget;
  stream(memory_budget* b, detail::budget_stream_state* s) noexcept : budget_(b), state_(s) {}

  static reservation closed_answer() noexcept { return reservation(bp::status::closed); }
  // What an empty stream's awaiter refers to: it answers `closed` before looking at it.
  static memory_budget& closed_budget() noexcept {
    static memory_budget none(1);
    return none;
  }

  void detach() noexcept {
    if (!state_) return;
    state_->closed.store(true, std::memory_order_release);
    budget_->streams_.fetch_sub(1, std::memory_order_relaxed);
    const std::uint64_t old =
        state_->word.fetch_or(detail::budget_stream_state::detached, std::memory_order_acq_rel);
    if ((old & detail::budget_stream_state::live_mask) == 0) delete state_;
    state_ = nullptr;
    budget_ = nullptr;
  }

  memory_budget* budget_ = nullptr;
  detail::budget_stream_state* state_ = nullptr;
};

// --- memory_budget members that need the nested classes complete ------------------------------

inline memory_budget::stream memory_budget::open_stream() {
  auto* s = new detail::budget_stream_state;
  streams_.fetch_add(1, std::memory_order_relaxed);
  return stream(this, s);
}

inline memory_permit memory_budget::try_reserve(std::size_t bytes) {
  return acquire(default_stream_, bytes, false, detail::forever());
}
inline memory_permit memory_budget::reserve(std::size_t bytes) {
  return acquire(default_stream_, bytes, true, detail::forever());
}
template <class Rep, class Period>
memory_permit memory_budget::reserve_for(std::size_t bytes,
                                         std::chrono::duration<Rep, Period> timeout) {
  return acquire(default_stream_, bytes, true, detail::deadline_after(timeout));
}
template <class Clock, class Duration>
memory_permit memory_budget::reserve_until(std::size_t bytes,
                                           std::chrono::time_point<Clock, Duration> deadline) {
  return acquire(default_stream_, bytes, true, detail::to_steady(deadline));
}

inline memory_budget::reservation memory_budget::reserve(std::size_t bytes,
                                                         const std::stop_token& stop) {
  return detail::with_stop(stop, [&] { return reserve(bytes); });
}

template <class Rep, class Period>
memory_budget::reservation memory_budget::reserve_for(std::size_t bytes,
                                                      std::chrono::duration<Rep, Period> timeout,
                                                      const std::stop_token& stop) {
  return detail::with_stop(stop, [&] { return reserve_for(bytes, timeout); });
}

inline memory_permit memory_budget::acquire(state& s, std::size_t bytes, bool may_wait,
                                            detail::clock::time_point deadline) {
  check_bytes(bytes);
  if (closed_.load(std::memory_order_acquire) || s.closed.load(std::memory_order_acquire))
    return reservation(bp::status::closed);
  if (bytes == 0) return reservation(this, &s, 0, bp::status::ok);
  if (try_take(s, bytes, false)) return reservation(this, &s, bytes, bp::status::ok);
  if (!may_wait) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return reservation(bp::status::full);
  }
  const bp::status answer = acquire_waiting(s, bytes, deadline);
  return answer == bp::status::ok ? reservation(this, &s, bytes, answer) : reservation(answer);
}

inline memory_permit memory_budget::make_permit(memory_budget* b, state* s, std::size_t bytes,
                                                bp::status answer) noexcept {
  return answer == bp::status::ok ? reservation(b, s, bytes, answer) : reservation(answer);
}

// The slow path: wait as a waiting_take (see there).
inline bp::status memory_budget::acquire_waiting(state& s, std::size_t bytes,
                                                 detail::clock::time_point deadline) {
  const detail::wait_timer timer(wait_);
  waiting_take w(*this, s, bytes);
  // Bytes usually come back within microseconds while consumers run: the wait loop's spin
  // catches them without a system call on either side (a releaser that sees no waiter wakes
  // nobody).
  if (!detail::wait_until(room_, deadline, [&] { return w.attempt(); }))
    return detail::gave_up(timeouts_);
  return *w.answer();
}

// co_await budget.async_reserve(bytes[, options]) (or a stream's): the reservation, as
// reserve(bytes, stop), with the coroutine suspended instead of a thread. The fast path (the
// bytes fit) never suspends. The wait itself is the blocking verb's (waiting_take): the same
// fairness and the same statistics.
class memory_budget::reserve_awaiter : public detail::async_op<reserve_awaiter> {
  using op = detail::async_op<reserve_awaiter>;
  friend op;

 public:
  reserve_awaiter(memory_budget& b, state* s, std::size_t bytes, async_options opts,
                  detail::clock::time_point deadline) noexcept
      : op(b.room_, std::move(opts)), b_(&b), s_(s), bytes_(bytes) {
    this->set_deadline(deadline);
  }

  bool await_ready() {
    memory_budget& b = *b_;
    if (!s_ || b.closed_.load(std::memory_order_acquire) ||
        s_->closed.load(std::memory_order_acquire)) {
      answer_ = bp::status::closed;
      return true;
    }
    if (bytes_ == 0 || b.try_take(*s_, bytes_, false)) {
      answer_ = bp::status::ok;
      return true;
    }
    start_ = detail::clock::now();
    wait_.emplace(b, *s_, bytes_);
    return attempt();
  }

  reservation await_resume() {
    memory_budget& b = *b_;
    if (wait_) {
      answer_ = wait_->answer();
      wait_.reset();  // leaves: wakes the others it held back
      b.wait_.record(detail::clock::now() - start_);
      if (!answer_) {
        if (this->cancelled()) {
          answer_ = bp::status::cancelled;
        } else {
          b.timeouts_.fetch_add(1, std::memory_order_relaxed);
          answer_ = bp::status::timeout;
        }
      }
    }
    return make_permit(&b, s_, bytes_, *answer_);
  }

 private:
  bool attempt() noexcept { return wait_->attempt(); }

  memory_budget* b_;
  state* s_;
  std::size_t bytes_;
  std::optional<bp::status> answer_;
  std::optional<waiting_take> wait_;
  detail::clock::time_point start_{};
};

inline memory_budget::reserve_awaiter memory_budget::async_reserve(std::size_t bytes,
                                                                   async_options opts) {
  check_bytes(bytes);
  return reserve_awaiter(*this, &default_stream_, bytes, std::move(opts), detail::forever());
}
template <class Rep, class Period>
memory_budget::reserve_awaiter memory_budget::async_reserve_for(
    std::size_t bytes, std::chrono::duration<Rep, Period> timeout, async_options opts) {
  check_bytes(bytes);
  return reserve_awaiter(*this, &default_stream_, bytes, std::move(opts),
                         detail::deadline_after(timeout));
}

inline memory_budget::reserve_awaiter memory_budget::stream::async_reserve(std::size_t bytes,
                                                                           async_options opts) {
  if (budget_) budget_->check_bytes(bytes);
  return reserve_awaiter(budget_ ? *budget_ : closed_budget(), state_, bytes, std::move(opts),
                         detail::forever());
}
template <class Rep, class Period>
memory_budget::reserve_awaiter memory_budget::stream::async_reserve_for(
    std::size_t bytes, std::chrono::duration<Rep, Period> timeout, async_options opts) {
  if (budget_) budget_->check_bytes(bytes);
  return reserve_awaiter(budget_ ? *budget_ : closed_budget(), state_, bytes, std::move(opts),
                         detail::deadline_after(timeout));
}

}  // namespace bp

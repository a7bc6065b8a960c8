// bp/unbounded_channel.hpp: the unbounded channel, watched (tokio's unbounded_channel, plus
// monitoring).
//
//   bp::unbounded_channel<T>          MPMC FIFO with no capacity bound: send never waits and
//                                     never fails except `closed`.
//   bp::unbounded_channel_options<T>  a size threshold (items, and bytes through a size
//                                     function), its re-arm mark and the callback fired when the
//                                     size crosses it upward; for designated initializers.
//   bp::unbounded_channel_stats       counters: sent, received, size, high_watermark,
//                                     threshold_crossings, bytes, high_watermark_bytes,
//                                     recv_waits, timeouts; recv_wait_times() the waits.
//
// Example:
//
//   bp::unbounded_channel<Event> ch({.warn_at = 10'000, .on_threshold = [](const auto& s) {
//     log_warning("event queue holds {} items", s.size);
//   }});
//   (void)ch.send(Event{...});   // ok, or closed: never waits
//   for (Event e : ch) handle(e);
//
// Design: one mutex around a growable ring (detail/growable_ring.hpp) that doubles when full and
// never shrinks. Once it has grown to the largest backlog seen, a send or a receive only moves a
// value: the steady state allocates nothing per item, and the memory of a past burst is kept for
// the next one (bounded by the high watermark, which stats() shows). A mutex rather than a
// lock-free segment list: every send also updates the size, the byte count and the threshold
// state, which must change together with the queue for the crossing to be counted exactly once;
// the critical section is a few moves. Receivers that find nothing wait in the library's one
// wait loop (detail/wait.hpp) on an event count: a blocked receiver burns no CPU.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <utility>

#include "channel_fwd.hpp"
#include "detail/async_op.hpp"
#include "detail/deadline.hpp"
#include "detail/event_count.hpp"
#include "detail/growable_ring.hpp"
#include "detail/recv_iterator.hpp"
#include "detail/recv_verbs.hpp"
#include "detail/send_verbs.hpp"
#include "detail/wait.hpp"
#include "detail/wait_timer.hpp"
#include "status.hpp"
#include "wait_histogram.hpp"

namespace bp {

// Counters of one unbounded channel, taken together under its lock: consistent with each other.
// Invariant: sent == received + size.
struct unbounded_channel_stats {
  std::uint64_t sent = 0;                 // values accepted
  std::uint64_t received = 0;             // values delivered to receivers
  std::size_t size = 0;                   // values buffered now
  std::size_t high_watermark = 0;         // largest size seen
  std::uint64_t threshold_crossings = 0;  // upward crossings of the threshold (callbacks fired)
  std::size_t bytes = 0;                  // sum of size_of over buffered values (0 without it)
  std::size_t high_watermark_bytes = 0;   // largest `bytes` seen
  std::uint64_t recv_waits = 0;           // receives that had to wait for a value
  std::uint64_t timeouts = 0;             // of those, the ones that answered `timeout`
};

// Options, to be written with designated initializers:
//   bp::unbounded_channel<Frame> ch({.warn_at_bytes = 64 << 20,
//                                    .size_of = [](const Frame& f) { return f.data.size(); },
//                                    .on_threshold = [](const auto& s) { alert(s.bytes); }});
//
// The threshold is reached when the size is at least `warn_at` items, or the bytes at least
// `warn_at_bytes` (each 0 = not watched). Reaching it fires `on_threshold` once; it fires again
// only after the channel has been re-armed, which happens when a receive leaves the size at most
// `rearm_at` and the bytes at most `rearm_at_bytes`, for each that is watched (defaults: half
// of its threshold). The hysteresis keeps a size hovering around the threshold from firing on
// every send.
template <class T>
struct unbounded_channel_options {
  std::size_t warn_at = 0;                      // items; 0: the item count is not watched
  std::optional<std::size_t> rearm_at{};        // < warn_at; default warn_at / 2
  std::size_t warn_at_bytes = 0;                // bytes (needs size_of); 0: not watched
  std::optional<std::size_t> rearm_at_bytes{};  // < warn_at_bytes; default warn_at_bytes / 2
  // The bytes one value accounts for; called once per send, on the sending thread, outside the
  // lock. Without it, bytes are not counted.
  std::function<std::size_t(const T&)> size_of{};
  // Called with the counters at the crossing, on the sending thread whose value reached the
  // threshold, after that send, outside the channel's lock. Calls are serialized (never two at
  // once). It may receive from the channel or read its stats, but must not send to it; it must
  // not throw (std::terminate).
  std::function<void(const unbounded_channel_stats&)> on_threshold{};
};

// An unbounded multi-producer multi-consumer FIFO channel.
//
// send() (and try_send, send_for, send_until: the same here) answers ok, or closed once the
// channel is closed; it never waits. Receive verbs are bp::channel's: recv() waits while empty
// and answers std::nullopt once closed and drained; try_recv() never waits; recv_for/recv_until
// answer std::nullopt when time runs out first. The status forms tell the cases apart: recv(out):
// ok | closed; try_recv(out): ok | full (nothing buffered now) | closed; recv_for/recv_until:
// ok | timeout | closed.
//
// When to use: fire-and-forget producers that must never wait (an event loop, a callback from
// a library that cannot block), where the load is known to be bounded elsewhere and the monitoring
// tells when that assumption breaks. Otherwise prefer bp::channel: a bound turns a slow consumer
// into backpressure instead of memory growth (docs/channel.md, "Unbounded, monitored").
//
// Thread safety: every member may be called concurrently, except the destructor. size() and
// is_closed() are best effort under concurrency.
//
// Memory ordering: a successful send happens-before the recv that returns its value; close()
// happens-before any answer `closed` it causes.
//
// Closing: close() is idempotent and wakes every waiting receiver. Sends then answer `closed`;
// values sent before close() are all delivered, then receivers answer the end.
//
// Errors: invalid options throw std::invalid_argument naming the option. A send that must grow
// the buffer may throw std::bad_alloc; the value is then not taken.
template <channel_element T>
class unbounded_channel : public detail::send_verbs<unbounded_channel<T>, T, status>,
                          public detail::recv_verbs<unbounded_channel<T>, T> {
  using verbs = detail::send_verbs<unbounded_channel<T>, T, status>;
  using recv_verbs = detail::recv_verbs<unbounded_channel<T>, T>;
  friend verbs;
  friend recv_verbs;

 public:
  using value_type = T;
  using threshold_handler = std::function<void(const unbounded_channel_stats&)>;

  unbounded_channel() : unbounded_channel(unbounded_channel_options<T>{}) {}

  explicit unbounded_channel(unbounded_channel_options<T> options)
      : warn_at_(options.warn_at),
        rearm_at_(validated_rearm(options.warn_at, options.rearm_at, "warn_at", "rearm_at")),
        warn_at_bytes_(options.warn_at_bytes),
        rearm_at_bytes_(validated_rearm(options.warn_at_bytes, options.rearm_at_bytes,
                                        "warn_at_bytes", "rearm_at_bytes")),
        size_of_(std::move(options.size_of)),
        on_threshold_(std::move(options.on_threshold)) {
    if (warn_at_bytes_ != 0 && !size_of_)
      throw std::invalid_argument(
          "bp::unbounded_channel: warn_at_bytes needs size_of (the bytes of one value)");
    if (on_threshold_ && warn_at_ == 0 && warn_at_bytes_ == 0)
      throw std::invalid_argument(
          "bp::unbounded_channel: on_threshold needs a threshold (warn_at or warn_at_bytes)");
  }

  unbounded_channel(const unbounded_channel&) = delete;
  unbounded_channel& operator=(const unbounded_channel&) = delete;
  ~unbounded_channel() = default;

  // --- sending: send, try_send, send_for, send_until (T&& and const T&): ok | closed ----------
  using verbs::send;
  using verbs::send_for;
  using verbs::send_until;
  using verbs::try_send;

  // --- receiving -------------------------------------------------------------------------------
  // recv, try_recv, recv_for, recv_until: each as std::optional<T> (std::nullopt: closed and
  // drained, nothing buffered now, or timeout) and as `status recv(T& out)` (ok | full |
  // timeout | closed, where closed means closed and drained), and cancellable with a trailing
  // std::stop_token (`cancelled`), from detail::recv_verbs.
  using recv_verbs::recv;
  using recv_verbs::recv_for;
  using recv_verbs::recv_until;
  using recv_verbs::try_recv;

  // --- awaiting (C++20 coroutines, docs/async.md) -----------------------------------------------
  // co_await ch.async_recv([opts]): std::optional<T>, std::nullopt once closed and drained (or
  // cancelled); co_await ch.async_recv(out[, opts]): ok | closed | cancelled. A send never waits,
  // so only receiving has an awaitable form. Await at once.
  [[nodiscard]] auto async_recv(async_options opts = {}) {
    return detail::attempt_awaiter<recv_wait<false>>(not_empty_, recv_wait<false>{this, nullptr},
                                                     std::move(opts));
  }
  [[nodiscard]] auto async_recv(T& out, async_options opts = {}) {
    return detail::attempt_awaiter<recv_wait<true>>(not_empty_, recv_wait<true>{this, &out},
                                                    std::move(opts));
  }

  // --- state -----------------------------------------------------------------------------------

  // Idempotent. Wakes every waiting receiver.
  void close() noexcept {
    {
      std::lock_guard lock(m_);
      if (closed_) return;
      closed_ = true;
      closed_hint_.store(true, std::memory_order_relaxed);
    }
    not_empty_.notify_all();
  }

  [[nodiscard]] bool is_closed() const noexcept {
    return closed_hint_.load(std::memory_order_relaxed);
  }

  // Values buffered now (best effort under concurrency).
  [[nodiscard]] std::size_t size() const noexcept {
    return size_hint_.load(std::memory_order_relaxed);
  }

  [[nodiscard]] unbounded_channel_stats stats() const {
    std::unique_lock lock(m_);
    unbounded_channel_stats s = stats_;
    lock.unlock();
    s.recv_waits = recv_waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    return s;
  }

  // How long the receives that waited for a value waited (sends never wait). Only waits are
  // recorded; its count equals stats().recv_waits at rest.
  [[nodiscard]] const wait_histogram& recv_wait_times() const noexcept { return recv_wait_; }

  // --- range-for: `for (T v : ch)` receives until closed and drained ----------------------------
  using iterator = detail::recv_iterator<T, unbounded_channel, recv_verbs::next>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  struct entry {
    T value;
    std::size_t bytes;
  };

  static std::size_t validated_rearm(std::size_t warn, const std::optional<std::size_t>& rearm,
                                     const char* warn_name, const char* rearm_name) {
    if (!rearm) return warn / 2;
    if (warn == 0)
      throw std::invalid_argument(std::string("bp::unbounded_channel: ") + rearm_name +
                                  " is set but " + warn_name + " is 0 (not watched)");
    if (*rearm >= warn)
      throw std::invalid_argument(std::string("bp::unbounded_channel: ") + rearm_name + " (" +
                                  std::to_string(*rearm) + ") must be below " + warn_name + " (" +
                                  std::to_string(warn) + ")");
    return *rearm;
  }

  // The one function behind the send verbs: never waits, so may_wait and the deadline do not
  // matter. Moves from `value` only on `ok`.
  status send_value(T& value, bool /*may_wait*/, detail::clock::time_point /*deadline*/) {
    const std::size_t bytes = size_of_ ? size_of_(std::as_const(value)) : 0;
    bool crossed = false;
    unbounded_channel_stats at_crossing;
    {
      std::lock_guard lock(m_);
      if (closed_) return status::closed;
      ring_.reserve_one();  // may throw std::bad_alloc: nothing taken yet
      ring_.push(entry{std::move(value), bytes});
      auto& s = stats_;
      ++s.sent;
      ++s.size;
      s.bytes += bytes;
      s.high_watermark = std::max(s.high_watermark, s.size);
      s.high_watermark_bytes = std::max(s.high_watermark_bytes, s.bytes);
      if (armed_ && ((warn_at_ != 0 && s.size >= warn_at_) ||
                     (warn_at_bytes_ != 0 && s.bytes >= warn_at_bytes_))) {
        armed_ = false;
        ++s.threshold_crossings;
        crossed = static_cast<bool>(on_threshold_);
        if (crossed) at_crossing = s;
      }
      size_hint_.store(s.size, std::memory_order_relaxed);
    }
    not_empty_.notify_one();
    if (crossed) fire(at_crossing);
    return status::ok;
  }

  void fire(const unbounded_channel_stats& at_crossing) noexcept {
    std::lock_guard lock(callback_m_);
    on_threshold_(at_crossing);
  }

  // Takes the oldest value into `out` if there is one. Requires the lock.
  bool pop_locked(std::optional<T>& out) noexcept {
    if (ring_.empty()) return false;
    entry e = ring_.pop();
    out.emplace(std::move(e.value));
    auto& s = stats_;
    ++s.received;
    --s.size;
    s.bytes -= e.bytes;
    if (!armed_ && (warn_at_ == 0 || s.size <= rearm_at_) &&
        (warn_at_bytes_ == 0 || s.bytes <= rearm_at_bytes_))
      armed_ = true;
    size_hint_.store(s.size, std::memory_order_relaxed);
    return true;
  }

  // ok (value in `out`), closed (closed and drained) or, for a try, full.
  // The state of one awaited receive (detail::attempt_awaiter).
  template <bool AnswerStatus>
  struct recv_wait {
    unbounded_channel* ch;
    T* dest;
    std::optional<T> value{};
    status answer = status::full;

    bool attempt() {
      answer = ch->try_take(value);
      return answer != status::full;
    }
    auto result(bool cancelled) {
      if constexpr (AnswerStatus) {
        if (value) *dest = std::move(*value);
        return cancelled ? status::cancelled : answer;
      } else {
        return std::move(value);
      }
    }
  };

  status try_take(std::optional<T>& out) {
    std::lock_guard lock(m_);
    if (pop_locked(out)) return status::ok;
    return closed_ ? status::closed : status::full;
  }

  status take(std::optional<T>& out, bool may_wait, detail::clock::time_point deadline) {
    status answer = try_take(out);
    if (answer != status::full || !may_wait) return answer;
    recv_waits_.fetch_add(1, std::memory_order_relaxed);
    const detail::wait_timer timer(recv_wait_);
    const auto attempt = [&] {
      answer = try_take(out);
      return answer != status::full;
    };
    // While spinning, look at the size first: an empty queue is seen without the lock.
    const auto probe = [&] { return size_hint_.load(std::memory_order_relaxed) != 0 && attempt(); };
    if (!detail::wait_loop(not_empty_, deadline, attempt, probe, detail::always_settled{})) {
      return detail::gave_up(timeouts_);
    }
    return answer;
  }

  std::optional<T> recv_impl(bool may_wait, detail::clock::time_point deadline) {
    std::optional<T> out;
    (void)take(out, may_wait, deadline);
    return out;
  }

  status recv_into(T& out, bool may_wait, detail::clock::time_point deadline) {
    std::optional<T> v;
    const status answer = take(v, may_wait, deadline);
    if (answer == status::ok) out = std::move(*v);
    return answer;
  }

  const std::size_t warn_at_;
  const std::size_t rearm_at_;
  const std::size_t warn_at_bytes_;
  const std::size_t rearm_at_bytes_;
  const std::function<std::size_t(const T&)> size_of_;
  const threshold_handler on_threshold_;

  mutable std::mutex m_;
  detail::growable_ring<entry> ring_;  // guarded by m_
  unbounded_channel_stats stats_;      // guarded by m_
  bool closed_ = false;                // guarded by m_
  bool armed_ = true;                  // guarded by m_: the next crossing fires
  std::atomic<std::size_t> size_hint_{0};
  std::atomic<bool> closed_hint_{false};
  std::mutex callback_m_;  // serializes on_threshold calls
  alignas(detail::cache_line) detail::event_count not_empty_;
  std::atomic<std::uint64_t> recv_waits_{0};  // written only by receives that wait
  std::atomic<std::uint64_t> timeouts_{0};
  wait_histogram recv_wait_;
};

}  // namespace bp

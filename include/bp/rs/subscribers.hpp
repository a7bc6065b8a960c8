// bp/rs/subscribers.hpp: the consuming ends of a stream.
//
//   bp::rs::request_strategy       how much a subscriber asks for: batch(n) (n at first, then 75%
//                                  of n each time 75% of n arrived), one_at_a_time(), unbounded()
//   bp::rs::subscribe(pub, f, o)   a subscriber made of lambdas; returns a subscription_handle
//   bp::rs::subscription_handle    cancel(), done(), wait_for(timeout)
//   bp::rs::subscription_channel   a bp::channel fed by a publisher, requesting only as its slots
//                                  free up (Signal -> Block): recv / try_recv / recv_for /
//                                  recv(stop_token) / range-for
//   bp::rs::to_channel(pub, cap)   subscribes and returns that subscription_channel
//   bp::rs::into_channel(pub, ch)  feeds an existing channel (or sender), requesting only as the
//                                  channel accepts values (Signal -> Block into your channel),
//                                  from a pump thread the subscription owns
//   bp::rs::to_iterable(pub, n)    a blocking range over a publisher, n elements prefetched; an
//                                  optional per-element timeout throws bp::rs::timeout_error
//
// Example:
//
//   auto h = bp::rs::subscribe(bp::rs::range(0, 10), [](std::int64_t v) { use(v); },
//                              {.strategy = bp::rs::request_strategy::batch(4),
//                               .on_complete = [] { std::puts("done"); }});
//   h.wait_for(std::chrono::seconds(1));
//
//   for (std::int64_t v : bp::rs::to_iterable(bp::rs::range(0, 10), 4)) use(v);
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#include "../channel.hpp"
#include "../detail/event_count.hpp"
#include "../detail/recv_iterator.hpp"
#include "../detail/wait.hpp"
#include "detail/demand.hpp"
#include "detail/owned_pump.hpp"
#include "interfaces.hpp"

namespace bp::rs {

// How a subscriber keeps demand up. `batch(n)` requests n, then n - n/4 each time n - n/4 have
// arrived (low-tide refill: the publisher rarely waits, memory stays bounded by n).
// `one_at_a_time()` is batch(1): request(1) after each element. `unbounded()` requests
// INT64_MAX once (no backpressure: for fast, allocation-free consumers only).
struct request_strategy {
  std::int64_t n = 256;

  [[nodiscard]] static request_strategy batch(std::int64_t n) {
    if (n <= 0)
      throw std::invalid_argument("bp::rs::request_strategy::batch: n must be > 0, got " +
                                  std::to_string(n));
    return {n};
  }
  [[nodiscard]] static constexpr request_strategy one_at_a_time() noexcept { return {1}; }
  [[nodiscard]] static constexpr request_strategy unbounded() noexcept { return {rs::unbounded}; }

  // What to request again after `refill()` elements arrived (unbounded: never).
  [[nodiscard]] constexpr std::int64_t refill() const noexcept {
    return n == rs::unbounded ? rs::unbounded : n - n / 4;
  }
};

// Options of bp::rs::subscribe, for designated initializers. on_error receives errors of the
// stream and exceptions thrown by the on_next function (after which the subscription is
// cancelled). Without on_error, errors are ignored.
struct subscribe_options {
  request_strategy strategy{};
  std::function<void(std::exception_ptr)> on_error{};
  std::function<void()> on_complete{};
};

namespace detail {

// Terminal-state flag with a blocking wait (futex via event_count).
class done_latch {
 public:
  void set() noexcept {
    done_.store(true, std::memory_order_release);
    ec_.notify_all();
  }
  [[nodiscard]] bool is_set() const noexcept { return done_.load(std::memory_order_acquire); }
  bool wait_until(bp::detail::clock::time_point deadline) noexcept {
    return is_set() || bp::detail::wait_until(ec_, deadline, [&] { return is_set(); }) || is_set();
  }

 private:
  std::atomic<bool> done_{false};
  alignas(bp::detail::cache_line) bp::detail::event_count ec_;
};

template <class T, class F>
class lambda_subscriber final : public subscriber<T> {
 public:
  lambda_subscriber(F f, subscribe_options o) : f_(std::move(f)), o_(std::move(o)) {}

  void on_subscribe(std::shared_ptr<subscription> s) override {
    if (!s) throw std::invalid_argument("bp::rs::subscribe: on_subscribe(nullptr) (rule 2.13)");
    {
      std::lock_guard lock(m_);
      if (sub_ || cancelled_) {  // rule 2.5; or cancelled before the subscription came
        s->cancel();
        return;
      }
      sub_ = s;
    }
    s->request(o_.strategy.n);  // rule 2.1
  }

  void on_next(T v) override {
    if (latch_.is_set()) return;  // after our own cancel: tolerated (rule 2.8)
    try {
      f_(std::move(v));
    } catch (...) {  // rule 2.13: do not throw at the publisher; cancel and report instead
      auto e = std::current_exception();
      cancel_subscription();
      deliver(std::move(e));
      return;
    }
    const std::int64_t refill = o_.strategy.refill();
    if (refill != unbounded && ++received_ == refill) {
      received_ = 0;
      sub_->request(refill);
    }
  }

  void on_error(std::exception_ptr e) override {
    if (!latch_.is_set()) deliver(std::move(e));
  }
  void on_complete() override {
    if (!latch_.is_set()) deliver(nullptr);
  }

  void cancel() noexcept {
    cancel_subscription();
    latch_.set();
  }

  done_latch& latch() noexcept { return latch_; }

 private:
  void cancel_subscription() noexcept {
    std::shared_ptr<subscription> s;
    {
      std::lock_guard lock(m_);
      cancelled_ = true;
      s = sub_;  // sub_ itself is never reset: on_next reads it without the lock
    }
    if (s) s->cancel();
  }

  // Rule 2.4: after this the subscription is considered cancelled; nothing calls it again.
  void deliver(std::exception_ptr e) {
    if (e) {
      if (o_.on_error) o_.on_error(std::move(e));
    } else if (o_.on_complete) {
      o_.on_complete();
    }
    latch_.set();
  }

  F f_;
  subscribe_options o_;
  // Guards the one write of sub_ (in on_subscribe) against cancel() from a handle; on_next
  // reads sub_ without it (it happens after on_subscribe, and sub_ never changes again). The
  // subscription keeps nothing of ours once cancelled or terminated (rule 3.13): no cycle.
  std::mutex m_;
  std::shared_ptr<subscription> sub_;
  bool cancelled_ = false;
  std::int64_t received_ = 0;  // signal thread only
  done_latch latch_;
};

}  // namespace detail

// A handle to a running subscribe(). Copyable; dropping it does not cancel (the stream runs to
// its end): call cancel() for that.
class subscription_handle {
 public:
  subscription_handle() = default;
  subscription_handle(std::function<void()> cancel, std::shared_ptr<void> keep,
                      detail::done_latch* latch)
      : cancel_(std::move(cancel)), keep_(std::move(keep)), latch_(latch) {}

  // Idempotent; thread-safe. No signal reaches the lambdas after cancel() returned, except one
  // already in flight on another thread.
  void cancel() const {
    if (cancel_) cancel_();
  }
  // Terminated (completed, failed) or cancelled. Best effort: may turn true right after.
  [[nodiscard]] bool done() const noexcept { return !latch_ || latch_->is_set(); }
  // Waits until done(); false on timeout.
  template <class Rep, class Period>
  bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
    return !latch_ || latch_->wait_until(bp::detail::deadline_after(timeout));
  }

 private:
  std::function<void()> cancel_;
  std::shared_ptr<void> keep_;
  detail::done_latch* latch_ = nullptr;
};

// Subscribes `on_next` (called for each element, serially) with the given options.
template <publisher_type P, class F>
requires std::invocable<F&, element_t<P>> subscription_handle
subscribe(const std::shared_ptr<P>& pub, F on_next, subscribe_options o = {}) {
  using T = element_t<P>;
  if (!pub) throw std::invalid_argument("bp::rs::subscribe: publisher pub is null");
  auto s = std::make_shared<detail::lambda_subscriber<T, F>>(std::move(on_next), std::move(o));
  pub->subscribe(s);
  auto* latch = &s->latch();
  return subscription_handle([s] { s->cancel(); }, s, latch);
}

// What to_iterable's timeout variant throws when an element does not come in time.
class timeout_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A bounded channel that subscribes itself to a publisher and requests only as its slots free
// up: `capacity` at first, then `capacity - capacity/4` each time that many were received. The
// publisher therefore never has more than `capacity` elements buffered or in flight: Signal on
// the publishing side, Block on the receiving side.
//
// Thread safety: any number of threads may receive concurrently; the object itself (handles
// are shared_ptr-like copies of one state) may be copied between threads.
// Errors: when the stream fails, receiving ends as for a closed channel (std::nullopt) and
// error() holds the exception. An upstream sending more than requested (rule 1.1) is cancelled
// and reported through error() as a std::runtime_error.
// Cancellation: cancel(), or destroying the last handle, cancels the subscription.
template <class T>
class subscription_channel {
  struct state;

  class sink final : public subscriber<T> {
   public:
    explicit sink(std::shared_ptr<state> st) : st_(std::move(st)) {}
    void on_subscribe(std::shared_ptr<subscription> s) override {
      if (!s) throw std::invalid_argument("bp::rs::to_channel: on_subscribe(nullptr)");
      {
        std::lock_guard lock(st_->m);
        if (st_->sub || st_->cancelled) {
          s->cancel();
          return;
        }
        st_->sub = s;
      }
      s->request(static_cast<std::int64_t>(st_->ch.capacity()));
    }
    void on_next(T v) override {
      if (st_->ch.try_send(std::move(v)) != status::ok && !st_->ch.is_closed()) {
        st_->set_error(std::make_exception_ptr(std::runtime_error(
            "bp::rs::to_channel: publisher sent more than requested (rule 1.1)")));
        st_->cancel();
        st_->ch.close();
      }
    }
    void on_error(std::exception_ptr e) override {
      st_->set_error(std::move(e));
      st_->ch.close();
      st_->drop_sub();
    }
    void on_complete() override {
      st_->ch.close();
      st_->drop_sub();
    }

   private:
    std::shared_ptr<state> st_;
  };

  struct state {
    explicit state(std::size_t capacity) : ch(capacity), refill(refill_of(capacity)) {}
    static std::int64_t refill_of(std::size_t c) {
      const auto n = static_cast<std::int64_t>(c);
      return n - n / 4;
    }
    void credit() {
      const std::int64_t c = consumed.fetch_add(1, std::memory_order_relaxed) + 1;
      if (c % refill != 0) return;
      std::shared_ptr<subscription> s;
      {
        std::lock_guard lock(m);
        s = sub;
      }
      if (s) s->request(refill);
    }
    void cancel() {
      std::shared_ptr<subscription> s;
      {
        std::lock_guard lock(m);
        cancelled = true;
        s = std::move(sub);
      }
      if (s) s->cancel();
    }
    void set_error(std::exception_ptr e) {
      std::lock_guard lock(m);
      if (!error) error = std::move(e);
    }
    std::exception_ptr get_error() {
      std::lock_guard lock(m);
      return error;
    }
    void drop_sub() {
      std::lock_guard lock(m);
      sub.reset();
    }

    bp::channel<T> ch;
    const std::int64_t refill;
    std::atomic<std::int64_t> consumed{0};
    std::mutex m;  // guards sub, cancelled, error (taken once per refill, not per element)
    std::shared_ptr<subscription> sub;
    bool cancelled = false;
    std::exception_ptr error;
  };

  struct owner {  // the last handle cancels
    explicit owner(std::shared_ptr<state> s) noexcept : st(std::move(s)) {}
    owner(const owner&) = delete;
    owner& operator=(const owner&) = delete;
    std::shared_ptr<state> st;
    ~owner() {
      st->cancel();
      st->ch.close();
    }
  };

 public:
  using value_type = T;

  // Subscribes to `pub` at once. capacity > 0.
  subscription_channel(const publisher_ptr<T>& pub, std::size_t capacity) {
    if (!pub) throw std::invalid_argument("bp::rs::to_channel: publisher pub is null");
    if (capacity == 0) throw std::invalid_argument("bp::rs::to_channel: capacity must be > 0");
    auto st = std::make_shared<state>(capacity);
    o_ = std::make_shared<owner>(st);
    pub->subscribe(std::make_shared<sink>(std::move(st)));
  }

  // Waits while empty; std::nullopt once the stream ended (see error()) and all was received.
  [[nodiscard]] std::optional<T> recv() { return credited(st().ch.recv()); }
  [[nodiscard]] std::optional<T> try_recv() { return credited(st().ch.try_recv()); }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
    return credited(st().ch.recv_for(timeout));
  }
  // Cancellable: std::nullopt at once when `stop` is stopped while waiting (the stream goes on;
  // a later recv gets the next value).
  [[nodiscard]] std::optional<T> recv(const std::stop_token& stop) {
    return credited(st().ch.recv(stop));
  }

  // The stream's error, once receiving ended; null if it completed (or is still running).
  [[nodiscard]] std::exception_ptr error() const {
    return st().ch.is_closed() ? st().get_error() : nullptr;
  }
  // True once the stream ended or was cancelled (buffered values may remain).
  [[nodiscard]] bool is_closed() const noexcept { return st().ch.is_closed(); }
  // Buffered now (best effort).
  [[nodiscard]] std::size_t size() const noexcept { return st().ch.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return st().ch.capacity(); }

  // Cancels the subscription and closes the channel: receivers get what is buffered, then the
  // end. Idempotent.
  void cancel() {
    st().cancel();
    st().ch.close();
  }

 private:
  state& st() const noexcept { return *o_->st; }
  std::optional<T> credited(std::optional<T> v) {
    if (v) st().credit();
    return v;
  }
  std::shared_ptr<owner> o_;
};

// Subscribes a subscription_channel of `capacity` to `pub`.
template <publisher_type P>
[[nodiscard]] auto to_channel(const std::shared_ptr<P>& pub, std::size_t capacity) {
  using T = element_t<P>;
  return subscription_channel<T>(publisher_ptr<T>(pub), capacity);
}

namespace detail {

// into_channel: a subscriber that feeds a channel someone else owns. Elements land in a small
// buffer of `prefetch` (what is requested ahead); a pump thread moves them into the target with
// a blocking send and requests more only as the target accepts them (low tide: prefetch -
// prefetch/4 at a time). The publisher's thread never blocks; the target's fullness reaches
// the publisher as missing demand. cancel() stops the send the pump may be parked in (a
// std::stop_token) and closes the buffer, so the pump leaves at once, without polling. The
// pump thread belongs to the feeder and is joined by its last reference (owned_pump).
template <class T, class Target>
class channel_feeder final : public subscriber<T>,
                             public std::enable_shared_from_this<channel_feeder<T, Target>> {
 public:
  channel_feeder(Target target, std::size_t prefetch, bool close_at_end,
                 std::function<void(std::exception_ptr)> on_error)
      : buf_(prefetch),
        target_(std::move(target)),
        limit_(static_cast<std::int64_t>(prefetch - prefetch / 4)),
        close_at_end_(close_at_end),
        on_error_(std::move(on_error)) {}

  void on_subscribe(std::shared_ptr<subscription> s) override {
    if (!s) throw std::invalid_argument("bp::rs::into_channel: on_subscribe(nullptr)");
    {
      std::lock_guard lock(m_);
      if (sub_ || cancelled_) {  // rule 2.5
        s->cancel();
        return;
      }
      sub_ = s;
    }
    pump_thread_.start([self = this->shared_from_this()]() mutable {
      self->pump();
      self.reset();  // may be the last reference: then ~channel_feeder runs on this thread
    });
    s->request(static_cast<std::int64_t>(buf_.capacity()));
  }
  void on_next(T v) override {
    if (buf_.try_send(std::move(v)) == status::ok || buf_.is_closed()) return;
    fail(std::make_exception_ptr(
        std::runtime_error("bp::rs::into_channel: publisher sent more than requested (rule 1.1)")));
    cancel();
  }
  void on_error(std::exception_ptr e) override {
    upstream_ended();
    fail(std::move(e));
  }
  void on_complete() override {
    upstream_ended();
    buf_.close();
  }

  void cancel() noexcept {
    std::shared_ptr<subscription> s;
    {
      std::lock_guard lock(m_);
      cancelled_ = true;
      s = sub_;
    }
    if (s) s->cancel();
    stop_.request_stop();  // wakes a send to the target at once
    buf_.close();
  }
  done_latch& latch() noexcept { return latch_; }

 private:
  void fail(std::exception_ptr e) {
    {
      std::lock_guard lock(m_);
      if (!error_) error_ = std::move(e);
    }
    buf_.close();
  }
  void upstream_ended() {
    std::lock_guard lock(m_);
    ended_ = true;
  }

  void pump() {
    std::int64_t accepted = 0;
    const std::stop_token stopped = stop_.get_token();
    while (auto v = buf_.recv()) {
      const status st = target_->send(std::move(*v), stopped);
      if (st != status::ok) {  // closed by its receivers (or we were cancelled): stop upstream
        cancel();
        break;
      }
      if (++accepted == limit_) {
        accepted = 0;
        std::shared_ptr<subscription> s;
        {
          std::lock_guard lock(m_);
          if (!ended_ && !cancelled_) s = sub_;  // rule 2.4: not after a terminal signal
        }
        if (s) s->request(limit_);
      }
    }
    std::exception_ptr e;
    {
      std::lock_guard lock(m_);
      e = error_;
    }
    if (close_at_end_) target_.close();
    if (e && on_error_) on_error_(e);
    latch_.set();
  }

  bp::channel<T> buf_;
  Target target_;
  const std::int64_t limit_;
  const bool close_at_end_;
  std::function<void(std::exception_ptr)> on_error_;
  std::mutex m_;  // guards sub_, cancelled_, error_
  std::shared_ptr<subscription> sub_;
  bool cancelled_ = false;
  bool ended_ = false;
  std::exception_ptr error_;
  done_latch latch_;
  std::stop_source stop_;   // stopped by cancel()
  owned_pump pump_thread_;  // last: joined before the members above are destroyed
};

template <class T>
struct shared_channel_target {
  std::shared_ptr<bp::channel<T>> ch;
  bp::channel<T>* operator->() const noexcept { return ch.get(); }
  void close() { ch->close(); }
};

template <class T>
struct sender_target {
  bp::sender<T> tx;
  const bp::sender<T>* operator->() const noexcept { return &tx; }
  void close() { tx.reset(); }  // our ownership ends; the channel closes with its last sender
};

template <class T, class Target>
subscription_handle feed(const publisher_ptr<T>& pub, Target target, std::size_t prefetch,
                         bool close_at_end, std::function<void(std::exception_ptr)> on_error) {
  if (!pub) throw std::invalid_argument("bp::rs::into_channel: publisher pub is null");
  if (prefetch == 0) throw std::invalid_argument("bp::rs::into_channel: prefetch must be > 0");
  auto f = std::make_shared<channel_feeder<T, Target>>(std::move(target), prefetch, close_at_end,
                                                       std::move(on_error));
  pub->subscribe(f);
  auto* latch = &f->latch();
  return subscription_handle([f] { f->cancel(); }, f, latch);
}

}  // namespace detail

// Feeds an existing channel from a publisher (Signal -> Block): requests `prefetch` ahead, then
// more only as the channel accepts values (each refill 75% of prefetch). A pump thread does the
// blocking sends, so the publisher never blocks. At the end (completion, error, cancel) the
// channel is closed (close_at_end) and on_error receives a stream error. If the channel gets
// closed by someone else, the subscription is cancelled. The handle's done() turns true once the
// pump has finished.
template <publisher_type P>
subscription_handle into_channel(const std::shared_ptr<P>& pub,
                                 std::shared_ptr<bp::channel<element_t<P>>> ch,
                                 std::size_t prefetch = 16, bool close_at_end = true,
                                 std::function<void(std::exception_ptr)> on_error = {}) {
  using T = element_t<P>;
  if (!ch) throw std::invalid_argument("bp::rs::into_channel: channel ch is null");
  return detail::feed<T>(publisher_ptr<T>(pub), detail::shared_channel_target<T>{std::move(ch)},
                         prefetch, close_at_end, std::move(on_error));
}

// The same with a sender end: our copy of the sender is released at the end, so the channel
// closes when the last sender is gone (bp::make_channel's ownership rule).
template <publisher_type P>
subscription_handle into_channel(const std::shared_ptr<P>& pub, bp::sender<element_t<P>> tx,
                                 std::size_t prefetch = 16,
                                 std::function<void(std::exception_ptr)> on_error = {}) {
  using T = element_t<P>;
  if (!tx) throw std::invalid_argument("bp::rs::into_channel: sender tx is empty");
  return detail::feed<T>(publisher_ptr<T>(pub), detail::sender_target<T>{std::move(tx)}, prefetch,
                         true, std::move(on_error));
}

// A blocking single-pass range over a publisher: `for (T v : to_iterable(pub, 32))`. At most
// `prefetch` elements are requested ahead of the loop. If the stream fails, the increment that
// reaches the end throws its exception. With a timeout, an element that does not come in time
// throws bp::rs::timeout_error (and the subscription is cancelled). Leaving the loop early
// cancels the subscription when the iterable is destroyed.
template <class T>
class blocking_iterable {
 public:
  blocking_iterable(const publisher_ptr<T>& pub, std::size_t prefetch,
                    std::optional<std::chrono::nanoseconds> timeout = std::nullopt)
      : ch_(pub, prefetch), timeout_(timeout) {}

  // The next element; std::nullopt at the end; throws the stream's error or timeout_error.
  std::optional<T> next() {
    std::optional<T> v = timeout_ ? ch_.recv_for(*timeout_) : ch_.recv();
    if (v) return v;
    if (!ch_.is_closed()) {
      ch_.cancel();
      throw timeout_error("bp::rs::to_iterable: no element within the timeout");
    }
    if (auto e = ch_.error()) std::rethrow_exception(e);
    return std::nullopt;
  }

  using iterator = bp::detail::recv_iterator<T, blocking_iterable, &blocking_iterable::next>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

  void cancel() { ch_.cancel(); }

 private:
  subscription_channel<T> ch_;
  std::optional<std::chrono::nanoseconds> timeout_;
};

template <publisher_type P>
[[nodiscard]] auto to_iterable(const std::shared_ptr<P>& pub, std::size_t prefetch = 256) {
  using T = element_t<P>;
  return blocking_iterable<T>(publisher_ptr<T>(pub), prefetch);
}

template <publisher_type P, class Rep, class Period>
[[nodiscard]] auto to_iterable(const std::shared_ptr<P>& pub, std::size_t prefetch,
                               std::chrono::duration<Rep, Period> timeout) {
  using T = element_t<P>;
  return blocking_iterable<T>(publisher_ptr<T>(pub), prefetch,
                              std::chrono::duration_cast<std::chrono::nanoseconds>(timeout));
}

}  // namespace bp::rs

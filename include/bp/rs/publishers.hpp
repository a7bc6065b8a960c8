// bp/rs/publishers.hpp: sources of demand-driven streams.
//
//   bp::rs::range(start, count)   start, start+1, ..., start+count-1, then on_complete
//   bp::rs::empty<T>()            on_complete right after on_subscribe
//   bp::rs::error<T>(e)           on_error(e) right after on_subscribe, without demand
//   bp::rs::just(v...)            the given values
//   bp::rs::from_container(c)     the elements of a container (copied per subscriber)
//   bp::rs::generate(fn)          a pull source: fn() -> std::optional<T>, called only when there
//                                 is demand; std::nullopt ends the stream
//   bp::rs::from_channel(rx)      receives from a bp::channel as demand allows (Block -> Signal)
//
// Every publisher here is cold and unicast: each subscribe starts its own sequence (rule 1.11).
// All but from_channel emit on the thread that calls request (or subscribe), inside the drain
// loop of detail/emitter.hpp, which bounds recursion (rule 3.3) and serialises signals.
//
// Example:
//
//   auto lines = bp::rs::generate<std::string>([&in]() -> std::optional<std::string> {
//     std::string s;
//     if (std::getline(in, s)) return s;
//     return std::nullopt;                     // end of input: on_complete
//   });                                        // getline runs only when downstream asked
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../channel.hpp"
#include "../detail/event_count.hpp"
#include "../detail/wait.hpp"
#include "detail/demand.hpp"
#include "detail/emitter.hpp"
#include "detail/owned_pump.hpp"
#include "interfaces.hpp"

namespace bp::rs {

namespace detail {

template <class T>
void check_subscriber(const std::shared_ptr<subscriber<T>>& s, const char* who) {
  if (!s) throw_null_subscriber(who);
}

class range_emitter : public emitter<std::int64_t, range_emitter> {
 public:
  range_emitter(std::shared_ptr<subscriber<std::int64_t>> s, std::int64_t start,
                std::int64_t count) noexcept
      : emitter(std::move(s)), start_(start), count_(count) {}
  std::optional<std::int64_t> poll() noexcept {
    if (index_ == count_) return std::nullopt;
    return start_ + index_++;  // never overflows: range() checked start + count - 1
  }
  std::optional<std::exception_ptr> terminal() noexcept {
    if (index_ == count_) return std::exception_ptr{};  // complete right after the last element
    return std::nullopt;
  }

 private:
  const std::int64_t start_, count_;
  std::int64_t index_ = 0;
};

class range_publisher final : public publisher<std::int64_t> {
 public:
  range_publisher(std::int64_t start, std::int64_t count) : start_(start), count_(count) {}
  void subscribe(std::shared_ptr<subscriber<std::int64_t>> s) override {
    check_subscriber(s, "bp::rs::range");
    start_emitter<range_emitter>(std::move(s), start_, count_);
  }

 private:
  std::int64_t start_, count_;
};

// Terminates at once with `error` (null: on_complete).
template <class T>
class terminal_emitter : public emitter<T, terminal_emitter<T>> {
 public:
  terminal_emitter(std::shared_ptr<subscriber<T>> s, std::exception_ptr e) noexcept
      : emitter<T, terminal_emitter<T>>(std::move(s)), error_(std::move(e)) {}
  std::optional<T> poll() noexcept { return std::nullopt; }
  std::optional<std::exception_ptr> terminal() noexcept { return error_; }

 private:
  std::exception_ptr error_;
};

template <class T>
class terminal_publisher final : public publisher<T> {
 public:
  explicit terminal_publisher(std::exception_ptr e) : error_(std::move(e)) {}
  void subscribe(std::shared_ptr<subscriber<T>> s) override {
    check_subscriber(s, error_ ? "bp::rs::error" : "bp::rs::empty");
    start_emitter<terminal_emitter<T>>(std::move(s), error_);
  }

 private:
  std::exception_ptr error_;
};

template <class C>
class container_emitter : public emitter<typename C::value_type, container_emitter<C>> {
  using T = typename C::value_type;

 public:
  container_emitter(std::shared_ptr<subscriber<T>> s, std::shared_ptr<const C> c)
      : emitter<T, container_emitter<C>>(std::move(s)),
        c_(std::move(c)),
        it_(std::begin(*c_)),
        end_(std::end(*c_)) {}
  std::optional<T> poll() {
    if (it_ == end_) return std::nullopt;
    return *it_++;
  }
  std::optional<std::exception_ptr> terminal() noexcept {
    if (it_ == end_) return std::exception_ptr{};
    return std::nullopt;
  }

 private:
  std::shared_ptr<const C> c_;
  typename C::const_iterator it_, end_;
};

template <class C>
class container_publisher final : public publisher<typename C::value_type> {
  using T = typename C::value_type;

 public:
  explicit container_publisher(C c) : c_(std::make_shared<const C>(std::move(c))) {}
  void subscribe(std::shared_ptr<subscriber<T>> s) override {
    check_subscriber(s, "bp::rs::from_container");
    start_emitter<container_emitter<C>>(std::move(s), c_);
  }

 private:
  std::shared_ptr<const C> c_;
};

template <class T, class F>
class generate_emitter : public emitter<T, generate_emitter<T, F>> {
 public:
  generate_emitter(std::shared_ptr<subscriber<T>> s, F fn)
      : emitter<T, generate_emitter<T, F>>(std::move(s)), fn_(std::move(fn)) {}
  std::optional<T> poll() {
    if (ended_) return std::nullopt;
    std::optional<T> v = fn_();  // only here, only with demand outstanding
    if (!v) ended_ = true;
    return v;
  }
  std::optional<std::exception_ptr> terminal() noexcept {
    if (ended_) return std::exception_ptr{};
    return std::nullopt;
  }

 private:
  F fn_;
  bool ended_ = false;
};

template <class T, class F>
class generate_publisher final : public publisher<T> {
 public:
  explicit generate_publisher(F fn) : fn_(std::move(fn)) {}
  void subscribe(std::shared_ptr<subscriber<T>> s) override {
    check_subscriber(s, "bp::rs::generate");
    start_emitter<generate_emitter<T, F>>(std::move(s), fn_);  // each subscriber: its own copy
  }

 private:
  F fn_;
};

// from_channel: receiving may block, so each subscription has a pump thread that receives only
// while demand is outstanding and is the only thread that signals. request/cancel just record
// and wake it; cancel also stops the receive the pump may be parked in (a std::stop_token), so
// an idle channel costs no polling and a cancel is seen at once.
//
// The pump thread belongs to the subscription (owned_pump): it keeps the subscription alive
// while it runs, since a subscriber may drop its reference and still expect the elements it
// requested, and the last reference joins it. No thread outlives the stream it serves.
template <class T, class Rx>
class channel_source final : public subscription,
                             public std::enable_shared_from_this<channel_source<T, Rx>> {
 public:
  channel_source(std::shared_ptr<subscriber<T>> s, Rx rx)
      : down_(std::move(s)), rx_(std::move(rx)) {}

  // Starts the pump; once, after on_subscribe.
  void start() {
    pump_.start([self = this->shared_from_this()]() mutable {
      self->run();
      self.reset();  // may be the last reference: then ~channel_source runs on this thread
    });
  }

  void request(std::int64_t n) override {
    if (n <= 0) {
      std::int64_t none = 1;
      bad_.compare_exchange_strong(none, n, std::memory_order_acq_rel);
    } else {
      add_demand(requested_, n);
    }
    wake_.notify_one();
  }
  void cancel() override {
    cancelled_.store(true, std::memory_order_release);
    stop_.request_stop();
    wake_.notify_one();
  }

  void run() noexcept {
    const std::stop_token stopped = stop_.get_token();
    for (;;) {
      if (cancelled_.load(std::memory_order_acquire)) break;
      if (const auto b = bad_.load(std::memory_order_acquire); b <= 0) {
        down_->on_error(non_positive_request(b));
        break;
      }
      if (requested_.load(std::memory_order_acquire) == 0) {
        (void)bp::detail::wait_until(wake_, bp::detail::forever(), [&] {
          return requested_.load(std::memory_order_acquire) != 0 ||
                 cancelled_.load(std::memory_order_acquire) ||
                 bad_.load(std::memory_order_acquire) <= 0;
        });
        continue;
      }
      // Waits for a value; std::nullopt once closed and drained, or when cancel() stops it.
      std::optional<T> v = rx_->recv(stopped);
      if (v) {
        down_->on_next(std::move(*v));
        consume_demand(requested_, 1);
      } else if (!cancelled_.load(std::memory_order_acquire)) {
        down_->on_complete();
        break;
      }
    }
    down_.reset();  // rule 3.13
  }

 private:
  std::shared_ptr<subscriber<T>> down_;  // the pump thread's alone
  Rx rx_;
  std::atomic<std::int64_t> requested_{0};
  std::atomic<std::int64_t> bad_{1};
  std::atomic<bool> cancelled_{false};
  std::stop_source stop_;
  alignas(bp::detail::cache_line) bp::detail::event_count wake_;
  owned_pump pump_;  // last: joined before the members above are destroyed
};

// Adapts a receiver<T> to the pointer-like interface channel_source uses.
template <class T>
struct receiver_ref {
  bp::receiver<T> rx;
  const bp::receiver<T>* operator->() const noexcept { return &rx; }
};

template <class T, class Rx>
class channel_publisher final : public publisher<T> {
 public:
  explicit channel_publisher(Rx rx) : rx_(std::move(rx)) {}
  void subscribe(std::shared_ptr<subscriber<T>> s) override {
    check_subscriber(s, "bp::rs::from_channel");
    auto src = std::make_shared<channel_source<T, Rx>>(s, rx_);
    s->on_subscribe(src);
    src->start();  // ends on completion, error or cancel; joined by the last reference
  }

 private:
  Rx rx_;
};

}  // namespace detail

// start, start+1, ..., start+count-1, then on_complete (right after the last element, without
// waiting for more demand). Throws std::invalid_argument if count < 0 or the last value would
// overflow std::int64_t.
[[nodiscard]] inline publisher_ptr<std::int64_t> range(std::int64_t start, std::int64_t count) {
  if (count < 0)
    throw std::invalid_argument("bp::rs::range: count must be >= 0, got " + std::to_string(count));
  if (count > 0 && start > unbounded - (count - 1))
    throw std::invalid_argument("bp::rs::range: start + count - 1 overflows int64 (start = " +
                                std::to_string(start) + ", count = " + std::to_string(count) + ")");
  return std::make_shared<detail::range_publisher>(start, count);
}

// Signals on_error(e) right after on_subscribe, without waiting for demand. Throws
// std::invalid_argument if e is null.
template <class T>
[[nodiscard]] publisher_ptr<T> error(std::exception_ptr e) {
  if (!e) throw std::invalid_argument("bp::rs::error: the exception_ptr e is null");
  return std::make_shared<detail::terminal_publisher<T>>(std::move(e));
}

// Signals on_complete right after on_subscribe.
template <class T>
[[nodiscard]] publisher_ptr<T> empty() {
  return std::make_shared<detail::terminal_publisher<T>>(nullptr);
}

// The elements of `c` in iteration order; each subscriber gets copies of them.
template <class C>
requires std::copy_constructible<typename C::value_type>
[[nodiscard]] publisher_ptr<typename C::value_type> from_container(C c) {
  return std::make_shared<detail::container_publisher<C>>(std::move(c));
}

// The given values, in order.
template <class T, class... U>
requires(std::convertible_to<U, T>&&...) [[nodiscard]] publisher_ptr<T> just(T first, U... rest) {
  return from_container(std::vector<T>{std::move(first), T(std::move(rest))...});
}

// A pull source: `fn()` returns the next element or std::nullopt for the end. It is called only
// when a subscriber has outstanding demand, once per element (pull exactly n),
// never concurrently with itself. Each subscriber gets its own copy of fn. If fn throws, the
// subscriber gets on_error with that exception.
template <class F>
requires std::invocable<F&>
[[nodiscard]] auto generate(F fn) {
  using opt = std::invoke_result_t<F&>;
  using T = typename opt::value_type;
  static_assert(std::is_same_v<opt, std::optional<T>>, "generate: fn must return std::optional<T>");
  return publisher_ptr<T>(std::make_shared<detail::generate_publisher<T, F>>(std::move(fn)));
}

// Receives from a channel as demand allows: with n outstanding, at most n recv calls. Completes
// when the channel is closed and drained. Each subscription runs one thread (receiving may
// block); it ends on completion, error or cancel (at once: cancel stops the receive it waits
// in). The thread belongs to the subscription: whoever drops the last reference to it joins
// the thread, so none outlives the stream. Several subscribers of one channel compete for its
// values, as several receivers would.
template <class T>
[[nodiscard]] publisher_ptr<T> from_channel(std::shared_ptr<bp::channel<T>> ch) {
  if (!ch) throw std::invalid_argument("bp::rs::from_channel: channel ch is null");
  return std::make_shared<detail::channel_publisher<T, std::shared_ptr<bp::channel<T>>>>(
      std::move(ch));
}
template <class T>
[[nodiscard]] publisher_ptr<T> from_channel(bp::receiver<T> rx) {
  if (!rx) throw std::invalid_argument("bp::rs::from_channel: receiver rx is empty");
  return std::make_shared<detail::channel_publisher<T, detail::receiver_ref<T>>>(
      detail::receiver_ref<T>{std::move(rx)});
}

}  // namespace bp::rs

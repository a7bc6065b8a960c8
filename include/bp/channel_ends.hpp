// bp/channel_ends.hpp: the two ends of a bp::channel, with ownership-based closing (Go's
// "close when the last sender is done" without anyone calling close()).
//
//   bp::sender<T>, bp::receiver<T>  copyable handles; the channel closes when the last sender
//                                   or the last receiver is gone.
//   bp::make_channel<T>             creates a channel and returns {sender, receiver}.
//
// bp/channel.hpp includes this header: `#include <bp/channel.hpp>` is all a user needs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stop_token>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "detail/recv_iterator.hpp"
#include "detail/send_verbs.hpp"
#include "status.hpp"

namespace bp {

namespace detail {
template <class T>
struct channel_core {
  template <class... A>
  explicit channel_core(A&&... a) : ch(std::forward<A>(a)...) {}
  channel<T> ch;
  std::atomic<std::size_t> senders{1};
  std::atomic<std::size_t> receivers{1};
};

// Copy = one more owner of that end; the last owner of an end closes the channel.
template <class T, std::atomic<std::size_t> channel_core<T>::*Count>
class channel_end {
 public:
  channel_end() = default;
  explicit channel_end(std::shared_ptr<channel_core<T>> c) noexcept : c_(std::move(c)) {}
  channel_end(const channel_end& o) noexcept : c_(o.c_) {
    if (c_) ((*c_).*Count).fetch_add(1, std::memory_order_relaxed);
  }
  channel_end(channel_end&& o) noexcept = default;
  channel_end& operator=(channel_end o) noexcept {
    std::swap(c_, o.c_);
    return *this;
  }
  ~channel_end() { reset(); }

  // Gives up this handle (as destruction does); the handle is then empty.
  void reset() noexcept {
    if (c_ && ((*c_).*Count).fetch_sub(1, std::memory_order_acq_rel) == 1) c_->ch.close();
    c_.reset();
  }

  explicit operator bool() const noexcept { return c_ != nullptr; }
  void close() const {
    if (c_) c_->ch.close();
  }
  [[nodiscard]] bool is_closed() const noexcept { return !c_ || c_->ch.is_closed(); }
  [[nodiscard]] std::size_t size() const noexcept { return c_ ? c_->ch.size() : 0; }
  [[nodiscard]] std::size_t capacity() const noexcept { return c_ ? c_->ch.capacity() : 0; }
  [[nodiscard]] channel_stats stats() const noexcept {
    return c_ ? c_->ch.stats() : channel_stats{};
  }

 protected:
  channel<T>* get() const noexcept { return c_ ? &c_->ch : nullptr; }

 private:
  std::shared_ptr<channel_core<T>> c_;
};
}  // namespace detail

namespace detail {
// What the async verbs of an empty end (moved-from or default-constructed) await: a channel that
// is closed from the start, so they answer `closed` at once, as the blocking verbs do.
template <channel_element T>
channel<T>& closed_channel() {
  static channel<T>* const ch = [] {
    static channel<T> c(1);
    c.close();
    return &c;
  }();
  return *ch;
}
}  // namespace detail

// The sending end of a channel made by make_channel. Copyable: each copy is an owner; when the
// last sender is destroyed (or reset()), the channel closes and receivers drain, then see the
// end. An empty (default-constructed or moved-from) sender answers `closed`.
// Thread safety: as bp::channel; one handle object itself is not to be mutated concurrently.
template <channel_element T>
class sender : public detail::channel_end<T, &detail::channel_core<T>::senders>,
               public detail::send_verbs<sender<T>, T, status> {
  using base = detail::channel_end<T, &detail::channel_core<T>::senders>;

 public:
  using value_type = T;
  using base::base;

  // send, try_send, send_for, send_until as bp::channel's (detail::send_verbs); an empty sender
  // answers `closed`.
  using detail::send_verbs<sender<T>, T, status>::send;
  using detail::send_verbs<sender<T>, T, status>::try_send;
  using detail::send_verbs<sender<T>, T, status>::send_for;
  using detail::send_verbs<sender<T>, T, status>::send_until;

  [[nodiscard]] send_permit<T> reserve(std::size_t n = 1) const {
    return ch() ? ch()->reserve(n) : send_permit<T>();
  }
  [[nodiscard]] send_permit<T> try_reserve(std::size_t n = 1) const {
    return ch() ? ch()->try_reserve(n) : send_permit<T>();
  }
  template <class Rep, class Period>
  [[nodiscard]] send_permit<T> reserve_for(std::size_t n,
                                           std::chrono::duration<Rep, Period> t) const {
    return ch() ? ch()->reserve_for(n, t) : send_permit<T>();
  }
  [[nodiscard]] send_permit<T> reserve(std::size_t n, const std::stop_token& stop) const {
    return ch() ? ch()->reserve(n, stop) : send_permit<T>();
  }
  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result send_n(R&& values, const std::stop_token& stop) const {
    return ch() ? ch()->send_n(values, stop) : send_n_result{0, status::closed};
  }
  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result send_n(R&& values) const {
    return ch() ? ch()->send_n(values) : send_n_result{0, status::closed};
  }
  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result try_send_n(R&& values) const {
    return ch() ? ch()->try_send_n(values) : send_n_result{0, status::closed};
  }
  template <class R, class Rep, class Period>
  requires batch_range<R, T>
  [[nodiscard]] send_n_result send_n_for(R&& values, std::chrono::duration<Rep, Period> t) const {
    return ch() ? ch()->send_n_for(values, t) : send_n_result{0, status::closed};
  }

  // As channel's (docs/async.md); an empty sender's answers `closed` at once.
  [[nodiscard]] detail::channel_send_op<channel<T>> async_send(T&& value,
                                                               async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>())
        .async_send(std::move(value), std::move(opts));
  }
  template <class Rep, class Period>
  [[nodiscard]] detail::channel_send_op<channel<T>> async_send_for(
      T&& value, std::chrono::duration<Rep, Period> t, async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>())
        .async_send_for(std::move(value), t, std::move(opts));
  }
  template <class R>
  requires batch_range<R, T>
  [[nodiscard]] task<send_n_result> async_send_n(R& values, async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>()).async_send_n(values, std::move(opts));
  }
  [[nodiscard]] auto async_reserve(std::size_t n = 1, async_options opts = {}) const {
    if (!ch()) return detail::closed_channel<T>().async_reserve(1, std::move(opts));
    return ch()->async_reserve(n, std::move(opts));
  }
  template <class Rep, class Period>
  [[nodiscard]] auto async_reserve_for(std::size_t n, std::chrono::duration<Rep, Period> t,
                                       async_options opts = {}) const {
    if (!ch()) return detail::closed_channel<T>().async_reserve_for(1, t, std::move(opts));
    return ch()->async_reserve_for(n, t, std::move(opts));
  }

 private:
  friend class detail::send_verbs<sender<T>, T, status>;
  status send_value(T& value, bool may_wait, detail::clock::time_point deadline) const {
    return ch() ? ch()->send_value(value, may_wait, deadline) : status::closed;
  }
  channel<T>* ch() const noexcept { return this->get(); }
};

// The receiving end of a channel made by make_channel. Copyable: each copy is an owner; when
// the last receiver is destroyed (or reset()), the channel closes and sends answer `closed`.
// Values still buffered then go to the drop handler when the channel is destroyed.
// An empty receiver behaves as a closed, drained channel.
template <channel_element T>
class receiver : public detail::channel_end<T, &detail::channel_core<T>::receivers> {
  using base = detail::channel_end<T, &detail::channel_core<T>::receivers>;

 public:
  using value_type = T;
  using base::base;

  [[nodiscard]] std::optional<T> recv() const { return ch() ? ch()->recv() : std::nullopt; }
  [[nodiscard]] std::optional<T> try_recv() const { return ch() ? ch()->try_recv() : std::nullopt; }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> recv_for(std::chrono::duration<Rep, Period> t) const {
    return ch() ? ch()->recv_for(t) : std::nullopt;
  }
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<T> recv_until(std::chrono::time_point<Clock, Duration> d) const {
    return ch() ? ch()->recv_until(d) : std::nullopt;
  }
  // As channel's: ok | closed (| full | timeout); an empty receiver answers `closed`.
  [[nodiscard]] status recv(T& out) const { return ch() ? ch()->recv(out) : status::closed; }
  [[nodiscard]] status try_recv(T& out) const {
    return ch() ? ch()->try_recv(out) : status::closed;
  }
  template <class Rep, class Period>
  [[nodiscard]] status recv_for(T& out, std::chrono::duration<Rep, Period> t) const {
    return ch() ? ch()->recv_for(out, t) : status::closed;
  }
  template <class Clock, class Duration>
  [[nodiscard]] status recv_until(T& out, std::chrono::time_point<Clock, Duration> d) const {
    return ch() ? ch()->recv_until(out, d) : status::closed;
  }
  // Cancellable, as channel's: `cancelled` once `stop` is stopped while waiting.
  [[nodiscard]] std::optional<T> recv(const std::stop_token& stop) const {
    return ch() ? ch()->recv(stop) : std::nullopt;
  }
  [[nodiscard]] status recv(T& out, const std::stop_token& stop) const {
    return ch() ? ch()->recv(out, stop) : status::closed;
  }
  template <class Rep, class Period>
  [[nodiscard]] status recv_for(T& out, std::chrono::duration<Rep, Period> t,
                                const std::stop_token& stop) const {
    return ch() ? ch()->recv_for(out, t, stop) : status::closed;
  }
  template <class Clock, class Duration>
  [[nodiscard]] status recv_until(T& out, std::chrono::time_point<Clock, Duration> d,
                                  const std::stop_token& stop) const {
    return ch() ? ch()->recv_until(out, d, stop) : status::closed;
  }
  // As channel's (docs/async.md); an empty receiver's answer `closed` (std::nullopt) at once.
  [[nodiscard]] detail::channel_recv_op<channel<T>, false> async_recv(
      async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>()).async_recv(std::move(opts));
  }
  [[nodiscard]] detail::channel_recv_op<channel<T>, true> async_recv(
      T& out, async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>()).async_recv(out, std::move(opts));
  }
  template <class Rep, class Period>
  [[nodiscard]] detail::channel_recv_op<channel<T>, false> async_recv_for(
      std::chrono::duration<Rep, Period> t, async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>()).async_recv_for(t, std::move(opts));
  }
  template <class Rep, class Period>
  [[nodiscard]] detail::channel_recv_op<channel<T>, true> async_recv_for(
      T& out, std::chrono::duration<Rep, Period> t, async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>()).async_recv_for(out, t, std::move(opts));
  }
  [[nodiscard]] detail::channel_recv_many_op<channel<T>> async_recv_many(
      std::vector<T>& out, std::size_t max, async_options opts = {}) const {
    return (ch() ? *ch() : detail::closed_channel<T>()).async_recv_many(out, max, std::move(opts));
  }
  std::size_t recv_many(std::vector<T>& out, std::size_t max, const std::stop_token& stop) const {
    return ch() ? ch()->recv_many(out, max, stop) : 0;
  }
  std::size_t recv_many(std::vector<T>& out, std::size_t max) const {
    return ch() ? ch()->recv_many(out, max) : 0;
  }
  std::size_t try_recv_many(std::vector<T>& out, std::size_t max) const {
    return ch() ? ch()->try_recv_many(out, max) : 0;
  }
  template <class Rep, class Period>
  std::size_t recv_many_for(std::vector<T>& out, std::size_t max,
                            std::chrono::duration<Rep, Period> t) const {
    return ch() ? ch()->recv_many_for(out, max, t) : 0;
  }
  template <class Rep, class Period>
  std::size_t recv_batch(std::vector<T>& out, std::size_t max,
                         std::chrono::duration<Rep, Period> linger) const {
    return ch() ? ch()->recv_batch(out, max, linger) : 0;
  }
  template <class Rep1, class Period1, class Rep2, class Period2>
  std::size_t recv_batch_for(std::vector<T>& out, std::size_t max,
                             std::chrono::duration<Rep1, Period1> linger,
                             std::chrono::duration<Rep2, Period2> timeout) const {
    return ch() ? ch()->recv_batch_for(out, max, linger, timeout) : 0;
  }

  // range-for: receives until closed and drained.
  using iterator =
      detail::recv_iterator<T, const receiver,
                            static_cast<std::optional<T> (receiver::*)() const>(&receiver::recv)>;
  iterator begin() const { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  channel<T>* ch() const noexcept { return this->get(); }
};

// Creates a channel owned by its ends: `auto [tx, rx] = bp::make_channel<T>(capacity, policy);`
// Arguments are those of bp::channel's constructors (and throw the same way).
template <channel_element T, class... Args>
[[nodiscard]] std::pair<sender<T>, receiver<T>> make_channel(Args&&... args) {
  auto core = std::make_shared<detail::channel_core<T>>(std::forward<Args>(args)...);
  return {sender<T>(core), receiver<T>(std::move(core))};
}

// The same with designated initializers:
//   auto [tx, rx] = bp::make_channel<Frame>({.capacity = 64, .policy = bp::overflow::drop_oldest});
template <channel_element T>
[[nodiscard]] std::pair<sender<T>, receiver<T>> make_channel(channel_options<T> options) {
  return make_channel<T, channel_options<T>>(std::move(options));
}

}  // namespace bp

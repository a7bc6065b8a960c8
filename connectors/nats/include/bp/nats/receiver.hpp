// bp/nats/receiver.hpp: the receiving end of a JetStream-backed channel.
//
//   bp::nats::receiver<T, Codec>  recv / try_recv / recv_for / recv_until / range-for, like
//                                 bp::channel (std::optional<T>, or a bp::status with
//                                 recv(out)); recv_message() for explicit acknowledgement.
//   bp::nats::delivery<T>         a received value with ack / nak / in_progress / term.
//
// Example (compiled twin: connectors/nats/examples/jetstream_pipeline.cpp):
//
//   bp::nats::receiver<std::string> rx({.servers = {url}, .stream = "ORDERS",
//                                       .subject = "orders", .capacity = 1000});
//   for (std::string order : rx) handle(order);  // ends after the sender's close()
//
//   // at-least-once processing: acknowledge after the work is done
//   while (auto d = rx.recv_message_for(std::chrono::seconds(1))) {
//     if (store(d->value)) d->ack(); else d->nak(std::chrono::seconds(1));
//   }
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include <bp/channel.hpp>
#include <bp/nats/codec.hpp>
#include <bp/nats/detail/transport.hpp>
#include <bp/nats/error.hpp>
#include <bp/nats/options.hpp>
#include <bp/status.hpp>

namespace bp::nats {

// A received value that is not yet acknowledged. Destroying it without ack/nak/term leaves the
// message pending: the server delivers it again after ack_wait (to this or any receiver of the
// durable). Movable, not copyable. Acknowledging uses the receiver's connection, which the
// delivery keeps alive.
template <class T>
class delivery {
 public:
  T value;

  delivery(T v, detail::raw_delivery raw) : value(std::move(v)), raw_(std::move(raw)) {}

  // Done: the work queue deletes the message, freeing a slot for the senders. With
  // wait_for_server, returns once the server confirmed (throws bp::nats::error otherwise).
  void ack(bool wait_for_server = false) { raw_.ack(wait_for_server); }
  // Not done: deliver again after `delay` (0 = at once).
  void nak(std::chrono::milliseconds delay = std::chrono::milliseconds(0)) { raw_.nak(delay); }
  // Still working: restarts the ack_wait timer.
  void in_progress() { raw_.in_progress(); }
  // Never deliver again (poison message); it leaves the work queue.
  void term() { raw_.term(); }
  [[nodiscard]] delivery_info info() const { return raw_.info(); }
  [[nodiscard]] bool settled() const noexcept { return raw_.settled(); }

 private:
  detail::raw_delivery raw_;
};

// The consumer side of a JetStream-backed channel: a pull consumer on a durable, so several
// receiver processes share the work and a crashed one loses nothing.
//
// recv() returns the next value and acknowledges it first: like bp::channel, a received value is
// consumed (at most once for the processing after recv returns). For at-least-once processing use
// recv_message() and ack() after the work. Values arrive in stream order, except redeliveries.
//
// Ends of stream: recv() answers std::nullopt (recv(out): `closed`) once a sender's close()
// marker was read, every message before it is acknowledged (by any receiver of the durable) and
// the locally fetched batch is drained, or after this receiver's close(). Like a loop over a
// closed bp::channel, a loop gets every value sent before close(): values a crashed consumer
// held come back after ack_wait and are received first (the marker is held, unacknowledged,
// meanwhile; the end is noticed within a few ms, at most 250 ms, of the last acknowledgement).
// With several receivers on one durable only the receiver that holds the marker ends.
//
// Deadlines: recv_for / recv_until / recv_message_for answer by their deadline (+ ~50 ms)
// whatever the server does (gone, stalled, restarting); try_recv within ~50 ms.
//
// Thread safety: every member may be called concurrently; receives are serialized inside.
//
// Errors: decode failures terminate the message (no redelivery) and rethrow the codec's
// exception; server and setup failures throw bp::nats::error, invalid options
// std::invalid_argument naming the field.
//
// Counters: stats().received; stats().evicted counts messages the server evicted before
// delivery (drop_oldest), seen as gaps in stream sequence numbers — exact with one receiver
// on the durable, an overcount when several receivers share it.
template <class T, class Codec = default_codec<T>>
requires codec_for<Codec, T>
class receiver {
 public:
  using value_type = T;

  explicit receiver(const options& o) : impl_(std::make_unique<detail::byte_receiver>(o)) {}

  [[nodiscard]] std::optional<T> recv() { return take(true, forever()); }
  // A value already fetched, or one pull without waiting for new messages: one round trip to
  // the server, at most 50 ms (nats.c 3.4 lets an empty no-wait pull run to its expiry).
  [[nodiscard]] std::optional<T> try_recv() { return take(false, forever()); }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
    return take(true, detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) {
    return take(true, detail::deadline_after(deadline - Clock::now()));
  }

  // The same verbs answering a bp::status, as bp::channel's, for callers that must tell a
  // timeout from the end: the value is moved into `out` on `ok`; otherwise `out` is untouched.
  // recv(out): ok | closed; try_recv(out): ok | full (nothing pending now) | closed;
  // recv_for / recv_until: ok | timeout | closed. `closed`: the end of stream (see above: the
  // marker read, nothing sent before it pending, the local batch drained) or this receiver's
  // close(); no value will come to this receiver.
  [[nodiscard]] status recv(T& out) { return take_into(out, true, forever()); }
  [[nodiscard]] status try_recv(T& out) { return take_into(out, false, forever()); }
  template <class Rep, class Period>
  [[nodiscard]] status recv_for(T& out, std::chrono::duration<Rep, Period> timeout) {
    return take_into(out, true, detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] status recv_until(T& out, std::chrono::time_point<Clock, Duration> deadline) {
    return take_into(out, true, detail::deadline_after(deadline - Clock::now()));
  }

  // The next value, not yet acknowledged.
  [[nodiscard]] std::optional<delivery<T>> recv_message() { return next(true, forever()); }
  [[nodiscard]] std::optional<delivery<T>> try_recv_message() { return next(false, forever()); }
  template <class Rep, class Period>
  [[nodiscard]] std::optional<delivery<T>> recv_message_for(
      std::chrono::duration<Rep, Period> timeout) {
    return next(true, detail::deadline_after(timeout));
  }

  // Stops receiving here (idempotent): later receives answer std::nullopt. The durable stays
  // on the server; unacknowledged messages fetched into this receiver are delivered again
  // after ack_wait.
  void close() { impl_->close(); }
  [[nodiscard]] bool is_closed() const noexcept { return impl_->is_closed(); }
  [[nodiscard]] std::size_t size() const { return impl_->state().messages; }
  [[nodiscard]] std::size_t capacity() const noexcept { return impl_->capacity(); }
  [[nodiscard]] stream_state state() const { return impl_->state(); }
  [[nodiscard]] channel_stats stats() const noexcept {
    const auto c = impl_->stats();
    channel_stats s;
    s.received = c.received;
    s.evicted = c.evicted;
    return s;
  }
  // Deliveries that were redeliveries (a consumer crashed, nak'ed or was too slow to ack).
  [[nodiscard]] std::uint64_t redelivered() const noexcept { return impl_->stats().redelivered; }

  using iterator =
      bp::detail::recv_iterator<T, receiver,
                                static_cast<std::optional<T> (receiver::*)()>(&receiver::recv)>;
  iterator begin() { return iterator(this); }
  std::default_sentinel_t end() const noexcept { return {}; }

 private:
  static constexpr detail::clock::time_point forever() noexcept {
    return detail::clock::time_point::max();
  }

  // `ended`, when given, is set on std::nullopt: true for the end of stream or close(), false
  // when the deadline (or, not waiting, the one pull) passed first.
  std::optional<delivery<T>> next(bool may_wait, detail::clock::time_point deadline,
                                  bool* ended = nullptr) {
    auto raw = impl_->recv(may_wait, deadline, 0, ended);
    if (!raw) return std::nullopt;
    std::optional<T> value;
    try {
      value.emplace(Codec::decode(raw->data()));
    } catch (...) {
      raw->term();
      throw;
    }
    impl_->count_received();
    return delivery<T>(std::move(*value), std::move(*raw));
  }

  std::optional<T> take(bool may_wait, detail::clock::time_point deadline, bool* ended = nullptr) {
    auto d = next(may_wait, deadline, ended);
    if (!d) return std::nullopt;
    d->ack();
    return std::optional<T>(std::move(d->value));
  }

  status take_into(T& out, bool may_wait, detail::clock::time_point deadline) {
    bool ended = false;
    if (auto v = take(may_wait, deadline, &ended)) {
      out = std::move(*v);
      return status::ok;
    }
    if (ended) return status::closed;
    return may_wait ? status::timeout : status::full;
  }

  std::unique_ptr<detail::byte_receiver> impl_;
};

}  // namespace bp::nats

// bp/nats/sender.hpp: the sending end of a bounded channel that spans processes and machines,
// backed by a NATS JetStream work-queue stream.
//
//   bp::nats::sender<T, Codec>  send / try_send / send_for / send_until / close with the
//                               answers of bp::channel; flush_for() for the producer window.
//
// Example (compiled twin: connectors/nats/examples/jetstream_pipeline.cpp):
//
//   bp::nats::sender<std::string> tx({.servers = {"nats://127.0.0.1:4222"},
//                                     .stream = "ORDERS", .subject = "orders",
//                                     .capacity = 1000, .policy = bp::overflow::block});
//   for (auto& o : orders)
//     if (tx.send_for(o, std::chrono::seconds(5)) != bp::status::ok) spill(o);
//   tx.close();  // the receiver drains what is stored, then recv() answers std::nullopt
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include <bp/channel.hpp>
#include <bp/nats/codec.hpp>
#include <bp/nats/detail/transport.hpp>
#include <bp/nats/error.hpp>
#include <bp/nats/options.hpp>
#include <bp/status.hpp>

namespace bp::nats {

// The producer side of a JetStream-backed channel. The stream's message limit is the channel
// capacity; what a full stream does is the bp::overflow policy:
//   policy        JetStream                                  send() returns when full
//   block         DiscardNew; retry on error 10077 with       ok (after waiting), or timeout
//                 backoff until room frees or time runs out
//   drop_newest   DiscardNew; error 10077                     dropped
//   drop_oldest   DiscardOld: the server evicts the oldest    ok (the receiver counts evictions;
//                                                             stats().evicted here stays 0)
//   reject        DiscardNew; error 10077                     full
// try_send does not wait for room (a full block stream answers full; it still makes one round
// trip to the server). A send answers ok only once the server has stored the message, or, with
// max_in_flight > 0, once it is in the producer window (a full window makes send wait,
// try_send answer full, send_for answer timeout; flush_for waits for the acknowledgements).
// Sends take `const T&`: the value is encoded, so one not taken stays with the caller.
// Movable, not copyable: one connection per sender (make several for several threads, or
// share one by reference: every member is thread-safe).
//
// When to use: producers and consumers in different processes or machines, or a buffer that
// must survive a crash (file storage). When not to use: inside one process bp::channel is
// ~1000x faster; for lossy telemetry at high rates plain NATS core pub/sub is cheaper.
//
// Thread safety: every member may be called concurrently (nats.c's context is thread-safe);
// observers (state, stats) are best effort.
//
// Errors: invalid options throw std::invalid_argument naming the field; an unreachable
// server, a missing stream with stream_setup::bind, a message larger than the stream or
// server accepts, or a publish not acknowledged within publish_retry_for throw
// bp::nats::error (a payload above the server's max_payload before any wait for room). A full
// stream is never an exception: it is the status answer.
//
// Delivery: a send answered ok is stored exactly once. A publish whose acknowledgement was lost
// is retried with the same message id, which the server deduplicates inside duplicate_window;
// a send answered timeout (or that threw) after a lost answer may or may not be stored.
//
// Deadlines: send_for / send_until / flush_for / close_for answer by their deadline (+ ~50 ms)
// whatever the server does (gone, stalled, restarting): each publish waits for its answer at
// most the time left. The untimed send / try_send retry lost answers for publish_retry_for,
// counted from the first attempt whose answer was lost, then throw.
//
// Closing: close() marks this sender closed (later sends answer `closed`) and publishes an
// end-of-stream marker after everything it sent; a receiver that reads the marker answers
// std::nullopt once drained. With several sender processes, close from the last one.
template <class T, class Codec = default_codec<T>>
requires codec_for<Codec, T>
class sender {
 public:
  using value_type = T;

  explicit sender(const options& o) : impl_(std::make_unique<detail::byte_sender>(o)) {}

  [[nodiscard]] status send(const T& value) { return send_impl(value, true, forever()); }
  [[nodiscard]] status try_send(const T& value) { return send_impl(value, false, forever()); }
  template <class Rep, class Period>
  [[nodiscard]] status send_for(const T& value, std::chrono::duration<Rep, Period> timeout) {
    return send_impl(value, true, detail::deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] status send_until(const T& value,
                                  std::chrono::time_point<Clock, Duration> deadline) {
    return send_impl(value, true, detail::deadline_after(deadline - Clock::now()));
  }

  // Producer window only: waits until every publish is acknowledged (block-policy publishes
  // refused for lack of room are retried). ok, or timeout.
  template <class Rep, class Period>
  [[nodiscard]] status flush_for(std::chrono::duration<Rep, Period> timeout) {
    return impl_->flush(detail::deadline_after(timeout));
  }

  // Idempotent. Publishes the end-of-stream marker, waiting at most options.close_timeout for
  // room (block policy). Answers ok, closed (already closed), or timeout (marker not stored).
  status close() { return impl_->close(clock_deadline_unset()); }
  template <class Rep, class Period>
  status close_for(std::chrono::duration<Rep, Period> timeout) {
    return impl_->close(detail::deadline_after(timeout));
  }

  [[nodiscard]] bool is_closed() const noexcept { return impl_->is_closed(); }
  // Messages stored in the stream now, as the server reports it (a network round trip).
  [[nodiscard]] std::size_t size() const { return impl_->state().messages; }
  [[nodiscard]] std::size_t capacity() const noexcept { return impl_->capacity(); }
  [[nodiscard]] overflow policy() const noexcept { return impl_->policy(); }
  [[nodiscard]] stream_state state() const { return impl_->state(); }

  // This sender's counters: sent, dropped, rejected, send_waits (evictions happen on the
  // server and are counted by the receiver; received is the receiver's).
  [[nodiscard]] channel_stats stats() const noexcept {
    const auto c = impl_->stats();
    channel_stats s;
    s.sent = c.sent;
    s.dropped = c.dropped;
    s.rejected = c.rejected;
    s.send_waits = c.send_waits;
    return s;
  }
  // Publishes retried after a lost acknowledgement or, in window mode, after a full stream;
  // publishes that failed asynchronously (window mode) for another reason.
  [[nodiscard]] std::uint64_t retries() const noexcept { return impl_->stats().retries; }
  [[nodiscard]] std::uint64_t failed() const noexcept { return impl_->stats().failed; }

 private:
  static constexpr detail::clock::time_point forever() noexcept {
    return detail::clock::time_point::max();
  }
  static constexpr detail::clock::time_point clock_deadline_unset() noexcept {
    return detail::clock::time_point::min();
  }

  status send_impl(const T& value, bool may_wait, detail::clock::time_point deadline) {
    if constexpr (viewing_codec<Codec, T>) {
      return impl_->send(Codec::view(value), may_wait, deadline);  // no copy before nats.c's
    } else {
      std::vector<std::byte> bytes;
      Codec::encode(value, bytes);
      return impl_->send(bytes, may_wait, deadline);
    }
  }

  std::unique_ptr<detail::byte_sender> impl_;
};

}  // namespace bp::nats

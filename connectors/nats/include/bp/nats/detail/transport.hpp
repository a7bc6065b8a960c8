// Internal: the byte-level JetStream sender and receiver behind bp::nats::sender<T> and
// receiver<T>. Compiled in connectors/nats/src (nats.c never appears in a public header).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <bp/nats/options.hpp>
#include <bp/status.hpp>

namespace bp::nats {

// A snapshot of the stream as the server reports it (best effort: stale once returned).
struct stream_state {
  std::uint64_t messages = 0;  // messages stored now (buffered: not yet acknowledged)
  std::uint64_t bytes = 0;
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::int64_t consumers = 0;
  std::uint64_t max_messages = 0;  // the stream's MaxMsgs (0 = none)
  std::int64_t max_bytes = 0;      // the stream's MaxBytes (0 = none)
};

// Where a delivered message stands in the stream and in its consumer.
struct delivery_info {
  std::uint64_t stream_seq = 0;
  std::uint64_t consumer_seq = 0;
  std::uint64_t delivered = 0;  // 1 on first delivery, more on redelivery
  std::uint64_t pending = 0;    // messages still pending for the consumer after this one
};

namespace detail {

using clock = std::chrono::steady_clock;

struct connection;  // natsConnection + jsCtx, shared by the ends and the deliveries
struct pending_message;

// One fetched JetStream message; acknowledging needs the connection, which it keeps alive.
// Reads a JetStream acknowledgement subject, the reply subject of every delivered message, into
// `out`: "$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>[.<pending>]"
// or, from servers that add a domain and an account, "$JS.ACK.<domain>.<account>.<stream>.
// <consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>[.<token>...]". False (and
// `out` unchanged) for anything else. It allocates nothing: a receiver reads this per message.
bool parse_ack_subject(std::string_view reply, delivery_info& out) noexcept;

class raw_delivery {
 public:
  raw_delivery() noexcept = default;
  raw_delivery(std::shared_ptr<connection> c, void* msg) noexcept;
  raw_delivery(raw_delivery&& o) noexcept;
  raw_delivery& operator=(raw_delivery&& o) noexcept;
  raw_delivery(const raw_delivery&) = delete;
  raw_delivery& operator=(const raw_delivery&) = delete;
  ~raw_delivery();

  [[nodiscard]] std::span<const std::byte> data() const noexcept;
  [[nodiscard]] delivery_info info() const;
  [[nodiscard]] bool is_end_of_stream() const noexcept;
  [[nodiscard]] bool settled() const noexcept { return settled_; }

  void ack(bool wait_for_server);
  void nak(std::chrono::milliseconds delay);
  void in_progress();
  void term();

 private:
  void discard() noexcept;  // hands the message to the connection's bin

  std::shared_ptr<connection> conn_;
  void* msg_ = nullptr;  // natsMsg*
  bool settled_ = false;
};

class byte_sender {
 public:
  explicit byte_sender(const options& o);
  ~byte_sender();
  byte_sender(const byte_sender&) = delete;
  byte_sender& operator=(const byte_sender&) = delete;

  // deadline == clock::time_point::max(): no limit.
  status send(std::span<const std::byte> payload, bool may_wait, clock::time_point deadline);
  status flush(clock::time_point deadline);
  status close(clock::time_point deadline);
  [[nodiscard]] bool is_closed() const noexcept;
  [[nodiscard]] stream_state state() const;
  [[nodiscard]] std::size_t capacity() const noexcept;
  [[nodiscard]] overflow policy() const noexcept;
  struct counters {
    std::uint64_t sent, dropped, rejected, send_waits, retries, failed;
  };
  [[nodiscard]] counters stats() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

class byte_receiver {
 public:
  explicit byte_receiver(const options& o);
  ~byte_receiver();
  byte_receiver(const byte_receiver&) = delete;
  byte_receiver& operator=(const byte_receiver&) = delete;

  // The next message (end-of-stream markers are consumed here, never returned); nullopt when
  // nothing came before the deadline, or once the end of stream was seen (and every message
  // before it acknowledged) and the local batch is drained, or after close().
  // `max_batch` > 0 caps this fetch below options.fetch_batch (the demand of a publisher).
  // `ended`, when given, tells why on nullopt: true for the end of stream or close(), false
  // when the deadline (not waiting: the one pull) came first.
  std::optional<raw_delivery> recv(bool may_wait, clock::time_point deadline, int max_batch = 0,
                                   bool* ended = nullptr);
  // A sender's end-of-stream marker was read and nothing sent before it can come back (every
  // earlier message acknowledged); the local batch may still hold later values.
  [[nodiscard]] bool end_seen() const noexcept;
  // Whether the end of stream is known now without taking a value (see byte_receiver.cpp): for a
  // publisher whose subscriber has no outstanding demand. At most a few round trips, bounded
  // by `deadline`.
  bool peek_end(clock::time_point deadline);
  void close();
  [[nodiscard]] bool is_closed() const noexcept;
  [[nodiscard]] stream_state state() const;
  [[nodiscard]] std::size_t capacity() const noexcept;
  struct counters {
    std::uint64_t received, evicted, redelivered;
  };
  [[nodiscard]] counters stats() const noexcept;
  void count_received() noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

template <class Rep, class Period>
clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
  if (d <= d.zero()) return clock::now();
  const auto now = clock::now();
  if (std::chrono::duration_cast<std::chrono::duration<double>>(d).count() >
      std::chrono::duration_cast<std::chrono::duration<double>>(clock::time_point::max() - now)
          .count())
    return clock::time_point::max();
  return now + std::chrono::ceil<clock::duration>(d);
}

}  // namespace detail
}  // namespace bp::nats

// The connection to NATS and the vocabulary every nats.c call of bp::nats shares: how a failed
// call becomes a bp::nats::error, which failures may be retried, and how a caller's deadline
// becomes nats.c's millisecond timeouts. Private to connectors/nats/src, so that nats.c appears
// in these sources only, never in a public header.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nats/nats.h>

#include <bp/nats/detail/transport.hpp>
#include <bp/nats/options.hpp>

namespace bp::nats::detail {

// Where finished messages go instead of natsMsg_Destroy one at a time.
//
// nats.c frees every message on one library-wide collector thread, and natsMsg_Destroy wakes
// that thread whenever it sleeps. Destroying messages one by one, as deliveries are settled or
// acknowledgements of a window come back, therefore costs a thread wake-up (two context
// switches) per message: a consumer made 4x the futex calls of a raw nats.c loop that frees
// each fetched batch at once, and lost a tenth of its throughput. The bin hands messages over
// in runs: when `max_run` messages (a large fetch batch) or `max_bytes` of payload have
// gathered, when flush() is called (a receiver does before it fetches, since it is about to
// wait anyway) and when it goes. What it holds back is bounded by those two limits. Thread
// safe; allocates nothing.
class message_bin {
 public:
  static constexpr std::size_t max_run = 256;
  static constexpr std::size_t max_bytes = 256 * 1024;

  message_bin() = default;
  message_bin(const message_bin&) = delete;
  message_bin& operator=(const message_bin&) = delete;
  ~message_bin() { flush(); }

  // Takes `m` (nullptr: nothing) to destroy with the next run.
  void put(natsMsg* m) noexcept;
  // Destroys what is held now.
  void flush() noexcept;
  // How many messages wait for the next run.
  [[nodiscard]] std::size_t held() noexcept {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  // Destroys the held run; called with `lock` held, returns with it released.
  void release(std::unique_lock<std::mutex>& lock) noexcept;

  std::mutex mu_;
  std::array<natsMsg*, max_run> held_{};
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

// natsConnection + jsCtx, shared by the ends and the deliveries.
struct connection {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  message_bin bin;  // for the messages of this connection's deliveries
  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
    bin.flush();
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
};

// Connects with the connection part of `o` (servers, timeouts, TLS, auth, send_asap).
std::shared_ptr<connection> open_connection(const options& o, jsOptions* jso);

// Throws bp::nats::error "bp::nats: <what>: <nats.c text> (JetStream error <js>)".
[[noreturn]] void throw_nats(const std::string& what, natsStatus s, int js = 0);

// throw_nats(what, s) unless `s` is NATS_OK.
void check(natsStatus s, const std::string& what);

// A transport hiccup after which the same request (a publish: with the same message id) may be
// retried.
inline bool is_transient(natsStatus s) {
  return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED ||
         s == NATS_STALE_CONNECTION;
}

inline std::int64_t to_ns(std::chrono::milliseconds d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

// Milliseconds from now to `deadline`, at least 1, at most `cap`.
inline std::int64_t millis_until(clock::time_point deadline, std::chrono::milliseconds cap) {
  if (deadline == clock::time_point::max()) return cap.count();
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now());
  return std::clamp<std::int64_t>(left.count(), 1, cap.count());
}

inline bool expired(clock::time_point deadline) {
  return deadline != clock::time_point::max() && clock::now() >= deadline;
}

inline void sleep_until_or(clock::time_point deadline, std::chrono::milliseconds d) {
  const auto until = clock::now() + d;
  std::this_thread::sleep_until(std::min(until, deadline));
}

}  // namespace bp::nats::detail

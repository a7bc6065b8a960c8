// The connection to NATS and the vocabulary every nats.c call of bp::nats shares: how a failed
// call becomes a bp::nats::error, which failures may be retried, and how a caller's deadline
// becomes nats.c's millisecond timeouts. Private to connectors/nats/src, so that nats.c appears
// in these sources only, never in a public header.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <nats/nats.h>

#include <bp/nats/detail/transport.hpp>
#include <bp/nats/options.hpp>

namespace bp::nats::detail {

// natsConnection + jsCtx, shared by the ends and the deliveries.
struct connection {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  connection() = default;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection() {
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

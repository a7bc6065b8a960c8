// Private to connectors/nats/src: what jetstream.cpp shares with rate.cpp (the connection and
// the error helpers). nats.c appears only in these sources, never in a public header.
#pragma once

#include <chrono>
#include <memory>
#include <string>

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

// A transport hiccup after which the same request may be retried.
bool is_transient(natsStatus s);

// Milliseconds from now to `deadline`, at least 1, at most `cap`.
std::int64_t millis_until(clock::time_point deadline, std::chrono::milliseconds cap);

}  // namespace bp::nats::detail

// bp/nats/error.hpp: the exception every bp::nats operation throws when the transport, the
// server or the setup fails (as opposed to a full stream, which is a bp::status answer).
//
//   bp::nats::error  std::runtime_error with the nats.c status and the JetStream error code.
//
//   try {
//     bp::nats::sender<std::string> tx({.servers = {url}, .stream = "ORDERS", .subject = "orders",
//                                       .setup = bp::nats::stream_setup::bind});
//   } catch (const bp::nats::error& e) {
//     // e.what(): "bp::nats: stream 'ORDERS' not found (JetStream error 10059)"
//   }
#pragma once

#include <stdexcept>
#include <string>

namespace bp::nats {

// Thrown for failures that are not backpressure: unreachable server, missing stream, a message
// larger than the server or the stream accepts, a publish never acknowledged, a bad setup.
// The message names what failed; status() and js_code() carry the raw nats.c codes (natsStatus
// and jsErrCode, 0 when not applicable) for callers that branch on them.
class error : public std::runtime_error {
 public:
  error(const std::string& what, int nats_status = 0, int js_code = 0)
      : std::runtime_error(what), status_(nats_status), js_code_(js_code) {}
  [[nodiscard]] int status() const noexcept { return status_; }
  [[nodiscard]] int js_code() const noexcept { return js_code_; }

 private:
  int status_;
  int js_code_;
};

}  // namespace bp::nats

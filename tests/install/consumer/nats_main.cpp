// The smallest user of bp::nats: a sender pointed at a port where no server listens must fail
// with bp::nats::error. That needs the connector's library and the NATS C client linked, so it
// proves the installed package carries its dependency (no server needed).
#include <bp/nats/sender.hpp>

#include <chrono>
#include <cstdio>
#include <string>

int main() {
  try {
    bp::nats::sender<std::string> tx({.servers = {"nats://127.0.0.1:1"},
                                      .connect_timeout = std::chrono::milliseconds(200),
                                      .max_reconnect = 0,
                                      .stream = "BP_INSTALL_TEST",
                                      .subject = "bp.install.test",
                                      .capacity = 8});
    std::puts("bp::nats consumer: connected to nothing?");
    return 1;
  } catch (const bp::nats::error& e) {
    std::printf("bp::nats consumer: no server, as expected: %s\n", e.what());
    return 0;
  }
}

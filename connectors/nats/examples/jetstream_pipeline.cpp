// A bounded pipeline across a NATS JetStream stream (the compiled twin of the examples in
// bp/nats/sender.hpp and receiver.hpp): the producer is paced by a slower consumer through a
// stream of 8 messages, exactly like a bp::channel of capacity 8 — here the two ends could be
// two processes on two machines. Needs a nats-server with JetStream: the URL comes from
// BP_NATS_URL (run_with_nats_server.sh starts one) or the first argument.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <bp/nats/receiver.hpp>
#include <bp/nats/sender.hpp>

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  const char* env = std::getenv("BP_NATS_URL");
  const std::string url = argc > 1 ? argv[1] : env != nullptr ? env : "nats://127.0.0.1:4222";

  const bp::nats::options o{.servers = {url},
                            .stream = "ORDERS",
                            .subject = "orders",
                            .capacity = 8,
                            .policy = bp::overflow::block,
                            .store = bp::nats::storage::memory};
  bp::nats::sender<std::string> tx(o);
  bp::nats::receiver<std::string> rx(o);

  std::thread producer([&] {
    for (int i = 0; i < 40; ++i)
      if (tx.send_for("order-" + std::to_string(i), 10s) != bp::status::ok) std::abort();
    (void)tx.close();  // the receiver drains, then its loop ends
  });
  int received = 0;
  for (std::string order : rx) {       // acknowledged as received
    std::this_thread::sleep_for(2ms);  // the slow consumer
    ++received;
  }
  producer.join();
  std::printf("received %d orders; the producer waited %llu times for room in the stream\n",
              received, static_cast<unsigned long long>(tx.stats().send_waits));
  return received == 40 ? 0 : 1;
}

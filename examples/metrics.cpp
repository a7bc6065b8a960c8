// The statistics of every primitive behind one snapshot: a channel and a semaphore registered
// in a bp::metrics::registry, a producer faster than its consumer, and what the snapshot says.
// (connectors/prometheus/examples/metrics_exporter.cpp serves the same to Prometheus.)
#include <bp/metrics.hpp>

#include <chrono>
#include <cstdio>
#include <thread>

int main() {
  using namespace std::chrono_literals;
  bp::channel<int> orders(8);
  bp::semaphore db(2);

  bp::metrics::registry reg;
  auto r1 = reg.add("orders", orders);  // handles after the primitives: destroyed first
  auto r2 = reg.add("db", db);

  std::thread consumer([&] {
    while (auto v = orders.recv()) {
      auto p = db.acquire_permit_for(1, 1s);
      std::this_thread::sleep_for(100us);  // slower than the producer: sends wait for room
    }
  });
  for (int i = 0; i < 1000; ++i) (void)orders.send(i);
  orders.close();
  consumer.join();

  const bp::metrics::snapshot s = reg.snapshot();
  const auto* waits = s.find("bp_channel_send_wait_seconds", "orders");
  std::printf("orders: %.0f sent, %.0f received; %llu sends waited, %.3f ms in all\n",
              s.value("bp_channel_sent_total", "orders").value_or(0),
              s.value("bp_channel_received_total", "orders").value_or(0),
              static_cast<unsigned long long>(waits->histogram.count), waits->histogram.sum * 1e3);
  std::printf("db: %.0f permits free, %.0f acquires waited\n",
              s.value("bp_semaphore_available", "db").value_or(0),
              s.value("bp_semaphore_waits_total", "db").value_or(0));
  for (const auto& f : s.families)
    std::printf("  %s (%zu series)\n", f.name.c_str(), f.samples.size());
  return s.value("bp_channel_received_total", "orders") == 1000.0 ? 0 : 1;
}

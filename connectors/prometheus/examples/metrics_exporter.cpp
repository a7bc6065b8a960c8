// Every primitive of the library at work, its statistics served to Prometheus.
//
//   metrics_exporter --listen 127.0.0.1:9464 [--seconds N]   serves GET /metrics (prometheus-cpp's
//                                                           Exposer) for N seconds (0: forever)
//   metrics_exporter --quick                                 runs a moment, prints the text
//
// Each primitive runs a small workload that makes its callers wait now and then, so that every
// family (counters, gauges and wait-time histograms) moves: a channel whose consumer is slower
// than its producer, a semaphore and a concurrency limiter with more threads than slots, a token
// and a leaky bucket asked for more than their rate, a memory budget shared by three writers, an
// unbounded channel and a watermark buffer whose readers wait for items, and a Reactive Streams
// buffer (bp::rs::operator_stats) in front of a consumer that pulls 8 at a time.
#include <prometheus/exposer.h>
#include <bp/metrics.hpp>
#include <bp/prometheus/exporter.hpp>
#include <bp/streams.hpp>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) {
  g_stop = 1;
}

bp::watermark_buffer_options<std::string> socket_options() {
  bp::watermark_buffer_options<std::string> o;
  o.high_watermark = 256;
  o.low_watermark = 64;
  return o;
}

struct workload {
  bp::channel<int> orders{4};
  bp::unbounded_channel<int> log;
  bp::semaphore db{2};
  bp::token_bucket api{200.0, 2};
  bp::leaky_bucket pace{200.0, 4};
  bp::concurrency_limiter backend{bp::fixed_limit{2}};
  bp::memory_budget heap{4096};
  bp::watermark_buffer<std::string> socket{socket_options()};
  std::shared_ptr<bp::rs::operator_stats> stream = std::make_shared<bp::rs::operator_stats>();
  std::vector<std::jthread> threads;

  template <class F>
  void loop(F f) {
    threads.emplace_back([f](std::stop_token st) mutable {
      while (!st.stop_requested()) f();
    });
  }

  void start() {
    loop([this] { (void)orders.send_for(1, 100ms); });
    loop([this] {
      (void)orders.recv_for(100ms);
      std::this_thread::sleep_for(1ms);  // slower than the producer: sends wait
    });
    loop([this] {
      (void)log.send(1);
      std::this_thread::sleep_for(2ms);
    });
    loop([this] { (void)log.recv_for(100ms); });  // waits for each value
    for (int i = 0; i < 4; ++i) {
      loop([this] {
        if (auto p = db.acquire_permit_for(1, 100ms)) std::this_thread::sleep_for(1ms);
      });
      loop([this] {
        if (auto p = backend.acquire_for(100ms)) {
          std::this_thread::sleep_for(1ms);
          p.on_success();
        }
      });
    }
    loop([this] { (void)api.acquire_for(1, 100ms); });
    loop([this] {
      if (!pace.try_acquire()) (void)pace.acquire_for(1, 100ms);
    });
    for (int i = 0; i < 3; ++i)
      loop([this] {
        if (auto r = heap.reserve_for(2048, 100ms)) std::this_thread::sleep_for(1ms);
      });
    loop([this] {
      (void)socket.write_for(std::string(32, 'x'), 100ms);
      std::this_thread::sleep_for(1ms);
    });
    loop([this] { (void)socket.read_for(100ms); });
    loop([this] {
      auto pub = bp::rs::range(0, 256) |
                 bp::rs::on_backpressure_buffer(16, bp::overflow::drop_oldest).with_stats(stream);
      std::int64_t sum = 0;
      for (std::int64_t v : bp::rs::to_iterable(pub, 8)) sum += v;
      std::this_thread::sleep_for(5ms);
    });
  }

  void stop() {
    for (auto& t : threads) t.request_stop();
    orders.close();
    log.close();
    db.close();
    api.close();
    pace.close();
    backend.close();
    heap.close();
    socket.close();
    threads.clear();  // joins
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen;
  double seconds = 0;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (a == "--seconds" && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s --listen HOST:PORT [--seconds N] | --quick\n", argv[0]);
      return 2;
    }
  }
  if (!quick && listen.empty()) {
    std::fprintf(stderr, "%s: --listen HOST:PORT or --quick\n", argv[0]);
    return 2;
  }

  workload w;
  bp::metrics::registry reg;
  std::vector<bp::metrics::registration> regs;
  regs.push_back(reg.add("orders", w.orders));
  regs.push_back(reg.add("log", w.log));
  regs.push_back(reg.add("db", w.db));
  regs.push_back(reg.add("api", w.api));
  regs.push_back(reg.add("pace", w.pace));
  regs.push_back(reg.add("backend", w.backend));
  regs.push_back(reg.add("heap", w.heap));
  regs.push_back(reg.add("socket", w.socket));
  regs.push_back(reg.add("numbers", w.stream));
  w.start();

  if (quick) {
    std::this_thread::sleep_for(500ms);
    const bp::metrics::snapshot s = reg.snapshot();
    w.stop();
    std::printf("%zu families; orders: %.0f sent, %.0f sends waited\n", s.families.size(),
                s.value("bp_channel_sent_total", "orders").value_or(0),
                s.value("bp_channel_send_wait_seconds", "orders").value_or(0));
    return s.families.empty() ? 1 : 0;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  {
    // The Exposer holds collectables weakly: this one must live as long as it serves.
    const auto collectable = std::make_shared<bp::prometheus::collectable>(reg);
    prometheus::Exposer exposer{listen};
    exposer.RegisterCollectable(collectable);
    std::printf("metrics_exporter: serving http://%s/metrics\n", listen.c_str());
    std::fflush(stdout);
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!g_stop && (seconds <= 0 || std::chrono::steady_clock::now() < end))
      std::this_thread::sleep_for(50ms);
  }
  w.stop();
  return 0;
}

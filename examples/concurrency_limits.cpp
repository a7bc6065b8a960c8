// Adaptive concurrency limits against a simulated downstream whose true capacity changes
// 50 -> 20 -> 80 concurrent requests (10 ms per request, FIFO queue behind the workers).
// Each algorithm drives a bp::concurrency_limiter on a bp::manual_clock, so the run is
// deterministic and takes well under a second of real time.
//
//   concurrency_limits [--quick] [--csv FILE]
//
// Prints, per algorithm and phase, the settled limit and the p99 latency; exits non-zero if
// a limit does not settle within 25% of the capacity or p99 exceeds twice the unloaded p99.
// --csv writes the traces (algorithm,t_s,capacity,limit,in_flight,latency_ms) for
// scripts/plot_limits, which draws docs/limits.png.
#include <bp/concurrency_limiter.hpp>
#include "limiter_sim.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct contender {
  const char* name;
  bp::limit_algorithm algorithm;
};

// The tuned settings the test (tests/concurrency_limiter_test.cpp) also checks.
std::vector<contender> contenders() {
  return {
      {"aimd", bp::aimd_limit({.initial_limit = 10, .backoff_ratio = 0.9, .timeout = 12500us})},
      {"vegas", bp::vegas_limit({.initial_limit = 10, .alpha = 2, .beta = 4})},
      {"gradient2", bp::gradient2_limit({.initial_limit = 10, .tolerance = 1.1, .queue_size = 2})},
  };
}

bp::detail::sim_options scenario(bool quick) {
  const auto phase = quick ? 4s : 20s;
  return {.phases = {{phase, 50}, {phase, 20}, {phase, 80}}};
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  const char* csv_path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) quick = true;
    if (std::strcmp(argv[i], "--csv") == 0 && i + 1 < argc) csv_path = argv[++i];
  }
  const auto opts = scenario(quick);

  // The unloaded latency: a fixed limit far below every capacity never queues.
  double unloaded_p99 = 0;
  {
    bp::manual_clock clock;
    bp::concurrency_limiter lim(bp::fixed_limit{10}, clock);
    unloaded_p99 = bp::detail::simulate(lim, clock, opts).p99_latency_ms;
  }
  std::printf("unloaded p99 latency: %.2f ms\n", unloaded_p99);

  std::FILE* csv = csv_path ? std::fopen(csv_path, "w") : nullptr;
  if (csv_path && !csv) {
    std::perror(csv_path);
    return 2;
  }
  if (csv) std::fprintf(csv, "algorithm,t_s,capacity,limit,in_flight,latency_ms\n");

  bool ok = true;
  for (auto& c : contenders()) {
    bp::manual_clock clock;
    bp::concurrency_limiter lim(std::move(c.algorithm), clock);
    const auto r = bp::detail::simulate(lim, clock, opts);
    std::printf("%-9s p99 %.2f ms (%.2fx unloaded)\n", c.name, r.p99_latency_ms,
                r.p99_latency_ms / unloaded_p99);
    ok = ok && r.p99_latency_ms <= 2 * unloaded_p99;
    for (const auto& p : r.phases) {
      const double err = p.settled_mean_limit / static_cast<double>(p.capacity) - 1;
      std::printf(
          "  capacity %3zu: settled limit %6.1f (%+5.1f%%, range %.1f..%.1f), p99 %.2f ms, "
          "%llu done, %llu dropped\n",
          p.capacity, p.settled_mean_limit, 100 * err, p.settled_min_limit, p.settled_max_limit,
          p.p99_latency_ms, static_cast<unsigned long long>(p.completed),
          static_cast<unsigned long long>(p.dropped));
      ok = ok && std::abs(err) <= 0.25;
    }
    if (csv) {
      for (const auto& pt : r.trace) {
        std::fprintf(csv, "%s,%.3f,%zu,%.2f,%zu,%.3f\n", c.name, pt.t_s, pt.capacity, pt.limit,
                     pt.in_flight, pt.latency_ms);
      }
    }
  }
  if (csv) std::fclose(csv);
  std::printf("%s\n", ok ? "all limits tracked the capacity" : "FAILED");
  return ok ? 0 : 1;
}

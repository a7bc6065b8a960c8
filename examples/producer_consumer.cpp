// A fast producer and a slow consumer (5:1, bp-console's "Overload" preset) through one bounded
// channel, once per overflow policy. While each run lasts, a live line shows the buffer fill and
// whether the producer is running or waiting; at the end a table compares what each policy did:
//   block        nothing lost, the producer spends most of its time waiting
//   drop_newest  the producer never waits, new items are dropped while the buffer is full
//   drop_oldest  the producer never waits, the oldest items are evicted (freshest data kept)
//   reject       the producer never waits, is told `full` and decides (here: gives up the item)
//
// Usage: producer_consumer [--seconds S] [--capacity N] [--quick] [--plain]
//   --quick  short runs (used by the tests); --plain  no live line (not a terminal)
#include <bp/channel.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct config {
  double seconds = 3.0;
  std::size_t capacity = 16;
  std::chrono::microseconds produce_every{1000};  // 1000 items/s
  std::chrono::microseconds consume_every{5000};  //  200 items/s
  bool live = true;
};

struct result {
  bp::overflow policy;
  std::uint64_t produced = 0, consumed = 0;
  bp::channel_stats stats;
  double wait_share = 0;  // of the producer's time
  std::size_t left = 0;
};

std::string bar(std::size_t filled, std::size_t capacity, int width = 24) {
  const int n = capacity ? static_cast<int>(filled * width / capacity) : 0;
  const double fill = capacity ? double(filled) / double(capacity) : 0;
  // bp-console's colours: amber from 50 %, red from 80 %
  const char* colour = fill >= 0.8 ? "\033[31m" : fill >= 0.5 ? "\033[33m" : "\033[32m";
  std::string s = colour;
  for (int i = 0; i < width; ++i) s += i < n ? "#" : ".";
  return s + "\033[0m";
}

result run(bp::overflow policy, const config& cfg) {
  bp::channel<std::uint64_t> ch(cfg.capacity, policy);
  result r;
  r.policy = policy;
  std::atomic<bool> stop{false}, waiting{false};
  std::atomic<std::uint64_t> produced{0}, consumed{0};
  std::atomic<std::int64_t> waited_ns{0};

  std::thread producer([&] {
    auto next = clock_type::now();
    for (std::uint64_t i = 0; !stop; ++i) {
      next += cfg.produce_every;
      std::this_thread::sleep_until(next);
      const auto t0 = clock_type::now();
      waiting = true;
      const auto answer = ch.send(i);  // block: waits while full; others answer at once
      waiting = false;
      waited_ns +=
          std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
      if (answer == bp::status::closed) break;
      ++produced;
      if (clock_type::now() > next) next = clock_type::now();  // no catch-up burst after a wait
    }
  });
  std::thread consumer([&] {
    while (auto v = ch.recv()) {
      ++consumed;
      if (!stop) std::this_thread::sleep_for(cfg.consume_every);  // the slow part
    }
  });

  const auto start = clock_type::now();
  const auto end = start + std::chrono::duration_cast<clock_type::duration>(
                               std::chrono::duration<double>(cfg.seconds));
  while (clock_type::now() < end) {
    std::this_thread::sleep_for(100ms);
    if (!cfg.live) continue;
    const auto s = ch.stats();
    std::printf(
        "\r%-12s [%s] %3zu/%-3zu producer %-8s produced %6llu consumed %6llu "
        "dropped %5llu evicted %5llu rejected %5llu",
        std::string(bp::to_string(policy)).c_str(), bar(ch.size(), ch.capacity()).c_str(),
        ch.size(), ch.capacity(), waiting ? "WAITING" : "running",
        static_cast<unsigned long long>(produced.load()),
        static_cast<unsigned long long>(consumed.load()),
        static_cast<unsigned long long>(s.dropped), static_cast<unsigned long long>(s.evicted),
        static_cast<unsigned long long>(s.rejected));
    std::fflush(stdout);
  }
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  stop = true;
  ch.close();  // the producer's pending send answers `closed`; the consumer drains the rest
  producer.join();
  consumer.join();
  if (cfg.live) std::printf("\n");

  r.produced = produced;
  r.consumed = consumed;
  r.stats = ch.stats();
  r.wait_share = double(waited_ns.load()) / 1e9 / elapsed;
  r.left = ch.size();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  config cfg;
  cfg.live = isatty(STDOUT_FILENO);
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      cfg.seconds = 0.4;
    } else if (a == "--plain") {
      cfg.live = false;
    } else if (a == "--seconds" && i + 1 < argc) {
      cfg.seconds = std::atof(argv[++i]);
    } else if (a == "--capacity" && i + 1 < argc) {
      cfg.capacity = static_cast<std::size_t>(std::atol(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--capacity N] [--quick] [--plain]\n", argv[0]);
      return 2;
    }
  }
  if (cfg.seconds <= 0 || cfg.capacity == 0) {
    std::fprintf(stderr, "error: --seconds and --capacity must be positive\n");
    return 2;
  }

  std::printf(
      "Producer 1000 items/s, consumer 200 items/s (5:1 overload), capacity %zu, %.1f s per "
      "policy\n\n",
      cfg.capacity, cfg.seconds);
  std::vector<result> results;
  for (auto p : {bp::overflow::block, bp::overflow::drop_newest, bp::overflow::drop_oldest,
                 bp::overflow::reject})
    results.push_back(run(p, cfg));

  std::printf("\n%-12s %9s %9s %8s %8s %9s %17s\n", "policy", "produced", "consumed", "dropped",
              "evicted", "rejected", "producer waiting");
  bool ok = true;
  for (const auto& r : results) {
    std::printf("%-12s %9llu %9llu %8llu %8llu %9llu %16.0f%%\n",
                std::string(bp::to_string(r.policy)).c_str(),
                static_cast<unsigned long long>(r.produced),
                static_cast<unsigned long long>(r.consumed),
                static_cast<unsigned long long>(r.stats.dropped),
                static_cast<unsigned long long>(r.stats.evicted),
                static_cast<unsigned long long>(r.stats.rejected), 100 * r.wait_share);
    // conservation: every produced item was consumed, dropped, evicted or rejected
    const auto accounted = r.consumed + r.stats.dropped + r.stats.evicted + r.stats.rejected;
    if (accounted != r.produced || r.left != 0) {
      std::fprintf(stderr, "accounting mismatch for %s: %llu produced, %llu accounted\n",
                   std::string(bp::to_string(r.policy)).c_str(),
                   static_cast<unsigned long long>(r.produced),
                   static_cast<unsigned long long>(accounted));
      ok = false;
    }
  }
  return ok ? 0 : 1;
}

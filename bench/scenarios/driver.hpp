// bench/scenarios/driver.hpp: the peer-comparison scenarios, written once against a thin
// adapter and instantiated by one executable per implementation (scn_<impl>).
//
// An adapter Q is a bounded queue of std::uint64_t with this shape:
//   explicit Q(std::size_t capacity);
//   void send(std::uint64_t v);          // blocks (parks or spins: the peer's own way) while full
//   bool recv(std::uint64_t& v);         // blocks while empty; false once closed and drained
//   bool try_recv(std::uint64_t& v);     // never waits
//   void close();                        // only if Q::has_close
//   static constexpr bool has_close;     // else the driver ends consumers with poison values
//   static constexpr bool spsc_only;     // one producer and one consumer at most
//
// Method (docs/benchmarks.md): every run is its own process, so getrusage covers exactly one
// scenario. Throughput runs are time-bounded: producers send 1, 2, 3, ... until `--seconds`
// have passed, then the queue is closed (or one poison value per consumer is sent), consumers
// drain it, and the sum and count received must equal what was sent, or the run fails with
// exit code 2. Items/s = items received / time from the start signal until the last consumer
// finished. Each run prints one CSV line (see print_result).
#pragma once

#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace bench {

using u64 = std::uint64_t;
using clock = std::chrono::steady_clock;

inline constexpr u64 poison = ~u64{0};  // never a real item: items count up from 1

struct options {
  std::string scenario = "spsc";
  double seconds = 0.5;  // throughput / ping-pong run length
  std::size_t capacity = 1024;
  u64 items = 1'000'000;    // memory scenario
  int consumer_work = 100;  // memory scenario: work units per item on the consumer side
};

inline options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--scenario") {
      o.scenario = v;
    } else if (k == "--seconds") {
      o.seconds = std::atof(v);
    } else if (k == "--capacity") {
      o.capacity = std::strtoull(v, nullptr, 10);
    } else if (k == "--items") {
      o.items = std::strtoull(v, nullptr, 10);
    } else if (k == "--consumer-work") {
      o.consumer_work = std::atoi(v);
    } else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      std::exit(64);
    }
  }
  return o;
}

struct usage {
  double user_s = 0, sys_s = 0;
  long maxrss_kb = 0;
};

inline usage now_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return {static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6,
          static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6,
          ru.ru_maxrss};
}

// One CSV line: impl,scenario,value,unit,items,drops,wall_s,user_s,sys_s,maxrss_kb
inline void print_result(std::string_view impl, std::string_view scenario, double value,
                         std::string_view unit, u64 items, u64 drops, double wall_s) {
  const usage u = now_usage();
  std::printf("%.*s,%.*s,%.6g,%.*s,%llu,%llu,%.4f,%.4f,%.4f,%ld\n", int(impl.size()), impl.data(),
              int(scenario.size()), scenario.data(), value, int(unit.size()), unit.data(),
              static_cast<unsigned long long>(items), static_cast<unsigned long long>(drops),
              wall_s, u.user_s, u.sys_s, u.maxrss_kb);
  std::fflush(stdout);
}

[[noreturn]] inline void fail(std::string_view impl, std::string_view scenario, const char* what,
                              u64 expected, u64 got) {
  std::fprintf(stderr, "FAIL %.*s %.*s: %s: expected %llu, got %llu\n", int(impl.size()),
               impl.data(), int(scenario.size()), scenario.data(), what,
               static_cast<unsigned long long>(expected), static_cast<unsigned long long>(got));
  std::exit(2);
}

inline double seconds_since(clock::time_point t0) {
  return std::chrono::duration<double>(clock::now() - t0).count();
}

// One spin-wait step, for peers that have no blocking operation of their own.
inline void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A unit of CPU work that the optimizer cannot remove (a dependent LCG step, ~1-2 ns).
inline u64 work(u64 x, int units) {
  for (int i = 0; i < units; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    asm volatile("" : "+r"(x));
  }
  return x;
}

struct alignas(64) tally {
  u64 count = 0;
  u64 sum = 0;
};

// P producers x C consumers for o.seconds; prints items/s.
template <class Q>
int throughput(std::string_view impl, const options& o, int producers, int consumers) {
  if (Q::spsc_only && (producers > 1 || consumers > 1)) {
    std::fprintf(stderr, "%.*s is single-producer single-consumer only\n", int(impl.size()),
                 impl.data());
    return 3;
  }
  Q q(o.capacity);
  std::vector<tally> sent(static_cast<std::size_t>(producers));
  std::vector<tally> got(static_cast<std::size_t>(consumers));
  std::atomic<bool> stop{false};
  std::atomic<int> consumers_left{consumers};
  std::atomic<clock::rep> t_end{0};
  std::latch start(producers + consumers + 1);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      tally t;
      u64 v = static_cast<u64>(p) << 40;  // disjoint ranges per producer, never 0 or poison
      start.arrive_and_wait();
      while (!stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 256; ++k) {
          ++v;
          q.send(v);
          t.sum += v;
        }
        t.count += 256;
      }
      sent[static_cast<std::size_t>(p)] = t;
    });
  }
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      tally t;
      u64 v = 0;
      start.arrive_and_wait();
      while (q.recv(v)) {
        if constexpr (!Q::has_close) {
          if (v == poison) break;
        }
        t.sum += v;
        ++t.count;
      }
      got[static_cast<std::size_t>(c)] = t;
      if (consumers_left.fetch_sub(1) == 1) t_end.store(clock::now().time_since_epoch().count());
    });
  }
  start.arrive_and_wait();
  const auto t0 = clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop.store(true);
  for (int p = 0; p < producers; ++p) threads[static_cast<std::size_t>(p)].join();
  if constexpr (Q::has_close) {
    q.close();
  } else {
    for (int c = 0; c < consumers; ++c) q.send(poison);
  }
  for (std::size_t i = static_cast<std::size_t>(producers); i < threads.size(); ++i)
    threads[i].join();
  const double elapsed =
      std::chrono::duration<double>(clock::time_point(clock::duration(t_end.load())) - t0).count();
  // A queue that is not linearizable across producers (moodycamel) may hand a consumer its
  // poison before the last items: they are still in the queue, and count.
  tally late;
  for (u64 v = 0; q.try_recv(v);) {
    if (v == poison) continue;
    late.sum += v;
    ++late.count;
  }
  tally s, r = late;
  for (auto& t : sent) s.count += t.count, s.sum += t.sum;
  for (auto& t : got) r.count += t.count, r.sum += t.sum;
  const std::string name = std::string(o.scenario);
  if (r.count != s.count) fail(impl, name, "items received", s.count, r.count);
  if (r.sum != s.sum) fail(impl, name, "sum received", s.sum, r.sum);
  print_result(impl, name, static_cast<double>(r.count) / elapsed, "items_per_s", r.count, 0,
               elapsed);
  return 0;
}

// Round trips through two capacity-1 queues (ping -> pong, pong -> ping); prints ns per trip.
template <class Q>
int ping_pong(std::string_view impl, const options& o) {
  Q ping(1), pong(1);
  std::latch start(2);
  std::thread echo([&] {
    start.arrive_and_wait();
    u64 v = 0;
    while (ping.recv(v)) {
      if (v == poison) break;
      pong.send(v);
    }
  });
  start.arrive_and_wait();
  const auto t0 = clock::now();
  const auto deadline =
      t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.seconds));
  u64 trips = 0, sum = 0, back_sum = 0;
  for (;;) {
    for (int k = 0; k < 64; ++k) {
      ++trips;
      ping.send(trips);
      sum += trips;
      u64 v = 0;
      if (!pong.recv(v)) fail(impl, "pingpong", "echo ended early", trips, 0);
      back_sum += v;
    }
    if (clock::now() >= deadline) break;
  }
  const double elapsed = seconds_since(t0);
  if constexpr (Q::has_close) {
    ping.close();
  } else {
    ping.send(poison);
  }
  echo.join();
  if (back_sum != sum) fail(impl, "pingpong", "sum echoed", sum, back_sum);
  print_result(impl, "pingpong", elapsed * 1e9 / static_cast<double>(trips), "ns_per_trip", trips,
               0, elapsed);
  return 0;
}

// CPU (user + sys, whole process) burned over 1 s while one receiver waits on an empty queue.
template <class Q>
int blocked(std::string_view impl, const options& o) {
  Q q(o.capacity);
  std::atomic<u64> received{0};
  std::thread receiver([&] {
    u64 v = 0;
    if (q.recv(v)) received.store(v);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it settle into its wait
  const usage before = now_usage();
  const auto t0 = clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const usage after = now_usage();
  const double wall = seconds_since(t0);
  q.send(42);
  receiver.join();
  if (received.load() != 42) fail(impl, "blocked", "value received", 42, received.load());
  const double cpu = (after.user_s - before.user_s) + (after.sys_s - before.sys_s);
  print_result(impl, "blocked", cpu, "cpu_s", 1, 0, wall);
  return 0;
}

// A producer doing 1 unit of work per item feeds a consumer doing o.consumer_work units (100x
// slower) through capacity o.capacity; prints peak RSS (KB). o.items items.
template <class Q>
int memory(std::string_view impl, const options& o) {
  Q q(o.capacity);
  std::atomic<u64> got_sum{0}, got_count{0};
  const auto t0 = clock::now();
  std::thread consumer([&] {
    u64 v = 0, sum = 0, count = 0, sink = 0;
    while (q.recv(v)) {
      if constexpr (!Q::has_close) {
        if (v == poison) break;
      }
      sink += work(v, o.consumer_work);
      sum += v;
      ++count;
    }
    asm volatile("" : : "r"(sink));
    got_sum.store(sum);
    got_count.store(count);
  });
  u64 sum = 0, sink = 0;
  for (u64 i = 1; i <= o.items; ++i) {
    sink += work(i, 1);
    q.send(i);
    sum += i;
  }
  asm volatile("" : : "r"(sink));
  const double produce_s = seconds_since(t0);
  if constexpr (Q::has_close) {
    q.close();
  } else {
    q.send(poison);
  }
  consumer.join();
  const double elapsed = seconds_since(t0);
  if (got_count.load() != o.items) fail(impl, o.scenario, "items received", o.items, got_count);
  if (got_sum.load() != sum) fail(impl, o.scenario, "sum received", sum, got_sum.load());
  std::fprintf(
      stderr, "%.*s memory: %llu items, producer done after %.2f s, consumer after %.2f s\n",
      int(impl.size()), impl.data(), static_cast<unsigned long long>(o.items), produce_s, elapsed);
  print_result(impl, o.scenario, static_cast<double>(now_usage().maxrss_kb), "maxrss_kb", o.items,
               0, elapsed);
  return 0;
}

// Runs the scenario named by --scenario: spsc, mpmc2x2, mpmc8x8, pingpong, blocked, memory.
template <class Q>
int run(std::string_view impl, int argc, char** argv) {
  const options o = parse(argc, argv);
  if (o.scenario == "spsc") return throughput<Q>(impl, o, 1, 1);
  if (o.scenario == "mpmc2x2") return throughput<Q>(impl, o, 2, 2);
  if (o.scenario == "mpmc8x8") return throughput<Q>(impl, o, 8, 8);
  if (o.scenario == "pingpong") return ping_pong<Q>(impl, o);
  if (o.scenario == "blocked") return blocked<Q>(impl, o);
  if (o.scenario.rfind("memory", 0) == 0) return memory<Q>(impl, o);
  std::fprintf(stderr, "%.*s: unknown scenario %s\n", int(impl.size()), impl.data(),
               o.scenario.c_str());
  return 64;
}

}  // namespace bench

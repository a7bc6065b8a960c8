// bp::pipeline beside oneTBB's tbb::parallel_pipeline on the same three-stage pipelines:
//
//   source (serial) -> f (parallel, 4 workers) -> sink (serial)
//
//   ordered_cpu     f costs a few microseconds of CPU per item; the sink gets items in order
//   ordered_cheap   f is one mixing round (nanoseconds): the per-item cost of the pipeline itself
//   unordered_cpu   as ordered_cpu, but the sink takes results as they finish
//   (and ordered_cpu/bp_window64: bp's ordered_cpu with a reorder window of 64 instead of 8)
//
// bp: pipeline::from(source).map(f, {.parallelism = 4, .ordered = ...}).sink(sink), both links
// of capacity 64 (the default). TBB: parallel_pipeline with serial_in_order / parallel /
// serial_in_order (serial_out_of_order for the unordered sink) filters in a task_arena of 4
// threads, and max live tokens = bp's total link capacity + workers (64 + 64 + 4 = 132), so
// both may hold about the same number of items in flight.
//
// Every iteration runs a whole pipeline of `items` items (so bp's thread start and join are
// inside the timing; a few hundred microseconds against tens of milliseconds). The sink checks
// the order (ordered scenarios) and a checksum against one computed serially: order-sensitive
// for the ordered scenarios, a sum for the unordered one; a mismatch fails the benchmark.
// `peak_live` is the largest count of items produced by the source and not yet consumed by the
// sink, sampled by the sink every 16th item; `live_bound` is the configured bound (bp: Σ link
// capacities + window + 2 × Σ workers + 1 as in docs/pipelines.md; TBB: the token count).
// `cpu_us/item` (user + system time of the whole process, every thread, per item) and
// `ctxsw/item` (voluntary + involuntary context switches per item) come from getrusage around
// the timed loop: what a pipeline burns beside what it delivers (other processes' CPU time is
// not in it, though their load changes how often this one's threads are descheduled).
// serial/* runs f in a plain loop on one thread: the ceiling a pipeline on 2 cores can double.
//
//   pipeline_benchmark --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//                      --benchmark_report_aggregates_only=true
#include <bp/pipeline.hpp>

#include <benchmark/benchmark.h>
#include <sys/resource.h>
#include <tbb/global_control.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>

namespace {

using u64 = std::uint64_t;

constexpr std::size_t workers = 4;
constexpr std::size_t link_capacity = 64;
constexpr std::size_t total_link_capacity = 2 * link_capacity;  // source link + map link
constexpr std::size_t tbb_tokens = total_link_capacity + workers;
constexpr u64 sample_every = 16;  // the sink samples the live count every 16th item

struct scenario {
  const char* name;
  u64 items;
  int rounds;  // mixing rounds of f per item
  bool ordered;
  std::size_t window = 0;  // bp's reorder window; 0 = its default, 2 x parallelism
};

// ~1000 dependent splitmix64 rounds are a few microseconds on the development VM (serial/*
// reports the measured cost per item).
constexpr scenario ordered_cpu{"ordered_cpu", 20'000, 1000, true};
constexpr scenario ordered_cheap{"ordered_cheap", 100'000, 1, true};
constexpr scenario unordered_cpu{"unordered_cpu", 20'000, 1000, false};
// ordered_cpu/bp_window64: bp only, with a reorder window of 64 instead of 8, which lets the
// other workers go on while the one holding the oldest item is descheduled.
constexpr scenario ordered_cpu_window64{"ordered_cpu", 20'000, 1000, true, 64};

struct item {
  u64 seq = 0;
  u64 value = 0;
};

// The CPU-bound function: `rounds` dependent splitmix64 steps, which the compiler can neither
// vectorise nor fold.
u64 work(u64 x, int rounds) {
  for (int r = 0; r < rounds; ++r) {
    x += 0x9e3779b97f4a7c15ULL;
    u64 z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    x = z ^ (z >> 31);
  }
  return x;
}

// What the sink accumulates; `fold` is the same for every implementation.
struct sink_state {
  u64 checksum = 0;
  u64 consumed = 0;
  u64 peak_live = 0;
  bool in_order = true;
};

// Written only by the source (one thread at a time in both libraries), read by the sink.
struct alignas(64) produced_counter {
  std::atomic<u64> n{0};
};

void fold(sink_state& s, const item& it, bool ordered, const produced_counter& produced) {
  if (ordered) {
    if (it.seq != s.consumed) s.in_order = false;
    s.checksum = s.checksum * 31 + it.value;
  } else {
    s.checksum += it.value;
  }
  if (s.consumed % sample_every == 0)
    s.peak_live = std::max(s.peak_live, produced.n.load(std::memory_order_relaxed) - s.consumed);
  ++s.consumed;
}

u64 expected_checksum(const scenario& sc) {
  sink_state s;
  produced_counter produced;
  for (u64 i = 0; i < sc.items; ++i) fold(s, item{i, work(i, sc.rounds)}, sc.ordered, produced);
  return s.checksum;
}

// Checks one run's result; false (and the benchmark skipped with an error) on a mismatch.
bool check(benchmark::State& state, const scenario& sc, const sink_state& s, u64 expected) {
  if (s.consumed != sc.items || !s.in_order || s.checksum != expected) {
    const std::string what = "wrong result: " + std::to_string(s.consumed) + " items, " +
                             (s.in_order ? "in order" : "out of order") + ", checksum " +
                             std::to_string(s.checksum) + " expected " + std::to_string(expected);
    state.SkipWithError(what.c_str());
    return false;
  }
  return true;
}

// The process's CPU time and context switches so far (every thread, the joined ones included).
struct usage {
  double cpu_s = 0;
  double switches = 0;
  static usage now() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto sec = [](const timeval& t) {
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
    };
    return {sec(ru.ru_utime) + sec(ru.ru_stime), static_cast<double>(ru.ru_nvcsw + ru.ru_nivcsw)};
  }
};

void finish(benchmark::State& state, const scenario& sc, u64 expected, u64 peak_live,
            double live_bound, const usage& before) {
  const usage after = usage::now();
  const auto items = static_cast<double>(state.iterations()) * static_cast<double>(sc.items);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * sc.items));
  state.counters["cpu_us/item"] = (after.cpu_s - before.cpu_s) * 1e6 / items;
  state.counters["ctxsw/item"] = (after.switches - before.switches) / items;
  state.counters["peak_live"] = static_cast<double>(peak_live);
  state.counters["live_bound"] = live_bound;
  char label[64];
  std::snprintf(label, sizeof label, "checksum %016llx ok",
                static_cast<unsigned long long>(expected));
  state.SetLabel(label);
}

void bm_bp(benchmark::State& state, scenario sc) {
  const u64 expected = expected_checksum(sc);
  u64 peak_live = 0;
  const usage before = usage::now();
  for (auto _ : state) {
    sink_state s;
    produced_counter produced;
    u64 next = 0;
    auto source = [&]() -> std::optional<item> {
      if (next == sc.items) return std::nullopt;
      produced.n.store(next + 1, std::memory_order_relaxed);
      return item{next++, 0};
    };
    auto f = [rounds = sc.rounds](item it) {
      it.value = work(it.seq, rounds);
      return it;
    };
    auto p = bp::pipeline::from(source, {.link = {.capacity = link_capacity}})
                 .map(f, {.parallelism = workers,
                          .ordered = sc.ordered,
                          .window = sc.window,
                          .link = {.capacity = link_capacity}})
                 .sink([&](item it) { fold(s, it, sc.ordered, produced); });
    p.run();
    if (!check(state, sc, s, expected)) return;
    peak_live = std::max(peak_live, s.peak_live);
  }
  // docs/pipelines.md: Σ link capacities + Σ windows + 2 × Σ workers + 1, the workers being
  // the source's, the map's and the sink's.
  const std::size_t window = !sc.ordered ? 0 : sc.window != 0 ? sc.window : 2 * workers;
  finish(state, sc, expected, peak_live,
         static_cast<double>(total_link_capacity + window + 2 * (1 + workers + 1) + 1), before);
}

void bm_tbb(benchmark::State& state, scenario sc) {
  const u64 expected = expected_checksum(sc);
  tbb::task_arena arena(static_cast<int>(workers));
  u64 peak_live = 0;
  const usage before = usage::now();
  for (auto _ : state) {
    sink_state s;
    produced_counter produced;
    u64 next = 0;
    arena.execute([&] {
      tbb::parallel_pipeline(
          tbb_tokens,
          tbb::make_filter<void, item>(tbb::filter_mode::serial_in_order,
                                       [&](tbb::flow_control& fc) -> item {
                                         if (next == sc.items) {
                                           fc.stop();
                                           return {};
                                         }
                                         produced.n.store(next + 1, std::memory_order_relaxed);
                                         return item{next++, 0};
                                       }) &
              tbb::make_filter<item, item>(tbb::filter_mode::parallel,
                                           [rounds = sc.rounds](item it) {
                                             it.value = work(it.seq, rounds);
                                             return it;
                                           }) &
              tbb::make_filter<item, void>(sc.ordered ? tbb::filter_mode::serial_in_order
                                                      : tbb::filter_mode::serial_out_of_order,
                                           [&](item it) { fold(s, it, sc.ordered, produced); }));
    });
    if (!check(state, sc, s, expected)) return;
    peak_live = std::max(peak_live, s.peak_live);
  }
  finish(state, sc, expected, peak_live, static_cast<double>(tbb_tokens), before);
}

// f alone in a loop on one thread: no pipeline, no second core.
void bm_serial(benchmark::State& state, scenario sc) {
  const u64 expected = expected_checksum(sc);
  const usage before = usage::now();
  for (auto _ : state) {
    sink_state s;
    produced_counter produced;
    for (u64 i = 0; i < sc.items; ++i) {
      produced.n.store(i + 1, std::memory_order_relaxed);
      fold(s, item{i, work(i, sc.rounds)}, sc.ordered, produced);
    }
    if (!check(state, sc, s, expected)) return;
  }
  finish(state, sc, expected, 1, 1, before);
}

}  // namespace

int main(int argc, char** argv) {
  // oneTBB caps all arenas at the hardware's concurrency unless told otherwise; the parallel
  // stage gets 4 threads like bp's even on a 2-core machine.
  const auto hw = static_cast<std::size_t>(std::max(1U, std::thread::hardware_concurrency()));
  tbb::global_control threads(tbb::global_control::max_allowed_parallelism, std::max(workers, hw));
  for (const scenario& sc : {ordered_cpu, ordered_cheap, unordered_cpu}) {
    const std::string name = sc.name;
    benchmark::RegisterBenchmark((name + "/bp").c_str(), bm_bp, sc)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((name + "/tbb").c_str(), bm_tbb, sc)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);
    if (sc.ordered)
      benchmark::RegisterBenchmark((name + "/serial").c_str(), bm_serial, sc)
          ->UseRealTime()
          ->Unit(benchmark::kMillisecond);
  }
  benchmark::RegisterBenchmark("ordered_cpu/bp_window64", bm_bp, ordered_cpu_window64)
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

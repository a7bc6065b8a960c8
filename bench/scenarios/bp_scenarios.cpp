// scn_bp: the scenarios for bp::channel<std::uint64_t>, plus every overflow policy on SPSC.
#include <bp/channel.hpp>

#include <vector>

#include "driver.hpp"

// The name the results are reported under: scn_bp_fixedspin is this file built with the spin
// budget fixed (BP_SPIN_ADAPTIVE=0), to measure the adaptive spin beside it in the same run.
#ifndef BENCH_BP_NAME
#define BENCH_BP_NAME "bp"
#endif

namespace {

using bench::u64;

struct bp_queue {
  static constexpr bool has_close = true;
  static constexpr bool spsc_only = false;
  explicit bp_queue(std::size_t capacity) : ch(capacity) {}
  void send(u64 v) { (void)ch.send(v); }
  bool recv(u64& v) {
    auto r = ch.recv();
    if (!r) return false;
    v = *r;
    return true;
  }
  bool try_recv(u64& v) {
    auto r = ch.try_recv();
    if (!r) return false;
    v = *r;
    return true;
  }
  void close() { ch.close(); }
  bp::channel<u64> ch;
};

// SPSC under one overflow policy: the producer sends 1, 2, 3, ... for o.seconds; what the
// channel refuses (dropped, full) or evicts (drop handler) is counted, and
// sent == delivered + refused + evicted must hold, in count and in sum. Prints delivered items/s.
int spsc_policy(const bench::options& o, bp::overflow policy) {
  const std::string scenario = "spsc_" + std::string(bp::to_string(policy));
  std::atomic<u64> evicted_count{0}, evicted_sum{0};
  bp::channel<u64> ch(o.capacity, policy, [&](u64&& v) {
    evicted_count.fetch_add(1, std::memory_order_relaxed);
    evicted_sum.fetch_add(v, std::memory_order_relaxed);
  });
  std::atomic<bool> stop{false};
  std::latch start(3);
  bench::tally sent, refused, got;
  bench::clock::time_point t_end;
  std::thread producer([&] {
    u64 v = 0;
    start.arrive_and_wait();
    while (!stop.load(std::memory_order_relaxed)) {
      for (int k = 0; k < 256; ++k) {
        ++v;
        if (ch.send(v) == bp::status::ok) {
          sent.sum += v;
          ++sent.count;
        } else {
          refused.sum += v;
          ++refused.count;
        }
      }
    }
  });
  std::thread consumer([&] {
    start.arrive_and_wait();
    while (auto v = ch.recv()) {
      got.sum += *v;
      ++got.count;
    }
    t_end = bench::clock::now();
  });
  start.arrive_and_wait();
  const auto t0 = bench::clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop.store(true);
  producer.join();
  ch.close();
  consumer.join();
  const double elapsed = std::chrono::duration<double>(t_end - t0).count();
  const u64 accounted_count = got.count + evicted_count.load();
  const u64 accounted_sum = got.sum + evicted_sum.load();
  if (accounted_count != sent.count)
    bench::fail(BENCH_BP_NAME, scenario, "items delivered + evicted", sent.count, accounted_count);
  if (accounted_sum != sent.sum)
    bench::fail(BENCH_BP_NAME, scenario, "sum delivered + evicted", sent.sum, accounted_sum);
  const auto st = ch.stats();
  if (st.evicted != evicted_count.load())
    bench::fail(BENCH_BP_NAME, scenario, "stats().evicted", evicted_count.load(), st.evicted);
  bench::print_result(BENCH_BP_NAME, scenario, static_cast<double>(got.count) / elapsed,
                      "items_per_s", got.count, refused.count + evicted_count.load(), elapsed);
  return 0;
}

// P producers x C consumers through the batch operations: producers send_n runs of `batch`
// values, consumers recv_many up to 256 at a time. Same method and checks as
// bench::throughput; the implementation is reported as "bp_batch".
int batch_throughput(const bench::options& o, int producers, int consumers, std::size_t batch) {
  bp::channel<u64> ch(o.capacity);
  std::vector<bench::tally> sent(static_cast<std::size_t>(producers));
  std::vector<bench::tally> got(static_cast<std::size_t>(consumers));
  std::atomic<bool> stop{false};
  std::atomic<int> consumers_left{consumers};
  std::atomic<bench::clock::rep> t_end{0};
  std::latch start(producers + consumers + 1);
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      bench::tally t;
      std::vector<u64> buf(batch);
      u64 v = static_cast<u64>(p) << 40;
      start.arrive_and_wait();
      while (!stop.load(std::memory_order_relaxed)) {
        for (auto& x : buf) x = ++v;
        const auto r = ch.send_n(buf);
        for (std::size_t i = 0; i < r.count; ++i) t.sum += buf[i];
        t.count += r.count;
        if (r.answer != bp::status::ok) bench::fail("bp_batch", o.scenario, "send_n answer", 0, 1);
      }
      sent[static_cast<std::size_t>(p)] = t;
    });
  }
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      bench::tally t;
      std::vector<u64> out;
      out.reserve(256);
      start.arrive_and_wait();
      for (;;) {
        out.clear();
        if (ch.recv_many(out, 256) == 0) break;
        for (u64 x : out) t.sum += x;
        t.count += out.size();
      }
      got[static_cast<std::size_t>(c)] = t;
      if (consumers_left.fetch_sub(1) == 1)
        t_end.store(bench::clock::now().time_since_epoch().count());
    });
  }
  start.arrive_and_wait();
  const auto t0 = bench::clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop.store(true);
  for (int p = 0; p < producers; ++p) threads[static_cast<std::size_t>(p)].join();
  ch.close();
  for (std::size_t i = static_cast<std::size_t>(producers); i < threads.size(); ++i)
    threads[i].join();
  const double elapsed = std::chrono::duration<double>(
                             bench::clock::time_point(bench::clock::duration(t_end.load())) - t0)
                             .count();
  bench::tally s, r;
  for (auto& t : sent) s.count += t.count, s.sum += t.sum;
  for (auto& t : got) r.count += t.count, r.sum += t.sum;
  if (r.count != s.count) bench::fail("bp_batch", o.scenario, "items received", s.count, r.count);
  if (r.sum != s.sum) bench::fail("bp_batch", o.scenario, "sum received", s.sum, r.sum);
  bench::print_result("bp_batch", o.scenario, static_cast<double>(r.count) / elapsed, "items_per_s",
                      r.count, 0, elapsed);
  return 0;
}

}  // namespace

// scn_bp [--batch N] --scenario ...: with --batch, the throughput scenarios use send_n/recv_many.
int main(int argc, char** argv) {
  std::size_t batch = 0;
  std::vector<char*> args(argv, argv + argc);
  for (std::size_t i = 1; i + 1 < args.size(); ++i) {
    if (std::string_view(args[i]) == "--batch") {
      batch = std::strtoull(args[i + 1], nullptr, 10);
      args.erase(args.begin() + static_cast<std::ptrdiff_t>(i),
                 args.begin() + static_cast<std::ptrdiff_t>(i) + 2);
      break;
    }
  }
  argc = static_cast<int>(args.size());
  argv = args.data();
  const bench::options o = bench::parse(argc, argv);
  if (batch > 0) {
    if (o.scenario == "spsc") return batch_throughput(o, 1, 1, batch);
    if (o.scenario == "mpmc2x2") return batch_throughput(o, 2, 2, batch);
    if (o.scenario == "mpmc8x8") return batch_throughput(o, 8, 8, batch);
    std::fprintf(stderr, "bp --batch: only spsc, mpmc2x2, mpmc8x8\n");
    return 64;
  }
  for (auto p : {bp::overflow::block, bp::overflow::drop_newest, bp::overflow::drop_oldest,
                 bp::overflow::reject})
    if (o.scenario == "spsc_" + std::string(bp::to_string(p))) return spsc_policy(o, p);
  return bench::run<bp_queue>(BENCH_BP_NAME, argc, argv);
}

// The memory budget scenario (namespace q2), shared by examples/memory_budget.cpp,
// bench/memory_budget_benchmark.cpp and tests/stress/memory_budget_q2_test.cpp. It answers:
//
//   "You set Node.js stream highWaterMark to 1MB. Traffic spikes and memory usage jumps to
//    500MB with 500 concurrent streams. What went wrong?"
//
// 500 streams, each a bp::watermark_buffer with a 1 MiB high watermark. Producer threads (the
// traffic spike) write 16 KiB chunks Node-style: a stream is written until write() answers
// false, then left alone until its drain fires. Consumer threads (the slow sockets) read the
// chunks and spend CPU on each byte. Without a budget the buffered bytes climb to
// streams x high watermark; with a bp::memory_budget every buffer draws from, they stay under
// the budget, and the consumers (the bottleneck) stay just as busy.
//
// Chunks carry their size instead of the bytes themselves (the size function reports it), so
// the unbudgeted run does not really allocate 500 MiB on a shared machine; the consumers'
// work reads a real 16 KiB payload per chunk.
#pragma once

#include <bp/memory_budget.hpp>
#include <bp/watermark_buffer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace q2 {

struct config {
  std::size_t streams = 500;
  std::size_t high_watermark = std::size_t{1} << 20;  // 1 MiB per stream
  std::size_t low_watermark = std::size_t{512} << 10;
  std::size_t budget = std::size_t{64} << 20;  // 0: no budget (the 500 MB surprise)
  std::size_t chunk_bytes = std::size_t{16} << 10;
  std::size_t chunks_per_stream = 128;  // 2 MiB per stream: enough to fill the buffers twice
  unsigned producers = 2;
  unsigned consumers = 2;
  unsigned work_passes = 2;  // consumer CPU per chunk: passes over a 16 KiB payload
  // The spike in its purest form: the consumers start only once the producers have written every
  // stream up to its high watermark (or to its end). Without a budget the peak is then exactly
  // streams x high watermark on any machine, however the threads are scheduled. With a budget
  // the producers would wait for room that only the consumers can make, so run() refuses it.
  bool consumers_wait_for_spike = false;
};

struct result {
  double seconds = 0;
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
  std::size_t peak_buffered = 0;  // largest sum of buffered bytes over all streams
  std::size_t budget_peak = 0;    // the budget's own peak (0 without a budget)
  bp::memory_budget_stats budget{};
  std::uint64_t pauses = 0;  // writes that answered false (Node's backpressure signal)
  std::uint64_t drains = 0;
  bool ok = true;
  std::string error;
  [[nodiscard]] double bytes_per_second() const { return seconds > 0 ? bytes / seconds : 0; }
};

struct chunk {
  std::uint32_t stream;
  std::uint32_t seq;
  std::uint32_t bytes;
};

inline std::uint64_t consume(const chunk& c, unsigned passes) {
  static const std::array<std::uint64_t, 2048> payload = [] {
    std::array<std::uint64_t, 2048> p{};
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = i * 0x9E3779B97F4A7C15ull;
    return p;
  }();
  std::uint64_t h = c.seq;
  const std::size_t words = std::min<std::size_t>(c.bytes / 8, payload.size());
  for (unsigned pass = 0; pass < passes; ++pass)
    for (std::size_t i = 0; i < words; ++i) h = (h ^ payload[i]) * 0x100000001B3ull;
  return h;
}

inline result run(const config& cfg) {
  using clock = std::chrono::steady_clock;
  using namespace std::chrono_literals;
  if (cfg.consumers_wait_for_spike && cfg.budget != 0) {
    result r;
    r.ok = false;
    r.error =
        "consumers_wait_for_spike needs budget == 0: under a budget the producers would "
        "wait for room that only the consumers can make";
    return r;
  }
  std::optional<bp::memory_budget> budget;
  if (cfg.budget != 0) budget.emplace(cfg.budget);

  // Each producer's 'drain' events: the streams it may write again (an event loop's queue).
  struct producer_signal {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::size_t> drained;
  };
  std::vector<std::unique_ptr<producer_signal>> signals;
  for (unsigned p = 0; p < cfg.producers; ++p) {
    signals.push_back(std::make_unique<producer_signal>());
    signals.back()->drained.reserve(cfg.streams / cfg.producers + 1);
  }

  std::vector<std::unique_ptr<bp::watermark_buffer<chunk>>> streams;
  for (std::size_t i = 0; i < cfg.streams; ++i) {
    auto* sig = signals[i % cfg.producers].get();
    streams.push_back(
        std::make_unique<bp::watermark_buffer<chunk>>(bp::watermark_buffer_options<chunk>{
            .high_watermark = cfg.high_watermark,
            .low_watermark = cfg.low_watermark,
            .size = [](const chunk& c) -> std::size_t { return c.bytes; },
            .on_drain =
                [sig, i] {
                  std::lock_guard lock(sig->m);
                  sig->drained.push_back(i);
                  sig->cv.notify_one();
                },
            .budget = budget ? &*budget : nullptr}));
  }

  std::atomic<std::int64_t> buffered{0};
  std::atomic<std::int64_t> peak{0};
  std::atomic<bool> failed{false};
  std::mutex error_m;
  std::string error;
  std::mutex spike_m;  // consumers_wait_for_spike: producers done with their first pass
  std::condition_variable spike_cv;
  unsigned spiked = 0;
  auto fail = [&](std::string what) {
    {
      std::lock_guard lock(error_m);
      if (!failed.exchange(true)) error = std::move(what);
    }
    std::lock_guard lock(spike_m);  // a consumer waiting for the spike must not wait forever
    spike_cv.notify_all();
  };

  // Node style: write a stream until write() answers false, then leave it until its 'drain'.
  auto producer = [&](unsigned p) {
    std::vector<std::uint32_t> next(cfg.streams, 0);
    std::vector<std::size_t> ready;  // streams to write now: at first all of ours
    for (std::size_t i = p; i < cfg.streams; i += cfg.producers) ready.push_back(i);
    std::size_t unfinished = ready.size();
    bool first_pass_done = false;
    auto& sig = *signals[p];
    while (unfinished != 0 && !failed) {
      for (const std::size_t i : ready) {
        auto& buf = *streams[i];
        while (next[i] < cfg.chunks_per_stream) {
          const chunk c{static_cast<std::uint32_t>(i), next[i],
                        static_cast<std::uint32_t>(cfg.chunk_bytes)};
          const auto r = buf.write_for(chunk(c), 30s);
          if (r.status != bp::status::ok) {
            fail("stream " + std::to_string(i) + ": write answered " +
                 std::string(bp::to_string(r.status)));
            return;
          }
          const auto now = buffered.fetch_add(static_cast<std::int64_t>(c.bytes)) + c.bytes;
          auto seen_peak = peak.load(std::memory_order_relaxed);
          while (now > seen_peak && !peak.compare_exchange_weak(seen_peak, now)) {
          }
          if (++next[i] == cfg.chunks_per_stream) --unfinished;
          if (!r.keep_writing) break;  // until this stream's 'drain'
        }
      }
      ready.clear();
      if (!first_pass_done) {
        first_pass_done = true;
        std::lock_guard lock(spike_m);
        ++spiked;
        spike_cv.notify_all();
      }
      if (unfinished == 0) break;
      std::unique_lock lock(sig.m);
      sig.cv.wait_for(lock, 100ms, [&] { return !sig.drained.empty(); });
      std::swap(ready, sig.drained);
    }
  };

  std::atomic<std::uint64_t> checksum{0};
  auto consumer = [&](unsigned c) {
    if (cfg.consumers_wait_for_spike) {
      std::unique_lock lock(spike_m);
      spike_cv.wait(lock, [&] { return spiked == cfg.producers || failed; });
    }
    std::vector<std::size_t> mine;
    for (std::size_t i = c; i < cfg.streams; i += cfg.consumers) mine.push_back(i);
    std::vector<std::uint32_t> expect(mine.size(), 0);
    std::size_t unfinished = mine.size();
    std::uint64_t h = 0;
    while (unfinished != 0 && !failed) {
      bool any = false;
      for (std::size_t k = 0; k < mine.size(); ++k) {
        if (expect[k] == cfg.chunks_per_stream) continue;
        for (int burst = 0; burst < 8; ++burst) {
          auto v = streams[mine[k]]->try_read();
          if (!v) break;
          any = true;
          buffered.fetch_sub(static_cast<std::int64_t>(v->bytes));
          if (v->stream != mine[k] || v->seq != expect[k]) {
            fail("stream " + std::to_string(mine[k]) + ": expected chunk " +
                 std::to_string(expect[k]) + ", got stream " + std::to_string(v->stream) +
                 " chunk " + std::to_string(v->seq));
            return;
          }
          h += consume(*v, cfg.work_passes);
          if (++expect[k] == cfg.chunks_per_stream) {
            --unfinished;
            break;
          }
        }
      }
      if (!any) std::this_thread::sleep_for(20us);  // an idle event loop's poll
    }
    checksum += h;
  };

  const auto start = clock::now();
  std::vector<std::thread> threads;
  for (unsigned p = 0; p < cfg.producers; ++p) threads.emplace_back(producer, p);
  for (unsigned c = 0; c < cfg.consumers; ++c) threads.emplace_back(consumer, c);
  for (auto& t : threads) t.join();

  result r;
  r.seconds = std::chrono::duration<double>(clock::now() - start).count();
  r.chunks = 0;
  for (auto& s : streams) {
    const auto st = s->stats();
    r.chunks += st.reads;
    r.pauses += st.over_high;
    r.drains += st.drains;
    if (st.writes != st.reads || st.buffered_bytes != 0) {
      fail("a stream ended with buffered chunks");
    }
  }
  r.bytes = r.chunks * cfg.chunk_bytes;
  r.peak_buffered = static_cast<std::size_t>(peak.load());
  if (budget) {
    r.budget = budget->stats();
    r.budget_peak = r.budget.peak;
    if (r.budget.in_use != 0) fail("budget bytes not all given back");
  }
  if (!failed && r.chunks != cfg.streams * cfg.chunks_per_stream) fail("chunks lost");
  r.ok = !failed;
  r.error = error;
  return r;
}

}  // namespace q2

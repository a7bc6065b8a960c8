// sampler.cpp: the sampler thread and the making of a snapshot (see sampler.hpp).
#include "sampler.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "event_text.hpp"
#include "scenario.hpp"

namespace bp::console {

using namespace std::chrono_literals;

namespace {
constexpr auto latency_window = 3s;
constexpr auto rate_window = 1s;
}  // namespace

std::size_t process_rss_bytes() noexcept {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// --- the sampler thread (engine members) ---------------------------------------------------------

void engine::sampler_loop(std::stop_token st) {
  auto next = clock_type::now();
  while (!st.stop_requested()) {
    next += opt_.sample_period;
    std::this_thread::sleep_until(next);
    if (clock_type::now() - next > opt_.sample_period * 4) next = clock_type::now();
    take_sample();
  }
}

void engine::take_sample() {
  std::lock_guard control(control_m_);
  if (!sc_) return;
  snapshot s = sc_->sampling.sample();
  {
    std::lock_guard lock(state_m_);
    s.seq = next_seq_++;
    latest_ = s;
    series_.push_back(s);
    while (series_.size() > opt_.series_limit) series_.pop_front();
  }
  state_cv_.notify_all();
}

// --- one snapshot
// ----------------------------------------------------------------------------------

std::int64_t engine::sampler::total_waited_ns(std::int64_t now_ns, int& waiting,
                                              int& reason) const {
  std::int64_t sum = 0;
  waiting = 0;
  for (const auto& s : sc.slots) {
    sum += s->waited_ns.load(std::memory_order_relaxed);
    const auto began = s->wait_started_ns.load(std::memory_order_relaxed);
    if (began) {
      ++waiting;
      reason = s->reason.load(std::memory_order_relaxed);
      sum += std::max<std::int64_t>(0, now_ns - began);
    }
  }
  return sum;
}

snapshot engine::sampler::sample() {
  const settings& cfg = sc.cfg;
  engine& eng = sc.eng;
  snapshot s;
  const auto now = clock_type::now();
  s.t = std::chrono::duration<double>(now - sc.started).count();
  s.strategy = cfg.strategy;
  s.evicted = sc.evicted.load(std::memory_order_relaxed);
  s.consumed = sc.consumed.load(std::memory_order_relaxed);
  s.accepted = sc.accepted.load(std::memory_order_relaxed);
  s.dropped = sc.dropped.load(std::memory_order_relaxed);
  s.rejected = sc.rejected.load(std::memory_order_relaxed);
  s.capped = sc.capped.load(std::memory_order_relaxed);
  s.produced = sc.produced.load(std::memory_order_relaxed);
  s.in_flight = static_cast<std::int64_t>(s.accepted) - static_cast<std::int64_t>(s.consumed) -
                static_cast<std::int64_t>(s.evicted);
  s.depth = sc.strat->depth();
  s.capacity = sc.strat->capacity();
  s.producers = cfg.producers;
  s.consumers = cfg.consumers;
  s.buffered_bytes = s.depth * (sizeof(item) + cfg.payload_bytes);
  s.rss_bytes = process_rss_bytes();
  s.producer_running = eng.producer_running_.load(std::memory_order_relaxed);
  s.consumer_running = eng.consumer_running_.load(std::memory_order_relaxed);
  const auto not_before = eng.consumer_not_before_ns_.load(std::memory_order_relaxed);
  if (s.consumer_running && not_before > to_ns(now))
    s.consumer_starts_in = double(not_before - to_ns(now)) / 1e9;

  int waiting = 0, reason = 0;
  const auto waited = total_waited_ns(to_ns(now), waiting, reason);
  s.producers_waiting = waiting;
  if (waiting) {
    switch (static_cast<wait_reason>(reason)) {
      case wait_reason::buffer_full:
        s.waiting_for = "buffer full";
        break;
      case wait_reason::no_token:
        s.waiting_for = "no token";
        break;
      case wait_reason::no_demand:
        s.waiting_for = "no demand";
        break;
    }
  }
  const double alive_ns = std::max(1.0, s.t * 1e9 * cfg.producers);
  s.wait_share_total = std::min(1.0, double(waited) / alive_ns);

  point p{now, s.produced, s.consumed, waited, {}};
  for (int b = 0; b < latency_histogram::buckets; ++b)
    p.hist[b] = sc.latency[b].load(std::memory_order_relaxed);
  auto& h = history;
  h.push_back(p);
  while (h.size() > 2 && now - h[1].at >= latency_window) h.pop_front();
  // rates over the last second: from the newest sample at least 1 s old (the oldest one
  // during the first second)
  const point* base = &h.front();
  for (const auto& q : h) {
    if (now - q.at < rate_window) break;
    base = &q;
  }
  if (base != &h.back()) {
    // At least a second even at the start: a ramp, not a spike from one early item.
    const double dt = std::max(std::chrono::duration<double>(now - base->at).count(),
                               std::chrono::duration<double>(rate_window).count());
    s.produce_rate = double(s.produced - base->produced) / dt;
    s.consume_rate = double(s.consumed - base->consumed) / dt;
    s.wait_share =
        std::clamp(double(waited - base->waited_ns) / (dt * 1e9 * cfg.producers), 0.0, 1.0);
  }
  latency_histogram::counts window{};
  for (int b = 0; b < latency_histogram::buckets; ++b) window[b] = p.hist[b] - h.front().hist[b];
  if (h.size() == 1) window = p.hist;
  const double p50 = latency_histogram::quantile(window, 0.50),
               p99 = latency_histogram::quantile(window, 0.99);
  s.latency_p50_ms = p50 < 0 ? -1 : p50 / 1000.0;
  s.latency_p99_ms = p99 < 0 ? -1 : p99 / 1000.0;
  const double all50 = latency_histogram::quantile(p.hist, 0.50),
               all99 = latency_histogram::quantile(p.hist, 0.99);
  s.latency_all_p50_ms = all50 < 0 ? -1 : all50 / 1000.0;
  s.latency_all_p99_ms = all99 < 0 ? -1 : all99 / 1000.0;
  explain(s);
  sc.summarize_suppressed();
  return s;
}

// Watermark lines: the fill level in words, with what the strategy does once the buffer is full.
void engine::sampler::explain(const snapshot& s) {
  const settings& cfg = sc.cfg;
  engine& eng = sc.eng;
  if (s.capacity == 0) return;
  const double fill = double(s.depth) / double(s.capacity);
  const int pct = static_cast<int>(std::lround(fill * 100));
  int level = fill >= 1.0 ? 3 : fill >= 0.8 ? 2 : fill >= 0.5 ? 1 : 0;
  auto& w = watermark_level;
  const bool unbounded = cfg.strategy == strategy_kind::unbounded;
  std::lock_guard lock(eng.state_m_);
  if (level > w) {
    if (level == 3)
      eng.post_locked(event_kind::watermark,
                      unbounded ? fmt("queue at the safety cap: %zu items", s.depth)
                                : fmt("queue full: %zu of %zu slots taken, past the high "
                                      "watermark (%s)",
                                      s.depth, s.capacity, describe_full(cfg.strategy)),
                      s.t);
    else if (level == 2)
      eng.post_locked(event_kind::watermark,
                      fmt("queue at %d%%: approaching the high watermark", pct), s.t);
    else
      eng.post_locked(event_kind::watermark, fmt("queue at %d%%: filling up", pct), s.t);
    w = level;
  } else if (w > 0 && fill < 0.4) {
    eng.post_locked(event_kind::drain,
                    s.depth == 0 ? std::string("queue drained: the consumer caught up")
                                 : fmt("queue back down to %d%%", pct),
                    s.t);
    w = 0;
  }
  if (unbounded && s.depth > 0 && s.produce_rate > s.consume_rate * 1.05 &&
      s.t - last_growth_note >= 2.0) {
    last_growth_note = s.t;
    eng.post_locked(event_kind::watermark,
                    fmt("unbounded queue holds %zu items (%s) and grows by %.0f items/s: no "
                        "backpressure, memory grows",
                        s.depth, mib(s.buffered_bytes).c_str(), s.produce_rate - s.consume_rate),
                    s.t);
  }
}

const char* engine::sampler::describe_full(strategy_kind k) {
  switch (k) {
    case strategy_kind::block:
      return "the producer will wait";
    case strategy_kind::drop_newest:
      return "new items will be dropped";
    case strategy_kind::drop_oldest:
      return "old items will be evicted";
    case strategy_kind::reject:
      return "new items will be rejected";
    case strategy_kind::signal:
      return "no more demand until the consumer requests";
    case strategy_kind::throttle:
      return "the throttled producer will wait";
    case strategy_kind::unbounded:
      break;
  }
  return "";
}

}  // namespace bp::console

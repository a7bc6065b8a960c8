// Internal (tests, examples, benchmarks): a deterministic discrete-event simulation of a
// downstream with a true capacity that changes over time, driven through a
// bp::concurrency_limiter on a bp::manual_clock.
//
// The downstream has `capacity` workers; a request is served in `service_time` (times a
// deterministic jitter in [1 - jitter, 1 + jitter]); requests beyond the capacity wait in a
// FIFO queue, so latency grows with the excess (latency ~ service_time * in flight / capacity);
// a request that would find `queue_limit` others waiting is rejected after `reject_latency`
// (answered on_dropped). The client is saturated (closed loop): whenever the limiter admits,
// it sends. Capacity changes at phase boundaries; workers already busy finish their request.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <queue>
#include <utility>
#include <vector>

#include <bp/concurrency_limiter.hpp>

namespace bp::detail {

struct sim_phase {
  std::chrono::nanoseconds duration;
  std::size_t capacity;
};

struct sim_options {
  std::vector<sim_phase> phases;
  std::chrono::nanoseconds service_time = std::chrono::milliseconds(10);
  double jitter = 0.1;
  std::size_t queue_limit = SIZE_MAX;
  std::chrono::nanoseconds reject_latency = std::chrono::milliseconds(1);
  std::chrono::nanoseconds trace_every = std::chrono::milliseconds(20);
  std::uint64_t seed = 1;
};

struct sim_point {
  double t_s;
  std::size_t capacity;
  double limit;
  std::size_t in_flight;
  double latency_ms;  // mean latency of the requests completed since the previous point
};

struct sim_phase_result {
  std::size_t capacity;
  double settled_mean_limit;  // mean limit over the second half of the phase
  double settled_min_limit, settled_max_limit;
  double p99_latency_ms;  // over the whole phase, successful requests
  std::uint64_t completed, dropped;
};

struct sim_result {
  std::vector<sim_point> trace;
  std::vector<sim_phase_result> phases;
  double p99_latency_ms;  // whole run
};

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

inline sim_result simulate(concurrency_limiter& lim, manual_clock& clock, const sim_options& o) {
  using token = concurrency_limiter::token;
  struct request {
    token t;
    std::int64_t sent_ns;
    bool rejected;
  };
  struct event {
    std::int64_t at;
    std::uint64_t seq;
    std::size_t id;
    bool operator>(const event& e) const { return at != e.at ? at > e.at : seq > e.seq; }
  };
  std::uint64_t rng = o.seed * 0x9E3779B97F4A7C15ull + 1;
  auto next_unit = [&rng] {  // splitmix64 -> [0, 1)
    std::uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return static_cast<double>((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  };

  std::vector<request> reqs;
  std::vector<std::size_t> free_ids;
  std::priority_queue<event, std::vector<event>, std::greater<>> events;
  std::deque<std::size_t> waiting;
  std::uint64_t seq = 0;
  std::size_t busy = 0, capacity = o.phases.empty() ? 1 : o.phases[0].capacity;

  auto now = [&] { return clock.now_ns(); };
  auto start_service = [&](std::size_t id) {
    ++busy;
    const double f = 1.0 + o.jitter * (2.0 * next_unit() - 1.0);
    const auto d = static_cast<std::int64_t>(static_cast<double>(o.service_time.count()) * f);
    events.push({now() + d, seq++, id});
  };
  auto send = [&](token t) {
    std::size_t id;
    if (!free_ids.empty()) {
      id = free_ids.back();
      free_ids.pop_back();
      reqs[id] = request{std::move(t), now(), false};
    } else {
      id = reqs.size();
      reqs.push_back(request{std::move(t), now(), false});
    }
    if (busy < capacity) {
      start_service(id);
    } else if (waiting.size() >= o.queue_limit) {
      reqs[id].rejected = true;
      events.push({now() + o.reject_latency.count(), seq++, id});
    } else {
      waiting.push_back(id);
    }
  };
  auto fill = [&] {
    while (auto t = lim.try_acquire()) send(std::move(t));
  };
  auto start_waiting = [&] {
    while (busy < capacity && !waiting.empty()) {
      const auto id = waiting.front();
      waiting.pop_front();
      start_service(id);
    }
  };

  sim_result result;
  std::vector<double> all_latencies;
  const std::int64_t t0 = now();
  std::int64_t phase_end = t0;
  std::int64_t next_trace = t0;
  double bucket_sum = 0;
  std::size_t bucket_n = 0;

  for (const auto& ph : o.phases) {
    const std::int64_t phase_start = phase_end;
    phase_end = phase_start + ph.duration.count();
    capacity = ph.capacity;
    start_waiting();
    sim_phase_result pr{ph.capacity, 0, 1e300, 0, 0, 0, 0};
    std::vector<double> latencies;
    double settled_sum = 0;
    std::size_t settled_n = 0;
    fill();
    for (;;) {
      const std::int64_t next_event = events.empty() ? INT64_MAX : events.top().at;
      const std::int64_t t = std::min({next_event, next_trace, phase_end});
      clock.advance_to(std::chrono::nanoseconds(t));
      if (t == next_trace) {
        const double limit = lim.estimate();
        result.trace.push_back({static_cast<double>(t - t0) * 1e-9, capacity, limit,
                                lim.in_flight(),
                                bucket_n ? bucket_sum / static_cast<double>(bucket_n) : 0.0});
        bucket_sum = 0;
        bucket_n = 0;
        if (2 * (t - phase_start) >= ph.duration.count()) {
          settled_sum += limit;
          ++settled_n;
          pr.settled_min_limit = std::min(pr.settled_min_limit, limit);
          pr.settled_max_limit = std::max(pr.settled_max_limit, limit);
        }
        next_trace += o.trace_every.count();
        continue;
      }
      if (next_event >= phase_end) break;
      const auto ev = events.top();
      events.pop();
      request& r = reqs[ev.id];
      if (r.rejected) {
        r.t.on_dropped();
        ++pr.dropped;
      } else {
        --busy;
        const double ms = static_cast<double>(t - r.sent_ns) * 1e-6;
        latencies.push_back(ms);
        bucket_sum += ms;
        ++bucket_n;
        r.t.on_success();
        ++pr.completed;
        start_waiting();
      }
      free_ids.push_back(ev.id);
      fill();
    }
    pr.settled_mean_limit = settled_n ? settled_sum / static_cast<double>(settled_n) : 0;
    pr.p99_latency_ms = percentile(latencies, 0.99);
    all_latencies.insert(all_latencies.end(), latencies.begin(), latencies.end());
    result.phases.push_back(pr);
  }
  result.p99_latency_ms = percentile(std::move(all_latencies), 0.99);
  // Let every request in flight finish so that no token outlives the run unanswered.
  while (!events.empty()) {
    const auto ev = events.top();
    events.pop();
    clock.advance_to(std::chrono::nanoseconds(ev.at));
    reqs[ev.id].t.on_ignore();
    if (!reqs[ev.id].rejected) {
      --busy;
      start_waiting();
    }
  }
  return result;
}

}  // namespace bp::detail

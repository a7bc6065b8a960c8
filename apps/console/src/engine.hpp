// engine.hpp: the scenario engine of bp-console. Real threads push real items through a
// strategy (see strategy.hpp) at the rates asked; a sampler turns the counters into snapshots
// 15 times a second and explains what happens in an event log, in plain words.
//
//   console::snapshot    what the views show at one instant (counters, depth, waiting share,
//                        measured rates, latency p50/p99, memory).
//   console::event       one line of the event log ("item 41 dropped: drop-newest");
//                        event_log.hpp.
//   console::engine      owns the threads; every control verb of the UI and API is a member.
//
// Its parts live in files named for them: engine::scenario (scenario.hpp) is the run of
// threads over one strategy, the pacer (pacing.hpp) keeps their rates, engine::sampler
// (sampler.hpp) makes the snapshots, latency_histogram (histogram.hpp) the latency figures, and
// event_log.hpp holds the event log; engine.cpp keeps the controls that tie them together.
// The pipeline scenario (pipeline_scenario.hpp, a bp::pipeline with a slow stage) runs beside
// them while settings().scenario is pipeline; pipeline_now() reads its report.
//
// The HTTP server (server.cpp) and the headless runner (report.cpp) are thin layers over it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <bp/pipeline.hpp>

#include "event_log.hpp"
#include "histogram.hpp"
#include "settings.hpp"
#include "strategy.hpp"

namespace bp::console {

class pipeline_scenario;

struct snapshot {
  std::uint64_t seq = 0;  // snapshot number since the engine started
  double t = 0;           // seconds since the scenario (re)started
  strategy_kind strategy = strategy_kind::block;
  // Counters since the scenario started. produced == accepted + dropped + rejected + capped.
  std::uint64_t produced = 0;  // items the producers created and offered
  std::uint64_t accepted = 0;  // taken into the buffer (or handed over)
  std::uint64_t consumed = 0;  // processed by the consumers
  std::uint64_t dropped = 0;   // drop_newest discards
  std::uint64_t evicted = 0;   // drop_oldest evictions
  std::uint64_t rejected = 0;  // reject: `full` answers
  std::uint64_t capped = 0;    // unbounded: refused at the safety cap
  std::int64_t in_flight = 0;  // accepted - consumed - evicted: in the buffer or being taken
  std::size_t depth = 0;       // items buffered now
  std::size_t capacity = 0;    // buffer slots (unbounded: the safety cap in items)
  int producers = 0, consumers = 0;
  int producers_waiting = 0;    // producers blocked right now
  std::string waiting_for;      // why (the last to start waiting): buffer full, no token, ...
  double wait_share = 0;        // share of the producers' time spent waiting, last second
  double wait_share_total = 0;  // the same since the scenario started
  double produce_rate = 0;      // items/s offered, last second
  double consume_rate = 0;      // items/s consumed, last second
  double latency_p50_ms = -1;   // end to end (birth to consumption), last 3 s; -1: no sample
  double latency_p99_ms = -1;
  double latency_all_p50_ms = -1;  // the same since the scenario started
  double latency_all_p99_ms = -1;
  std::size_t rss_bytes = 0;       // resident memory of the whole process
  std::size_t buffered_bytes = 0;  // memory held by buffered items (depth x item footprint)
  bool producer_running = false;
  bool consumer_running = false;
  double consumer_starts_in = 0;  // seconds until delayed consumers start (Burst)
};

struct engine_options {
  std::chrono::milliseconds sample_period{66};  // ~15 snapshots per second
  std::size_t series_limit = 9000;              // snapshots kept (10 min at 15/s)
  std::size_t event_limit = 500;                // event log lines kept
};

class engine {
 public:
  using options = engine_options;

  // Throws std::invalid_argument when `initial` is not valid (see validate()).
  explicit engine(settings initial = {}, options opt = {});
  ~engine();
  engine(const engine&) = delete;
  engine& operator=(const engine&) = delete;

  // Applies new settings; empty answer on success, else the reason and nothing changed. Rates
  // change live; anything else (strategy, capacity, threads, payload, ...) restarts the
  // scenario: the buffer is emptied and the counters start from zero.
  std::string configure(const settings& s);
  [[nodiscard]] settings current() const;

  // Applies a preset (keeping the strategy), restarts the scenario and starts producer and
  // consumer (the consumer after the preset's delay). Empty answer on success, else the reason.
  std::string apply_preset(std::string_view name);

  void start_producer();
  void stop_producer();
  void start_consumer();
  void stop_consumer();
  // Starts producer and consumer, the consumer after settings().consumer_delay_s.
  void start_all();
  // Restarts the scenario with the current settings (buffer emptied, counters zero), keeping
  // what runs running.
  void reset();

  [[nodiscard]] snapshot latest() const;
  // Waits up to `timeout` for a snapshot newer than `after_seq`; answers the latest either way.
  snapshot wait_next(std::uint64_t after_seq, std::chrono::milliseconds timeout) const;
  // The most recent `max` snapshots of the current scenario, oldest first.
  [[nodiscard]] std::vector<snapshot> series(std::size_t max = SIZE_MAX) const;
  // Event log lines with id > after_id, oldest first, at most `max` (the most recent ones).
  [[nodiscard]] std::vector<event> events_since(std::uint64_t after_id,
                                                std::size_t max = 200) const;

  // The pipeline scenario's report now (bp::pipeline::report(): per-stage busy / idle /
  // blocked time, link depths, items/s, the bottleneck) while settings().scenario is
  // pipeline; none otherwise.
  [[nodiscard]] std::optional<pipeline_report> pipeline_now() const;

  // The running scenario's bp primitives (its channel, token bucket, ...), named after the
  // strategy: bp_channel_sent_total{channel="block"}. Replaced with the scenario.
  [[nodiscard]] const metrics::registry& metrics() const noexcept { return metrics_; }

  // Stops every thread; further control calls do nothing. Idempotent (the destructor calls it).
  void shutdown();

  struct scenario;  // one run of the threads over one strategy; scenario.hpp
  struct sampler;   // turns a scenario's counters into snapshots; sampler.hpp

 private:
  void rebuild_locked();  // control_m_ held
  void teardown_locked();
  void sampler_loop(std::stop_token st);
  void take_sample();
  void post(event_kind k, std::string text);                   // state_m_ not held
  void post_locked(event_kind k, std::string text, double t);  // state_m_ held
  void start_all_locked();
  // Builds the pipeline scenario anew for settings_ (or ends it when the channel scenario is
  // selected). control_m_ held.
  void rebuild_pipeline_locked();

  options opt_;
  metrics::registry metrics_;     // before sc_: outlives the scenario's registrations
  mutable std::mutex control_m_;  // the control path: one verb at a time
  settings settings_;
  std::unique_ptr<scenario> sc_;
  std::atomic<bool> producer_running_{false};
  std::atomic<bool> consumer_running_{false};
  std::atomic<std::int64_t> consumer_not_before_ns_{0};  // steady clock, delayed start
  std::atomic<double> producer_rate_{1};
  std::atomic<double> consumer_rate_{1};
  bool shut_down_ = false;

  mutable std::mutex state_m_;  // snapshots, series and the event log
  mutable std::condition_variable state_cv_;
  snapshot latest_;
  std::deque<snapshot> series_;
  event_log log_;
  std::uint64_t next_seq_ = 1;

  mutable std::mutex pipeline_m_;  // pipeline_: replaced by the control path, read by views
  std::unique_ptr<pipeline_scenario> pipeline_;

  std::jthread sampler_;
};

}  // namespace bp::console

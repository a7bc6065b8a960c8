// scenario.hpp: one run of the console's threads over one strategy.
//
// A scenario owns what must start from zero together whenever the settings change: the
// strategy (and so the buffer), the producer and consumer threads, the counters, the latency
// histogram, the event throttle and the sampler's history. Rebuilding the scenario is how the
// engine restarts; replacing one object leaves no counter or thread behind from the previous
// run.
//
// Producers and consumers are real threads that pace themselves (pacing.hpp) and push real
// heap-allocated items through the strategy. The counters they share with the sampler are
// atomics updated with relaxed ordering: the views need consistent-enough figures 15 times a
// second, not a lock on every item. Each producer has its own slot telling whether, why and
// since when it waits, so that the sampler can report the waiting share from atomics alone.
//
// The scenario is an engine member type: its threads read the engine's live controls (running
// flags, rates, the consumer's delayed start) and post to the engine's event log.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "engine.hpp"
#include "event_log.hpp"
#include "histogram.hpp"
#include "pacing.hpp"
#include "sampler.hpp"
#include "strategy.hpp"

namespace bp::console {

struct engine::scenario {
  engine& eng;
  settings cfg;
  std::unique_ptr<strategy> strat;
  // The strategy's primitives in the engine's metrics registry (engine::rebuild_locked); dropped
  // before `strat`.
  std::vector<metrics::registration> metric_regs;
  clock_type::time_point started = clock_type::now();

  std::atomic<std::uint64_t> next_seq{1};
  std::atomic<std::uint64_t> produced{0}, accepted{0}, consumed{0}, dropped{0}, evicted{0},
      rejected{0}, capped{0};
  std::array<std::atomic<std::uint64_t>, latency_histogram::buckets> latency{};

  struct producer_slot {
    std::atomic<std::int64_t> wait_started_ns{0};  // 0: not waiting
    std::atomic<std::int64_t> waited_ns{0};
    std::atomic<int> reason{0};  // a wait_reason, while waiting
  };
  std::vector<std::unique_ptr<producer_slot>> slots;

  event_throttle throttle;  // rate limiting of the event log (hot paths touch only atomics)

  // The producers' and the consumers' running periods (pacing.hpp): pausing a side stops the
  // stop_token its threads wait with. Before `threads`, which wait on them.
  run_switch producers_on, consumers_on;

  std::vector<std::jthread> threads;

  sampler sampling{*this};  // the sampler thread only

  // The strategy is made last: a signal strategy requests demand (and reports it through the
  // hooks) while it is being built.
  scenario(engine& e, const settings& s);
  // Stops and joins the threads if stop_threads() was not called: they wait with the running
  // periods' tokens, which only stop_threads() (or a pause) stops.
  ~scenario();
  scenario(const scenario&) = delete;
  scenario& operator=(const scenario&) = delete;

  double now_s() const {
    return std::chrono::duration<double>(clock_type::now() - started).count();
  }

  // Posts an event unless its kind already said enough this second; `make` builds the text
  // only when it is posted.
  template <class Make>
  void say(event_kind k, Make&& make) {
    const std::int64_t now = to_ns(clock_type::now());
    if (throttle.suppress(k, now)) return;
    std::string text = make();
    std::lock_guard lock(eng.state_m_);
    throttle.posted(k, now);
    eng.post_locked(k, std::move(text), now_s());
  }

  // Called by the sampler: one summary line per kind for what was not said.
  void summarize_suppressed();

  void start_threads();
  void stop_threads();
  // The engine changed a live control (running flags, rates, the consumer's delayed start):
  // opens or ends the running periods to match and wakes every waiting thread to read them.
  void controls_changed();

 private:
  struct producer_ctx;
  strategy_hooks hooks();
  void produce(std::stop_token st, producer_slot& slot);
  // One item in a running period; false once the period is over.
  bool produce_one(pacer& pace, producer_ctx& ctx);
  void consume(std::stop_token st);
  bool consume_one(pacer& pace, const std::stop_token& period);
};

}  // namespace bp::console

// sampler.hpp: what turns a running scenario into the snapshots the views show, and the
// watermark lines of the event log.
//
// The sampler is one engine thread waking ~15 times a second. It reads the scenario's relaxed
// atomic counters, the producers' wait slots and the strategy's depth without stopping any
// thread. Anything derived (rates, waiting share, latency quantiles) is computed here from a
// short history of raw points rather than maintained by the producers and consumers, which
// keeps their hot paths to a few relaxed increments. Rates and the waiting share cover the last
// second and latency the last 3 s: long enough to be steady, short enough that a change in the
// controls shows at once.
//
// Watermark and drain lines are also the sampler's, since they describe the fill level it
// measures; they are posted when the level changes (and, while an unbounded queue grows, at
// most every 2 s), so that a steady queue stays quiet.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>

#include "engine.hpp"
#include "histogram.hpp"
#include "strategy.hpp"

namespace bp::console {

struct engine::sampler {
  explicit sampler(scenario& s) : sc(s) {}

  // The scenario's state now (seq left at 0: the engine numbers snapshots). Posts the
  // watermark lines and the summaries of what the event throttle held back.
  snapshot sample();

 private:
  struct point {
    clock_type::time_point at;
    std::uint64_t produced, consumed;
    std::int64_t waited_ns;
    latency_histogram::counts hist;
  };

  std::int64_t total_waited_ns(std::int64_t now_ns, int& waiting, int& reason) const;
  void explain(const snapshot& s);
  static const char* describe_full(strategy_kind k);

  scenario& sc;
  std::deque<point> history;  // covers latency_window
  int watermark_level = 0;    // 0 below 50 %, 1 amber, 2 above 80 %, 3 full
  double last_growth_note = 0;
};

// Resident set size of this process in bytes (Linux /proc/self/statm), 0 if unknown.
[[nodiscard]] std::size_t process_rss_bytes() noexcept;

}  // namespace bp::console

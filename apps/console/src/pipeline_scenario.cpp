// pipeline_scenario.cpp: the stages of the console's pipeline scenario (see
// pipeline_scenario.hpp).
#include "pipeline_scenario.hpp"

#include <algorithm>
#include <cstdint>
#include <thread>

namespace bp::console {

namespace {

// An item of the demo: its number and a value the stages transform, so that each stage has a
// result to pass on.
struct record {
  std::uint64_t seq = 0;
  std::uint64_t value = 0;
};

}  // namespace

void pipeline_scenario::work_for(double ms) const noexcept {
  using namespace std::chrono;
  const auto end =
      steady_clock::now() + duration_cast<steady_clock::duration>(duration<double, std::milli>(ms));
  // Slices of at most 5 ms: a slow stage (up to a second per item) still stops promptly.
  for (auto now = steady_clock::now(); now < end && !stopping_.load(std::memory_order_relaxed);
       now = steady_clock::now())
    std::this_thread::sleep_for(std::min<steady_clock::duration>(end - now, milliseconds(5)));
}

pipeline_scenario::pipeline_scenario(const settings& s)
    : cfg_(s), p_([this] {
        const link_options link{.capacity = cfg_.pipeline_capacity};
        std::uint64_t next = 0;
        // The source reads as fast as the first link lets it: it is never the bottleneck, and
        // the backpressure from the slow stage reaches it through parse.
        return pipeline::from(
                   [next](const std::stop_token&) mutable -> std::optional<std::uint64_t> {
                     return next++;
                   },
                   {.link = link, .name = pipeline_source_name})
            .map(
                [this](std::uint64_t n) {
                  work_for(cfg_.pipeline_stage_ms);
                  return record{n, n * 2654435761u};
                },
                {.link = link, .name = pipeline_stage_names[0]})
            .map(
                [this](record r) {
                  work_for(cfg_.pipeline_slow_ms);
                  r.value ^= r.value >> 13;
                  return r;
                },
                {.parallelism = static_cast<std::size_t>(cfg_.pipeline_slow_parallelism),
                 .ordered = false,
                 .link = link,
                 .name = pipeline_stage_names[1]})
            .sink([this](record) { work_for(cfg_.pipeline_stage_ms); },
                  {.name = pipeline_stage_names[2]});
      }()) {
  p_.start();
}

pipeline_scenario::~pipeline_scenario() {
  stopping_.store(true, std::memory_order_relaxed);
  p_.request_stop();
  // ~pipeline discards what is in flight and joins the workers.
}

}  // namespace bp::console

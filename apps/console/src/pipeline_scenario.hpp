// pipeline_scenario.hpp: the console's pipeline scenario, a real bp::pipeline of three stages
// with one slow stage in the middle:
//
//   read (source) -> parse -> enrich (slow) -> write (sink)
//
// Each stage spends a set time per item (a sleep: the demo shows where the time goes without
// burning the machine's cores). The enrich stage takes longer than the others unless its
// parallelism makes up for it, so the link in front of it fills, parse blocks on it, the link
// after it stays nearly empty, and pipeline.report() names enrich as the bottleneck. Giving
// enrich more workers or a shorter time moves the bottleneck to parse (the next slowest).
//
// The report's busy, idle and blocked times add up from the pipeline's start, so a change of
// the pipeline settings builds a new pipeline: its report describes the new shape alone.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>

#include <bp/pipeline.hpp>

#include "settings.hpp"

namespace bp::console {

// Stage names as report() and the JSON show them.
inline constexpr const char* pipeline_source_name = "read";
inline constexpr const char* pipeline_stage_names[] = {"parse", "enrich", "write"};
inline constexpr const char* pipeline_slow_stage = "enrich";

class pipeline_scenario {
 public:
  // Builds and starts the pipeline for s.pipeline_* (s must be valid: validate()).
  explicit pipeline_scenario(const settings& s);
  // Stops the pipeline (items in flight are discarded) and joins its threads.
  ~pipeline_scenario();
  pipeline_scenario(const pipeline_scenario&) = delete;
  pipeline_scenario& operator=(const pipeline_scenario&) = delete;

  // The report now: per-stage busy / idle / blocked time, link depths, items/s, bottleneck.
  [[nodiscard]] pipeline_report report() const { return p_.report(); }
  [[nodiscard]] const settings& config() const noexcept { return cfg_; }

 private:
  // Spends `ms` of a stage's time per item, in slices that notice the scenario stopping.
  void work_for(double ms) const noexcept;

  settings cfg_;
  std::atomic<bool> stopping_{false};
  pipeline p_;
};

}  // namespace bp::console

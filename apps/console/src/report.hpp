// report.hpp: headless mode. `run` drives the engine through one scenario for a fixed time and
// writes its time series (JSON, CSV) and a self-contained HTML report; `compare` does it for
// every strategy on the same scenario and writes one side-by-side report.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine.hpp"
#include "json_io.hpp"

namespace bp::console {

struct run_result {
  settings cfg;
  double seconds = 0;
  bool available = true;  // false: the strategy is not in this build (coming)
  std::vector<snapshot> series;
  std::vector<event> events;
};

// Called about 10 times a second while a run lasts: elapsed seconds and the latest snapshot.
using progress_fn = std::function<void(double elapsed, const snapshot&)>;

// Runs one scenario: producer and consumer start at once (the consumer after
// cfg.consumer_delay_s), stop after `seconds` or when `interrupted` turns true.
run_result run_scenario(const settings& cfg, double seconds, const progress_fn& progress,
                        const std::atomic<bool>& interrupted);

// Totals of a run for the tables: produced, consumed, lost, latency, memory peaks, ...
json summary_json(const run_result& r);
json run_json(const run_result& r);  // settings, summary, series (columns), events

// Write DIR/series.json, DIR/series.csv, DIR/events.txt, DIR/report.html.
void write_run(const std::filesystem::path& dir, const run_result& r);
// Write DIR/compare.json, DIR/compare.csv (one line per strategy), DIR/<strategy>.csv and
// DIR/compare.html.
void write_compare(const std::filesystem::path& dir, const std::vector<run_result>& runs);

// The self-contained HTML page of a series.json (kind "run") or compare.json (kind "compare"):
// re-renders a report from its data.
std::string render_html(const json& data);

// A terminal progress line: "[#####.....]  4.2/10.0 s  produced 21 ...".
std::string progress_line(const std::string& label, double elapsed, double total, const snapshot& s,
                          int width = 30);

}  // namespace bp::console

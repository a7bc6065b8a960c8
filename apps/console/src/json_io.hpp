// json_io.hpp: the JSON shapes of the control API and of the headless outputs, and the strict
// reading of settings from JSON (every field type-checked, unknown fields refused).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "engine.hpp"
#include "settings.hpp"

namespace bp::console {

using json = nlohmann::json;

json to_json(const settings& s);
json to_json(const snapshot& s);
json to_json(const event& e);
json strategies_json();
json scenarios_json();
// The pipeline scenario's report: "stages" (name, kind, parallelism, items in / out,
// items_per_second, the busy / idle / blocked fractions of the stage's time), "links" (one per
// link, from -> to: depth now, capacity, high watermark, average fill), "bottleneck" (the
// stage's name, or null), "elapsed_s".
json to_json(const pipeline_report& r);
json presets_json();

// Applies the fields present in `patch` (a JSON object) over `base`. Empty answer on success,
// else the reason naming the field; then `out` is unchanged. The result is also validate()d.
std::string settings_from_json(const json& patch, const settings& base, settings& out);

// CSV of a series: one header line, one line per snapshot.
std::string series_csv(const std::vector<snapshot>& series);

}  // namespace bp::console

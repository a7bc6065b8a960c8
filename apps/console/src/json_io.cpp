#include "json_io.hpp"

#include <cmath>
#include <limits>
#include <sstream>

namespace bp::console {

json to_json(const settings& s) {
  return {{"producer_rate", s.producer_rate},
          {"consumer_rate", s.consumer_rate},
          {"capacity", s.capacity},
          {"producers", s.producers},
          {"consumers", s.consumers},
          {"strategy", to_string(s.strategy)},
          {"payload_bytes", s.payload_bytes},
          {"unbounded_cap_bytes", s.unbounded_cap_bytes},
          {"throttle_rate", s.throttle_rate},
          {"throttle_burst", s.throttle_burst},
          {"consumer_delay_s", s.consumer_delay_s},
          {"scenario", to_string(s.scenario)},
          {"pipeline_stage_ms", s.pipeline_stage_ms},
          {"pipeline_slow_ms", s.pipeline_slow_ms},
          {"pipeline_slow_parallelism", s.pipeline_slow_parallelism},
          {"pipeline_capacity", s.pipeline_capacity}};
}

namespace {
json ms_or_null(double ms) {
  return ms < 0 ? json(nullptr) : json(ms);
}
}  // namespace

json to_json(const snapshot& s) {
  return {{"seq", s.seq},
          {"t", s.t},
          {"strategy", to_string(s.strategy)},
          {"produced", s.produced},
          {"accepted", s.accepted},
          {"consumed", s.consumed},
          {"dropped", s.dropped},
          {"evicted", s.evicted},
          {"rejected", s.rejected},
          {"capped", s.capped},
          {"in_flight", s.in_flight},
          {"depth", s.depth},
          {"capacity", s.capacity},
          {"producers", s.producers},
          {"consumers", s.consumers},
          {"producers_waiting", s.producers_waiting},
          {"waiting_for", s.waiting_for},
          {"wait_share", s.wait_share},
          {"wait_share_total", s.wait_share_total},
          {"produce_rate", s.produce_rate},
          {"consume_rate", s.consume_rate},
          {"latency_p50_ms", ms_or_null(s.latency_p50_ms)},
          {"latency_p99_ms", ms_or_null(s.latency_p99_ms)},
          {"latency_all_p50_ms", ms_or_null(s.latency_all_p50_ms)},
          {"latency_all_p99_ms", ms_or_null(s.latency_all_p99_ms)},
          {"rss_bytes", s.rss_bytes},
          {"buffered_bytes", s.buffered_bytes},
          {"producer_running", s.producer_running},
          {"consumer_running", s.consumer_running},
          {"consumer_starts_in", s.consumer_starts_in}};
}

json to_json(const event& e) {
  return {{"id", e.id}, {"t", e.t}, {"kind", e.kind}, {"text", e.text}};
}

json strategies_json() {
  json a = json::array();
  for (strategy_kind k : all_strategies)
    a.push_back(
        {{"name", to_string(k)}, {"available", is_available(k)}, {"description", describe(k)}});
  return a;
}

json scenarios_json() {
  json a = json::array();
  for (scenario_kind k : all_scenarios)
    a.push_back({{"name", to_string(k)}, {"description", describe(k)}});
  return a;
}

json to_json(const pipeline_report& r) {
  json stages = json::array(), links = json::array();
  for (std::size_t i = 0; i < r.stages.size(); ++i) {
    const stage_report& s = r.stages[i];
    stages.push_back({{"name", s.name},
                      {"kind", s.kind},
                      {"parallelism", s.parallelism},
                      {"items_in", s.items_in},
                      {"items_out", s.items_out},
                      {"items_per_second", s.items_per_second},
                      {"busy", s.busy_fraction()},
                      {"idle", s.idle_fraction()},
                      {"blocked", s.blocked_fraction()},
                      {"input_fill", s.input_fill()},
                      {"bottleneck", r.bottleneck == i}});
    // The link a stage reads is the previous stage's output.
    if (s.input && i > 0)
      links.push_back({{"from", r.stages[i - 1].name},
                       {"to", s.name},
                       {"depth", s.input->size},
                       {"capacity", s.input->capacity},
                       {"high_watermark", s.input->high_watermark},
                       {"average_fill", s.input->average_fill}});
  }
  const stage_report* b = r.bottleneck_stage();
  return {{"stages", stages},
          {"links", links},
          {"bottleneck", b ? json(b->name) : json(nullptr)},
          {"elapsed_s", std::chrono::duration<double>(r.elapsed).count()}};
}

json presets_json() {
  json a = json::array();
  for (const preset& p : presets())
    a.push_back({{"name", p.name},
                 {"title", p.title},
                 {"summary", p.summary},
                 {"producer_rate", p.values.producer_rate},
                 {"consumer_rate", p.values.consumer_rate},
                 {"capacity", p.values.capacity},
                 {"consumer_delay_s", p.values.consumer_delay_s}});
  return a;
}

namespace {

// The first `max` bytes of a UTF-8 string, cut before a multi-byte character rather than in it:
// the reason goes back to the client inside a JSON answer, which must be valid UTF-8 (a cut
// character makes the serializer throw).
std::string clip(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

// Reads one field strictly: numbers must be numbers (and whole where counts are meant).
struct reader {
  const json& j;
  std::ostringstream why;

  bool number(const char* key, double& out) {
    auto it = j.find(key);
    if (it == j.end()) return true;
    if (!it->is_number()) {
      why << key << ": expected a number, got " << it->type_name();
      return false;
    }
    out = it->get<double>();
    return true;
  }
  template <class Int>
  bool integer(const char* key, Int& out) {
    auto it = j.find(key);
    if (it == j.end()) return true;
    if (!it->is_number()) {
      why << key << ": expected a whole number, got " << it->type_name();
      return false;
    }
    const double d = it->get<double>();
    if (!std::isfinite(d) || d != std::floor(d)) {
      why << key << ": expected a whole number, got " << it->dump();
      return false;
    }
    // Compare in long double: exact for every 64-bit integer the JSON parser produced.
    const long double v = it->is_number_unsigned()  ? (long double)it->get<std::uint64_t>()
                          : it->is_number_integer() ? (long double)it->get<std::int64_t>()
                                                    : (long double)d;
    if (v < (long double)std::numeric_limits<Int>::min() ||
        v > (long double)std::numeric_limits<Int>::max()) {
      why << key << ": " << it->dump() << " is out of range";
      return false;
    }
    out = static_cast<Int>(v);
    return true;
  }
};

}  // namespace

std::string settings_from_json(const json& patch, const settings& base, settings& out) {
  if (!patch.is_object()) return "body: expected a JSON object";
  static const char* known[] = {
      "producer_rate",     "consumer_rate",       "capacity",
      "producers",         "consumers",           "strategy",
      "payload_bytes",     "unbounded_cap_bytes", "throttle_rate",
      "throttle_burst",    "consumer_delay_s",    "scenario",
      "pipeline_stage_ms", "pipeline_slow_ms",    "pipeline_slow_parallelism",
      "pipeline_capacity"};
  for (const auto& [key, value] : patch.items()) {
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) return "unknown field '" + clip(key, 64) + "'";
  }
  settings s = base;
  reader r{patch, {}};
  if (!r.number("producer_rate", s.producer_rate) || !r.number("consumer_rate", s.consumer_rate) ||
      !r.integer("capacity", s.capacity) || !r.integer("producers", s.producers) ||
      !r.integer("consumers", s.consumers) || !r.integer("payload_bytes", s.payload_bytes) ||
      !r.integer("unbounded_cap_bytes", s.unbounded_cap_bytes) ||
      !r.number("throttle_rate", s.throttle_rate) ||
      !r.integer("throttle_burst", s.throttle_burst) ||
      !r.number("consumer_delay_s", s.consumer_delay_s) ||
      !r.number("pipeline_stage_ms", s.pipeline_stage_ms) ||
      !r.number("pipeline_slow_ms", s.pipeline_slow_ms) ||
      !r.integer("pipeline_slow_parallelism", s.pipeline_slow_parallelism) ||
      !r.integer("pipeline_capacity", s.pipeline_capacity))
    return r.why.str();
  if (auto it = patch.find("scenario"); it != patch.end()) {
    if (!it->is_string()) return "scenario: expected a string, got " + std::string(it->type_name());
    auto k = scenario_from_string(it->get<std::string>());
    if (!k) {
      std::string names;
      for (scenario_kind x : all_scenarios)
        names += (names.empty() ? "" : ", ") + std::string(to_string(x));
      return "scenario: unknown scenario '" + clip(it->get<std::string>(), 64) +
             "' (known: " + names + ")";
    }
    s.scenario = *k;
  }
  if (auto it = patch.find("strategy"); it != patch.end()) {
    if (!it->is_string()) return "strategy: expected a string, got " + std::string(it->type_name());
    auto k = strategy_from_string(it->get<std::string>());
    if (!k) {
      std::string names;
      for (strategy_kind x : all_strategies)
        names += (names.empty() ? "" : ", ") + std::string(to_string(x));
      return "strategy: unknown strategy '" + clip(it->get<std::string>(), 64) +
             "' (known: " + names + ")";
    }
    s.strategy = *k;
  }
  if (auto why = validate(s); !why.empty()) return why;
  out = s;
  return {};
}

std::string series_csv(const std::vector<snapshot>& series) {
  std::ostringstream o;
  o << "t,strategy,produced,accepted,consumed,dropped,evicted,rejected,capped,in_flight,depth,"
       "capacity,producers_waiting,wait_share,produce_rate,consume_rate,latency_p50_ms,"
       "latency_p99_ms,rss_bytes,buffered_bytes\n";
  for (const auto& s : series) {
    o << s.t << ',' << to_string(s.strategy) << ',' << s.produced << ',' << s.accepted << ','
      << s.consumed << ',' << s.dropped << ',' << s.evicted << ',' << s.rejected << ',' << s.capped
      << ',' << s.in_flight << ',' << s.depth << ',' << s.capacity << ',' << s.producers_waiting
      << ',' << s.wait_share << ',' << s.produce_rate << ',' << s.consume_rate << ',';
    if (s.latency_p50_ms >= 0) o << s.latency_p50_ms;
    o << ',';
    if (s.latency_p99_ms >= 0) o << s.latency_p99_ms;
    o << ',' << s.rss_bytes << ',' << s.buffered_bytes << '\n';
  }
  return o.str();
}

}  // namespace bp::console

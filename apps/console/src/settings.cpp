#include "settings.hpp"

#include <cmath>
#include <sstream>

namespace bp::console {

std::string_view to_string(strategy_kind k) noexcept {
  switch (k) {
    case strategy_kind::block:
      return "block";
    case strategy_kind::drop_newest:
      return "drop_newest";
    case strategy_kind::drop_oldest:
      return "drop_oldest";
    case strategy_kind::reject:
      return "reject";
    case strategy_kind::unbounded:
      return "unbounded";
    case strategy_kind::signal:
      return "signal";
    case strategy_kind::throttle:
      return "throttle";
  }
  return "invalid";
}

std::optional<strategy_kind> strategy_from_string(std::string_view s) noexcept {
  for (strategy_kind k : all_strategies)
    if (to_string(k) == s) return k;
  return std::nullopt;
}

std::string_view describe(strategy_kind k) noexcept {
  switch (k) {
    case strategy_kind::block:
      return "Block: the producer waits until the buffer has space (Go channels, Node.js "
             "streams). Nothing is lost; slowness propagates upstream.";
    case strategy_kind::drop_newest:
      return "Drop newest: a full buffer discards the item being sent. The producer never "
             "waits; the first items of a burst are kept.";
    case strategy_kind::drop_oldest:
      return "Drop oldest: a full buffer evicts its oldest item to take the new one. The "
             "freshest data is kept (dashboards, telemetry).";
    case strategy_kind::reject:
      return "Reject: a full buffer answers `full` at once and the producer decides (here: it "
             "gives the item up, as a server answering 503 would).";
    case strategy_kind::unbounded:
      return "Unbounded: no backpressure. The queue and the process memory grow until the "
             "safety cap stops the producer (in production: out of memory).";
    case strategy_kind::signal:
      return "Signal: the consumer pulls with request(n) (Reactive Streams, bp::rs); the "
             "producer emits only against demand.";
    case strategy_kind::throttle:
      return "Throttle: a token bucket in front of the producer (bp::token_bucket) caps its "
             "rate whatever the consumer does.";
  }
  return "";
}

std::string_view to_string(scenario_kind k) noexcept {
  switch (k) {
    case scenario_kind::channel:
      return "channel";
    case scenario_kind::pipeline:
      return "pipeline";
  }
  return "invalid";
}

std::optional<scenario_kind> scenario_from_string(std::string_view s) noexcept {
  for (scenario_kind k : all_scenarios)
    if (to_string(k) == s) return k;
  return std::nullopt;
}

std::string_view describe(scenario_kind k) noexcept {
  switch (k) {
    case scenario_kind::channel:
      return "Channel: producers and consumers around one bounded buffer; the strategy decides "
             "what a full buffer does.";
    case scenario_kind::pipeline:
      return "Pipeline: read -> parse -> enrich -> write on threads (bp::pipeline), bounded "
             "links between the stages. enrich is slow: the link in front of it fills and the "
             "report names it the bottleneck; give it more workers or less time per item to "
             "move the bottleneck.";
  }
  return "";
}

std::string validate(const settings& s) {
  std::ostringstream why;
  auto rate_ok = [](double r) { return std::isfinite(r) && r >= min_rate && r <= max_rate; };
  if (!rate_ok(s.producer_rate))
    why << "producer_rate: " << s.producer_rate << " is out of range " << min_rate << ".."
        << max_rate << " items/s";
  else if (!rate_ok(s.consumer_rate))
    why << "consumer_rate: " << s.consumer_rate << " is out of range " << min_rate << ".."
        << max_rate << " items/s";
  else if (s.capacity > max_capacity)
    why << "capacity: " << s.capacity << " is out of range 0.." << max_capacity;
  else if (s.producers < 1 || s.producers > max_threads)
    why << "producers: " << s.producers << " is out of range 1.." << max_threads;
  else if (s.consumers < 1 || s.consumers > max_threads)
    why << "consumers: " << s.consumers << " is out of range 1.." << max_threads;
  else if (s.payload_bytes > max_payload_bytes)
    why << "payload_bytes: " << s.payload_bytes << " is out of range 0.." << max_payload_bytes;
  else if (s.unbounded_cap_bytes < (std::size_t{1} << 20) ||
           s.unbounded_cap_bytes > max_unbounded_cap_bytes)
    why << "unbounded_cap_bytes: " << s.unbounded_cap_bytes << " is out of range 1 MiB..2 GiB";
  else if (!std::isfinite(s.throttle_rate) || s.throttle_rate < 0 ||
           (s.throttle_rate != 0 && s.throttle_rate < min_rate) || s.throttle_rate > max_rate)
    why << "throttle_rate: " << s.throttle_rate << " must be 0 (the consumer rate) or " << min_rate
        << ".." << max_rate << " items/s";
  else if (s.throttle_burst < 1 || s.throttle_burst > max_throttle_burst)
    why << "throttle_burst: " << s.throttle_burst << " is out of range 1.." << max_throttle_burst;
  else if (!std::isfinite(s.consumer_delay_s) || s.consumer_delay_s < 0 ||
           s.consumer_delay_s > max_consumer_delay_s)
    why << "consumer_delay_s: " << s.consumer_delay_s << " is out of range 0.."
        << max_consumer_delay_s << " s";
  else if (!std::isfinite(s.pipeline_stage_ms) || s.pipeline_stage_ms < min_stage_ms ||
           s.pipeline_stage_ms > max_stage_ms)
    why << "pipeline_stage_ms: " << s.pipeline_stage_ms << " is out of range " << min_stage_ms
        << ".." << max_stage_ms << " ms";
  else if (!std::isfinite(s.pipeline_slow_ms) || s.pipeline_slow_ms < min_stage_ms ||
           s.pipeline_slow_ms > max_stage_ms)
    why << "pipeline_slow_ms: " << s.pipeline_slow_ms << " is out of range " << min_stage_ms << ".."
        << max_stage_ms << " ms";
  else if (s.pipeline_slow_parallelism < 1 || s.pipeline_slow_parallelism > max_stage_parallelism)
    why << "pipeline_slow_parallelism: " << s.pipeline_slow_parallelism << " is out of range 1.."
        << max_stage_parallelism;
  else if (s.pipeline_capacity < 1 || s.pipeline_capacity > max_pipeline_capacity)
    why << "pipeline_capacity: " << s.pipeline_capacity << " is out of range 1.."
        << max_pipeline_capacity;
  else if (s.capacity == 0 && s.strategy != strategy_kind::block &&
           s.strategy != strategy_kind::unbounded && s.strategy != strategy_kind::throttle)
    why << "capacity: 0 (a rendezvous: the producer hands each item to a waiting consumer) "
           "works only with strategies block and throttle, not "
        << to_string(s.strategy);
  else if (!is_available(s.strategy))
    why << "strategy: " << to_string(s.strategy) << " is not available in this build (coming)";
  return why.str();
}

namespace {
settings preset_values(double producer_rate, double consumer_rate, double consumer_delay_s) {
  settings s;
  s.producer_rate = producer_rate;
  s.consumer_rate = consumer_rate;
  s.capacity = 12;
  s.producers = 1;
  s.consumers = 1;
  s.consumer_delay_s = consumer_delay_s;
  return s;
}

const preset the_presets[] = {
    {"overload", "Overload (5:1)",
     "The producer emits 5 items/s, the consumer handles 1/s: production outpaces consumption.",
     preset_values(5, 1, 0)},
    {"balanced", "Balanced (2:2)", "Producer and consumer both at 2 items/s: the buffer stays low.",
     preset_values(2, 2, 0)},
    {"burst", "Burst", "The producer runs alone for 2 s, then the consumer takes 3/s against 5/s.",
     preset_values(5, 3, 2)},
};
}  // namespace

std::span<const preset> presets() noexcept {
  return the_presets;
}

const preset* find_preset(std::string_view name) noexcept {
  for (const preset& p : the_presets)
    if (p.name == name) return &p;
  return nullptr;
}

}  // namespace bp::console

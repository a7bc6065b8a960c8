// settings.hpp: what a console scenario is made of (rates, capacity, threads, strategy) and
// the named presets (overload, balanced, burst) that set one up in a click. Validation lives here
// so that the HTTP layer, the command line and the tests all refuse the same things with the same
// words.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace bp::console {

// How the producer side reacts when the consumer cannot keep up. The first four are the
// bp::overflow policies of bp::channel; `unbounded` is "no backpressure at all" (a queue that
// grows until a safety cap); `signal` is Reactive Streams demand (bp::rs, request(n)) and
// `throttle` a token bucket in front of the producer (bp::token_bucket).
enum class strategy_kind { block, drop_newest, drop_oldest, reject, unbounded, signal, throttle };

inline constexpr strategy_kind all_strategies[] = {
    strategy_kind::block,   strategy_kind::drop_newest, strategy_kind::drop_oldest,
    strategy_kind::reject,  strategy_kind::unbounded,   strategy_kind::signal,
    strategy_kind::throttle};

[[nodiscard]] std::string_view to_string(strategy_kind k) noexcept;
[[nodiscard]] std::optional<strategy_kind> strategy_from_string(std::string_view s) noexcept;
// A short paragraph for the UI: what the strategy does when the buffer is full, and where that
// behaviour is found in practice.
[[nodiscard]] std::string_view describe(strategy_kind k) noexcept;
// Whether this build can run the strategy (signal and throttle need bp/streams.hpp and
// bp/rate.hpp); when not, the reason.
[[nodiscard]] bool is_available(strategy_kind k) noexcept;

// What the console runs: `channel` is one buffer between producers and consumers, driven by
// the strategy; `pipeline` is a bp::pipeline of three stages with a slow one in the middle
// (read -> parse -> enrich -> write; pipeline_scenario.hpp), to find its bottleneck.
enum class scenario_kind { channel, pipeline };

inline constexpr scenario_kind all_scenarios[] = {scenario_kind::channel, scenario_kind::pipeline};

[[nodiscard]] std::string_view to_string(scenario_kind k) noexcept;
[[nodiscard]] std::optional<scenario_kind> scenario_from_string(std::string_view s) noexcept;
[[nodiscard]] std::string_view describe(scenario_kind k) noexcept;

struct settings {
  double producer_rate = 5.0;  // items per second, all producers together
  double consumer_rate = 1.0;  // items per second, all consumers together
  std::size_t capacity = 12;   // buffer slots (0: rendezvous, block only)
  int producers = 1;
  int consumers = 1;
  strategy_kind strategy = strategy_kind::block;
  // Every item carries a heap payload of this many bytes, so that what a queue holds shows in
  // memory (the unbounded strategy's growth is the point of the demo).
  std::size_t payload_bytes = 16 * 1024;
  // Safety cap of the unbounded strategy: when the items it holds reach this many bytes, the
  // producers stop (where a real process would run out of memory).
  std::size_t unbounded_cap_bytes = std::size_t{256} << 20;
  // Throttle: token rate (0: the consumer rate) and bucket size.
  double throttle_rate = 0.0;
  std::size_t throttle_burst = 1;
  // Start the consumers this long after the producers (the Burst preset: 2 s).
  double consumer_delay_s = 0.0;

  // The pipeline scenario: which scenario runs, then the pipeline's shape. parse and write
  // spend pipeline_stage_ms per item, the slow stage (enrich) pipeline_slow_ms on each of its
  // pipeline_slow_parallelism workers; every link holds pipeline_capacity items.
  scenario_kind scenario = scenario_kind::channel;
  double pipeline_stage_ms = 2.0;
  double pipeline_slow_ms = 10.0;
  int pipeline_slow_parallelism = 1;
  std::size_t pipeline_capacity = 32;

  friend bool operator==(const settings&, const settings&) = default;
};

// Ranges, for the UI and the validation messages.
inline constexpr double min_rate = 0.5;
inline constexpr double max_rate = 100000.0;
inline constexpr std::size_t max_capacity = 10000;
inline constexpr int max_threads = 8;
inline constexpr std::size_t max_payload_bytes = std::size_t{1} << 20;
inline constexpr std::size_t max_unbounded_cap_bytes = std::size_t{2} << 30;
inline constexpr std::size_t max_throttle_burst = 100000;
inline constexpr double max_consumer_delay_s = 60.0;
inline constexpr double min_stage_ms = 0.1;  // time per item of a pipeline stage
inline constexpr double max_stage_ms = 1000.0;
inline constexpr int max_stage_parallelism = 8;
inline constexpr std::size_t max_pipeline_capacity = 1000;

// Empty when `s` is valid, otherwise the reason, naming the field ("capacity: 20000 is out of
// range 0..10000").
[[nodiscard]] std::string validate(const settings& s);

struct preset {
  std::string_view name;
  std::string_view title;
  std::string_view summary;
  settings values;  // the strategy field is left to the caller (a preset keeps the strategy)
};

// Overload (5:1), Balanced (2:2) and Burst (producer alone for 2 s, then 3/s against 5/s).
[[nodiscard]] std::span<const preset> presets() noexcept;
[[nodiscard]] const preset* find_preset(std::string_view name) noexcept;

}  // namespace bp::console

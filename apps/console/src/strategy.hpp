// strategy.hpp: the pluggable piece of a scenario. A strategy is what sits between the
// producers and the consumers: it answers "the consumer cannot keep up, what now?".
//
//   console::item               what flows: a sequence number, a birth time, a heap payload.
//   console::producer_context   what a strategy may tell the engine while it hands an item over
//                               (it starts or stops waiting, an item was evicted).
//   console::strategy           offer() on the producer side, take() on the consumer side.
//   console::make_strategy      one strategy per strategy_kind.
//
// Each strategy is a thin adapter over a public bp API (bp::channel for block / drop_newest /
// drop_oldest / reject; bp::token_bucket + bp::channel for throttle; bp::rs for signal;
// bp::unbounded_channel for `unbounded`, which is the absence of backpressure).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include <bp/metrics.hpp>

#include "settings.hpp"

namespace bp::console {

using clock_type = std::chrono::steady_clock;

struct item {
  std::uint64_t seq = 0;
  clock_type::time_point born{};
  std::vector<unsigned char> payload;

  // Bytes this item keeps alive (for the memory views).
  [[nodiscard]] std::size_t footprint() const noexcept { return sizeof(item) + payload.size(); }
};

// Why a producer waits.
enum class wait_reason { buffer_full, no_demand, no_token };

class producer_context {
 public:
  virtual ~producer_context() = default;
  // Stopped once the producer should give up its current item (pause, reset, shutdown). Every
  // wait inside offer() watches it, so that a stop wakes the producer at once.
  [[nodiscard]] virtual std::stop_token stop_token() const noexcept = 0;
  virtual void begin_wait(wait_reason why) noexcept = 0;
  virtual void end_wait() noexcept = 0;
  // A value accepted earlier was evicted to make room for a newer one (drop_oldest).
  virtual void evicted(item&& old) noexcept = 0;
};

// The answer of offer(): what happened to the item.
enum class offer_result {
  accepted,  // it is in the buffer (or handed to a consumer)
  dropped,   // drop_newest: the buffer was full, the item was discarded
  rejected,  // reject: the buffer was full, the producer was told `full` and gives the item up
  capped,    // unbounded: the safety cap is reached; the item was not taken
  stopped,   // the producer was asked to stop while it waited; the item was not taken
};

class strategy {
 public:
  virtual ~strategy() = default;
  [[nodiscard]] virtual strategy_kind kind() const noexcept = 0;
  // Producer side. May wait (calling ctx.begin_wait / end_wait around the wait), with
  // ctx.stop_token() given to every blocking verb: a stop request ends the wait at once and
  // offer() answers stopped, the item not taken.
  virtual offer_result offer(item&& it, producer_context& ctx) = 0;
  // Consumer side: waits for an item; nothing once `stop` is stopped or the strategy closed.
  virtual std::optional<item> take(const std::stop_token& stop) = 0;
  // Items buffered now (best effort).
  [[nodiscard]] virtual std::size_t depth() const noexcept = 0;
  // Buffer slots shown in the UI (the unbounded strategy answers its cap in items, or 0).
  [[nodiscard]] virtual std::size_t capacity() const noexcept = 0;
  // Wakes every waiter; offer() answers stopped and take() nothing from now on.
  virtual void close() noexcept = 0;
  // Registers the bp primitives this strategy runs on (served at GET /metrics), each under
  // `name`; the registrations must be dropped before the strategy is destroyed.
  [[nodiscard]] virtual std::vector<metrics::registration> register_metrics(
      metrics::registry& reg, const std::string& name) const {
    (void)reg;
    (void)name;
    return {};
  }
};

// What a strategy may report outside an offer() (from the consumer's thread).
struct strategy_hooks {
  // signal: the consumer asked for `n` more items with request(n); `outstanding` is the demand
  // not yet met after that.
  std::function<void(std::int64_t n, std::int64_t outstanding)> on_request;
};

// Throws std::invalid_argument for a strategy this build cannot run (see is_available).
[[nodiscard]] std::unique_ptr<strategy> make_strategy(const settings& s, strategy_hooks hooks = {});

// signal_strategy.cpp, built only when the library has bp/streams.hpp.
[[nodiscard]] std::unique_ptr<strategy> make_signal_strategy(const settings& s,
                                                             strategy_hooks hooks);

}  // namespace bp::console

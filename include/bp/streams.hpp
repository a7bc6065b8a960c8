// bp/streams.hpp: demand-driven streams after the Reactive Streams specification (the Signal
// strategy): the consumer calls request(n) and the producer sends at most n.
//
//   bp/rs/interfaces.hpp   subscription, subscriber<T>, publisher<T>, processor<T, R>
//   bp/rs/publishers.hpp   range, empty, error, just, from_container, generate, from_channel
//   bp/rs/operators.hpp    map, filter, take, on_backpressure_buffer/_drop/_latest,
//                          limit_rate, observe_on, batch; composed with `|`
//   bp/rs/subscribers.hpp  subscribe (lambdas + request strategy), to_channel, to_iterable
//   bp/rs/executor.hpp     executor, worker (for observe_on)
//
// Example (examples/streams_pull.cpp):
//
//   using namespace bp::rs;
//   auto pipeline = range(0, 1'000'000) | map([](std::int64_t v) { return v * 2; })
//                                       | filter([](std::int64_t v) { return v % 3 == 0; });
//   std::int64_t sum = 0;
//   for (std::int64_t v : to_iterable(pipeline, 64)) sum += v;  // 64 in flight at most
//
// See docs/streams.md for when Signal beats Block, and the rule-by-rule compliance table.
#pragma once

#include "rs/executor.hpp"
#include "rs/interfaces.hpp"
#include "rs/operators.hpp"
#include "rs/publishers.hpp"
#include "rs/subscribers.hpp"

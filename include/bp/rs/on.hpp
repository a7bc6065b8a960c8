// bp/rs/on.hpp: Reactive Streams deliveries on the runtime's executors.
//
//   bp::rs::on(ex)   the rs::executor that posts each task to a bp executor (a thread_pool's,
//                    a run_loop's, inline_executor), so observe_on can deliver there.
//
// Example:
//
//   bp::thread_pool pool(2);
//   auto h = bp::rs::subscribe(bp::rs::range(0, 100) | bp::rs::observe_on(bp::rs::on(
//                                  pool.get_executor())),
//                              [](std::int64_t v) { use(v); });  // runs on the pool's threads
//
// observe_on schedules at most one task of a subscription at a time, so deliveries stay in
// order even on a pool of many threads. Each task observe_on schedules is posted as a callable,
// which costs one allocation (the executor's node for it).
// The executor must outlive the subscription (a pool or loop destroyed first would be posted to
// after its end).
#pragma once

#include <functional>
#include <utility>

#include "../executor.hpp"
#include "executor.hpp"

namespace bp::rs {

template <bp::executor E>
[[nodiscard]] rs::executor on(E ex) {
  return [ex](std::function<void()> task) mutable { ex.post(std::move(task)); };
}

}  // namespace bp::rs

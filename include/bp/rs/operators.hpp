// bp/rs/operators.hpp: processing stages, composed with `|`.
//
//   map(f)                          f(v) for each v
//   filter(pred)                    the v with pred(v); each rejected one is re-requested
//   take(n)                         the first n, then cancels upstream and completes; never
//                                   requests more than n upstream
//   on_backpressure_buffer(c, p)    requests everything upstream, buffers up to c elements for a
//                                   slow downstream; when full, bp::overflow p decides:
//                                   drop_newest, drop_oldest (victims to the optional on_drop),
//                                   reject (fails with bp::rs::overflow_error), block (requests at
//                                   most c ahead instead: upstream waits, nothing is lost)
//   on_backpressure_drop(on_drop)   requests everything; drops (to on_drop) what arrives
//                                   while downstream has no demand
//   on_backpressure_latest()        requests everything; keeps only the newest undelivered one
//   limit_rate(n)                   never more than n requested upstream at once: n first, then
//                                   75% of n each time 75% of n was delivered (Reactor)
//   observe_on(executor, prefetch)  delivers downstream on the executor, through a buffer of
//                                   `prefetch` refilled at 75% (crossing threads, bounded)
//   batch(n, max_wait)              std::vector<T> of up to n; a partial one after max_wait
//
// The flow-control stages (on_backpressure_buffer / _drop / _latest, limit_rate, observe_on)
// take .with_stats(std::shared_ptr<bp::rs::operator_stats>): what they received, delivered,
// dropped, evicted and requested, for a bp::metrics::registry (bp/rs/operator_stats.hpp).
//
// Each stage is created per subscription, so a pipeline is a reusable recipe (cold). Every
// stage obeys the subscriber rules upstream and the publisher rules downstream.
//
// Example:
//
//   using namespace bp::rs;
//   auto squares = range(0, 1000) | map([](std::int64_t v) { return v * v; })
//                                 | filter([](std::int64_t v) { return v % 2 == 0; })
//                                 | limit_rate(32);
//
// Errors: a user function (map's f, filter's pred, an on_drop) that throws cancels upstream and
// signals on_error downstream with its exception. Invalid arguments (capacity 0, prefetch <= 0,
// n < 0, batch size 0, an empty executor) throw std::invalid_argument naming the argument.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../status.hpp"
#include "detail/batch_op.hpp"
#include "detail/demand.hpp"
#include "detail/queue_op.hpp"
#include "detail/relay.hpp"
#include "executor.hpp"
#include "interfaces.hpp"
#include "operator_stats.hpp"

namespace bp::rs {

namespace detail {

// A publisher that, per subscriber, builds a stage with `make` and subscribes it upstream.
template <class In, class Out, class Make>
class lifted final : public publisher<Out> {
 public:
  lifted(publisher_ptr<In> up, Make make) : up_(std::move(up)), make_(std::move(make)) {}
  void subscribe(std::shared_ptr<subscriber<Out>> s) override {
    if (!s) throw_null_subscriber("bp::rs operator");
    std::shared_ptr<subscriber<In>> stage = make_(std::move(s));
    up_->subscribe(std::move(stage));
  }

 private:
  publisher_ptr<In> up_;
  Make make_;
};

template <class Out, class In, class Make>
publisher_ptr<Out> lift(publisher_ptr<In> up, Make make) {
  if (!up) throw std::invalid_argument("bp::rs operator: upstream publisher is null");
  return std::make_shared<lifted<In, Out, Make>>(std::move(up), std::move(make));
}

struct stage_tag {};  // marks the descriptors that `|` accepts

template <class In, class Out, class F>
class map_stage : public relay<In, Out, map_stage<In, Out, F>> {
 public:
  map_stage(std::shared_ptr<subscriber<Out>> d, F f)
      : relay<In, Out, map_stage>(std::move(d)), f_(std::move(f)) {}
  void next(In v) { this->emit(std::invoke(f_, std::move(v))); }

 private:
  F f_;
};

template <class T, class P>
class filter_stage : public relay<T, T, filter_stage<T, P>> {
 public:
  filter_stage(std::shared_ptr<subscriber<T>> d, P p)
      : relay<T, T, filter_stage>(std::move(d)), p_(std::move(p)) {}
  void next(T v) {
    if (std::invoke(p_, std::as_const(v)))
      this->emit(std::move(v));
    else
      this->upstream().request(1);  // replace the rejected one (rule 1.1 still holds)
  }

 private:
  P p_;
};

template <class T>
class take_stage : public relay<T, T, take_stage<T>> {
 public:
  take_stage(std::shared_ptr<subscriber<T>> d, std::int64_t n)
      : relay<T, T, take_stage>(std::move(d)), limit_(n) {}
  void on_start() {
    if (limit_ != 0) return;
    this->upstream().cancel();
    this->terminate(nullptr);
  }
  void forward_request(std::int64_t n) {
    if (n <= 0) {
      this->upstream().request(n);  // upstream answers on_error (rule 3.9)
      return;
    }
    std::int64_t granted = granted_.load(std::memory_order_relaxed);
    std::int64_t more = 0;
    do {
      more = std::min(n, limit_ - granted);
      if (more == 0) return;
    } while (!granted_.compare_exchange_weak(granted, granted + more, std::memory_order_relaxed));
    this->upstream().request(more);
  }
  void next(T v) {
    if (count_ == limit_) return;
    ++count_;
    this->emit(std::move(v));
    if (count_ == limit_) {
      this->upstream().cancel();
      this->terminate(nullptr);
    }
  }

 private:
  const std::int64_t limit_;
  std::int64_t count_ = 0;  // signal thread only
  std::atomic<std::int64_t> granted_{0};
};

template <class T>
class drop_stage : public relay<T, T, drop_stage<T>> {
 public:
  drop_stage(std::shared_ptr<subscriber<T>> d, std::function<void(T&&)> on_drop,
             std::shared_ptr<operator_stats> stats)
      : relay<T, T, drop_stage>(std::move(d)),
        on_drop_(std::move(on_drop)),
        stats_(std::move(stats)) {}
  void on_start() { this->upstream().request(unbounded); }
  void forward_request(std::int64_t n) {
    if (n <= 0)
      this->upstream().request(n);  // upstream answers on_error (rule 3.9)
    else
      add_demand(requested_, n);
  }
  void next(T v) {
    if (stats_) stats_->add_received();
    std::int64_t r = requested_.load(std::memory_order_acquire);
    for (;;) {
      if (r == 0) {
        if (stats_) stats_->add_dropped();
        if (on_drop_) on_drop_(std::move(v));
        return;
      }
      if (r == unbounded || requested_.compare_exchange_weak(r, r - 1, std::memory_order_acq_rel,
                                                             std::memory_order_acquire))
        break;
    }
    if (stats_) stats_->add_delivered();
    this->emit(std::move(v));
  }

 private:
  std::function<void(T&&)> on_drop_;
  std::shared_ptr<operator_stats> stats_;
  std::atomic<std::int64_t> requested_{0};
};

template <class F>
struct map_op : stage_tag {
  F f;
  template <class T>
  auto apply(publisher_ptr<T> up) const {
    // A readable error first, and nothing else: the real work only for a usable f.
    static_assert(std::is_invocable_v<const F&, T>,
                  "bp::rs::map(f): f must be callable with the publisher's element type T, as "
                  "f(T) (or f(const T&)), and be const-callable");
    if constexpr (std::is_invocable_v<const F&, T>) {
      static_assert(!std::is_void_v<std::invoke_result_t<const F&, T>>,
                    "bp::rs::map(f): f must return the new element (it returns void)");
      using R = std::decay_t<std::invoke_result_t<const F&, T>>;
      return lift<R>(std::move(up), [f = f](std::shared_ptr<subscriber<R>> d) {
        return std::make_shared<map_stage<T, R, F>>(std::move(d), f);
      });
    }
  }
};

template <class P>
struct filter_op : stage_tag {
  P p;
  template <class T>
  auto apply(publisher_ptr<T> up) const {
    static_assert(std::is_invocable_r_v<bool, P&, const T&>,
                  "bp::rs::filter(pred): pred must be callable as bool(const T&) with the "
                  "publisher's element type T");
    if constexpr (std::is_invocable_r_v<bool, P&, const T&>) {
      return lift<T>(std::move(up), [p = p](std::shared_ptr<subscriber<T>> d) {
        return std::make_shared<filter_stage<T, P>>(std::move(d), p);
      });
    }
  }
};

struct take_op : stage_tag {
  std::int64_t n;
  template <class T>
  auto apply(publisher_ptr<T> up) const {
    return lift<T>(std::move(up), [n = n](std::shared_ptr<subscriber<T>> d) {
      return std::make_shared<take_stage<T>>(std::move(d), n);
    });
  }
};

template <class D>
struct drop_op : stage_tag {
  D on_drop;
  std::shared_ptr<operator_stats> stats{};
  // The same operator, counting into `s` (bp/rs/operator_stats.hpp).
  [[nodiscard]] drop_op with_stats(std::shared_ptr<operator_stats> s) const {
    drop_op copy = *this;
    copy.stats = std::move(s);
    return copy;
  }
  template <class T>
  auto apply(publisher_ptr<T> up) const {
    return lift<T>(std::move(up), [c = *this](std::shared_ptr<subscriber<T>> d) {
      std::function<void(T &&)> fn;
      if constexpr (!std::is_same_v<D, std::nullptr_t>) fn = c.on_drop;
      return std::make_shared<drop_stage<T>>(std::move(d), std::move(fn), c.stats);
    });
  }
};

// A queue_op configuration whose on_drop may be any callable taking T&& (or nothing).
template <class D>
struct queue_op_desc : stage_tag {
  std::size_t capacity;
  std::int64_t prefetch;
  overflow policy;
  D on_drop;
  executor ex;
  std::shared_ptr<operator_stats> stats{};
  // The same operator, counting into `s` (bp/rs/operator_stats.hpp).
  [[nodiscard]] queue_op_desc with_stats(std::shared_ptr<operator_stats> s) const {
    queue_op_desc copy = *this;
    copy.stats = std::move(s);
    return copy;
  }
  template <class T>
  auto apply(publisher_ptr<T> up) const {
    return lift<T>(std::move(up), [c = *this](std::shared_ptr<subscriber<T>> d) {
      queue_config<T> cfg{c.capacity, c.prefetch, c.policy, {}, c.ex, c.stats};
      if constexpr (!std::is_same_v<D, std::nullptr_t>) cfg.on_drop = c.on_drop;
      return std::make_shared<queue_op<T>>(std::move(d), std::move(cfg));
    });
  }
};

struct batch_desc : stage_tag {
  std::size_t n;
  std::chrono::steady_clock::duration max_wait;
  template <class T>
  auto apply(publisher_ptr<T> up) const {
    return lift<std::vector<T>>(
        std::move(up), [n = n, w = max_wait](std::shared_ptr<subscriber<std::vector<T>>> d) {
          return std::make_shared<batch_op<T>>(std::move(d), n, w);
        });
  }
};

inline std::int64_t checked_prefetch(std::int64_t n, const char* who) {
  if (n <= 0)
    throw std::invalid_argument(std::string(who) + ": prefetch must be > 0, got " +
                                std::to_string(n));
  return n;
}

}  // namespace detail

// `publisher | stage`: the publisher that runs the stage on each subscription. Each stage also
// has a free-function form taking the publisher first: `map(pub, f)` is `pub | map(f)`.
template <publisher_type P, class Op>
requires std::derived_from<Op, detail::stage_tag>
[[nodiscard]] auto operator|(std::shared_ptr<P> p, const Op& op) {
  using T = element_t<P>;
  return op.template apply<T>(publisher_ptr<T>(std::move(p)));
}

template <class F>
[[nodiscard]] auto map(F f) {
  return detail::map_op<F>{{}, std::move(f)};
}

template <class P>
[[nodiscard]] auto filter(P pred) {
  return detail::filter_op<P>{{}, std::move(pred)};
}

[[nodiscard]] inline auto take(std::int64_t n) {
  if (n < 0) throw std::invalid_argument("bp::rs::take: n must be >= 0, got " + std::to_string(n));
  return detail::take_op{{}, n};
}

// on_drop: called with each element dropped for lack of demand (may be omitted).
template <class D = std::nullptr_t>
requires(!std::derived_from<D, detail::stage_tag>)
    [[nodiscard]] auto on_backpressure_drop(D on_drop = nullptr) {
  return detail::drop_op<D>{{}, std::move(on_drop)};
}

// capacity > 0. policy: see the header overview; on_drop receives drop_newest/drop_oldest
// victims.
template <class D = std::nullptr_t>
[[nodiscard]] auto on_backpressure_buffer(std::size_t capacity, overflow policy = overflow::reject,
                                          D on_drop = nullptr) {
  if (capacity == 0)
    throw std::invalid_argument("bp::rs::on_backpressure_buffer: capacity must be > 0");
  if (std::string(to_string(policy)) == "invalid")
    throw std::invalid_argument("bp::rs::on_backpressure_buffer: policy is not a bp::overflow");
  const std::int64_t prefetch =
      policy == overflow::block
          ? static_cast<std::int64_t>(std::min<std::size_t>(capacity, unbounded))
          : unbounded;
  return detail::queue_op_desc<D>{{}, capacity, prefetch, policy, std::move(on_drop), {}};
}

[[nodiscard]] inline auto on_backpressure_latest() {
  return detail::queue_op_desc<std::nullptr_t>{{},      1, unbounded, overflow::drop_oldest,
                                               nullptr, {}};
}

// At most n outstanding upstream: n at first, then n - n/4 each time that many were delivered.
[[nodiscard]] inline auto limit_rate(std::int64_t n) {
  detail::checked_prefetch(n, "bp::rs::limit_rate");
  return detail::queue_op_desc<std::nullptr_t>{
      {}, static_cast<std::size_t>(n), n, overflow::reject, nullptr, {}};
}

// Delivers downstream on `ex` (one task at a time per subscription), through a buffer of
// `prefetch` elements refilled at 75%. Upstream signals on whatever thread it likes.
[[nodiscard]] inline auto observe_on(executor ex, std::int64_t prefetch = 256) {
  if (!ex) throw std::invalid_argument("bp::rs::observe_on: executor ex is empty");
  detail::checked_prefetch(prefetch, "bp::rs::observe_on");
  return detail::queue_op_desc<std::nullptr_t>{
      {}, static_cast<std::size_t>(prefetch), prefetch, overflow::reject, nullptr, std::move(ex)};
}

// Batches of up to n (n > 0); with max_wait > 0 a non-empty partial batch goes out once its
// first element has waited max_wait (a timer thread per subscription). The partial batch
// pending at on_complete is delivered; at on_error it is discarded.
template <class Rep = std::int64_t, class Period = std::milli>
[[nodiscard]] auto batch(std::size_t n, std::chrono::duration<Rep, Period> max_wait = {}) {
  if (n == 0) throw std::invalid_argument("bp::rs::batch: n must be > 0");
  if (max_wait < max_wait.zero())
    throw std::invalid_argument("bp::rs::batch: max_wait must be >= 0");
  return detail::batch_desc{
      {}, n, std::chrono::duration_cast<std::chrono::steady_clock::duration>(max_wait)};
}

// Same as observe_on(w.executor(), prefetch).
[[nodiscard]] inline auto observe_on(const worker& w, std::int64_t prefetch = 256) {
  return observe_on(w.executor(), prefetch);
}

// --- free-function forms: op(pub, args...) == pub | op(args...) ------------------------------

template <publisher_type P, class F>
[[nodiscard]] auto map(std::shared_ptr<P> p, F f) {
  return std::move(p) | map(std::move(f));
}
template <publisher_type P, class Pred>
[[nodiscard]] auto filter(std::shared_ptr<P> p, Pred pred) {
  return std::move(p) | filter(std::move(pred));
}
template <publisher_type P>
[[nodiscard]] auto take(std::shared_ptr<P> p, std::int64_t n) {
  return std::move(p) | take(n);
}
template <publisher_type P, class D = std::nullptr_t>
[[nodiscard]] auto on_backpressure_drop(std::shared_ptr<P> p, D on_drop = nullptr) {
  return std::move(p) | on_backpressure_drop(std::move(on_drop));
}
template <publisher_type P, class D = std::nullptr_t>
[[nodiscard]] auto on_backpressure_buffer(std::shared_ptr<P> p, std::size_t capacity,
                                          overflow policy = overflow::reject, D on_drop = nullptr) {
  return std::move(p) | on_backpressure_buffer(capacity, policy, std::move(on_drop));
}
template <publisher_type P>
[[nodiscard]] auto on_backpressure_latest(std::shared_ptr<P> p) {
  return std::move(p) | on_backpressure_latest();
}
template <publisher_type P>
[[nodiscard]] auto limit_rate(std::shared_ptr<P> p, std::int64_t n) {
  return std::move(p) | limit_rate(n);
}
template <publisher_type P>
[[nodiscard]] auto observe_on(std::shared_ptr<P> p, executor ex, std::int64_t prefetch = 256) {
  return std::move(p) | observe_on(std::move(ex), prefetch);
}
template <publisher_type P, class Rep = std::int64_t, class Period = std::milli>
[[nodiscard]] auto batch(std::shared_ptr<P> p, std::size_t n,
                         std::chrono::duration<Rep, Period> max_wait = {}) {
  return std::move(p) | batch(n, max_wait);
}

}  // namespace bp::rs

// bp/limit_algorithms.hpp: the limit algorithms of bp::concurrency_limiter
// (bp/concurrency_limiter.hpp): each turns the samples of completed requests (latency, in
// flight, dropped) into a new limit, after Netflix's concurrency-limits (AIMDLimit, VegasLimit,
// Gradient2Limit). bp::fixed_limit, bp::aimd_limit, bp::vegas_limit, bp::gradient2_limit, their
// option structs, bp::limit_sample and the bp::limit_algorithm variant.
//
// Not thread-safe on their own: the limiter calls update() under its mutex. Deterministic: no
// clocks, no randomness; the sample carries the time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace bp {

// One completed request, as the limiter reports it to its algorithm.
struct limit_sample {
  std::chrono::nanoseconds rtt{0};  // latency of the request
  std::int64_t now_ns = 0;          // when it completed, on the limiter's clock
  std::size_t in_flight = 0;        // requests in flight when it started (itself included)
  bool dropped = false;             // timed out or was rejected by an overloaded downstream
};

namespace detail {
inline void check_limits(const char* who, double initial, double min, double max) {
  auto fail = [&](const std::string& what) {
    throw std::invalid_argument(std::string(who) + ": " + what);
  };
  if (!(min >= 1.0)) fail("min_limit must be >= 1");
  if (!(max >= min) || !std::isfinite(max)) fail("max_limit must be finite and >= min_limit");
  if (!(initial >= min && initial <= max)) fail("initial_limit must be in [min_limit, max_limit]");
}
inline void check_ratio(const char* who, const char* name, double v, double lo, double hi) {
  if (!(v > lo && v <= hi)) {
    throw std::invalid_argument(std::string(who) + ": " + name + " must be in (" +
                                std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                std::to_string(v));
  }
}
// Netflix's WindowedLimit, built in: aggregates the samples of one round trip and hands the
// algorithm one aggregate per window, so that it acts once per round trip on what its last
// change caused (acting on every sample moves the limit by up to its own size per round trip,
// before the downstream has had time to answer: overshoot, then collapse). Samples of requests
// that started before the previous window closed are stale and skipped.
struct window_sample {
  double min_rtt = 0;   // ns
  double mean_rtt = 0;  // ns
  std::size_t max_in_flight = 0;
  bool dropped = false;
};

class sample_window {
 public:
  // The aggregate once the window holds max(min_samples, limit / 2) fresh samples.
  std::optional<window_sample> add(const limit_sample& s, double limit, std::size_t min_samples) {
    if (s.now_ns - s.rtt.count() < start_ns_) return std::nullopt;
    const double rtt = static_cast<double>(std::max<std::int64_t>(1, s.rtt.count()));
    acc_.min_rtt = count_ == 0 ? rtt : std::min(acc_.min_rtt, rtt);
    sum_ += rtt;
    acc_.max_in_flight = std::max(acc_.max_in_flight, s.in_flight);
    acc_.dropped = acc_.dropped || s.dropped;
    const double need = std::max(static_cast<double>(min_samples), limit / 2);
    if (static_cast<double>(++count_) < need) return std::nullopt;
    window_sample out = acc_;
    out.mean_rtt = sum_ / static_cast<double>(count_);
    acc_ = {};
    sum_ = 0;
    count_ = 0;
    start_ns_ = s.now_ns;
    return out;
  }

 private:
  window_sample acc_{};
  double sum_ = 0;
  std::size_t count_ = 0;
  std::int64_t start_ns_ = INT64_MIN;
};

}  // namespace detail

// A limit that never changes: a semaphore with the limiter's interface.
struct fixed_limit {
  std::size_t limit = 10;
  [[nodiscard]] double initial() const {
    if (limit == 0) throw std::invalid_argument("bp::fixed_limit: limit must be >= 1");
    return static_cast<double>(limit);
  }
  double update(const limit_sample&, double current) const noexcept { return current; }
};

// Additive increase, multiplicative decrease: TCP Reno's congestion window applied to
// requests. Grows by `increase` per round trip while the limit is in use (in flight >= half
// the limit); on a drop, or a latency above `timeout`, multiplies by `backoff_ratio`, at most
// once per round trip (TCP's one reduction per window: the samples of requests sent before
// the previous decrease say nothing new). Netflix's AIMDLimit grows by 1 and backs off on
// every sample, which collapses the limit when a whole window times out together.
struct aimd_options {
  double initial_limit = 20;
  double min_limit = 1;
  double max_limit = 1000;
  double backoff_ratio = 0.9;  // in (0, 1)
  double increase = 1.0;       // per round trip
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);
};

class aimd_limit {
 public:
  explicit aimd_limit(aimd_options o = {}) : o_(o) {
    detail::check_limits("bp::aimd_limit", o.initial_limit, o.min_limit, o.max_limit);
    detail::check_ratio("bp::aimd_limit", "backoff_ratio", o.backoff_ratio, 0.0, 0.999999);
    detail::check_ratio("bp::aimd_limit", "increase", o.increase, 0.0, 1e6);
    if (o.timeout.count() <= 0) throw std::invalid_argument("bp::aimd_limit: timeout must be > 0");
  }
  [[nodiscard]] double initial() const noexcept { return o_.initial_limit; }

  double update(const limit_sample& s, double limit) noexcept {
    const std::int64_t started = s.now_ns - s.rtt.count();
    if (s.dropped || s.rtt > o_.timeout) {
      if (started < last_decrease_ns_) return limit;  // this window was already cut
      last_decrease_ns_ = s.now_ns;
      return std::max(o_.min_limit, limit * o_.backoff_ratio);
    }
    if (static_cast<double>(s.in_flight) * 2 < limit) return limit;  // not using it: no signal
    return std::min(o_.max_limit, limit + o_.increase / limit);
  }

 private:
  aimd_options o_;
  std::int64_t last_decrease_ns_ = INT64_MIN;
};

// TCP Vegas: estimates the queue at the downstream from how much the latency exceeds the
// smallest latency seen (rtt_noload): queue = limit * (1 - rtt_noload / rtt), with rtt the
// smallest latency of the last round trip (one window: jitter cancels out, queueing does
// not). Grows while the queue is below alpha, shrinks above beta, holds in between; a drop
// shrinks. Netflix's defaults: alpha = 3 log10(limit), beta = 6 log10(limit), steps of
// log10(limit), log10 taken as an integer >= 1; no queue at all grows by beta.
// probe_multiplier: every that many times limit samples, rtt_noload restarts from the current
// window, so that Vegas follows a downstream whose own latency grew; 0 (the default here)
// never probes: a probe taken while a queue persists inflates rtt_noload and lets the limit
// creep up (Netflix probes by default, every 30 * limit samples).
struct vegas_options {
  double initial_limit = 20;
  double min_limit = 1;
  double max_limit = 1000;
  double smoothing = 1.0;  // weight of the new estimate, in (0, 1]
  double alpha = 3;        // times log10(limit): grow below this queue
  double beta = 6;         // times log10(limit): shrink above this queue
  // Above beta, shrink by the whole excess queue at once (queue - beta * log10) instead of by
  // log10(limit) per round trip (Netflix): after the capacity drops, latency is back to normal
  // after one round trip instead of dozens.
  bool fast_decrease = true;
  std::size_t probe_multiplier = 0;
  std::size_t window_samples = 4;  // at least this many samples per window
};

class vegas_limit {
 public:
  explicit vegas_limit(vegas_options o = {}) : o_(o) {
    detail::check_limits("bp::vegas_limit", o.initial_limit, o.min_limit, o.max_limit);
    detail::check_ratio("bp::vegas_limit", "smoothing", o.smoothing, 0.0, 1.0);
    if (!(o.alpha > 0 && o.beta > o.alpha))
      throw std::invalid_argument("bp::vegas_limit: need 0 < alpha < beta");
  }
  [[nodiscard]] double initial() const noexcept { return o_.initial_limit; }

  double update(const limit_sample& s, double limit) {
    const auto w = window_.add(s, limit, o_.window_samples);
    if (!w) return limit;
    samples_ += static_cast<double>(w->max_in_flight);
    if (o_.probe_multiplier != 0 && samples_ > static_cast<double>(o_.probe_multiplier) * limit) {
      samples_ = 0;
      rtt_noload_ = w->min_rtt;
      return limit;
    }
    if (rtt_noload_ == 0 || w->min_rtt < rtt_noload_) {
      rtt_noload_ = w->min_rtt;
      if (!w->dropped) return limit;
    }
    const double log = std::max(1.0, std::floor(std::log10(limit)));
    const double queue = std::ceil(limit * (1.0 - rtt_noload_ / w->min_rtt));
    double next = limit;
    if (w->dropped) {
      next = limit - log;
    } else if (static_cast<double>(w->max_in_flight) * 2 < limit) {
      return limit;  // not using the limit: no signal
    } else if (queue <= log) {
      next = limit + o_.beta * log;  // no queue at all: grow fast
    } else if (queue < o_.alpha * log) {
      next = limit + log;
    } else if (queue > o_.beta * log) {
      next = limit - (o_.fast_decrease ? std::max(log, queue - o_.beta * log) : log);
    } else {
      return limit;
    }
    next = std::clamp(next, o_.min_limit, o_.max_limit);
    return (1 - o_.smoothing) * limit + o_.smoothing * next;
  }

 private:
  vegas_options o_;
  detail::sample_window window_;
  double rtt_noload_ = 0;
  double samples_ = 0;
};

// Gradient2: compares the short-term latency (the mean of the last window) with a long-term
// exponential average of it; gradient = clamp(tolerance * long / short, 0.5, 1),
// new = limit * gradient + queue_size, smoothed. Grows by queue_size * smoothing per round
// trip while latency is flat, shrinks (by at most half) as soon as latency rises above
// tolerance times its long-term average; when latency falls far below the average, the
// average is pulled down faster (x0.95 per window). The long average follows a persistent
// rise too, so a limit held above the capacity creeps up slowly: a long window slows that.
struct gradient2_options {
  double initial_limit = 20;
  double min_limit = 1;
  double max_limit = 1000;
  double smoothing = 0.2;
  double tolerance = 1.5;  // latency may exceed the long-term average by this factor
  double queue_size = 4;
  std::size_t long_window = 600;  // windows
  // How fast the long average follows a rise of latency, relative to a fall. Netflix: 1 (the
  // average follows both alike, so a limit held above the capacity raises the average it is
  // judged against and creeps up without bound). Below 1 the average is a slow-rising floor
  // near the unloaded latency: the limit settles near the capacity, but a downstream that
  // got slower for good is first treated as congested until the floor catches up.
  double long_rise_ratio = 0.01;
  std::size_t window_samples = 4;  // at least this many samples per window
};

class gradient2_limit {
 public:
  explicit gradient2_limit(gradient2_options o = {}) : o_(o) {
    detail::check_limits("bp::gradient2_limit", o.initial_limit, o.min_limit, o.max_limit);
    detail::check_ratio("bp::gradient2_limit", "smoothing", o.smoothing, 0.0, 1.0);
    if (!(o.tolerance >= 1.0))
      throw std::invalid_argument("bp::gradient2_limit: tolerance must be >= 1");
    if (o.long_window == 0)
      throw std::invalid_argument("bp::gradient2_limit: long_window must be >= 1");
    detail::check_ratio("bp::gradient2_limit", "long_rise_ratio", o.long_rise_ratio, 0.0, 1.0);
  }
  [[nodiscard]] double initial() const noexcept { return o_.initial_limit; }

  double update(const limit_sample& s, double limit) {
    const auto w = window_.add(s, limit, o_.window_samples);
    if (!w) return limit;
    const double rtt = w->mean_rtt;
    // Exponential average, a plain mean over the first 10 windows (Netflix's warm-up).
    if (windows_ < 10) {
      long_rtt_ =
          (long_rtt_ * static_cast<double>(windows_) + rtt) / static_cast<double>(windows_ + 1);
    } else {
      double f = 2.0 / (static_cast<double>(o_.long_window) + 1.0);
      if (rtt > long_rtt_) f *= o_.long_rise_ratio;
      long_rtt_ = long_rtt_ * (1 - f) + rtt * f;
    }
    ++windows_;
    if (long_rtt_ / rtt > 2) long_rtt_ *= 0.95;
    if (static_cast<double>(w->max_in_flight) < limit / 2) return limit;
    const double gradient = std::clamp(o_.tolerance * long_rtt_ / rtt, 0.5, 1.0);
    double next = limit * gradient + o_.queue_size;
    next = limit * (1 - o_.smoothing) + next * o_.smoothing;
    return std::clamp(next, o_.min_limit, o_.max_limit);
  }

 private:
  gradient2_options o_;
  detail::sample_window window_;
  double long_rtt_ = 0;
  std::size_t windows_ = 0;
};

}  // namespace bp

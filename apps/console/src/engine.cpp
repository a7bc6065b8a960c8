// engine.cpp: the engine's orchestration and its controls (see engine.hpp).
//
// Every control verb takes control_m_, so verbs apply one at a time and in order. A verb that
// changes the shape of the run (strategy, capacity, threads, payload) rebuilds the scenario:
// the old one's threads are stopped and joined first, then the new one replaces it and the
// series restarts, both under state_m_. Rates and the running flags are atomics that the
// scenario's threads read live, so those verbs change a value, wake the threads
// (scenario::controls_changed: a pause stops the token the threads wait with) and return at once.
// Each verb that changes something says so in the event log, so the log reads as the history of
// the run.
//
// The scenario's threads live in scenario.cpp, their pacing in pacing.cpp, the sampler thread
// and the snapshots in sampler.cpp, the event log in event_log.cpp.
#include "engine.hpp"

#include <algorithm>
#include <stdexcept>

#include "event_text.hpp"
#include "pipeline_scenario.hpp"
#include "scenario.hpp"

namespace bp::console {

// --- engine --------------------------------------------------------------------------------------

engine::engine(settings initial, options opt)
    : opt_(opt), settings_(initial), log_(opt.event_limit) {
  if (auto why = validate(initial); !why.empty()) throw std::invalid_argument(why);
  producer_rate_ = initial.producer_rate;
  consumer_rate_ = initial.consumer_rate;
  {
    std::lock_guard lock(control_m_);
    rebuild_locked();
    rebuild_pipeline_locked();
  }
  sampler_ = std::jthread([this](std::stop_token st) { sampler_loop(st); });
}

engine::~engine() {
  shutdown();
}

void engine::shutdown() {
  {
    std::lock_guard lock(control_m_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  sampler_.request_stop();
  if (sampler_.joinable()) sampler_.join();
  std::lock_guard lock(control_m_);
  teardown_locked();
  std::unique_ptr<scenario> old;
  {
    std::lock_guard state(state_m_);
    old = std::move(sc_);
  }
  old.reset();  // before the members it reports to are destroyed
  std::unique_ptr<pipeline_scenario> old_pipeline;
  {
    std::lock_guard p(pipeline_m_);
    old_pipeline = std::move(pipeline_);
  }
  old_pipeline.reset();  // joins its threads
  state_cv_.notify_all();
}

void engine::teardown_locked() {
  if (sc_) sc_->stop_threads();
}

void engine::rebuild_locked() {
  teardown_locked();
  auto next = std::make_unique<scenario>(*this, settings_);
  std::unique_ptr<scenario> old;
  {
    std::lock_guard lock(state_m_);
    old = std::move(sc_);
    sc_ = std::move(next);
    series_.clear();
  }
  old.reset();  // its threads are joined; destroyed outside state_m_ (a strategy may report)
  // Registered once the previous scenario (and its registrations under the same names) is gone.
  sc_->metric_regs =
      sc_->strat->register_metrics(metrics_, std::string(to_string(settings_.strategy)));
  sc_->start_threads();
}

void engine::rebuild_pipeline_locked() {
  std::unique_ptr<pipeline_scenario> next;
  if (settings_.scenario == scenario_kind::pipeline)
    next = std::make_unique<pipeline_scenario>(settings_);
  {
    std::lock_guard lock(pipeline_m_);
    std::swap(pipeline_, next);
  }
  next.reset();  // the previous pipeline: stopped and joined outside pipeline_m_
}

std::optional<pipeline_report> engine::pipeline_now() const {
  std::lock_guard lock(pipeline_m_);
  if (!pipeline_) return std::nullopt;
  return pipeline_->report();
}

void engine::post_locked(event_kind k, std::string text, double t) {
  log_.post(k, std::move(text), t);
}

void engine::post(event_kind k, std::string text) {
  std::lock_guard lock(state_m_);
  post_locked(k, std::move(text), sc_ ? sc_->now_s() : 0);
}

std::string engine::configure(const settings& s) {
  if (auto why = validate(s); !why.empty()) return why;
  std::lock_guard lock(control_m_);
  if (shut_down_) return "the engine is shut down";
  settings live_only = settings_;
  live_only.producer_rate = s.producer_rate;
  live_only.consumer_rate = s.consumer_rate;
  // The pipeline's fields concern the pipeline scenario alone: the channel keeps running.
  live_only.scenario = s.scenario;
  live_only.pipeline_stage_ms = s.pipeline_stage_ms;
  live_only.pipeline_slow_ms = s.pipeline_slow_ms;
  live_only.pipeline_slow_parallelism = s.pipeline_slow_parallelism;
  live_only.pipeline_capacity = s.pipeline_capacity;
  // The throttle's bucket follows the consumer rate when throttle_rate is 0: a new bucket.
  const bool bucket_follows = s.strategy == strategy_kind::throttle && s.throttle_rate == 0 &&
                              s.consumer_rate != settings_.consumer_rate;
  const bool restart = !(live_only == s) || bucket_follows;
  const settings before = settings_;
  const bool pipeline_changed = s.scenario != before.scenario ||
                                (s.scenario == scenario_kind::pipeline &&
                                 (s.pipeline_stage_ms != before.pipeline_stage_ms ||
                                  s.pipeline_slow_ms != before.pipeline_slow_ms ||
                                  s.pipeline_slow_parallelism != before.pipeline_slow_parallelism ||
                                  s.pipeline_capacity != before.pipeline_capacity));
  settings_ = s;
  producer_rate_ = s.producer_rate;
  consumer_rate_ = s.consumer_rate;
  sc_->controls_changed();  // a thread waiting for its next slot at the old rate wakes now
  if (pipeline_changed) {
    rebuild_pipeline_locked();
    if (s.scenario == scenario_kind::pipeline)
      post(event_kind::control,
           fmt("pipeline started: read -> parse (%g ms/item) -> %s (%g ms/item, %d worker(s)) -> "
               "write (%g ms/item), links of %zu",
               s.pipeline_stage_ms, pipeline_slow_stage, s.pipeline_slow_ms,
               s.pipeline_slow_parallelism, s.pipeline_stage_ms, s.pipeline_capacity));
    else
      post(event_kind::control, "pipeline stopped: back to the channel scenario");
  }
  if (restart) {
    rebuild_locked();
    post(event_kind::control,
         fmt("scenario restarted: strategy %s, capacity %zu, %d producer(s) at %g/s, %d "
             "consumer(s) at %g/s",
             std::string(to_string(s.strategy)).c_str(), s.capacity, s.producers, s.producer_rate,
             s.consumers, s.consumer_rate));
  } else if (before.producer_rate != s.producer_rate || before.consumer_rate != s.consumer_rate) {
    post(event_kind::control,
         fmt("rates changed: producer %g/s, consumer %g/s", s.producer_rate, s.consumer_rate));
  }
  return {};
}

settings engine::current() const {
  std::lock_guard lock(control_m_);
  return settings_;
}

std::string engine::apply_preset(std::string_view name) {
  const preset* p = find_preset(name);
  if (!p) {
    std::string known;
    for (const auto& q : presets()) known += (known.empty() ? "" : ", ") + std::string(q.name);
    return "preset: unknown preset '" + std::string(name) + "' (known: " + known + ")";
  }
  settings s = current();
  const settings& v = p->values;
  s.producer_rate = v.producer_rate;
  s.consumer_rate = v.consumer_rate;
  s.capacity = v.capacity;
  s.producers = v.producers;
  s.consumers = v.consumers;
  s.consumer_delay_s = v.consumer_delay_s;
  if (auto why = validate(s); !why.empty()) return why;
  std::lock_guard lock(control_m_);
  if (shut_down_) return "the engine is shut down";
  settings_ = s;
  producer_rate_ = s.producer_rate;
  consumer_rate_ = s.consumer_rate;
  rebuild_locked();
  start_all_locked();
  post(event_kind::control,
       fmt("preset %s: producer %g/s, consumer %g/s%s, capacity %zu, strategy %s",
           std::string(p->title).c_str(), s.producer_rate, s.consumer_rate,
           s.consumer_delay_s > 0 ? fmt(" after %g s", s.consumer_delay_s).c_str() : "", s.capacity,
           std::string(to_string(s.strategy)).c_str()));
  return {};
}

void engine::start_all_locked() {
  consumer_not_before_ns_ =
      to_ns(clock_type::now()) + static_cast<std::int64_t>(settings_.consumer_delay_s * 1e9);
  producer_running_ = true;
  consumer_running_ = true;
  sc_->controls_changed();
}

void engine::start_all() {
  std::lock_guard lock(control_m_);
  if (shut_down_) return;
  start_all_locked();
  post(event_kind::control,
       settings_.consumer_delay_s > 0
           ? fmt("producer started; consumer starts in %g s", settings_.consumer_delay_s)
           : std::string("producer and consumer started"));
}

void engine::start_producer() {
  std::lock_guard lock(control_m_);
  if (shut_down_ || producer_running_.exchange(true)) return;
  sc_->controls_changed();
  post(event_kind::control, "producer started");
}

void engine::stop_producer() {
  std::lock_guard lock(control_m_);
  if (shut_down_ || !producer_running_.exchange(false)) return;
  sc_->controls_changed();  // a producer waiting in the strategy gives its item up at once
  post(event_kind::control, "producer stopped");
}

void engine::start_consumer() {
  std::lock_guard lock(control_m_);
  if (shut_down_) return;
  consumer_not_before_ns_ = 0;
  const bool was_running = consumer_running_.exchange(true);
  sc_->controls_changed();  // a consumer waiting for its delayed start starts now
  if (was_running) return;
  post(event_kind::control, "consumer started");
}

void engine::stop_consumer() {
  std::lock_guard lock(control_m_);
  if (shut_down_ || !consumer_running_.exchange(false)) return;
  sc_->controls_changed();
  post(event_kind::control, "consumer stopped");
}

void engine::reset() {
  std::lock_guard lock(control_m_);
  if (shut_down_) return;
  rebuild_locked();
  rebuild_pipeline_locked();
  post(event_kind::control, "scenario reset: buffer emptied, counters at zero");
}

snapshot engine::latest() const {
  std::lock_guard lock(state_m_);
  return latest_;
}

snapshot engine::wait_next(std::uint64_t after_seq, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_m_);
  state_cv_.wait_for(lock, timeout, [&] { return latest_.seq > after_seq; });
  return latest_;
}

std::vector<snapshot> engine::series(std::size_t max) const {
  std::lock_guard lock(state_m_);
  const std::size_t n = std::min(max, series_.size());
  return {series_.end() - static_cast<std::ptrdiff_t>(n), series_.end()};
}

std::vector<event> engine::events_since(std::uint64_t after_id, std::size_t max) const {
  std::lock_guard lock(state_m_);
  return log_.since(after_id, max);
}

}  // namespace bp::console

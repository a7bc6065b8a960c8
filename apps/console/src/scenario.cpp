// scenario.cpp: the producer and consumer threads of a scenario (see scenario.hpp).
//
// A producer makes an item, offers it to the strategy and counts what the strategy answers; a
// consumer takes items and records their end-to-end latency. The strategy reports its waits
// and evictions back through producer_ctx, which keeps the producer's slot and the event log
// up to date. Counting happens only once an offer is answered: an item the producer gave up
// because it was stopped mid-wait was never offered to the end and is not counted at all, so
// that `produced` is exactly the items accepted, dropped, rejected or capped.
#include "scenario.hpp"

#include <algorithm>
#include <optional>

#include "event_text.hpp"

namespace bp::console {

using namespace std::chrono_literals;

engine::scenario::scenario(engine& e, const settings& s) : eng(e), cfg(s) {
  strat = make_strategy(s, hooks());
  for (int i = 0; i < s.producers; ++i) slots.push_back(std::make_unique<producer_slot>());
}

engine::scenario::~scenario() {
  stop_threads();
}

strategy_hooks engine::scenario::hooks() {
  strategy_hooks h;
  h.on_request = [this](std::int64_t n, std::int64_t outstanding) {
    try {
      say(event_kind::demand, [&] {
        return fmt("consumer signals demand: request(%lld), %lld item(s) may come now",
                   (long long)n, (long long)outstanding);
      });
    } catch (...) {
    }
  };
  return h;
}

void engine::scenario::summarize_suppressed() {
  const std::int64_t now = to_ns(clock_type::now());
  for (int i = 0; i < event_kinds; ++i) {
    const auto k = static_cast<event_kind>(i);
    const auto n = throttle.take_suppressed(k, now);
    if (n == 0) continue;
    std::string line = suppressed_summary(k, n, cfg.strategy);
    std::lock_guard lock(eng.state_m_);
    eng.post_locked(k, std::move(line), now_s());
  }
}

void engine::scenario::start_threads() {
  controls_changed();
  for (int i = 0; i < cfg.producers; ++i)
    threads.emplace_back([this, i](std::stop_token st) { produce(st, *slots[i]); });
  for (int i = 0; i < cfg.consumers; ++i)
    threads.emplace_back([this](std::stop_token st) { consume(st); });
}

void engine::scenario::stop_threads() {
  // Each thread wakes at once from whatever it waits in: its period's token, its jthread's
  // token and close() cover every wait.
  producers_on.close();
  consumers_on.close();
  for (auto& t : threads) t.request_stop();
  strat->close();
  threads.clear();  // joins
}

void engine::scenario::controls_changed() {
  producers_on.update(eng.producer_running_);
  consumers_on.update(eng.consumer_running_);
}

// What the strategy tells the producer's thread while it hands an item over.
struct engine::scenario::producer_ctx final : producer_context {
  scenario& sc;
  producer_slot& slot;
  std::stop_token period;     // the running period's: stopped by a pause or the scenario's end
  std::uint64_t current = 0;  // sequence number of the item being offered
  producer_ctx(scenario& s, producer_slot& p, std::stop_token t)
      : sc(s), slot(p), period(std::move(t)) {}

  std::stop_token stop_token() const noexcept override { return period; }
  void begin_wait(wait_reason why) noexcept override {
    slot.reason.store(static_cast<int>(why), std::memory_order_relaxed);
    slot.wait_started_ns.store(to_ns(clock_type::now()), std::memory_order_relaxed);
    const event_kind k = why == wait_reason::no_token    ? event_kind::wait_token
                         : why == wait_reason::no_demand ? event_kind::wait_demand
                                                         : event_kind::wait;
    try {
      sc.say(k, [&] {
        switch (why) {
          case wait_reason::no_demand:
            return fmt(
                "producer waits: no demand (item %llu held until the consumer calls "
                "request(n))",
                (unsigned long long)current);
          case wait_reason::no_token:
            return fmt("producer waits: no token (throttled; item %llu held)",
                       (unsigned long long)current);
          case wait_reason::buffer_full:
            break;
        }
        return fmt("producer waits: buffer full (item %llu held)", (unsigned long long)current);
      });
    } catch (...) {  // an event line is not worth more than the item: go on without it
    }
  }
  void end_wait() noexcept override {
    const auto began = slot.wait_started_ns.exchange(0, std::memory_order_relaxed);
    const auto waited = began ? to_ns(clock_type::now()) - began : 0;
    slot.waited_ns.fetch_add(waited, std::memory_order_relaxed);
    try {
      sc.say(event_kind::resume, [&] {
        return fmt("producer resumes after waiting %.2f s: item %llu accepted",
                   double(waited) / 1e9, (unsigned long long)current);
      });
    } catch (...) {
    }
  }
  void evicted(item&& old) noexcept override {
    sc.evicted.fetch_add(1, std::memory_order_relaxed);
    try {
      sc.say(event_kind::evict, [&] {
        return fmt("item %llu evicted: drop-oldest (item %llu took its place)",
                   (unsigned long long)old.seq, (unsigned long long)current);
      });
    } catch (...) {
    }
  }
};

void engine::scenario::produce(std::stop_token st, producer_slot& slot) {
  pacer pace;
  while (const auto period = producers_on.wait_on(st)) {
    pace.restart();
    producer_ctx ctx(*this, slot, *period);
    while (produce_one(pace, ctx)) {
    }
  }
}

bool engine::scenario::produce_one(pacer& pace, producer_ctx& ctx) {
  const std::stop_token& period = ctx.period;
  if (!wait_slot(pace, producers_on, eng.producer_rate_, cfg.producers, period)) return false;
  {
    item it;
    it.seq = ctx.current = next_seq.fetch_add(1, std::memory_order_relaxed);
    it.payload.assign(cfg.payload_bytes, static_cast<unsigned char>(it.seq));
    it.born = clock_type::now();
    const std::uint64_t seq = it.seq;
    const offer_result r = strat->offer(std::move(it), ctx);
    if (r == offer_result::stopped) {  // never offered to the end: not counted
      // Closed under a running period: the scenario is ending; nothing to do until it stops.
      if (!period.stop_requested()) producers_on.wait_stopped(period);
      return false;
    }
    produced.fetch_add(1, std::memory_order_relaxed);
    switch (r) {
      case offer_result::accepted:
        accepted.fetch_add(1, std::memory_order_relaxed);
        break;
      case offer_result::dropped:
        dropped.fetch_add(1, std::memory_order_relaxed);
        say(event_kind::drop, [&] {
          return fmt("item %llu dropped: %s (buffer full, %zu of %zu slots)",
                     (unsigned long long)seq, std::string(log_name(cfg.strategy)).c_str(),
                     strat->depth(), strat->capacity());
        });
        break;
      case offer_result::rejected:
        rejected.fetch_add(1, std::memory_order_relaxed);
        say(event_kind::reject, [&] {
          return fmt(
              "item %llu rejected: buffer full, the producer is told `full` and gives "
              "it up",
              (unsigned long long)seq);
        });
        break;
      case offer_result::capped:
        capped.fetch_add(1, std::memory_order_relaxed);
        if (eng.producer_running_.exchange(false)) {
          producers_on.update(eng.producer_running_);  // every producer leaves its wait now
          std::lock_guard lock(eng.state_m_);
          eng.post_locked(
              event_kind::cap,
              fmt("safety cap reached: the unbounded queue holds %s (%zu items); producers "
                  "stopped. Without the cap this process would run out of memory.",
                  mib(strat->depth() * (sizeof(item) + cfg.payload_bytes)).c_str(), strat->depth()),
              now_s());
        }
        break;
      case offer_result::stopped:
        break;
    }
  }
  return true;
}

void engine::scenario::consume(std::stop_token st) {
  pacer pace;
  while (const auto period = consumers_on.wait_on(st)) {
    // A delayed start (Burst): start_consumer() or a pause wakes the wait at once.
    for (;;) {
      const auto seen = consumers_on.generation();
      const auto not_before = eng.consumer_not_before_ns_.load(std::memory_order_relaxed);
      if (period->stop_requested() || to_ns(clock_type::now()) >= not_before) break;
      consumers_on.wait_until(clock_type::time_point(std::chrono::nanoseconds(not_before)), seen,
                              *period);
    }
    pace.restart();
    while (consume_one(pace, *period)) {
    }
  }
}

bool engine::scenario::consume_one(pacer& pace, const std::stop_token& period) {
  if (!wait_slot(pace, consumers_on, eng.consumer_rate_, cfg.consumers, period)) return false;
  // Take one item, waiting while the buffer is empty; a pause or the end wakes the wait.
  const auto asked = clock_type::now();
  std::optional<item> it = strat->take(period);
  if (!it) {
    // Closed under a running period: the scenario is ending; nothing to do until it stops.
    if (!period.stop_requested()) consumers_on.wait_stopped(period);
    return false;
  }
  const auto now = clock_type::now();
  // It waited for the item (the buffer was empty): idle time is not banked as a burst.
  if (now - asked > 2ms) pace.restart();
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - it->born).count();
  latency[latency_histogram::bucket_of(static_cast<std::uint64_t>(std::max<long long>(0, us)))]
      .fetch_add(1, std::memory_order_relaxed);
  consumed.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace bp::console

#include "engine.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace bp::console {

using namespace std::chrono_literals;

namespace {

constexpr auto slice = 50ms;  // longest a thread sleeps before it looks at its flags again
constexpr auto latency_window = 3s;
constexpr auto rate_window = 1s;

std::int64_t to_ns(clock_type::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string fmt(const char* f, auto... a) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

std::string mib(std::size_t bytes) {
  return fmt("%.1f MiB", double(bytes) / (1 << 20));
}

std::string_view seed_name(strategy_kind k) {
  switch (k) {
    case strategy_kind::drop_newest:
      return "drop-newest";
    case strategy_kind::drop_oldest:
      return "drop-oldest";
    default:
      return to_string(k);
  }
}

}  // namespace

// --- latency histogram ---------------------------------------------------------------------------

int latency_histogram::bucket_of(std::uint64_t us) noexcept {
  if (us < 8) return static_cast<int>(us);
  const int msb = std::bit_width(us) - 1;  // >= 3
  const int sub = static_cast<int>((us >> (msb - 3)) & 7);
  return std::min((msb - 2) * 8 + sub, buckets - 1);
}

double latency_histogram::value_of(int b) noexcept {
  if (b < 8) return b;
  const int msb = b / 8 + 2;
  const int sub = b % 8;
  const double lo = std::ldexp(8 + sub, msb - 3);
  return lo + std::ldexp(1, msb - 3) / 2;  // the middle of the bucket
}

namespace {
double quantile(const std::array<std::uint64_t, latency_histogram::buckets>& h, double q) {
  std::uint64_t total = 0;
  for (auto c : h) total += c;
  if (total == 0) return -1;
  const auto rank = static_cast<std::uint64_t>(std::ceil(q * double(total)));
  std::uint64_t seen = 0;
  for (int b = 0; b < latency_histogram::buckets; ++b) {
    seen += h[b];
    if (seen >= std::max<std::uint64_t>(rank, 1)) return latency_histogram::value_of(b);
  }
  return latency_histogram::value_of(latency_histogram::buckets - 1);
}
}  // namespace

std::size_t process_rss_bytes() noexcept {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  const int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

// --- events --------------------------------------------------------------------------------------

enum class engine::event_kind : int {
  watermark,
  wait,         // buffer full
  wait_token,   // throttle: no token
  wait_demand,  // signal: no demand
  resume,
  drop,
  evict,
  reject,
  cap,
  drain,
  demand,
  control,
  count_
};

namespace {
constexpr std::string_view kind_name(engine::event_kind k) {
  using K = engine::event_kind;
  switch (k) {
    case K::watermark:
      return "watermark";
    case K::wait:
    case K::wait_token:  // rate-limited apart from `wait`, shown alike
    case K::wait_demand:
      return "wait";
    case K::resume:
      return "resume";
    case K::drop:
      return "drop";
    case K::evict:
      return "evict";
    case K::reject:
      return "reject";
    case K::cap:
      return "cap";
    case K::drain:
      return "drain";
    case K::demand:
      return "demand";
    case K::control:
    case K::count_:
      break;
  }
  return "control";
}
constexpr int kinds = static_cast<int>(engine::event_kind::count_);
// At most this many lines per kind and second; the rest are counted and summarized.
constexpr int lines_per_second = 4;
}  // namespace

// --- the scenario: threads over one strategy -----------------------------------------------------

struct engine::scenario {
  engine& eng;
  settings cfg;
  std::unique_ptr<strategy> strat;
  clock_type::time_point started = clock_type::now();

  std::atomic<std::uint64_t> next_seq{1};
  std::atomic<std::uint64_t> produced{0}, accepted{0}, consumed{0}, dropped{0}, evicted{0},
      rejected{0}, capped{0};
  std::array<std::atomic<std::uint64_t>, latency_histogram::buckets> latency{};

  struct producer_slot {
    std::atomic<std::int64_t> wait_started_ns{0};  // 0: not waiting
    std::atomic<std::int64_t> waited_ns{0};
    std::atomic<int> reason{0};  // a wait_reason, while waiting
  };
  std::vector<std::unique_ptr<producer_slot>> slots;

  // Rate limiting of the event log, per kind (hot paths touch only the atomics).
  std::array<std::atomic<std::int64_t>, kinds> quiet_until_ns{};
  std::array<std::atomic<std::uint64_t>, kinds> suppressed{};
  std::array<int, kinds> lines_in_window{};        // under eng.state_m_
  std::array<std::int64_t, kinds> window_start{};  // under eng.state_m_

  std::vector<std::jthread> threads;

  // The strategy is made last: a signal strategy requests demand (and reports it through the
  // hooks) while it is being built.
  scenario(engine& e, const settings& s) : eng(e), cfg(s) {
    strat = make_strategy(s, hooks());
    for (int i = 0; i < s.producers; ++i) slots.push_back(std::make_unique<producer_slot>());
  }

  strategy_hooks hooks() {
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

  double now_s() const {
    return std::chrono::duration<double>(clock_type::now() - started).count();
  }

  // Posts an event unless its kind already said enough this second; `make` builds the text
  // only when it is posted.
  template <class Make>
  void say(event_kind k, Make&& make) {
    const int i = static_cast<int>(k);
    const std::int64_t now = to_ns(clock_type::now());
    if (now < quiet_until_ns[i].load(std::memory_order_relaxed)) {
      suppressed[i].fetch_add(1, std::memory_order_relaxed);
      return;
    }
    std::string text = make();
    std::lock_guard lock(eng.state_m_);
    if (now - window_start[i] >= 1'000'000'000) {
      window_start[i] = now;
      lines_in_window[i] = 0;
    }
    if (++lines_in_window[i] >= lines_per_second)
      quiet_until_ns[i].store(window_start[i] + 1'000'000'000, std::memory_order_relaxed);
    eng.post_locked(k, std::move(text), now_s());
  }

  // Called by the sampler: one summary line per kind for what was not said.
  void summarize_suppressed() {
    const std::int64_t now = to_ns(clock_type::now());
    for (int i = 0; i < kinds; ++i) {
      if (now < quiet_until_ns[i].load(std::memory_order_relaxed)) continue;
      const auto n = suppressed[i].exchange(0, std::memory_order_relaxed);
      if (n == 0) continue;
      const auto k = static_cast<event_kind>(i);
      std::string what;
      switch (k) {
        case event_kind::drop:
          what = fmt("%llu more items dropped: %s", (unsigned long long)n,
                     std::string(seed_name(cfg.strategy)).c_str());
          break;
        case event_kind::evict:
          what = fmt("%llu more items evicted: drop-oldest", (unsigned long long)n);
          break;
        case event_kind::reject:
          what = fmt("%llu more items rejected: buffer full", (unsigned long long)n);
          break;
        case event_kind::wait:
          what = fmt("the producer waited %llu more times: buffer full", (unsigned long long)n);
          break;
        case event_kind::wait_token:
          what = fmt("the producer waited %llu more times: no token", (unsigned long long)n);
          break;
        case event_kind::wait_demand:
          what = fmt("the producer waited %llu more times: no demand", (unsigned long long)n);
          break;
        default:
          what =
              fmt("%llu more %s events", (unsigned long long)n, std::string(kind_name(k)).c_str());
          break;
      }
      std::lock_guard lock(eng.state_m_);
      eng.post_locked(k, "... and " + what + " in the last second", now_s());
    }
  }

  void start_threads() {
    for (int i = 0; i < cfg.producers; ++i)
      threads.emplace_back([this, i](std::stop_token st) { produce(st, *slots[i]); });
    for (int i = 0; i < cfg.consumers; ++i)
      threads.emplace_back([this](std::stop_token st) { consume(st); });
  }

  void stop_threads() {
    for (auto& t : threads) t.request_stop();
    strat->close();
    threads.clear();  // joins
  }

  // Paces one thread at `rate` items/s (read live, so that rate changes apply at once). A
  // thread that fell far behind (it waited, or was stopped) does not burst to catch up.
  struct pacer {
    clock_type::time_point last = clock_type::now();
    // Waits (at most one slice) for the next slot; true when it is due.
    bool due(double rate) {
      const auto period = std::chrono::duration_cast<clock_type::duration>(
          std::chrono::duration<double>(1.0 / rate));
      const auto when = last + period;
      const auto now = clock_type::now();
      if (now < when) {
        std::this_thread::sleep_until(std::min(when, now + slice));
        return false;
      }
      // Lateness up to this is made up (a thread woken late by a busy machine keeps its rate);
      // beyond it the schedule restarts from now.
      const auto catch_up = std::max<clock_type::duration>(100ms, period);
      last = now - when > catch_up ? now : when;
      return true;
    }
    void restart() { last = clock_type::now(); }
  };

  struct producer_ctx final : producer_context {
    scenario& sc;
    producer_slot& slot;
    std::stop_token st;
    std::uint64_t current = 0;  // sequence number of the item being offered
    producer_ctx(scenario& s, producer_slot& p, std::stop_token t) : sc(s), slot(p), st(t) {}

    bool keep_going() const noexcept override {
      return !st.stop_requested() && sc.eng.producer_running_.load(std::memory_order_relaxed);
    }
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

  void produce(std::stop_token st, producer_slot& slot) {
    producer_ctx ctx(*this, slot, st);
    pacer pace;
    while (!st.stop_requested()) {
      if (!eng.producer_running_.load(std::memory_order_relaxed)) {
        std::this_thread::sleep_for(slice / 5);
        pace.restart();
        continue;
      }
      const double rate = eng.producer_rate_.load(std::memory_order_relaxed) / cfg.producers;
      if (!pace.due(rate)) continue;
      item it;
      it.seq = ctx.current = next_seq.fetch_add(1, std::memory_order_relaxed);
      it.payload.assign(cfg.payload_bytes, static_cast<unsigned char>(it.seq));
      it.born = clock_type::now();
      const std::uint64_t seq = it.seq;
      const offer_result r = strat->offer(std::move(it), ctx);
      if (r == offer_result::stopped) continue;  // never offered to the end: not counted
      produced.fetch_add(1, std::memory_order_relaxed);
      switch (r) {
        case offer_result::accepted:
          accepted.fetch_add(1, std::memory_order_relaxed);
          break;
        case offer_result::dropped:
          dropped.fetch_add(1, std::memory_order_relaxed);
          say(event_kind::drop, [&] {
            return fmt("item %llu dropped: %s (buffer full, %zu of %zu slots)",
                       (unsigned long long)seq, std::string(seed_name(cfg.strategy)).c_str(),
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
            std::lock_guard lock(eng.state_m_);
            eng.post_locked(
                event_kind::cap,
                fmt("safety cap reached: the unbounded queue holds %s (%zu items); producers "
                    "stopped. Without the cap this process would run out of memory.",
                    mib(strat->depth() * (sizeof(item) + cfg.payload_bytes)).c_str(),
                    strat->depth()),
                now_s());
          }
          break;
        case offer_result::stopped:
          break;
      }
    }
  }

  void consume(std::stop_token st) {
    pacer pace;
    while (!st.stop_requested()) {
      const auto not_before = eng.consumer_not_before_ns_.load(std::memory_order_relaxed);
      if (!eng.consumer_running_.load(std::memory_order_relaxed) ||
          to_ns(clock_type::now()) < not_before) {
        std::this_thread::sleep_for(slice / 5);
        pace.restart();
        continue;
      }
      const double rate = eng.consumer_rate_.load(std::memory_order_relaxed) / cfg.consumers;
      if (!pace.due(rate)) continue;
      // Take one item, waiting (in slices) while the buffer is empty.
      const auto asked = clock_type::now();
      std::optional<item> it;
      while (!it && !st.stop_requested() && eng.consumer_running_.load(std::memory_order_relaxed))
        it = strat->take(slice);
      if (!it) continue;
      const auto now = clock_type::now();
      // It waited for the item (the buffer was empty): idle time is not banked as a burst.
      if (now - asked > 2ms) pace.restart();
      const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - it->born).count();
      latency[latency_histogram::bucket_of(static_cast<std::uint64_t>(std::max<long long>(0, us)))]
          .fetch_add(1, std::memory_order_relaxed);
      consumed.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // --- sampling (the sampler thread only) ---
  struct sample_state {
    struct point {
      clock_type::time_point at;
      std::uint64_t produced, consumed;
      std::int64_t waited_ns;
      std::array<std::uint64_t, latency_histogram::buckets> hist;
    };
    std::deque<point> history;  // covers latency_window
    int watermark_level = 0;    // 0 below 50 %, 1 amber, 2 above 80 %, 3 full
    double last_growth_note = 0;
  } sampling;

  std::int64_t total_waited_ns(std::int64_t now_ns, int& waiting, int& reason) const {
    std::int64_t sum = 0;
    waiting = 0;
    for (const auto& s : slots) {
      sum += s->waited_ns.load(std::memory_order_relaxed);
      const auto began = s->wait_started_ns.load(std::memory_order_relaxed);
      if (began) {
        ++waiting;
        reason = s->reason.load(std::memory_order_relaxed);
        sum += std::max<std::int64_t>(0, now_ns - began);
      }
    }
    return sum;
  }

  snapshot sample() {
    snapshot s;
    const auto now = clock_type::now();
    s.t = std::chrono::duration<double>(now - started).count();
    s.strategy = cfg.strategy;
    s.evicted = evicted.load(std::memory_order_relaxed);
    s.consumed = consumed.load(std::memory_order_relaxed);
    s.accepted = accepted.load(std::memory_order_relaxed);
    s.dropped = dropped.load(std::memory_order_relaxed);
    s.rejected = rejected.load(std::memory_order_relaxed);
    s.capped = capped.load(std::memory_order_relaxed);
    s.produced = produced.load(std::memory_order_relaxed);
    s.in_flight = static_cast<std::int64_t>(s.accepted) - static_cast<std::int64_t>(s.consumed) -
                  static_cast<std::int64_t>(s.evicted);
    s.depth = strat->depth();
    s.capacity = strat->capacity();
    s.producers = cfg.producers;
    s.consumers = cfg.consumers;
    s.buffered_bytes = s.depth * (sizeof(item) + cfg.payload_bytes);
    s.rss_bytes = process_rss_bytes();
    s.producer_running = eng.producer_running_.load(std::memory_order_relaxed);
    s.consumer_running = eng.consumer_running_.load(std::memory_order_relaxed);
    const auto not_before = eng.consumer_not_before_ns_.load(std::memory_order_relaxed);
    if (s.consumer_running && not_before > to_ns(now))
      s.consumer_starts_in = double(not_before - to_ns(now)) / 1e9;

    int waiting = 0, reason = 0;
    const auto waited = total_waited_ns(to_ns(now), waiting, reason);
    s.producers_waiting = waiting;
    if (waiting) {
      switch (static_cast<wait_reason>(reason)) {
        case wait_reason::buffer_full:
          s.waiting_for = "buffer full";
          break;
        case wait_reason::no_token:
          s.waiting_for = "no token";
          break;
        case wait_reason::no_demand:
          s.waiting_for = "no demand";
          break;
      }
    }
    const double alive_ns = std::max(1.0, s.t * 1e9 * cfg.producers);
    s.wait_share_total = std::min(1.0, double(waited) / alive_ns);

    sample_state::point p{now, s.produced, s.consumed, waited, {}};
    for (int b = 0; b < latency_histogram::buckets; ++b)
      p.hist[b] = latency[b].load(std::memory_order_relaxed);
    auto& h = sampling.history;
    h.push_back(p);
    while (h.size() > 2 && now - h[1].at >= latency_window) h.pop_front();
    // rates over the last second: from the newest sample at least 1 s old (the oldest one
    // during the first second)
    const sample_state::point* base = &h.front();
    for (const auto& q : h) {
      if (now - q.at < rate_window) break;
      base = &q;
    }
    if (base != &h.back()) {
      // At least a second even at the start: a ramp, not a spike from one early item.
      const double dt = std::max(std::chrono::duration<double>(now - base->at).count(),
                                 std::chrono::duration<double>(rate_window).count());
      s.produce_rate = double(s.produced - base->produced) / dt;
      s.consume_rate = double(s.consumed - base->consumed) / dt;
      s.wait_share =
          std::clamp(double(waited - base->waited_ns) / (dt * 1e9 * cfg.producers), 0.0, 1.0);
    }
    std::array<std::uint64_t, latency_histogram::buckets> window{};
    for (int b = 0; b < latency_histogram::buckets; ++b) window[b] = p.hist[b] - h.front().hist[b];
    if (h.size() == 1) window = p.hist;
    const double p50 = quantile(window, 0.50), p99 = quantile(window, 0.99);
    s.latency_p50_ms = p50 < 0 ? -1 : p50 / 1000.0;
    s.latency_p99_ms = p99 < 0 ? -1 : p99 / 1000.0;
    const double all50 = quantile(p.hist, 0.50), all99 = quantile(p.hist, 0.99);
    s.latency_all_p50_ms = all50 < 0 ? -1 : all50 / 1000.0;
    s.latency_all_p99_ms = all99 < 0 ? -1 : all99 / 1000.0;
    explain(s);
    summarize_suppressed();
    return s;
  }

  // Watermark lines, in the seed's words.
  void explain(const snapshot& s) {
    if (s.capacity == 0) return;
    const double fill = double(s.depth) / double(s.capacity);
    const int pct = static_cast<int>(std::lround(fill * 100));
    int level = fill >= 1.0 ? 3 : fill >= 0.8 ? 2 : fill >= 0.5 ? 1 : 0;
    auto& w = sampling.watermark_level;
    const bool unbounded = cfg.strategy == strategy_kind::unbounded;
    std::lock_guard lock(eng.state_m_);
    if (level > w) {
      if (level == 3)
        eng.post_locked(event_kind::watermark,
                        unbounded ? fmt("queue at the safety cap: %zu items", s.depth)
                                  : fmt("queue full: %zu of %zu slots taken, past the high "
                                        "watermark (%s)",
                                        s.depth, s.capacity, describe_full(cfg.strategy)),
                        s.t);
      else if (level == 2)
        eng.post_locked(event_kind::watermark,
                        fmt("queue at %d%%: approaching the high watermark", pct), s.t);
      else
        eng.post_locked(event_kind::watermark, fmt("queue at %d%%: filling up", pct), s.t);
      w = level;
    } else if (w > 0 && fill < 0.4) {
      eng.post_locked(event_kind::drain,
                      s.depth == 0 ? std::string("queue drained: the consumer caught up")
                                   : fmt("queue back down to %d%%", pct),
                      s.t);
      w = 0;
    }
    if (unbounded && s.depth > 0 && s.produce_rate > s.consume_rate * 1.05 &&
        s.t - sampling.last_growth_note >= 2.0) {
      sampling.last_growth_note = s.t;
      eng.post_locked(event_kind::watermark,
                      fmt("unbounded queue holds %zu items (%s) and grows by %.0f items/s: no "
                          "backpressure, memory grows",
                          s.depth, mib(s.buffered_bytes).c_str(), s.produce_rate - s.consume_rate),
                      s.t);
    }
  }

  static const char* describe_full(strategy_kind k) {
    switch (k) {
      case strategy_kind::block:
        return "the producer will wait";
      case strategy_kind::drop_newest:
        return "new items will be dropped";
      case strategy_kind::drop_oldest:
        return "old items will be evicted";
      case strategy_kind::reject:
        return "new items will be rejected";
      case strategy_kind::signal:
        return "no more demand until the consumer requests";
      case strategy_kind::throttle:
        return "the throttled producer will wait";
      case strategy_kind::unbounded:
        break;
    }
    return "";
  }
};

// --- engine --------------------------------------------------------------------------------------

engine::engine(settings initial, options opt) : opt_(opt), settings_(initial) {
  if (auto why = validate(initial); !why.empty()) throw std::invalid_argument(why);
  producer_rate_ = initial.producer_rate;
  consumer_rate_ = initial.consumer_rate;
  {
    std::lock_guard lock(control_m_);
    rebuild_locked();
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
  sc_->start_threads();
}

void engine::post_locked(event_kind k, std::string text, double t) {
  events_.push_back({next_event_id_++, t, std::string(kind_name(k)), std::move(text)});
  while (events_.size() > opt_.event_limit) events_.pop_front();
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
  // The throttle's bucket follows the consumer rate when throttle_rate is 0: a new bucket.
  const bool bucket_follows = s.strategy == strategy_kind::throttle && s.throttle_rate == 0 &&
                              s.consumer_rate != settings_.consumer_rate;
  const bool restart = !(live_only == s) || bucket_follows;
  const settings before = settings_;
  settings_ = s;
  producer_rate_ = s.producer_rate;
  consumer_rate_ = s.consumer_rate;
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
  post(event_kind::control, "producer started");
}

void engine::stop_producer() {
  std::lock_guard lock(control_m_);
  if (shut_down_ || !producer_running_.exchange(false)) return;
  post(event_kind::control, "producer stopped");
}

void engine::start_consumer() {
  std::lock_guard lock(control_m_);
  if (shut_down_) return;
  consumer_not_before_ns_ = 0;
  if (consumer_running_.exchange(true)) return;
  post(event_kind::control, "consumer started");
}

void engine::stop_consumer() {
  std::lock_guard lock(control_m_);
  if (shut_down_ || !consumer_running_.exchange(false)) return;
  post(event_kind::control, "consumer stopped");
}

void engine::reset() {
  std::lock_guard lock(control_m_);
  if (shut_down_) return;
  rebuild_locked();
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
  auto first =
      std::find_if(events_.begin(), events_.end(), [&](const event& e) { return e.id > after_id; });
  const auto n = static_cast<std::size_t>(events_.end() - first);
  if (n > max) first = events_.end() - static_cast<std::ptrdiff_t>(max);
  return {first, events_.end()};
}

void engine::sampler_loop(std::stop_token st) {
  auto next = clock_type::now();
  while (!st.stop_requested()) {
    next += opt_.sample_period;
    std::this_thread::sleep_until(next);
    if (clock_type::now() - next > opt_.sample_period * 4) next = clock_type::now();
    take_sample();
  }
}

void engine::take_sample() {
  std::lock_guard control(control_m_);
  if (!sc_) return;
  snapshot s = sc_->sample();
  {
    std::lock_guard lock(state_m_);
    s.seq = next_seq_++;
    latest_ = s;
    series_.push_back(s);
    while (series_.size() > opt_.series_limit) series_.pop_front();
  }
  state_cv_.notify_all();
}

}  // namespace bp::console

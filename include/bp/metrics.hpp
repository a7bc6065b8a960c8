// bp/metrics.hpp: every number of every primitive, behind one snapshot.
//
//   bp::metrics::registry      primitives registered under a name; snapshot() reads all of
//                              their statistics at once, as plain data.
//   bp::metrics::registration  the RAII handle add() returns: the primitive is read until the
//                              handle is destroyed (or reset), never after.
//   bp::metrics::snapshot      families of counters, gauges and wait-time histograms, named
//                              the Prometheus way (bp_channel_sent_total{channel="orders"}),
//                              for an exporter (bp/prometheus/exporter.hpp) or a test; made of
//                              bp::metrics::family, sample, label, histogram_data and
//                              metric_type, plain data.
//   bp::metrics::writer        what a source writes its numbers into.
//   bp::metrics::source<P>     how a primitive type P is read; specialized here for every
//                              primitive of the library (and bp::rs::operator_stats, what a
//                              Reactive Streams operator counts), open to the user's own types.
//
// Example (examples/metrics.cpp):
//
//   bp::channel<int> orders(64);
//   bp::semaphore db(8);
//   bp::metrics::registry reg;
//   auto r1 = reg.add("orders", orders);   // the handles must not outlive the primitives
//   auto r2 = reg.add("db", db);
//   ...
//   const bp::metrics::snapshot s = reg.snapshot();
//   double sent = s.value("bp_channel_sent_total", "orders").value_or(0);
//
// Cost: nothing on a primitive that is never registered (it keeps its counters and histograms
// anyway, and writes them only when an operation waits or is refused); a snapshot reads each
// registered primitive's stats() and histograms, a few hundred relaxed loads, under the
// registry's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "budgeted_channel.hpp"
#include "channel.hpp"
#include "concurrency_limiter.hpp"
#include "leaky_bucket.hpp"
#include "memory_budget.hpp"
#include "rs/operator_stats.hpp"
#include "semaphore.hpp"
#include "token_bucket.hpp"
#include "unbounded_channel.hpp"
#include "wait_histogram.hpp"
#include "watermark_buffer.hpp"

namespace bp::metrics {

enum class metric_type { counter, gauge, histogram };

struct label {
  std::string name;
  std::string value;
  friend bool operator==(const label&, const label&) = default;
};

// A histogram in Prometheus's shape: cumulative counts per upper bound (seconds); the +Inf
// bucket is `count`.
struct histogram_data {
  std::vector<double> upper_bounds;       // seconds, increasing
  std::vector<std::uint64_t> cumulative;  // waits <= upper_bounds[i]
  std::uint64_t count = 0;
  double sum = 0;  // seconds
};

// One series of a family: its labels (the primitive's kind and name, e.g. channel="orders")
// and its value (counters, gauges) or histogram.
struct sample {
  std::vector<label> labels;
  double value = 0;
  histogram_data histogram;
};

struct family {
  std::string name;  // bp_<primitive>_<what>[_<unit>][_total]
  std::string help;
  metric_type type = metric_type::gauge;
  std::vector<sample> samples;
};

// Every family of every registered primitive at one moment, in the order first written.
struct snapshot {
  std::vector<family> families;

  [[nodiscard]] const family* find(std::string_view name) const noexcept {
    for (const auto& f : families)
      if (f.name == name) return &f;
    return nullptr;
  }
  // The series of family `name` for the primitive registered as `instance`.
  [[nodiscard]] const sample* find(std::string_view name, std::string_view instance) const {
    const family* f = find(name);
    if (f == nullptr) return nullptr;
    for (const auto& s : f->samples)
      if (!s.labels.empty() && s.labels.front().value == instance) return &s;
    return nullptr;
  }
  // A counter's or gauge's value (a histogram's count) for `instance`; nullopt when absent.
  [[nodiscard]] std::optional<double> value(std::string_view name,
                                            std::string_view instance) const {
    const sample* s = find(name, instance);
    if (s == nullptr) return std::nullopt;
    const family* f = find(name);
    return f->type == metric_type::histogram ? static_cast<double>(s->histogram.count) : s->value;
  }
};

// What a source writes one primitive's numbers into. Names are full Prometheus names; the
// primitive's label (kind="name") is added to every series.
class writer {
 public:
  void counter(std::string_view name, std::string_view help, double v) {
    add(name, help, metric_type::counter).value = v;
  }
  void gauge(std::string_view name, std::string_view help, double v) {
    add(name, help, metric_type::gauge).value = v;
  }
  void histogram(std::string_view name, std::string_view help, const wait_histogram_snapshot& h) {
    histogram_data& d = add(name, help, metric_type::histogram).histogram;
    d.upper_bounds.reserve(wait_histogram_snapshot::bound_count);
    d.cumulative.reserve(wait_histogram_snapshot::bound_count);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < wait_histogram_snapshot::bound_count; ++i) {
      running += h.buckets[i];
      d.upper_bounds.push_back(static_cast<double>(wait_histogram_snapshot::upper_bound_ns[i]) /
                               1e9);
      d.cumulative.push_back(running);
    }
    d.count = h.count;
    d.sum = h.sum_seconds();
  }

 private:
  friend class registry;
  writer(snapshot& out, std::map<std::string, std::size_t, std::less<>>& index,
         const std::string& kind, const std::string& instance)
      : out_(out), index_(index), kind_(kind), instance_(instance) {}

  sample& add(std::string_view name, std::string_view help, metric_type type) {
    auto it = index_.find(name);
    if (it == index_.end()) {
      it = index_.emplace(std::string(name), out_.families.size()).first;
      out_.families.push_back(family{std::string(name), std::string(help), type, {}});
    }
    family& f = out_.families[it->second];
    f.samples.push_back(sample{{label{kind_, instance_}}, 0, {}});
    return f.samples.back();
  }

  snapshot& out_;
  std::map<std::string, std::size_t, std::less<>>& index_;
  const std::string& kind_;
  const std::string& instance_;
};

// How a primitive of type P is read: `kind` is its label name and family prefix, `collect`
// writes its numbers. Specialize it for a type of your own to register that type too.
template <class P>
struct source;

namespace detail {
inline double num(std::uint64_t v) noexcept {
  return static_cast<double>(v);
}
}  // namespace detail

namespace detail {
// A channel's families; a budgeted channel answers the same (its budget refusals and
// evictions are in its stats()), plus its bytes.
template <class Channel>
void channel_families(const Channel& ch, writer& w) {
  const channel_stats s = ch.stats();
  w.counter("bp_channel_sent_total", "Values accepted by the channel.", num(s.sent));
  w.counter("bp_channel_received_total", "Values delivered to receivers.", num(s.received));
  w.counter("bp_channel_dropped_total", "Values refused by a dropping policy.", num(s.dropped));
  w.counter("bp_channel_evicted_total", "Buffered values evicted by drop_oldest.", num(s.evicted));
  w.counter("bp_channel_rejected_total", "Sends answered full.", num(s.rejected));
  w.counter("bp_channel_send_waits_total", "Sends that waited for room.", num(s.send_waits));
  w.counter("bp_channel_recv_waits_total", "Receives that waited for a value.", num(s.recv_waits));
  w.counter("bp_channel_timeouts_total", "Waits that answered timeout.", num(s.timeouts));
  w.gauge("bp_channel_size", "Values buffered now.", static_cast<double>(ch.size()));
  w.gauge("bp_channel_capacity", "Slots of the buffer.", static_cast<double>(ch.capacity()));
  w.gauge("bp_channel_high_watermark", "Largest number of values buffered.",
          static_cast<double>(s.high_watermark));
  w.histogram("bp_channel_send_wait_seconds", "Time sends waited for room.",
              ch.send_wait_times().snapshot());
  w.histogram("bp_channel_recv_wait_seconds", "Time receives waited for a value.",
              ch.recv_wait_times().snapshot());
}
}  // namespace detail

template <class T>
struct source<channel<T>> {
  static constexpr const char* kind = "channel";
  static void collect(const channel<T>& ch, writer& w) { detail::channel_families(ch, w); }
};

// Registered under the label `channel`: the same series as a plain channel, plus its bytes.
template <class T>
struct source<budgeted_channel<T>> {
  static constexpr const char* kind = "channel";
  static void collect(const budgeted_channel<T>& ch, writer& w) {
    detail::channel_families(ch, w);
    w.gauge("bp_channel_budget_bytes", "Budget bytes held by the buffered values.",
            static_cast<double>(ch.bytes()));
  }
};

template <class T>
struct source<unbounded_channel<T>> {
  static constexpr const char* kind = "unbounded_channel";
  static void collect(const unbounded_channel<T>& ch, writer& w) {
    using detail::num;
    const unbounded_channel_stats s = ch.stats();
    w.counter("bp_unbounded_channel_sent_total", "Values accepted.", num(s.sent));
    w.counter("bp_unbounded_channel_received_total", "Values delivered.", num(s.received));
    w.counter("bp_unbounded_channel_threshold_crossings_total",
              "Upward crossings of the warning threshold.", num(s.threshold_crossings));
    w.counter("bp_unbounded_channel_recv_waits_total", "Receives that waited for a value.",
              num(s.recv_waits));
    w.counter("bp_unbounded_channel_timeouts_total", "Receives that answered timeout.",
              num(s.timeouts));
    w.gauge("bp_unbounded_channel_size", "Values buffered now.", static_cast<double>(s.size));
    w.gauge("bp_unbounded_channel_high_watermark", "Largest number of values buffered.",
            static_cast<double>(s.high_watermark));
    w.gauge("bp_unbounded_channel_bytes", "Bytes buffered now (with a size function).",
            static_cast<double>(s.bytes));
    w.histogram("bp_unbounded_channel_recv_wait_seconds", "Time receives waited for a value.",
                ch.recv_wait_times().snapshot());
  }
};

namespace detail {
// What every primitive with an acquire reports beside its level: the acquires that waited, those
// that answered timeout, try_acquire's refusals, and how long the waits took.
template <class Stats>
void acquire_waits(writer& w, const std::string& prefix, const Stats& s, const wait_histogram& h) {
  w.counter(prefix + "_waits_total", "Acquires that waited.", num(s.waits));
  w.counter(prefix + "_timeouts_total", "Acquires that answered timeout.", num(s.timeouts));
  w.counter(prefix + "_rejected_total", "try_acquire answers full.", num(s.rejected));
  w.histogram(prefix + "_wait_seconds", "Time acquires waited.", h.snapshot());
}
}  // namespace detail

template <>
struct source<semaphore> {
  static constexpr const char* kind = "semaphore";
  static void collect(const semaphore& sem, writer& w) {
    using detail::num;
    const semaphore_stats s = sem.stats();
    w.gauge("bp_semaphore_available", "Free permits now.", static_cast<double>(s.available));
    w.gauge("bp_semaphore_waiting", "Threads queued for permits now.",
            static_cast<double>(s.waiting));
    detail::acquire_waits(w, "bp_semaphore", s, sem.wait_times());
  }
};

template <>
struct source<token_bucket> {
  static constexpr const char* kind = "token_bucket";
  static void collect(const token_bucket& b, writer& w) {
    const token_bucket_stats s = b.stats();
    w.gauge("bp_token_bucket_available", "Tokens in the bucket now.",
            static_cast<double>(s.available));
    w.gauge("bp_token_bucket_rate", "Tokens added per second.", b.rate());
    w.gauge("bp_token_bucket_burst", "Most tokens the bucket holds.",
            static_cast<double>(b.burst()));
    detail::acquire_waits(w, "bp_token_bucket", s, b.wait_times());
  }
};

template <>
struct source<leaky_bucket> {
  static constexpr const char* kind = "leaky_bucket";
  static void collect(const leaky_bucket& b, writer& w) {
    const leaky_bucket_stats s = b.stats();
    w.gauge("bp_leaky_bucket_queued", "Units queued ahead of a new request.",
            static_cast<double>(s.queued));
    w.gauge("bp_leaky_bucket_rate", "Units let out per second.", b.rate());
    w.gauge("bp_leaky_bucket_capacity", "Most units queued.", static_cast<double>(b.capacity()));
    detail::acquire_waits(w, "bp_leaky_bucket", s, b.wait_times());
  }
};

template <>
struct source<concurrency_limiter> {
  static constexpr const char* kind = "concurrency_limiter";
  static void collect(const concurrency_limiter& l, writer& w) {
    using detail::num;
    const concurrency_limiter_stats s = l.stats();
    w.gauge("bp_concurrency_limiter_limit", "The current limit.", static_cast<double>(s.limit));
    w.gauge("bp_concurrency_limiter_in_flight", "Requests admitted and not completed.",
            static_cast<double>(s.in_flight));
    w.counter("bp_concurrency_limiter_dropped_total", "Requests answered on_dropped.",
              num(s.dropped));
    detail::acquire_waits(w, "bp_concurrency_limiter", s, l.wait_times());
  }
};

template <>
struct source<memory_budget> {
  static constexpr const char* kind = "memory_budget";
  static void collect(const memory_budget& b, writer& w) {
    using detail::num;
    const memory_budget_stats s = b.stats();
    w.gauge("bp_memory_budget_capacity_bytes", "The budget.", static_cast<double>(s.capacity));
    w.gauge("bp_memory_budget_in_use_bytes", "Bytes held by live reservations.",
            static_cast<double>(s.in_use));
    w.gauge("bp_memory_budget_peak_bytes", "Largest in_use seen.", static_cast<double>(s.peak));
    w.gauge("bp_memory_budget_streams", "Open stream handles.", static_cast<double>(s.streams));
    w.gauge("bp_memory_budget_active_streams", "Streams holding or waiting for bytes.",
            static_cast<double>(s.active_streams));
    w.counter("bp_memory_budget_granted_total", "Reservations granted.", num(s.granted));
    w.counter("bp_memory_budget_waits_total", "Reservations that waited.", num(s.waits));
    w.counter("bp_memory_budget_timeouts_total", "Waits that answered timeout.", num(s.timeouts));
    w.counter("bp_memory_budget_refused_total", "try_reserve answers full.", num(s.refused));
    w.histogram("bp_memory_budget_wait_seconds", "Time reservations waited for bytes.",
                b.wait_times().snapshot());
  }
};

template <class T>
struct source<watermark_buffer<T>> {
  static constexpr const char* kind = "watermark_buffer";
  static void collect(const watermark_buffer<T>& b, writer& w) {
    using detail::num;
    const watermark_buffer_stats s = b.stats();
    w.gauge("bp_watermark_buffer_buffered_bytes", "Bytes buffered now.",
            static_cast<double>(s.buffered_bytes));
    w.gauge("bp_watermark_buffer_peak_bytes", "Largest buffered_bytes seen.",
            static_cast<double>(s.peak_bytes));
    w.counter("bp_watermark_buffer_writes_total", "Items buffered.", num(s.writes));
    w.counter("bp_watermark_buffer_reads_total", "Items read.", num(s.reads));
    w.counter("bp_watermark_buffer_over_high_total", "Writes that crossed the high mark.",
              num(s.over_high));
    w.counter("bp_watermark_buffer_drains_total", "Drains to the low mark.", num(s.drains));
    w.counter("bp_watermark_buffer_refused_total", "Writes not buffered.", num(s.refused));
    w.counter("bp_watermark_buffer_read_waits_total", "Reads that waited for an item.",
              num(s.read_waits));
    w.counter("bp_watermark_buffer_drain_waits_total", "wait_drain calls that waited.",
              num(s.drain_waits));
    w.counter("bp_watermark_buffer_timeouts_total", "Waits that answered timeout.",
              num(s.timeouts));
    w.histogram("bp_watermark_buffer_read_wait_seconds", "Time reads waited for an item.",
                b.read_wait_times().snapshot());
    w.histogram("bp_watermark_buffer_drain_wait_seconds", "Time wait_drain waited.",
                b.drain_wait_times().snapshot());
  }
};

template <>
struct source<rs::operator_stats> {
  static constexpr const char* kind = "rs_operator";
  static void collect(const rs::operator_stats& st, writer& w) {
    using detail::num;
    const rs::operator_stats_snapshot s = st.snapshot();
    w.counter("bp_rs_operator_received_total", "Elements upstream signalled.", num(s.received));
    w.counter("bp_rs_operator_delivered_total", "Elements passed downstream.", num(s.delivered));
    w.counter("bp_rs_operator_dropped_total", "Elements refused.", num(s.dropped));
    w.counter("bp_rs_operator_evicted_total", "Buffered elements evicted by newer ones.",
              num(s.evicted));
    w.counter("bp_rs_operator_rejected_total", "Elements that overflowed a rejecting buffer.",
              num(s.rejected));
    w.counter("bp_rs_operator_discarded_total", "Buffered elements thrown away at cancel.",
              num(s.discarded));
    w.counter("bp_rs_operator_requested_total", "Demand requested upstream.", num(s.requested));
    w.gauge("bp_rs_operator_buffered", "Elements held by the operator now.", num(s.buffered()));
  }
};

namespace detail {
struct registry_state {
  struct entry {
    std::string kind;
    std::string name;
    std::function<void(writer&)> collect;
  };
  std::mutex m;
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, entry> entries;  // by id: registration order
};
}  // namespace detail

// The handle of one registration. Move-only; destroying it (or reset()) removes the primitive
// from the registry, and once that returns no snapshot reads the primitive any more, so a
// handle destroyed before its primitive (declare it after) is all the lifetime care needed.
// It may outlive the registry (it then does nothing).
class registration {
 public:
  registration() noexcept = default;
  registration(registration&& o) noexcept : state_(std::move(o.state_)), id_(o.id_) {}
  registration& operator=(registration&& o) noexcept {
    if (this != &o) {
      reset();
      state_ = std::move(o.state_);
      id_ = o.id_;
    }
    return *this;
  }
  registration(const registration&) = delete;
  registration& operator=(const registration&) = delete;
  ~registration() { reset(); }

  void reset() noexcept {
    if (auto s = state_.lock()) {
      std::lock_guard lock(s->m);
      s->entries.erase(id_);
    }
    state_.reset();
  }
  [[nodiscard]] bool active() const noexcept { return !state_.expired(); }

 private:
  friend class registry;
  registration(std::weak_ptr<detail::registry_state> s, std::uint64_t id) noexcept
      : state_(std::move(s)), id_(id) {}
  std::weak_ptr<detail::registry_state> state_;
  std::uint64_t id_ = 0;
};

// Named primitives and one snapshot of all of them.
//
// Thread safety: add, registration::reset and snapshot may run concurrently from any threads;
// snapshot reads the primitives while their users operate (each number is best effort, as the
// primitives' stats() are).
// Errors: add throws std::invalid_argument for an empty name, or a name already registered for
// a primitive of the same kind (Prometheus would see two series with the same labels).
class registry {
 public:
  registry() = default;
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  // Registers `primitive` under `name`: read by every snapshot until the handle is destroyed.
  template <class P>
  [[nodiscard]] registration add(std::string name, const P& primitive) {
    return add_source(source<P>::kind, std::move(name),
                      [&primitive](writer& w) { source<P>::collect(primitive, w); });
  }

  // A temporary would be read after it is gone (and a temporary shared_ptr is gone at once).
  template <class P>
  registration add(std::string name, const P&& primitive) = delete;

  // Registers a shared primitive: read while it lives (the registry holds it weakly), so the
  // handle may be dropped early; it still removes the entry when destroyed.
  template <class P>
  [[nodiscard]] registration add(std::string name, const std::shared_ptr<P>& primitive) {
    if (!primitive)
      throw std::invalid_argument("bp::metrics::registry::add: primitive is a null shared_ptr");
    std::weak_ptr<P> weak = primitive;
    return add_source(source<std::remove_const_t<P>>::kind, std::move(name),
                      [weak = std::move(weak)](writer& w) {
                        if (auto p = weak.lock()) source<std::remove_const_t<P>>::collect(*p, w);
                      });
  }

  // The statistics of every registered primitive, now.
  [[nodiscard]] metrics::snapshot snapshot() const {
    metrics::snapshot out;
    std::map<std::string, std::size_t, std::less<>> index;
    std::lock_guard lock(state_->m);
    for (const auto& [id, e] : state_->entries) {
      writer w(out, index, e.kind, e.name);
      e.collect(w);
    }
    return out;
  }

  // Primitives registered now.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(state_->m);
    return state_->entries.size();
  }

 private:
  registration add_source(const char* kind, std::string name,
                          std::function<void(writer&)> collect) {
    if (name.empty())
      throw std::invalid_argument("bp::metrics::registry::add: name must not be empty");
    std::lock_guard lock(state_->m);
    for (const auto& [id, e] : state_->entries)
      if (e.kind == kind && e.name == name)
        throw std::invalid_argument("bp::metrics::registry::add: name \"" + name +
                                    "\" is already registered for a " + kind);
    const std::uint64_t id = state_->next_id++;
    state_->entries.emplace(
        id, detail::registry_state::entry{kind, std::move(name), std::move(collect)});
    return registration(state_, id);
  }

  std::shared_ptr<detail::registry_state> state_ = std::make_shared<detail::registry_state>();
};

}  // namespace bp::metrics

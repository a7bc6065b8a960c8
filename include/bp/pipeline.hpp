// bp/pipeline.hpp: a source, stages and a sink on threads, joined by bounded channels, so that
// backpressure runs end to end: a slow stage fills its input link, which blocks the stage
// before it, and so on up to the source. Memory stays flat whatever the input's size.
//
//   bp::pipeline               the running (or runnable) pipeline: start, wait, run,
//                              request_stop, report. Built by bp::pipeline::from(...).
//   bp::pipeline_builder<T>    what from() and each stage return; T is the type the last stage
//                              produces. Stages: map, filter, flat_map, batch, unbatch; sink()
//                              ends the builder and returns the pipeline.
//   bp::pipeline_options       the source's link, the error and stop policies, timing on/off.
//   bp::stage_options          parallelism, ordered output, the output link, a name, and an
//                              optional rate (bp::token_bucket) or limit (bp::semaphore,
//                              bp::concurrency_limiter) around the stage's function.
//   bp::link_options           capacity and overflow policy of the channel after a stage.
//   bp::in_flight              drain | discard: what happens to items in flight on a stop or
//                              an error.
//   bp::pipeline_report,       per-stage metrics (busy / idle / blocked time, link depth and
//   bp::stage_report,          high watermark, items in / out, items/s) and the bottleneck.
//   bp::link_report
//
// Example (examples/pipeline_ordered.cpp; a longer one in examples/pipeline_logs.cpp):
//
//   auto p = bp::pipeline::from(std::views::iota(0, rows))
//                .map(render, {.parallelism = 4, .ordered = true, .link = {.capacity = 256}})
//                .filter([](const row& r) { return !r.empty(); })
//                .batch(16, 50ms)           // up to 16 rows, or what came within 50 ms
//                .sink(write);              // gets std::vector<row>, rows in order
//   p.run();                    // or start() + wait(); wait() rethrows the first exception
//   auto r = p.report();        // per-stage metrics; r.bottleneck names the limiting stage
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <ranges>
#include <sstream>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "channel.hpp"
#include "concurrency_limiter.hpp"
#include "detail/pipeline_meter.hpp"
#include "detail/pipeline_reorder.hpp"
#include "rate.hpp"
#include "semaphore.hpp"
#include "status.hpp"

namespace bp {

// What a stop or an error does with the items already inside the pipeline.
enum class in_flight {
  drain,    // the source stops; every item already taken flows on to the sink
  discard,  // the source stops, every link closes, items still in links are destroyed
};

// The channel after a stage (its output link). Capacity 0 is a rendezvous link (block only).
// A lossy policy loses items by design; the link's counters in report() show how many.
struct link_options {
  std::size_t capacity = 64;
  overflow policy = overflow::block;
};

// How one stage runs. Designated initializers: {.parallelism = 4, .link = {.capacity = 256}}.
struct stage_options {
  // Worker threads of this stage; 1 = serial.
  std::size_t parallelism = 1;
  // With parallelism > 1: keep the input order in the output (a bounded reorder window);
  // false lets results out as they finish. A serial stage keeps its input order either way.
  bool ordered = true;
  // Ordered stages with parallelism > 1: items in flight between the oldest not yet emitted
  // and the newest taken; 0 means 2 x parallelism. Bounds memory behind one slow item.
  std::size_t window = 0;
  // The link to the next stage (ignored for the sink).
  link_options link{};
  // The stage's name in report(); default: its kind and position ("map#1").
  std::string name{};
  // Optional bounds around each call of the stage's function, shared with whatever else uses
  // them (they must outlive the pipeline): one token of `rate` per item, one permit of
  // `limit` and one token of `limiter` held while the function runs (the limiter hears
  // on_success for a call that returned; a call that threw gives its token back unanswered).
  token_bucket* rate = nullptr;
  semaphore* limit = nullptr;
  concurrency_limiter* limiter = nullptr;
};

// The pipeline as a whole, given to from().
struct pipeline_options {
  link_options link{};         // the source's output link
  std::string name{"source"};  // the source's name in report()
  // The first exception thrown by the source or any stage stops the source, then:
  in_flight on_error = in_flight::discard;
  // request_stop() and a stop_token stop the source, then:
  in_flight on_stop = in_flight::drain;
  // Time each stage's waits (two steady_clock reads around each wait for input, room or the
  // reorder window; an item that does not wait reads no clock). Off: only the item counters
  // move and report() has no times and no bottleneck.
  bool timing = true;
};

// A link as report() sees it; best effort while the pipeline runs.
struct link_report {
  std::size_t size = 0;  // items buffered now
  std::size_t capacity = 0;
  std::size_t high_watermark = 0;  // largest size seen
  double average_fill = 0;         // mean of size / capacity sampled by the receiving stage
  std::uint64_t dropped = 0;       // drop_newest refusals
  std::uint64_t evicted = 0;       // drop_oldest evictions
  std::uint64_t rejected = 0;      // reject refusals
};

struct stage_report {
  std::string name;
  std::string kind;  // source, map, filter, flat_map, batch, unbatch, sink
  std::size_t parallelism = 1;
  std::uint64_t items_in = 0;   // taken from the input link (the source: produced)
  std::uint64_t items_out = 0;  // accepted by the output link (the sink: consumed)
  std::uint64_t errors = 0;     // exceptions thrown by the stage's function
  std::uint64_t discarded = 0;  // items dropped by a discarding stop or error
  // Summed over the stage's workers (a wait in progress included).
  std::chrono::nanoseconds busy{0};     // not waiting: the function, its rate / limit, handling
  std::chrono::nanoseconds idle{0};     // waiting for input
  std::chrono::nanoseconds blocked{0};  // waiting for room in the output link
  std::chrono::nanoseconds reorder{0};  // ordered: waiting for the reorder window
  double items_per_second = 0;          // items_out over the pipeline's elapsed time
  std::optional<link_report> input;     // the link the stage reads (none for the source)

  [[nodiscard]] std::chrono::nanoseconds total() const noexcept {
    return busy + idle + blocked + reorder;
  }
  [[nodiscard]] double busy_fraction() const noexcept { return fraction(busy); }
  [[nodiscard]] double idle_fraction() const noexcept { return fraction(idle); }
  [[nodiscard]] double blocked_fraction() const noexcept { return fraction(blocked); }
  // How full the input link was on average (a rendezvous link: 1 - idle fraction).
  [[nodiscard]] double input_fill() const noexcept {
    if (!input) return 0;
    return input->capacity == 0 ? 1.0 - idle_fraction() : input->average_fill;
  }

 private:
  double fraction(std::chrono::nanoseconds part) const noexcept {
    const auto t = total().count();
    return t > 0 ? static_cast<double>(part.count()) / static_cast<double>(t) : 0.0;
  }
};

// What report() returns. Stage 0 is the source, the last stage the sink.
//
// The bottleneck is the stage that limits throughput: the one whose workers are busy while
// work waits for them and their output has room. Precisely, among the stages with
//   blocked_fraction() < 0.25                      (not held back by the stage after it), and
//   input_fill() >= 0.5, or the stage is the source (work is queued in front of it),
// the one with the highest busy_fraction(), if that is at least 0.5. No stage qualifies (an
// idle pipeline, or timing off): no bottleneck.
struct pipeline_report {
  std::vector<stage_report> stages;
  std::optional<std::size_t> bottleneck;  // index into stages
  std::chrono::nanoseconds elapsed{0};    // since start(), until the last worker ended
  bool finished = false;

  [[nodiscard]] const stage_report* bottleneck_stage() const noexcept {
    return bottleneck ? &stages[*bottleneck] : nullptr;
  }
  // A table for humans, one line per stage.
  [[nodiscard]] std::string to_string() const;
};

inline std::ostream& operator<<(std::ostream& os, const pipeline_report& r) {
  return os << r.to_string();
}

class pipeline;
template <class T>
class pipeline_builder;

namespace detail {

// What a stage produces when it produces nothing (the sink).
struct no_output {};

// A stage of a built pipeline, with its types erased: pipeline_state drives its workers.
class pipeline_node {
 public:
  pipeline_node(std::string name, std::string kind, std::size_t workers)
      : name_(std::move(name)), kind_(std::move(kind)), counters_(workers) {}
  pipeline_node(const pipeline_node&) = delete;
  pipeline_node& operator=(const pipeline_node&) = delete;
  virtual ~pipeline_node() = default;

  // Runs worker `w` of this stage to its end; never throws.
  virtual void work(std::size_t w) noexcept = 0;
  virtual void close_output() noexcept = 0;
  virtual void wake() noexcept {}
  virtual std::optional<link_report> input_report() const { return std::nullopt; }

  [[nodiscard]] std::size_t workers() const noexcept { return counters_.size(); }
  [[nodiscard]] stage_report report() const;

 protected:
  // The last worker of a stage to end closes its output link: the next stage drains it, ends
  // and closes its own, down to the sink.
  void worker_done() noexcept {
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == workers()) close_output();
  }
  stage_counters& counters(std::size_t w) noexcept { return counters_[w]; }

 private:
  std::string name_;
  std::string kind_;
  std::vector<stage_counters> counters_;
  std::atomic<std::size_t> done_{0};
};

inline stage_report pipeline_node::report() const {
  stage_report r;
  r.name = name_;
  r.kind = kind_;
  r.parallelism = workers();
  std::uint64_t fill_sum = 0, fill_samples = 0;
  constexpr auto rx = std::memory_order_relaxed;
  const std::int64_t now = steady_ns();
  for (const auto& c : counters_) {
    const worker_times t = read_times(c, now);
    r.busy += std::chrono::nanoseconds(t.busy);
    r.idle += std::chrono::nanoseconds(t.idle);
    r.blocked += std::chrono::nanoseconds(t.blocked);
    r.reorder += std::chrono::nanoseconds(t.reorder);
    r.items_in += c.items_in.load(rx);
    r.items_out += c.items_out.load(rx);
    r.errors += c.errors.load(rx);
    r.discarded += c.discarded.load(rx);
    fill_sum += c.fill_permille_sum.load(rx);
    fill_samples += c.fill_samples.load(rx);
  }
  r.input = input_report();
  if (r.input && fill_samples)
    r.input->average_fill =
        static_cast<double>(fill_sum) / 1000.0 / static_cast<double>(fill_samples);
  return r;
}

// State shared by the pipeline object and its workers: the stages, the stop and error
// machinery, the threads.
class pipeline_state {
 public:
  explicit pipeline_state(pipeline_options o) : options(std::move(o)) {}

  pipeline_options options;
  std::vector<std::unique_ptr<pipeline_node>> nodes;
  std::stop_source stop;                // the source checks it between items
  std::atomic<bool> discarding{false};  // workers drop what they take
  std::vector<std::thread> threads;
  std::optional<std::stop_callback<std::function<void()>>> external_stop;
  std::chrono::steady_clock::time_point started{};  // set before any worker starts
  std::atomic<bool> launched{false};                // started is valid (read by report())
  std::atomic<std::int64_t> finished_ns{0};         // since started; 0 while running
  std::atomic<std::size_t> running{0};              // workers not yet ended

  // Stops the source; with `discard`, also closes every link and makes every worker drop
  // what it takes. Idempotent, callable from any thread, also from a worker.
  void request_stop(in_flight what) noexcept {
    stop.request_stop();
    if (what == in_flight::discard) {
      discarding.store(true, std::memory_order_seq_cst);
      for (auto& n : nodes) n->close_output();
      for (auto& n : nodes) n->wake();
    }
    // Draining needs no more: a source waiting for room gets it as the stages drain, delivers
    // the item in hand and then sees the stop; closing its link would lose that item.
  }

  // The first exception is kept for wait(); every one stops the pipeline per on_error.
  void fail(std::exception_ptr e) noexcept {
    {
      std::lock_guard lock(m_);
      if (!error_) error_ = std::move(e);
    }
    request_stop(options.on_error);
  }

  [[nodiscard]] std::exception_ptr error() const {
    std::lock_guard lock(m_);
    return error_;
  }

  void worker_ended() noexcept {
    if (running.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - started)
                          .count();
      finished_ns.store(ns > 0 ? ns : 1, std::memory_order_release);
    }
  }

  [[nodiscard]] bool is_discarding() const noexcept {
    return discarding.load(std::memory_order_relaxed);
  }

 private:
  mutable std::mutex m_;
  std::exception_ptr error_;
};

// Samples how full the input link is as a worker comes for more work (before it takes any):
// what waits in front of the stage. Every 4th time only, as size() reads lines the other
// side writes; `every` lets a stage that takes many items per call sample each call.
template <class T>
void sample_fill(stage_meter& m, const channel<T>& in, std::uint64_t every = 4) noexcept {
  if (m.ticks++ % every != 0 || in.capacity() == 0) return;
  m.fill_sum += std::min(in.size(), in.capacity()) * 1000 / in.capacity();
  ++m.fill_samples;
}

template <class T>
link_report link_of(const channel<T>& ch) {
  const auto s = ch.stats();
  link_report r;
  r.size = ch.size();
  r.capacity = ch.capacity();
  r.high_watermark = s.high_watermark;
  r.dropped = s.dropped;
  r.evicted = s.evicted;
  r.rejected = s.rejected;
  return r;
}

// Holds what a stage's bounds granted for one call: a semaphore permit, a limiter permit.
struct admission {
  permit slot;
  std::optional<limiter_permit> token;
};

// Waits for the stage's rate token, semaphore permit and limiter token, in that order, in
// slices short enough to notice a discarding stop (they are shared objects the pipeline does
// not close). False: the item is not to be processed (discarding, or a bound was closed).
inline bool admit(const stage_options& o, const pipeline_state& st, admission& a) {
  using namespace std::chrono_literals;
  constexpr auto slice = 20ms;
  if (o.rate) {
    auto r = o.rate->reserve(1);
    if (!r) return false;
    for (auto d = r.delay(); d > 0ns; d = r.delay()) {
      if (st.is_discarding()) {
        r.cancel();
        return false;
      }
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(d, slice));
    }
  }
  if (o.limit) {
    while (!(a.slot = o.limit->acquire_permit_for(1, slice)))
      if (st.is_discarding() || o.limit->is_closed()) return false;
  }
  if (o.limiter) {
    for (;;) {
      auto t = o.limiter->acquire_for(slice);
      if (t) {
        a.token.emplace(std::move(t));
        break;
      }
      if (st.is_discarding() || o.limiter->is_closed()) return false;
    }
  }
  return true;
}

// Sends a worker's results downstream, counting what the link accepted and what a closed link
// (a discarding stop) refused; a lossy link's refusals are counted by the link.
// A send, timed as blocked only when it is likely to wait (a full `block` link, or a rendezvous
// one): a send that goes straight through costs no clock read.
template <class Out>
status send_metered(channel<Out>& out, Out&& v, stage_meter& m) {
  if (out.policy() != overflow::block || (out.capacity() != 0 && out.size() < out.capacity()))
    return out.send(std::move(v));
  return m.wait(wait_kind::blocked, [&] { return out.send(std::move(v)); });
}

// Receives one item, timed as idle only when the link is empty.
template <class In>
std::optional<In> recv_metered(channel<In>& in, stage_meter& m) {
  if (auto v = in.try_recv()) return v;
  return m.wait(wait_kind::idle, [&] { return in.recv(); });
}

template <class Out>
void emit_to(channel<Out>& out, std::vector<Out>& values, stage_meter& m) {
  for (auto& v : values) {
    const status s = send_metered(out, std::move(v), m);
    if (s == status::ok) {
      ++m.out;
    } else if (s == status::closed) {
      ++m.discarded;
    }
  }
  values.clear();
}

// The source: pulls from a range or a function and sends into the first link.
template <class T, class Next>
class source_node final : public pipeline_node {
 public:
  source_node(pipeline_state& st, Next next, std::shared_ptr<channel<T>> out)
      : pipeline_node(st.options.name, "source", 1),
        st_(st),
        next_(std::move(next)),
        out_(std::move(out)) {}

  void work(std::size_t) noexcept override {
    stage_meter m(counters(0), st_.options.timing);
    const std::stop_token stop = st_.stop.get_token();
    try {
      while (!stop.stop_requested()) {
        std::optional<T> v = next_(stop);
        if (!v) break;
        ++m.in;
        const status s = send_metered(*out_, std::move(*v), m);
        if (s == status::ok) {
          ++m.out;
        } else if (s == status::closed) {
          ++m.discarded;
          break;
        }
        m.publish();
      }
    } catch (...) {
      ++m.errors;
      st_.fail(std::current_exception());
    }
    m.publish();
    worker_done();
  }
  void close_output() noexcept override { out_->close(); }

 private:
  pipeline_state& st_;
  Next next_;
  std::shared_ptr<channel<T>> out_;
};

// A stage with one input link and (but for the sink) one output link. `Fn` maps one input to
// zero or more outputs appended to a vector: map, filter, flat_map, unbatch and sink are all
// this node with different functions.
template <class In, class Out, class Fn>
class stage_node final : public pipeline_node {
  static constexpr bool is_sink = std::is_same_v<Out, no_output>;

 public:
  stage_node(pipeline_state& st, std::string name, std::string kind, stage_options o, Fn fn,
             std::shared_ptr<channel<In>> in, std::shared_ptr<channel<Out>> out)
      : pipeline_node(std::move(name), std::move(kind), o.parallelism),
        st_(st),
        opt_(std::move(o)),
        fn_(std::move(fn)),
        in_(std::move(in)),
        out_(std::move(out)) {
    if (opt_.ordered && opt_.parallelism > 1 && !is_sink)
      window_.emplace(opt_.window ? opt_.window : 2 * opt_.parallelism);
  }

  void work(std::size_t w) noexcept override {
    stage_meter m(counters(w), st_.options.timing);
    try {
      if (window_) {
        ordered_loop(m);
      } else {
        unordered_loop(m);
      }
    } catch (...) {  // only allocation failures of the pipeline itself reach here
      ++m.errors;
      st_.fail(std::current_exception());
    }
    m.publish();
    worker_done();
  }

  void close_output() noexcept override {
    if constexpr (!is_sink) out_->close();
  }
  void wake() noexcept override {
    if (window_) {
      try {
        window_->wake();
      } catch (...) {  // locking failed: the waiter re-checks on its next wake anyway
      }
    }
  }
  std::optional<link_report> input_report() const override { return link_of(*in_); }

 private:
  // Runs the function on one item, through the stage's bounds; errors go to the pipeline.
  void process(In&& v, std::vector<Out>& outs, stage_meter& m) {
    try {
      admission a;
      if (!admit(opt_, st_, a)) {
        ++m.discarded;
        return;
      }
      fn_(std::move(v), outs);
      if (a.token) a.token->on_success();
      if constexpr (is_sink) ++m.out;
    } catch (...) {
      outs.clear();
      ++m.errors;
      st_.fail(std::current_exception());
    }
  }

  void unordered_loop(stage_meter& m) {
    std::vector<Out> outs;
    for (;;) {
      sample_fill(m, *in_);
      std::optional<In> v = recv_metered(*in_, m);
      if (!v) break;
      ++m.in;
      if (st_.is_discarding()) {
        ++m.discarded;
      } else {
        process(std::move(*v), outs, m);
        if constexpr (!is_sink) emit_to(*out_, outs, m);
      }
      m.publish();
    }
  }

  void ordered_loop(stage_meter& m) {
    std::vector<Out> outs;
    for (;;) {
      std::optional<In> v;
      std::uint64_t seq = 0;
      {
        // Waiting while another worker takes is waiting for input if the link is empty (that
        // worker waits in recv), and otherwise the stage's own cost (contention on the take),
        // left in busy: a saturated ordered stage must not look idle.
        std::unique_lock take(take_m_, std::try_to_lock);
        if (!take) {
          if (in_->size() == 0) {
            m.wait(wait_kind::idle, [&] { take.lock(); });
          } else {
            take.lock();
          }
        }
        window_->wait_for_room([this] { return st_.is_discarding(); },
                               [&](auto wait) { m.wait(wait_kind::reorder, wait); });
        sample_fill(m, *in_);
        v = recv_metered(*in_, m);
        if (!v) break;
        ++m.in;
        // Discarding: dropped without a number, since the wait may have ended without room.
        if (st_.is_discarding()) {
          ++m.discarded;
          m.publish();
          continue;
        }
        seq = window_->assign();
      }
      process(std::move(*v), outs, m);
      // Every number is deposited, even with no result, or the window would wait for it.
      window_->deposit(seq, outs, [&](std::vector<Out>& values) {
        if constexpr (!is_sink) emit_to(*out_, values, m);
      });
      m.publish();
    }
  }

  pipeline_state& st_;
  const stage_options opt_;
  Fn fn_;
  std::shared_ptr<channel<In>> in_;
  std::shared_ptr<channel<Out>> out_;
  std::optional<reorder_window<Out>> window_;
  std::mutex take_m_;
};

// batch(n, linger): gathers up to n items, or what came within `linger` of the first one.
template <class In>
class batch_node final : public pipeline_node {
 public:
  using Out = std::vector<In>;
  batch_node(pipeline_state& st, std::string name, std::size_t n, std::chrono::nanoseconds linger,
             std::shared_ptr<channel<In>> in, std::shared_ptr<channel<Out>> out)
      : pipeline_node(std::move(name), "batch", 1),
        st_(st),
        n_(n),
        linger_(linger),
        in_(std::move(in)),
        out_(std::move(out)) {}

  void work(std::size_t) noexcept override {
    stage_meter m(counters(0), st_.options.timing);
    try {
      Out buf;
      for (;;) {
        buf.reserve(n_);
        sample_fill(m, *in_, 1);
        const std::size_t k =
            m.wait(wait_kind::idle, [&] { return in_->recv_batch(buf, n_, linger_); });
        if (k == 0) break;
        m.in += k;
        if (st_.is_discarding()) {
          m.discarded += k;
          buf.clear();
        } else {
          const status s = send_metered(*out_, std::move(buf), m);
          if (s == status::ok) {
            ++m.out;
            buf = Out();
          } else {
            if (s == status::closed) m.discarded += k;
            buf.clear();
          }
        }
        m.publish();
      }
    } catch (...) {
      ++m.errors;
      st_.fail(std::current_exception());
    }
    m.publish();
    worker_done();
  }
  void close_output() noexcept override { out_->close(); }
  std::optional<link_report> input_report() const override { return link_of(*in_); }

 private:
  pipeline_state& st_;
  const std::size_t n_;
  const std::chrono::nanoseconds linger_;
  std::shared_ptr<channel<In>> in_;
  std::shared_ptr<channel<Out>> out_;
};

template <class T>
std::shared_ptr<channel<T>> make_link(const link_options& l) {
  return std::make_shared<channel<T>>(l.capacity, l.policy);
}

inline void check_stage(const stage_options& o, const char* verb) {
  if (o.parallelism == 0)
    throw std::invalid_argument(std::string("bp::pipeline::") + verb +
                                ": parallelism must be at least 1, got 0");
  if (o.link.capacity == 0 && o.link.policy != overflow::block)
    throw std::invalid_argument(std::string("bp::pipeline::") + verb +
                                ": link.capacity 0 (a rendezvous link) requires overflow::block");
}

}  // namespace detail

// A built pipeline: a source, stages and a sink, each on its own threads (one per unit of
// parallelism, plus one for the source), joined by bounded channels.
//
// Items: each stage's output type is the next stage's input type, checked at compile time.
// Memory: at most, per link, its capacity; per worker, the item it holds and the results it
// made of it (one for map and filter, a batch for batch, a range for flat_map); per ordered
// parallel stage, its reorder window; flat whatever the input's size (see docs/pipelines.md).
// Ordering: a serial stage keeps its input order; a parallel stage with `ordered` keeps it
// through a bounded reorder window; an unordered one lets results out as they finish.
//
// When to use: stages of real work per item (parsing, enrichment, compression, I/O) that
// should run concurrently at the pace of the slowest. When not to use: per-item work far
// below a microsecond (each link costs a thread hand-off; batch first), or a demand-driven
// flow inside one thread (see bp::rs).
//
// Thread safety: request_stop() and report() may be called from any thread at any time, also
// concurrently; start, wait and run from one controlling thread. Stage functions run on the
// stage's workers: with parallelism > 1 concurrently, so they must be safe to call so.
//
// Memory ordering: what a stage did to an item happens-before the next stage's work on it
// (the channel's send-to-recv edge); every worker's end happens-before wait() returns.
//
// Errors: the first exception thrown by the source or a stage's function is kept; it stops
// the source and, per options.on_error, drains or discards what is in flight (later
// exceptions are counted in report() only); wait() rethrows it once everything has ended.
// The item whose function threw is lost.
//
// Cancellation: request_stop() (or the stop_token given to start/run) stops the source at the
// next item (a source function that blocks sees the stop_token it may take as argument) and,
// per options.on_stop, drains or discards; no item is delivered twice. The destructor
// discards: it stops, closes every link and joins every thread, so no thread outlives the
// pipeline. To drain on the way out, request_stop() and wait() first.
//
// Example: see the top of this header and examples/pipeline_ordered.cpp.
class pipeline {
 public:
  // Starts a builder from a range (iterated on the source thread: an lvalue range must outlive
  // the pipeline, an rvalue one is moved in; elements are copied, or moved out of an owned
  // container) or from a function returning std::optional<T> (std::nullopt ends the input),
  // optionally taking a std::stop_token.
  template <class Source>
  [[nodiscard]] static auto from(Source&& source, pipeline_options options = {});

  pipeline(pipeline&&) noexcept = default;
  pipeline& operator=(pipeline&& o) noexcept {
    if (this != &o) {
      shutdown();
      st_ = std::move(o.st_);
    }
    return *this;
  }
  pipeline(const pipeline&) = delete;
  pipeline& operator=(const pipeline&) = delete;
  ~pipeline() { shutdown(); }

  // Launches every worker. `stop` requests a stop when it is triggered. Once only:
  // std::logic_error on a second call. If a thread cannot be created, what started is
  // stopped and joined and the std::system_error propagates.
  void start(std::stop_token stop = {}) {
    if (!st_) throw std::logic_error("bp::pipeline::start: moved-from pipeline");
    if (st_->launched.load())
      throw std::logic_error("bp::pipeline::start: the pipeline was already started");
    auto& st = *st_;
    std::size_t total = 0;
    for (auto& n : st.nodes) total += n->workers();
    st.running.store(total);
    st.started = std::chrono::steady_clock::now();
    st.launched.store(true, std::memory_order_release);
    try {
      st.threads.reserve(total);
      for (auto& n : st.nodes)
        for (std::size_t w = 0; w < n->workers(); ++w)
          st.threads.emplace_back([&st, node = n.get(), w] {
            node->work(w);
            st.worker_ended();
          });
    } catch (...) {
      st.request_stop(in_flight::discard);
      for (auto& t : st.threads) t.join();
      throw;
    }
    if (stop.stop_possible())
      st.external_stop.emplace(std::move(stop), [s = &st] { s->request_stop(s->options.on_stop); });
  }

  // Waits for every worker to end, then rethrows the first exception of a stage, if any.
  void wait() {
    if (!st_) return;
    for (auto& t : st_->threads)
      if (t.joinable()) t.join();
    st_->external_stop.reset();
    if (auto e = st_->error()) std::rethrow_exception(e);
  }

  // start(stop) then wait().
  void run(std::stop_token stop = {}) {
    start(std::move(stop));
    wait();
  }

  // Stops the source and drains or discards per options.on_stop; returns at once (wait()
  // to join). Idempotent; works before start() too (the pipeline then ends at once).
  void request_stop() noexcept {
    if (st_) st_->request_stop(st_->options.on_stop);
  }

  // Per-stage metrics now (best effort while running) and the bottleneck (pipeline_report).
  [[nodiscard]] pipeline_report report() const;

 private:
  template <class T>
  friend class pipeline_builder;
  explicit pipeline(std::unique_ptr<detail::pipeline_state> st) noexcept : st_(std::move(st)) {}

  void shutdown() noexcept {
    if (!st_) return;
    st_->request_stop(in_flight::discard);
    for (auto& t : st_->threads)
      if (t.joinable()) t.join();
    st_->external_stop.reset();
  }

  std::unique_ptr<detail::pipeline_state> st_;
};

// The pipeline being built; T is what its last stage produces. Each stage verb consumes the
// builder (call it on an rvalue: a chain, or std::move(builder)) and returns the next one;
// sink() returns the pipeline. Invalid arguments throw std::invalid_argument naming them.
template <class T>
class pipeline_builder {
  static_assert(channel_element<T>,
                "bp::pipeline: a stage's output type must be an object type whose move "
                "constructor and destructor are noexcept (it travels through a bp::channel)");

 public:
  using value_type = T;

  // Out = f(T): one result per item.
  template <class F>
  [[nodiscard]] auto map(F f, stage_options o = {}) && {
    static_assert(std::invocable<F&, T&&>,
                  "bp::pipeline::map: the function cannot be called with the previous stage's "
                  "output type (T&&); check its parameter type");
    using R = std::remove_cvref_t<std::invoke_result_t<F&, T&&>>;
    static_assert(!std::is_void_v<R>,
                  "bp::pipeline::map: the function returns void; use sink() for the last step");
    return std::move(*this).template add<R>("map", std::move(o),
                                            [f = std::move(f)](T&& v, std::vector<R>& out) mutable {
                                              out.push_back(std::invoke(f, std::move(v)));
                                            });
  }

  // Keeps the items for which keep(item) is true.
  template <class F>
  [[nodiscard]] auto filter(F keep, stage_options o = {}) && {
    static_assert(std::predicate<F&, const T&>,
                  "bp::pipeline::filter: the predicate cannot be called with a const reference "
                  "to the previous stage's output type, or does not return a bool");
    return std::move(*this).template add<T>(
        "filter", std::move(o), [keep = std::move(keep)](T&& v, std::vector<T>& out) mutable {
          if (std::invoke(keep, std::as_const(v))) out.push_back(std::move(v));
        });
  }

  // f(T) returns a range (a vector, an array, a view...); each of its elements goes on.
  template <class F>
  [[nodiscard]] auto flat_map(F f, stage_options o = {}) && {
    static_assert(std::invocable<F&, T&&>,
                  "bp::pipeline::flat_map: the function cannot be called with the previous "
                  "stage's output type (T&&); check its parameter type");
    using R = std::invoke_result_t<F&, T&&>;
    static_assert(std::ranges::input_range<R>,
                  "bp::pipeline::flat_map: the function must return a range (vector, array, "
                  "view...) of the next stage's items");
    using E = std::remove_cvref_t<std::ranges::range_value_t<R>>;
    return std::move(*this).template add<E>("flat_map", std::move(o),
                                            [f = std::move(f)](T&& v, std::vector<E>& out) mutable {
                                              decltype(auto) r = std::invoke(f, std::move(v));
                                              append(r, out);
                                            });
  }

  // Gathers items into vectors of up to n: a full n, or what arrived within `linger` of the
  // first item of the batch, or what is left when the input ends (channel::recv_batch).
  // Serial by nature: o.parallelism must be 1 and o.ordered does not apply.
  template <class Rep, class Period>
  [[nodiscard]] auto batch(std::size_t n, std::chrono::duration<Rep, Period> linger,
                           stage_options o = {}) && {
    if (n == 0) throw std::invalid_argument("bp::pipeline::batch: n must be at least 1, got 0");
    if (linger < std::chrono::duration<Rep, Period>::zero())
      throw std::invalid_argument("bp::pipeline::batch: linger must not be negative");
    detail::check_stage(o, "batch");
    if (o.parallelism != 1)
      throw std::invalid_argument("bp::pipeline::batch: parallelism must be 1, got " +
                                  std::to_string(o.parallelism));
    using B = std::vector<T>;
    auto out = detail::make_link<B>(o.link);
    auto& st = *st_;
    st.nodes.push_back(std::make_unique<detail::batch_node<T>>(
        st, name_for(o, "batch"), n, std::chrono::duration_cast<std::chrono::nanoseconds>(linger),
        tail_, out));
    return pipeline_builder<B>(std::move(st_), std::move(out));
  }

  // The inverse of batch: each element of a range item goes on as an item of its own.
  [[nodiscard]] auto unbatch(stage_options o = {}) && requires std::ranges::input_range<T> {
    using E = std::remove_cvref_t<std::ranges::range_value_t<T>>;
    return std::move(*this).template add<E>("unbatch", std::move(o),
                                            [](T&& v, std::vector<E>& out) { append(v, out); });
  }

  // Ends the pipeline: f(T) consumes each item (its result, if any, is ignored). With
  // parallelism > 1 the sink is called concurrently and `ordered` does not apply.
  template <class F>
  [[nodiscard]] pipeline sink(F f, stage_options o = {}) && {
    static_assert(std::invocable<F&, T&&>,
                  "bp::pipeline::sink: the function cannot be called with the previous stage's "
                  "output type (T&&); check its parameter type");
    detail::check_stage(o, "sink");
    auto& st = *st_;
    auto fn = [f = std::move(f)](T&& v, std::vector<detail::no_output>&) mutable {
      std::invoke(f, std::move(v));
    };
    std::string name = name_for(o, "sink");
    o.ordered = false;
    st.nodes.push_back(std::make_unique<detail::stage_node<T, detail::no_output, decltype(fn)>>(
        st, std::move(name), "sink", std::move(o), std::move(fn), tail_, nullptr));
    return pipeline(std::move(st_));
  }

 private:
  friend class pipeline;
  template <class U>
  friend class pipeline_builder;

  pipeline_builder(std::unique_ptr<detail::pipeline_state> st, std::shared_ptr<channel<T>> tail)
      : st_(std::move(st)), tail_(std::move(tail)) {}

  template <class R, class Out>
  static void append(R& r, std::vector<Out>& out) {
    for (auto&& e : r) {
      if constexpr (std::is_lvalue_reference_v<decltype(e)> &&
                    !std::is_const_v<std::remove_reference_t<decltype(e)>> &&
                    !std::ranges::view<std::remove_cvref_t<R>>) {
        out.push_back(std::move(e));  // the range is ours (returned by value): move out
      } else {
        out.push_back(Out(e));
      }
    }
  }

  std::string name_for(const stage_options& o, const char* kind) const {
    return o.name.empty() ? std::string(kind) + "#" + std::to_string(st_->nodes.size()) : o.name;
  }

  template <class Out, class Fn>
  pipeline_builder<Out> add(const char* kind, stage_options o, Fn fn) && {
    static_assert(channel_element<Out>,
                  "bp::pipeline: a stage's output type must be an object type whose move "
                  "constructor and destructor are noexcept (it travels through a bp::channel)");
    detail::check_stage(o, kind);
    auto out = detail::make_link<Out>(o.link);
    auto& st = *st_;
    std::string name = name_for(o, kind);
    st.nodes.push_back(std::make_unique<detail::stage_node<T, Out, Fn>>(
        st, std::move(name), kind, std::move(o), std::move(fn), tail_, out));
    return pipeline_builder<Out>(std::move(st_), std::move(out));
  }

  std::unique_ptr<detail::pipeline_state> st_;
  std::shared_ptr<channel<T>> tail_;
};

namespace detail {

template <class R>
auto range_source(R&& r) {
  using V = std::remove_cvref_t<std::ranges::range_value_t<R>>;
  constexpr bool owned =
      !std::is_lvalue_reference_v<R> && !std::ranges::view<std::remove_cvref_t<R>>;
  struct state {
    std::ranges::views::all_t<R> view;
    std::optional<std::ranges::iterator_t<std::ranges::views::all_t<R>>> it;
  };
  return [s = state{std::views::all(std::forward<R>(r)), std::nullopt}](
             const std::stop_token&) mutable -> std::optional<V> {
    if (!s.it) s.it = std::ranges::begin(s.view);
    if (*s.it == std::ranges::end(s.view)) return std::nullopt;
    auto& it = *s.it;
    std::optional<V> v;
    if constexpr (owned) {
      v.emplace(std::move(*it));
    } else {
      v.emplace(*it);
    }
    ++it;
    return v;
  };
}

template <class F>
auto function_source(F f) {
  if constexpr (std::invocable<F&, const std::stop_token&>) {
    return f;
  } else {
    return [f = std::move(f)](const std::stop_token&) mutable { return std::invoke(f); };
  }
}

template <class>
inline constexpr bool is_optional = false;
template <class U>
inline constexpr bool is_optional<std::optional<U>> = true;

}  // namespace detail

template <class Source>
auto pipeline::from(Source&& source, pipeline_options options) {
  if (options.link.capacity == 0 && options.link.policy != overflow::block)
    throw std::invalid_argument(
        "bp::pipeline::from: link.capacity 0 (a rendezvous link) requires overflow::block");
  auto st = std::make_unique<detail::pipeline_state>(std::move(options));
  auto make = [&](auto next) {
    using O = typename std::invoke_result_t<decltype(next)&, const std::stop_token&>::value_type;
    static_assert(channel_element<O>,
                  "bp::pipeline::from: the source's item type must be an object type whose move "
                  "constructor and destructor are noexcept");
    auto out = detail::make_link<O>(st->options.link);
    st->nodes.push_back(
        std::make_unique<detail::source_node<O, decltype(next)>>(*st, std::move(next), out));
    return pipeline_builder<O>(std::move(st), std::move(out));
  };
  if constexpr (std::ranges::input_range<Source>) {
    return make(detail::range_source(std::forward<Source>(source)));
  } else {
    using F = std::decay_t<Source>;
    if constexpr (std::invocable<F&, const std::stop_token&>) {
      static_assert(detail::is_optional<std::invoke_result_t<F&, const std::stop_token&>>,
                    "bp::pipeline::from: a source function must return std::optional<T>");
    } else {
      static_assert(std::invocable<F&>,
                    "bp::pipeline::from: the source must be a range, or a function () or "
                    "(std::stop_token) returning std::optional<T>");
      static_assert(detail::is_optional<std::invoke_result_t<F&>>,
                    "bp::pipeline::from: a source function must return std::optional<T>");
    }
    return make(detail::function_source(F(std::forward<Source>(source))));
  }
}

inline pipeline_report pipeline::report() const {
  pipeline_report r;
  if (!st_) return r;
  const auto& st = *st_;
  const std::int64_t fin = st.finished_ns.load(std::memory_order_acquire);
  r.finished = fin != 0;
  if (st.launched.load(std::memory_order_acquire)) {
    r.elapsed = r.finished ? std::chrono::nanoseconds(fin)
                           : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::steady_clock::now() - st.started);
  }
  const double secs = std::chrono::duration<double>(r.elapsed).count();
  double best = 0.5;  // a bottleneck is busy at least half of the time
  for (std::size_t i = 0; i < st.nodes.size(); ++i) {
    stage_report s = st.nodes[i]->report();
    if (secs > 0) s.items_per_second = static_cast<double>(s.items_out) / secs;
    const bool queued = i == 0 || s.input_fill() >= 0.5;
    if (st.options.timing && queued && s.blocked_fraction() < 0.25 && s.busy_fraction() >= best) {
      best = s.busy_fraction();
      r.bottleneck = i;
    }
    r.stages.push_back(std::move(s));
  }
  return r;
}

inline std::string pipeline_report::to_string() const {
  std::ostringstream os;
  os.setf(std::ios::fixed);
  os.precision(2);
  os << "stage            par   items in  items out     items/s  busy  idle  block  fill  hwm\n";
  for (std::size_t i = 0; i < stages.size(); ++i) {
    const auto& s = stages[i];
    std::string name = s.name.substr(0, 16);
    name.resize(16, ' ');
    os << name << ' ';
    os.width(3);
    os << s.parallelism << ' ';
    os.width(10);
    os << s.items_in << ' ';
    os.width(10);
    os << s.items_out << ' ';
    os.width(11);
    os.precision(0);
    os << s.items_per_second << ' ';
    os.precision(2);
    os.width(5);
    os << s.busy_fraction() << ' ';
    os.width(5);
    os << s.idle_fraction() << ' ';
    os.width(6);
    os << s.blocked_fraction() << ' ';
    os.width(5);
    os << s.input_fill() << ' ';
    os.width(4);
    os << (s.input ? s.input->high_watermark : 0);
    if (bottleneck && *bottleneck == i) os << "  <- bottleneck";
    os << '\n';
  }
  return os.str();
}

}  // namespace bp

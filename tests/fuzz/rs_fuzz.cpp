// Differential fuzz target: bp::rs publishers and operators against the Reactive Streams rules
// and a sequential model of each stage written from docs/streams.md (not from the code).
//
// An input builds a pipeline: a synchronous source (range, just, from_container, generate,
// empty, error), then 0-4 operators (map, filter, take, limit_rate, on_backpressure_buffer with
// each policy, on_backpressure_drop, on_backpressure_latest, batch as the last stage), and
// subscribes a sink; then it drives request(n) (small, zero, negative, huge, unbounded), cancel,
// and requests and cancels from inside on_next. Nothing here runs on another thread (no
// observe_on, batch without max_wait), so every signal is fully determined.
//
// Every boundary between two stages is a "tap" that forwards the signals unchanged and checks
// the rules a subscriber can observe there: on_subscribe once and first (1.9, 2.12), on_next
// within demand (1.1, with 3.17 saturation), serial and not nested except inside on_subscribe
// (1.3, 3.3), nothing after a terminal (1.7) or after cancel returned (3.12: in a synchronous
// pipeline "eventually" is "at once"), and, between our own stages, no request or cancel on a
// subscription that has signalled a terminal (2.3/2.4 as docs/streams.md reads them). The value
// at each boundary is checked against the model of the stage that produced it, which also says
// which terminal signal is allowed (the upstream's, passed on, or the stage's own: a throwing
// lambda, an overflow, request(n <= 0) per rule 3.9). After each action the pipeline must be
// quiescent: nobody holds a value while its downstream has demand, nobody is stalled, a stage
// that stopped has cancelled its upstream. At the end nothing may be left alive: payloads and
// taps are counted, and the sink must have been released by the last stage (3.13).
#include <bp/streams.hpp>

#include <cstdint>
#include <cstdio>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "fuzz_input.hpp"

#define RS_CHECK(cond, at)                            \
  do {                                                \
    if (!(cond)) {                                    \
      std::fprintf(stderr, "at boundary %d: ", (at)); \
      BP_FUZZ_CHECK(cond);                            \
    }                                                 \
  } while (0)

namespace {

namespace rs = bp::rs;
using rs::unbounded;
using i64 = std::int64_t;
using u64 = std::uint64_t;

// A payload that counts its live instances: whatever a stage keeps must be released in the end.
int live_vals = 0;
int live_taps = 0;
struct val {
  i64 v = 0;
  explicit val(i64 x) noexcept : v(x) { ++live_vals; }
  val(const val& o) noexcept : v(o.v) { ++live_vals; }
  val(val&& o) noexcept : v(o.v) { ++live_vals; }
  val& operator=(const val&) noexcept = default;
  val& operator=(val&&) noexcept = default;
  ~val() { --live_vals; }
};

struct boom {  // what a fuzz lambda throws; `stage` says whose
  int stage;
};
struct source_failure {};  // what error<T>() signals

template <class E>
bool is_a(const std::exception_ptr& e) {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const E&) {
    return true;
  } catch (...) {
    return false;
  }
}
bool is_boom_of(const std::exception_ptr& e, int stage) {
  if (!e) return false;
  try {
    std::rethrow_exception(e);
  } catch (const boom& b) {
    return b.stage == stage;
  } catch (...) {
    return false;
  }
}

// What one tap saw: the signals into the subscriber below it, the calls on its subscription.
struct boundary {
  int subscribes = 0;
  enum { idle, in_subscribe, in_next, in_terminal } in_signal = idle;
  bool terminal = false;
  std::exception_ptr error;
  bool cancel_called = false;
  bool bad_request = false;  // a request(n <= 0) while the subscription was live
  i64 requested = 0;         // saturating (rule 3.17)
  i64 n = 0;                 // on_next signals
  [[nodiscard]] i64 outstanding() const {
    return requested == unbounded ? unbounded : requested - n;
  }
  [[nodiscard]] bool live() const { return !terminal && !cancel_called; }
};

enum class src { range, just, container, generate, empty, error };
enum class op {
  map,
  filter,
  take,
  limit_rate,
  buffer_block,
  buffer_drop_newest,
  buffer_drop_oldest,
  buffer_reject,
  drop,
  latest,
  batch
};

struct source_model {
  src kind = src::range;
  std::vector<i64> seq;  // exactly what it emits, in order
  bool throws = false;   // generate: the call after the last element throws boom{0}
  std::exception_ptr failure;
};

struct stage_model {
  op kind = op::map;
  i64 mul = 1, add = 0;   // map: v * mul + add (wrapping)
  u64 mask = 0, key = 0;  // map/filter throw when (v & mask) == key, if `throws`
  bool throws = false;
  u64 mod = 2, rem = 0;      // filter keeps v % mod != rem
  i64 n = 1;                 // take: count; buffers: capacity; batch: size; limit_rate: n
  std::deque<i64> buf;       // queue stages: what the buffer holds
  std::vector<i64> current;  // batch: the partial batch
  std::deque<std::vector<i64>> ready;
  std::optional<i64> expect_emit, expect_drop;  // what the arrival being handled must cause
  bool own_error = false;                       // a lambda threw
  bool overflowed = false;  // a full reject buffer (or a limit_rate/block buffer overrun)
  i64 taken = 0;
  bool in_terminal = false;
  std::exception_ptr in_error;

  [[nodiscard]] i64 f(i64 v) const {
    return static_cast<i64>(static_cast<u64>(v) * static_cast<u64>(mul) + static_cast<u64>(add));
  }
  [[nodiscard]] bool throws_on(i64 v) const {
    return throws && (static_cast<u64>(v) & mask) == key;
  }
  [[nodiscard]] bool keeps(i64 v) const { return static_cast<u64>(v) % mod != rem; }
  [[nodiscard]] bool queue() const {
    return kind == op::limit_rate || kind == op::buffer_block || kind == op::buffer_drop_newest ||
           kind == op::buffer_drop_oldest || kind == op::buffer_reject || kind == op::latest;
  }
  [[nodiscard]] i64 prefetch() const { return n; }  // limit_rate and block only
  [[nodiscard]] i64 refill() const { return n - n / 4; }
};

// The whole model: boundary i is below stage i (boundary 0 below the source); the sink is the
// last boundary.
struct world {
  source_model source;
  std::vector<stage_model> st;  // st[0] unused: the source
  std::vector<boundary> b;
  int m = 0;

  // Stage i (0: the source) delivered v to boundary i.
  void emitted(int i, i64 v) {
    if (i == 0) {
      RS_CHECK(b[0].n <= static_cast<i64>(source.seq.size()), 0);
      RS_CHECK(source.seq[static_cast<std::size_t>(b[0].n - 1)] == v, 0);
      return;
    }
    auto& s = st[static_cast<std::size_t>(i)];
    if (s.queue()) {
      RS_CHECK(!s.overflowed, i);  // an overflow error cuts ahead of the buffer
      RS_CHECK(!s.buf.empty(), i);
      RS_CHECK(s.buf.front() == v, i);
      s.buf.pop_front();
      return;
    }
    RS_CHECK(s.expect_emit.has_value(), i);
    RS_CHECK(*s.expect_emit == v, i);
    s.expect_emit.reset();
  }
  void emitted(int i, const std::vector<i64>& batch) {
    auto& s = st[static_cast<std::size_t>(i)];
    RS_CHECK(!s.ready.empty(), i);
    RS_CHECK(s.ready.front() == batch, i);
    s.ready.pop_front();
  }

  // Stage i receives v from boundary i - 1.
  void arrive(int i, i64 v) {
    auto& s = st[static_cast<std::size_t>(i)];
    const auto cap = static_cast<std::size_t>(s.n);
    switch (s.kind) {
      case op::map:
        if (s.throws_on(v))
          s.own_error = true;
        else
          s.expect_emit = s.f(v);
        break;
      case op::filter:
        if (s.throws_on(v))
          s.own_error = true;
        else if (s.keeps(v))
          s.expect_emit = v;
        break;
      case op::take:
        ++s.taken;
        RS_CHECK(s.taken <= s.n, i);
        s.expect_emit = v;
        break;
      case op::drop:  // delivered with demand, dropped without
        if (b[static_cast<std::size_t>(i)].outstanding() > 0)
          s.expect_emit = v;
        else
          s.expect_drop = v;
        break;
      case op::limit_rate:
      case op::buffer_block:
      case op::buffer_reject:
        if (s.buf.size() < cap)
          s.buf.push_back(v);
        else
          s.overflowed = true;
        break;
      case op::buffer_drop_newest:
        if (s.buf.size() < cap)
          s.buf.push_back(v);
        else
          s.expect_drop = v;
        break;
      case op::buffer_drop_oldest:
      case op::latest:
        if (s.buf.size() == cap) {
          if (s.kind == op::buffer_drop_oldest) s.expect_drop = s.buf.front();
          s.buf.pop_front();
        }
        s.buf.push_back(v);
        break;
      case op::batch:
        s.current.push_back(v);
        if (s.current.size() == cap) {
          s.ready.push_back(std::move(s.current));
          s.current.clear();
        }
        break;
    }
  }

  // Stage i has returned from on_next: what it had to do with the value is done.
  void after_arrival(int i) {
    auto& s = st[static_cast<std::size_t>(i)];
    RS_CHECK(!s.expect_emit.has_value(), i);
    RS_CHECK(!s.expect_drop.has_value(), i);
    if (s.own_error) {  // a user function threw: upstream cancelled, downstream failed at once
      RS_CHECK(b[static_cast<std::size_t>(i)].terminal, i);
      RS_CHECK(b[static_cast<std::size_t>(i) - 1].cancel_called, i);
    }
  }

  // An on_drop handler of stage i was called.
  void dropped(int i, i64 v) {
    auto& s = st[static_cast<std::size_t>(i)];
    RS_CHECK(s.expect_drop.has_value(), i);
    RS_CHECK(*s.expect_drop == v, i);
    s.expect_drop.reset();
  }

  void upstream_terminal(int i, const std::exception_ptr& e) {
    auto& s = st[static_cast<std::size_t>(i)];
    s.in_terminal = true;
    s.in_error = e;
    if (s.kind == op::batch) {  // the partial batch goes out at on_complete, not at on_error
      if (!e && !s.current.empty()) s.ready.push_back(s.current);
      s.current.clear();
    }
  }

  // Stage i (0: the source) signalled a terminal to boundary i: is it one it may send?
  void terminated(int i, const std::exception_ptr& e) {
    const auto& here = b[static_cast<std::size_t>(i)];
    const bool invalid_request = here.bad_request && is_a<std::invalid_argument>(e);
    if (i == 0) {
      const bool all = here.n == static_cast<i64>(source.seq.size());
      bool ok = invalid_request;
      switch (source.kind) {
        case src::error:
          ok = ok || (e == source.failure && here.n == 0);
          break;
        case src::generate:
          ok = ok || (all && (source.throws ? is_boom_of(e, 0) : !e));
          break;
        default:
          ok = ok || (all && !e);
          break;
      }
      RS_CHECK(ok, 0);
      return;
    }
    const auto& s = st[static_cast<std::size_t>(i)];
    const bool passed_on = s.in_terminal && e == s.in_error;
    bool ok = false;
    switch (s.kind) {
      case op::map:
      case op::filter:
        ok = passed_on || (s.own_error && is_boom_of(e, i));
        break;
      case op::take:
        ok = passed_on || (!e && s.taken == s.n);
        break;
      case op::drop:
        ok = passed_on;
        break;
      case op::batch:
        ok = invalid_request || (passed_on && s.ready.empty());
        break;
      default:  // the buffering stages
        ok = invalid_request || (s.overflowed && is_a<rs::overflow_error>(e)) ||
             (passed_on && s.buf.empty());
        break;
    }
    RS_CHECK(ok, i);
  }

  // After every action of the driver: nothing left to do anywhere.
  void quiescent() {
    for (int i = 0; i <= m; ++i) {
      const auto& out = b[static_cast<std::size_t>(i)];
      RS_CHECK(out.subscribes == 1, i);
      RS_CHECK(out.in_signal == boundary::idle, i);
      if (i == 0) {
        if (!out.live()) continue;
        RS_CHECK(source.kind != src::empty && source.kind != src::error, 0);
        RS_CHECK(out.outstanding() == 0, 0);  // with demand the source would have emitted
        if (source.kind != src::generate)     // range, just, containers: complete with the last
          RS_CHECK(out.n < static_cast<i64>(source.seq.size()), 0);
        continue;
      }
      const auto& in = b[static_cast<std::size_t>(i) - 1];
      const auto& s = st[static_cast<std::size_t>(i)];
      if (!out.live()) {  // a stage that stopped has let go of its upstream
        RS_CHECK(in.terminal || in.cancel_called, i);
        continue;
      }
      bool holding = false;
      if (s.queue()) {
        RS_CHECK(!s.overflowed, i);
        holding = !s.buf.empty();
      } else if (s.kind == op::batch) {
        holding = !s.ready.empty();
      } else {
        RS_CHECK(!s.own_error, i);
      }
      if (holding)
        RS_CHECK(out.outstanding() == 0, i);  // it would deliver
      else
        RS_CHECK(!s.in_terminal, i);  // it would pass the terminal on
      if (s.kind == op::take) RS_CHECK(s.taken < s.n, i);
      // Demand must flow up: a stage with demand below and nothing to give asks for more.
      if (out.outstanding() > 0 && !holding && in.live()) RS_CHECK(in.outstanding() > 0, i);
      // How much each stage asks for, per docs/streams.md's operator table.
      if (s.kind == op::take) RS_CHECK(in.requested <= s.n, i);
      if (s.kind == op::limit_rate || s.kind == op::buffer_block) {
        const i64 allowed = rs::detail::add_cap(s.prefetch(), (out.n / s.refill()) * s.refill());
        RS_CHECK(in.requested <= allowed, i);
        if (in.live()) RS_CHECK(in.requested == allowed, i);
        RS_CHECK(in.n - out.n <= s.n, i);
      }
      if (s.kind == op::batch) RS_CHECK(in.requested <= rs::detail::mul_cap(out.requested, s.n), i);
    }
  }
};

world* W = nullptr;

i64 key_of(const val& v) {
  return v.v;
}
std::vector<i64> key_of(const std::vector<val>& vs) {
  std::vector<i64> k;
  for (const val& v : vs) k.push_back(v.v);
  return k;
}

// What the sink does inside on_next.
struct sink_hooks {
  i64 initial = 0;     // requested from on_subscribe (0: nothing)
  i64 each = 0;        // requested from each on_next (0: nothing)
  i64 cancel_at = -1;  // cancel inside the on_next that brings the count to this
};

// A pass-through subscriber/subscription between two stages (down_ set) or the sink (no down_).
template <class T>
class tap final : public rs::subscriber<T>,
                  public rs::subscription,
                  public std::enable_shared_from_this<tap<T>> {
 public:
  tap(int i, std::shared_ptr<rs::subscriber<T>> down, sink_hooks hooks = {})
      : i_(i), sink_(down == nullptr), down_(std::move(down)), hooks_(hooks) {
    ++live_taps;
  }
  ~tap() override { --live_taps; }
  tap(const tap&) = delete;
  tap& operator=(const tap&) = delete;

  void on_subscribe(std::shared_ptr<rs::subscription> s) override {
    auto& b = rec();
    RS_CHECK(s != nullptr, i_);
    RS_CHECK(b.subscribes == 0, i_);  // rules 1.9, 2.12
    RS_CHECK(b.in_signal == boundary::idle && !b.terminal && b.n == 0, i_);
    ++b.subscribes;
    up_ = std::move(s);
    b.in_signal = boundary::in_subscribe;
    if (!sink_)
      down_->on_subscribe(this->shared_from_this());
    else if (hooks_.initial != 0)
      request(hooks_.initial);
    rec().in_signal = boundary::idle;
  }

  void on_next(T v) override {
    auto& b = rec();
    RS_CHECK(b.subscribes == 1, i_);                 // rule 1.9
    RS_CHECK(!b.terminal, i_);                       // rule 1.7
    RS_CHECK(!b.cancel_called, i_);                  // rules 1.8, 3.12
    RS_CHECK(b.in_signal != boundary::in_next, i_);  // rules 1.3, 3.3
    RS_CHECK(b.in_signal != boundary::in_terminal, i_);
    RS_CHECK(b.requested == unbounded || b.n < b.requested, i_);  // rule 1.1
    ++b.n;
    W->emitted(i_, key_of(v));
    const auto before = b.in_signal;
    b.in_signal = boundary::in_next;
    if (auto d = down_) {  // a copy: cancel from inside drops down_ (rule 3.13)
      if constexpr (std::is_same_v<T, val>) W->arrive(i_ + 1, v.v);
      d->on_next(std::move(v));
      W->after_arrival(i_ + 1);
    } else if (sink_) {
      if (hooks_.each != 0) request(hooks_.each);
      if (b.n == hooks_.cancel_at) cancel();
    }
    rec().in_signal = before;
  }

  void on_error(std::exception_ptr e) override { end(std::move(e)); }
  void on_complete() override { end(nullptr); }

  void request(i64 n) override {
    auto& b = rec();
    if (!sink_) RS_CHECK(!b.terminal, i_);  // rules 2.3, 2.4 between our own stages
    if (n > 0)
      b.requested = rs::detail::add_cap(b.requested, n);
    else if (b.live())
      b.bad_request = true;
    up_->request(n);
  }

  void cancel() override {
    auto& b = rec();
    if (!sink_) RS_CHECK(!b.terminal, i_);  // rule 2.3 between our own stages
    b.cancel_called = true;
    down_.reset();  // rule 3.13
    up_->cancel();
  }

 private:
  boundary& rec() { return W->b[static_cast<std::size_t>(i_)]; }

  void end(std::exception_ptr e) {
    auto& b = rec();
    RS_CHECK(b.subscribes == 1, i_);
    RS_CHECK(!b.terminal, i_);
    RS_CHECK(!b.cancel_called, i_);
    RS_CHECK(b.in_signal == boundary::idle || b.in_signal == boundary::in_subscribe, i_);
    b.terminal = true;
    b.error = e;
    W->terminated(i_, e);
    const auto before = b.in_signal;
    b.in_signal = boundary::in_terminal;
    if (auto d = std::move(down_)) {  // terminated: let go of the subscriber (rule 3.13)
      W->upstream_terminal(i_ + 1, e);
      if (e)
        d->on_error(std::move(e));
      else
        d->on_complete();
    }
    rec().in_signal = before;
  }

  const int i_;
  const bool sink_;  // the last boundary: the driver's subscriber
  std::shared_ptr<rs::subscriber<T>> down_;
  std::shared_ptr<rs::subscription> up_;
  sink_hooks hooks_;
};

// Puts a tap below `up`: each subscriber gets its own.
template <class T>
class tap_publisher final : public rs::publisher<T> {
 public:
  tap_publisher(rs::publisher_ptr<T> up, int i) : up_(std::move(up)), i_(i) {}
  void subscribe(std::shared_ptr<rs::subscriber<T>> s) override {
    up_->subscribe(std::make_shared<tap<T>>(i_, std::move(s)));
  }

 private:
  rs::publisher_ptr<T> up_;
  int i_;
};

// A demand from the fuzzer: small mostly, sometimes an edge of the int64 range.
i64 demand(bp::fuzz::input& in) {
  switch (in.pick(8)) {
    case 0:
      return 0;
    case 1:
      return -static_cast<i64>(in.in_range<int>(1, 3));
    case 2:
      return std::numeric_limits<i64>::min();
    case 3:
      return unbounded;
    case 4:
      return unbounded - in.in_range<i64>(0, 2);
    case 5:
      return i64{1} << in.in_range<int>(30, 62);
    default:
      return in.in_range<i64>(1, 6);
  }
}

rs::publisher_ptr<val> make_source(bp::fuzz::input& in, source_model& sm) {
  const std::size_t kinds = 6;
  sm.kind = static_cast<src>(in.pick(kinds));
  switch (sm.kind) {
    case src::range: {
      const auto count = in.in_range<i64>(0, 40);
      i64 start = 0;
      switch (in.pick(3)) {
        case 0:
          start = in.in_range<i64>(-100, 100);
          break;
        case 1:  // ends exactly at INT64_MAX
          start = unbounded - (count == 0 ? 0 : count - 1);
          break;
        default:
          start = std::numeric_limits<i64>::min() + in.in_range<i64>(0, 3);
          break;
      }
      for (i64 k = 0; k < count; ++k) sm.seq.push_back(start + k);
      return rs::range(start, count) | rs::map([](i64 v) { return val(v); });
    }
    case src::just: {
      const auto n = in.in_range<int>(1, 3);
      for (int k = 0; k < n; ++k) sm.seq.push_back(static_cast<std::int8_t>(in.byte()));
      if (n == 1) return rs::just(val(sm.seq[0]));
      if (n == 2) return rs::just(val(sm.seq[0]), val(sm.seq[1]));
      return rs::just(val(sm.seq[0]), val(sm.seq[1]), val(sm.seq[2]));
    }
    case src::container: {
      const auto n = in.in_range<int>(0, 40);
      std::vector<val> c;
      for (int k = 0; k < n; ++k) {
        sm.seq.push_back(static_cast<std::int8_t>(in.byte()));
        c.emplace_back(sm.seq.back());
      }
      return rs::from_container(std::move(c));
    }
    case src::generate: {
      const auto n = in.in_range<int>(0, 40);
      for (int k = 0; k < n; ++k) sm.seq.push_back(k * 7 % 31 - 10);
      sm.throws = in.pick(4) == 0;
      // fn is called only with demand outstanding (docs: "called only with demand outstanding,
      // once per element"); the model counts the calls.
      return rs::generate(
          [seq = sm.seq, throws = sm.throws, k = std::size_t{0}]() mutable -> std::optional<val> {
            RS_CHECK(W->b[0].outstanding() > 0, 0);
            if (k == seq.size()) {
              ++k;
              if (throws) throw boom{0};
              return std::nullopt;
            }
            RS_CHECK(k < seq.size(), 0);  // not called again after the end
            return val(seq[k++]);
          });
    }
    case src::empty:
      return rs::empty<val>();
    case src::error:
      sm.failure = std::make_exception_ptr(source_failure{});
      return rs::error<val>(sm.failure);
  }
  return nullptr;
}

// Applies stage i (not batch) to `p`, recording its parameters in `s`.
rs::publisher_ptr<val> add_stage(bp::fuzz::input& in, rs::publisher_ptr<val> p, stage_model& s,
                                 int i) {
  auto drop_to = [i](val&& v) { W->dropped(i, v.v); };
  switch (s.kind) {
    case op::map: {
      const i64 muls[] = {1, 3, -1, 1000003};
      s.mul = muls[in.pick(4)];
      s.add = static_cast<std::int8_t>(in.byte());
      s.throws = in.pick(3) == 0;
      s.mask = (u64{1} << in.in_range<int>(0, 4)) - 1;
      s.key = in.byte() & s.mask;
      return p | rs::map([s, i](val v) {
               if (s.throws_on(v.v)) throw boom{i};
               return val(s.f(v.v));
             });
    }
    case op::filter: {
      s.mod = in.in_range<u64>(1, 4);
      s.rem = in.in_range<u64>(0, s.mod - 1);
      s.throws = in.pick(4) == 0;
      s.mask = (u64{1} << in.in_range<int>(1, 4)) - 1;
      s.key = in.byte() & s.mask;
      return p | rs::filter([s, i](const val& v) {
               if (s.throws_on(v.v)) throw boom{i};
               return s.keeps(v.v);
             });
    }
    case op::take:
      s.n = in.pick(8) == 0 ? unbounded : in.in_range<i64>(0, 12);
      return p | rs::take(s.n);
    case op::limit_rate:
      s.n = in.in_range<i64>(1, 9);
      return p | rs::limit_rate(s.n);
    case op::buffer_block:
      s.n = in.in_range<i64>(1, 6);
      return p | rs::on_backpressure_buffer(static_cast<std::size_t>(s.n), bp::overflow::block);
    case op::buffer_drop_newest:
      s.n = in.in_range<i64>(1, 6);
      return p | rs::on_backpressure_buffer(static_cast<std::size_t>(s.n),
                                            bp::overflow::drop_newest, drop_to);
    case op::buffer_drop_oldest:
      s.n = in.in_range<i64>(1, 6);
      return p | rs::on_backpressure_buffer(static_cast<std::size_t>(s.n),
                                            bp::overflow::drop_oldest, drop_to);
    case op::buffer_reject:
      s.n = in.in_range<i64>(1, 6);
      return p | rs::on_backpressure_buffer(static_cast<std::size_t>(s.n), bp::overflow::reject);
    case op::drop:
      return p | rs::on_backpressure_drop(drop_to);
    case op::latest:
      s.n = 1;
      return p | rs::on_backpressure_latest();
    case op::batch:
      break;
  }
  return p;
}

// Subscribes the sink and plays the fuzzer's actions on it.
template <class T>
void drive(bp::fuzz::input& in, rs::publisher_ptr<T> pipeline, world& w) {
  sink_hooks hooks;
  if (in.pick(3) == 0) hooks.initial = demand(in);
  if (in.pick(3) == 0) hooks.each = in.in_range<i64>(1, 3);
  if (in.pick(4) == 0) hooks.cancel_at = in.in_range<i64>(1, 20);
  auto sink = std::make_shared<tap<T>>(w.m, nullptr, hooks);
  pipeline->subscribe(sink);
  w.quiescent();
  auto& end = w.b[static_cast<std::size_t>(w.m)];
  for (int step = 0; step < 64 && !in.empty(); ++step) {
    const bool was_live = end.live();
    bool bad = false;
    switch (in.pick(6)) {
      case 0:
      case 1:
      case 2:
        sink->request(in.in_range<i64>(1, 4));
        break;
      case 3: {
        const i64 n = demand(in);
        bad = n <= 0;
        sink->request(n);
        break;
      }
      case 4:
        sink->cancel();
        break;
      case 5:
        sink->request(unbounded);
        break;
    }
    w.quiescent();
    if (bad && was_live) {  // rule 3.9
      RS_CHECK(end.terminal, w.m);
      RS_CHECK(is_a<std::invalid_argument>(end.error), w.m);
    }
    if (!end.live()) RS_CHECK(sink.use_count() == 1, w.m);  // rule 3.13
  }
  if (end.live()) {  // an abandoned stream must be cancelled (docs: Ownership)
    sink->cancel();
    w.quiescent();
  }
  RS_CHECK(sink.use_count() == 1, w.m);  // rule 3.13
}

void run(bp::fuzz::input& in) {
  world w;
  W = &w;
  {
    auto p = make_source(in, w.source);
    const int m = in.in_range<int>(0, 4);
    const bool last_batch = m > 0 && in.pick(4) == 0;
    w.m = m;
    w.st.resize(static_cast<std::size_t>(m) + 1);
    w.b.resize(static_cast<std::size_t>(m) + 1);
    for (int i = 1; i <= m; ++i) {
      auto& s = w.st[static_cast<std::size_t>(i)];
      p = rs::publisher_ptr<val>(std::make_shared<tap_publisher<val>>(std::move(p), i - 1));
      if (i == m && last_batch) {
        s.kind = op::batch;
        s.n = in.in_range<i64>(1, 5);
        auto batched = p | rs::batch(static_cast<std::size_t>(s.n));
        drive(in, std::move(batched), w);
        break;
      }
      s.kind = static_cast<op>(in.pick(10));  // every op but batch
      p = add_stage(in, std::move(p), s, i);
      if (i == m) drive(in, std::move(p), w);
    }
    if (m == 0) drive(in, std::move(p), w);
  }
  // The pipeline, its stages and the sink are gone: so must be every payload and every tap.
  RS_CHECK(live_taps == 0, -1);
  RS_CHECK(live_vals == 0, -1);
  W = nullptr;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bp::fuzz::input in(data, size);
  run(in);
  return 0;
}

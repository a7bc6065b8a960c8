// Differential fuzz target: bp::memory_budget, bp::budgeted_channel and bp::watermark_buffer on
// one budget, against a sequential model written from docs/memory.md and the headers' contracts
// (not from the code). One thread drives every verb:
//   - the budget: try_reserve (ok | full | closed), reserve_for/reserve_until with a zero or past
//     timeout (ok | timeout | closed), reserve when it will not wait; reservations' release,
//     release(n), shrink_to, split, moves and destruction; streams opened, closed, moved over
//     and destroyed while their reservations live on; the budget's own default stream; close;
//   - counters: in_use (= the bytes of every live reservation, the channel's and the buffer's
//     buffered items included: conservation), peak, streams, active_streams (streams holding
//     bytes), fair_share = capacity / max(1, active), granted (non-zero grants), waits and
//     timeouts (a zero-timeout reservation that does not fit waited and timed out), refused;
//   - the budgeted channel: each policy's answer when the budget or the slots are spent
//     (drop_oldest evicting its own oldest values for bytes), values left with the caller when
//     not taken, bytes given back on receive, eviction and destruction, channel_stats, every
//     value delivered or handed to the drop handler exactly once, in FIFO order;
//   - the watermark buffer: write always buffers (unless refused by the budget or closed),
//     keep_writing false once the bytes reach the high watermark in effect, the drain firing
//     once when reads bring the bytes down to the drain mark of that crossing, need_drain,
//     wait_drain_for(0), stats, close;
//   - invalid arguments throw std::invalid_argument naming them; nothing leaks (a live-instance
//     counter on the payload).
// With one thread no stream ever waits for long, so the fairness rule's needy waiters never
// exist here: grants succeed exactly when the bytes fit (tests/memory_budget_test.cpp and the
// stress tests cover the rule with real waiters).
//
// Assumptions where the docs are silent about rounding: the high watermark in effect is
// max(1, min(high_watermark, fair_share / 4 * 3)) in integers (docs/memory.md now says so), and
// the drain of a crossing below high_watermark fires when the buffer is empty. An
// item refused by a closed channel or buffer is refused before its size is checked.
#include <bp/budgeted_channel.hpp>
#include <bp/memory_budget.hpp>
#include <bp/watermark_buffer.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using reservation = bp::memory_budget::reservation;
__extension__ typedef unsigned __int128 u128;

int live = 0;
struct payload {
  int id = -1;
  std::size_t size = 0;
  payload(int i, std::size_t n) noexcept : id(i), size(n) { ++live; }
  payload(payload&& o) noexcept : id(o.id), size(o.size) {
    o.id = -1;
    ++live;
  }
  payload& operator=(payload&& o) noexcept {
    id = o.id;
    size = o.size;
    o.id = -1;
    return *this;
  }
  payload(const payload&) = delete;
  payload& operator=(const payload&) = delete;
  ~payload() { --live; }
};

// Items of this model carry no heap data: sizeof is their whole cost.
}  // namespace
template <>
struct bp::item_size<payload> {
  std::size_t operator()(const payload&) const noexcept { return sizeof(payload); }
};
namespace {
std::size_t size_of(const payload& p) {
  return p.size;
}

// ---- the model ------------------------------------------------------------------------------

struct model_stream {
  std::size_t held = 0;
  bool closed = false;
  bool handle = true;  // its handle is open (counted in stats().streams)
};

struct model_budget {
  std::size_t capacity = 1;
  bool closed = false;
  std::size_t in_use = 0, peak = 0;
  std::uint64_t granted = 0, waits = 0, timeouts = 0, refused = 0;
  std::vector<model_stream> streams;  // [0] is the budget's default stream (no handle)

  std::size_t open_handles() const {
    std::size_t n = 0;
    for (std::size_t i = 1; i < streams.size(); ++i) n += streams[i].handle;
    return n;
  }
  std::size_t active() const {
    std::size_t n = 0;
    for (const auto& s : streams) n += s.held > 0;
    return n;
  }
  std::size_t fair_share() const { return capacity / std::max<std::size_t>(1, active()); }

  // One reservation that may not wait: `timed` for reserve_for(0) / reserve_until(past).
  status reserve(std::size_t si, std::size_t n, bool timed) {
    if (closed || streams[si].closed) return status::closed;
    if (n == 0) return status::ok;
    if (n <= capacity - in_use) {
      in_use += n;
      peak = std::max(peak, in_use);
      streams[si].held += n;
      ++granted;
      return status::ok;
    }
    if (timed) {
      ++waits;
      ++timeouts;
      return status::timeout;
    }
    ++refused;
    return status::full;
  }
  bool fits(std::size_t si, std::size_t n) const {
    return closed || streams[si].closed || n <= capacity - in_use;
  }
  void give_back(std::size_t si, std::size_t n) {
    in_use -= n;
    streams[si].held -= n;
  }
};

struct held_reservation {
  reservation r;
  std::size_t stream = 0;  // the model stream
  std::size_t bytes = 0;
  status answer = status::ok;
};

// ---- the run --------------------------------------------------------------------------------

void run(bp::fuzz::input& in) {
  model_budget mb;
  switch (in.pick(3)) {
    case 0:
      mb.capacity = in.in_range<std::size_t>(1, 16);
      break;
    case 1:
      mb.capacity = in.in_range<std::size_t>(1, 256);
      break;
    default:
      mb.capacity = std::size_t{1} << in.in_range<int>(0, 47);
      break;
  }
  const std::size_t cap = mb.capacity;
  mb.streams.push_back({0, false, false});

  // The channel's and the buffer's options.
  const std::size_t ch_cap = in.in_range<std::size_t>(0, 4);
  const overflow policy = ch_cap == 0 ? overflow::block : static_cast<overflow>(in.pick(4));
  const bool zero_block = in.boolean();  // max_block = 0: send() waits for nothing
  const bool buf_on_budget = in.boolean();
  const std::size_t high = in.in_range<std::size_t>(1, 64);
  const std::size_t low = in.in_range<std::size_t>(0, high);

  int next_id = 1;
  // What left the channel: received in order, or handed to its drop handler.
  std::vector<int> ch_handled;
  std::uint64_t drains_fired = 0;
  {
    bp::memory_budget budget(cap);
    std::vector<bp::memory_budget::stream> handles;  // model stream index = handle_stream[i]
    std::vector<std::size_t> handle_stream;
    std::vector<held_reservation> held;  // destroyed before the streams and the budget

    const std::size_t ch_stream = mb.streams.size();
    mb.streams.push_back({});
    std::optional<bp::budgeted_channel<payload>> ch;
    ch.emplace(budget, bp::budgeted_channel_options<payload>{
                           .capacity = ch_cap,
                           .policy = policy,
                           .size = size_of,
                           .on_undelivered = [&](payload&& p) { ch_handled.push_back(p.id); },
                           .max_block = zero_block ? std::chrono::nanoseconds::zero()
                                                   : std::chrono::nanoseconds::max()});
    std::size_t buf_stream = 0;
    if (buf_on_budget) {
      buf_stream = mb.streams.size();
      mb.streams.push_back({});
    }
    std::optional<bp::watermark_buffer<payload>> buf;
    buf.emplace(bp::watermark_buffer_options<payload>{.high_watermark = high,
                                                      .low_watermark = low,
                                                      .size = size_of,
                                                      .on_drain = [&] { ++drains_fired; },
                                                      .budget = buf_on_budget ? &budget : nullptr});

    // The channel model.
    struct ch_model {
      std::deque<std::pair<int, std::size_t>> q;
      bool closed = false;
      bp::channel_stats st{};
    } mc;
    std::vector<int> ch_expected;  // the order values must leave the channel in
    // The buffer model.
    struct buf_model {
      std::deque<std::pair<int, std::size_t>> q;
      std::size_t bytes = 0;
      bool closed = false, need_drain = false;
      std::size_t drain_at = 0;
      bp::watermark_buffer_stats st{};
    } mw;

    auto item_size = [&]() -> std::size_t {
      switch (in.pick(6)) {
        case 0:
          return 0;
        case 1:
          return cap + in.in_range<std::size_t>(1, 2);  // bigger than the budget
        case 2:
          return cap;
        case 3:
          return in.in_range<std::size_t>(0, cap);
        default:
          return in.in_range<std::size_t>(1, std::min<std::size_t>(cap, 8));
      }
    };
    auto high_in_effect = [&]() -> std::size_t {
      if (!buf_on_budget) return high;
      return std::max<std::size_t>(1, std::min(high, mb.fair_share() / 4 * 3));
    };
    auto pick_stream = [&]() -> std::size_t {  // a handle index, or handles.size(): the default
      return in.pick(handles.size() + 1);
    };

    for (int step = 0; step < 160 && !in.empty(); ++step) {
      switch (in.pick(16)) {
        case 0: {  // open a stream (at most 4 handles)
          if (handles.size() >= 4) break;
          handles.push_back(budget.open_stream());
          handle_stream.push_back(mb.streams.size());
          mb.streams.push_back({});
          break;
        }
        case 1: {  // a stream handle: closed, destroyed, or moved over another
          if (handles.empty()) break;
          const std::size_t i = in.pick(handles.size());
          switch (in.pick(3)) {
            case 0:
              handles[i].close();
              if (handles[i]) mb.streams[handle_stream[i]].closed = true;
              break;
            case 1:
              if (handles[i]) mb.streams[handle_stream[i]].handle = false;
              handles.erase(handles.begin() + static_cast<std::ptrdiff_t>(i));
              handle_stream.erase(handle_stream.begin() + static_cast<std::ptrdiff_t>(i));
              break;
            default: {
              const std::size_t j = in.pick(handles.size());
              if (i == j) break;
              if (handles[j]) mb.streams[handle_stream[j]].handle = false;
              handles[j] = std::move(handles[i]);
              handle_stream[j] = handle_stream[i];
              BP_FUZZ_CHECK(!handles[i] && handles[i].is_closed());
              BP_FUZZ_CHECK(handles[i].in_use() == 0 && handles[i].fair_share() == 0);
              BP_FUZZ_CHECK(handles[i].try_reserve(0).status() == status::closed);
              break;
            }
          }
          break;
        }
        case 2: {  // reserve on a stream or the budget, never waiting
          const std::size_t h = pick_stream();
          const bool on_budget = h == handles.size();
          const bool empty_handle = !on_budget && !handles[h];
          const std::size_t si = on_budget ? 0 : handle_stream[h];
          const std::size_t n = item_size();
          const int mode = static_cast<int>(in.pick(4));
          auto call = [&]() -> reservation {
            if (on_budget) {
              switch (mode) {
                case 0:
                  return budget.try_reserve(n);
                case 1:
                  return budget.reserve_for(n, 0s);
                case 2:
                  return budget.reserve_until(n, std::chrono::steady_clock::now() - 1s);
                default:
                  return budget.reserve(n);
              }
            }
            auto& s = handles[h];
            switch (mode) {
              case 0:
                return s.try_reserve(n);
              case 1:
                return s.reserve_for(n, 0s);
              case 2:
                return s.reserve_until(n, std::chrono::system_clock::now() - 1s);
              default:
                return s.reserve(n);
            }
          };
          if (empty_handle) {  // a moved-from stream answers closed (and checks nothing)
            BP_FUZZ_CHECK(!handles[h].try_reserve(n) && !handles[h].reserve_for(n, 0s));
            break;
          }
          if (n > cap) {
            BP_FUZZ_CHECK(
                bp::fuzz::names(bp::fuzz::thrown_invalid([&] { (void)call(); }), "bytes"));
            break;
          }
          if (mode == 3 && !mb.fits(si, n)) break;  // reserve() would wait
          const status want = mb.reserve(si, n, mode == 1 || mode == 2);
          held_reservation hr{call(), si, want == status::ok ? n : 0, want};
          BP_FUZZ_CHECK(hr.r.status() == want);
          BP_FUZZ_CHECK(static_cast<bool>(hr.r) == (want == status::ok));
          BP_FUZZ_CHECK(hr.r.bytes() == hr.bytes);
          held.push_back(std::move(hr));
          break;
        }
        case 3: {  // a reservation gives bytes back: all, a part, shrinks, or is destroyed
          if (held.empty()) break;
          const std::size_t i = in.pick(held.size());
          auto& hr = held[i];
          const std::size_t k = in.in_range<std::size_t>(0, hr.bytes + 1);
          switch (in.pick(4)) {
            case 0:
              hr.r.release();
              mb.give_back(hr.stream, hr.bytes);
              hr.bytes = 0;
              hr.r.release();  // idempotent
              break;
            case 1:
              if (k > hr.bytes) {
                BP_FUZZ_CHECK(
                    bp::fuzz::names(bp::fuzz::thrown_invalid([&] { hr.r.release(k); }), "bytes"));
                break;
              }
              hr.r.release(k);
              mb.give_back(hr.stream, k);
              hr.bytes -= k;
              break;
            case 2:
              hr.r.shrink_to(k);
              if (k < hr.bytes) {
                mb.give_back(hr.stream, hr.bytes - k);
                hr.bytes = k;
              }
              break;
            default:
              mb.give_back(hr.stream, hr.bytes);
              held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
              break;
          }
          if (i < held.size()) {
            BP_FUZZ_CHECK(held[i].r.bytes() == held[i].bytes);
            BP_FUZZ_CHECK(held[i].r.status() == held[i].answer);  // keeps its status
          }
          break;
        }
        case 4: {  // split a reservation, or move one over another
          if (held.empty()) break;
          const std::size_t i = in.pick(held.size());
          if (in.boolean()) {
            const std::size_t k = in.in_range<std::size_t>(0, held[i].bytes + 1);
            if (k > held[i].bytes) {
              BP_FUZZ_CHECK(bp::fuzz::names(
                  bp::fuzz::thrown_invalid([&] { (void)held[i].r.split(k); }), "bytes"));
              break;
            }
            held_reservation part{held[i].r.split(k), held[i].stream, k, status::ok};
            held[i].bytes -= k;
            BP_FUZZ_CHECK(part.r.bytes() == k && part.r.status() == status::ok);
            BP_FUZZ_CHECK(held[i].r.bytes() == held[i].bytes);
            held.push_back(std::move(part));
          } else {
            const std::size_t j = in.pick(held.size());
            if (i == j) break;
            mb.give_back(held[j].stream, held[j].bytes);  // j's own bytes go back first
            held[j].r = std::move(held[i].r);
            held[j].stream = held[i].stream;
            held[j].bytes = held[i].bytes;
            held[j].answer = held[i].answer;
            held[i].bytes = 0;
            BP_FUZZ_CHECK(held[i].r.bytes() == 0);
            BP_FUZZ_CHECK(held[i].r.status() == held[j].answer);  // moved-from keeps its status
            BP_FUZZ_CHECK(held[j].r.bytes() == held[j].bytes);
          }
          break;
        }
        case 5:  // close the budget
          budget.close();
          mb.closed = true;
          break;
        case 6:
        case 7: {  // the channel: try_send / send_for(0) / send_until(past) / send when at once
          const std::size_t n = item_size();
          const int mode = static_cast<int>(in.pick(4));
          const int id = next_id++;
          payload v(id, n);
          auto call = [&] {
            switch (mode) {
              case 0:
                return ch->try_send(std::move(v));
              case 1:
                return ch->send_for(std::move(v), 0s);
              case 2:
                return ch->send_until(std::move(v), std::chrono::steady_clock::now() - 1s);
              default:
                return ch->send(std::move(v));
            }
          };
          if (mc.closed) {
            BP_FUZZ_CHECK(call() == status::closed);
            BP_FUZZ_CHECK(v.id == id);
            break;
          }
          if (n > cap) {
            BP_FUZZ_CHECK(bp::fuzz::names(bp::fuzz::thrown_invalid([&] { (void)call(); }), "item"));
            BP_FUZZ_CHECK(v.id == id);
            break;
          }
          // send() with an unbounded max_block waits on a block channel: only call it when the
          // bytes and a slot are there (or the budget is closed).
          const bool may_wait = mode != 0;
          const bool timed = mode == 1 || mode == 2 || (mode == 3 && zero_block);
          if (mode == 3 && !zero_block && policy == overflow::block &&
              !(mb.fits(ch_stream, n) && mc.q.size() < ch_cap))
            break;
          // Bytes first (drop_oldest evicts its own oldest values until they fit).
          status want = status::ok;
          if (policy == overflow::drop_oldest) {
            want = mb.reserve(ch_stream, n, false);
            while (want == status::full && !mc.q.empty()) {
              const auto old = mc.q.front();
              mc.q.pop_front();
              mb.give_back(ch_stream, old.second);
              ch_expected.push_back(old.first);
              ++mc.st.evicted;
              want = mb.reserve(ch_stream, n, false);
            }
            if (want == status::full) {
              want = status::dropped;
              ++mc.st.dropped;
            }
          } else {
            const bool try_only = !may_wait || policy != overflow::block;
            want = mb.reserve(ch_stream, n, !try_only && timed);
            if (want == status::full) {
              if (policy == overflow::drop_newest) {
                want = status::dropped;
                ++mc.st.dropped;
              } else {
                ++mc.st.rejected;
              }
            }
          }
          if (want == status::ok) {  // then a slot, by the channel's rule
            if (mc.q.size() < ch_cap) {
              mc.q.emplace_back(id, n);
              ++mc.st.sent;
              mc.st.high_watermark = std::max(mc.st.high_watermark, mc.q.size());
            } else {
              switch (policy) {
                case overflow::block:
                  if (!may_wait) {
                    want = status::full;
                    ++mc.st.rejected;
                  } else {
                    want = status::timeout;
                  }
                  break;
                case overflow::drop_newest:
                  want = status::dropped;
                  ++mc.st.dropped;
                  break;
                case overflow::reject:
                  want = status::full;
                  ++mc.st.rejected;
                  break;
                case overflow::drop_oldest: {
                  const auto old = mc.q.front();
                  mc.q.pop_front();
                  mb.give_back(ch_stream, old.second);
                  ch_expected.push_back(old.first);
                  ++mc.st.evicted;
                  mc.q.emplace_back(id, n);
                  ++mc.st.sent;
                  break;
                }
              }
            }
            if (want != status::ok) mb.give_back(ch_stream, n);  // the entry dies
          }
          const status got = call();
          BP_FUZZ_CHECK(got == want);
          BP_FUZZ_CHECK(v.id == (got == status::ok ? -1 : id));
          break;
        }
        case 8: {  // the channel: try_recv / recv_for(0) / recv when it answers at once
          const int mode = static_cast<int>(in.pick(3));
          if (mode == 2 && mc.q.empty() && !mc.closed) break;
          std::optional<payload> got = mode == 0   ? ch->try_recv()
                                       : mode == 1 ? ch->recv_for(0s)
                                                   : ch->recv();
          BP_FUZZ_CHECK(got.has_value() == !mc.q.empty());
          if (!got) break;
          BP_FUZZ_CHECK(got->id == mc.q.front().first && got->size == mc.q.front().second);
          mb.give_back(ch_stream, mc.q.front().second);
          ch_expected.push_back(mc.q.front().first);
          ch_handled.push_back(got->id);
          mc.q.pop_front();
          ++mc.st.received;
          break;
        }
        case 9:  // close the channel (and its stream)
          ch->close();
          mc.closed = true;
          mb.streams[ch_stream].closed = true;
          break;
        case 10:
        case 11: {  // the buffer: try_write / write_for(0) / write_until(past) / write at once
          const std::size_t n = item_size();
          const int mode = static_cast<int>(in.pick(4));
          const int id = next_id++;
          payload v(id, n);
          auto call = [&] {
            switch (mode) {
              case 0:
                return buf->try_write(std::move(v));
              case 1:
                return buf->write_for(std::move(v), 0s);
              case 2:
                return buf->write_until(std::move(v), std::chrono::steady_clock::now() - 1s);
              default:
                return buf->write(std::move(v));
            }
          };
          bp::write_result want{status::ok, true};
          if (mw.closed) {
            want = {status::closed, false};
            ++mw.st.refused;
          } else if (buf_on_budget && n > cap) {
            BP_FUZZ_CHECK(bp::fuzz::names(bp::fuzz::thrown_invalid([&] { (void)call(); }), "item"));
            BP_FUZZ_CHECK(v.id == id);
            break;
          } else {
            if (buf_on_budget) {
              if (mode == 3 && !mb.fits(buf_stream, n)) break;  // write() would wait
              const status r = mb.reserve(buf_stream, n, mode == 1 || mode == 2);
              if (r != status::ok) {
                want = {r, false};
                ++mw.st.refused;
              }
            }
            if (want.status == status::ok) {
              mw.q.emplace_back(id, n);
              mw.bytes += n;
              ++mw.st.writes;
              mw.st.peak_bytes = std::max(mw.st.peak_bytes, mw.bytes);
              const std::size_t limit = high_in_effect();
              want.keep_writing = mw.bytes < limit;
              if (!want.keep_writing) {
                mw.need_drain = true;
                mw.drain_at = limit == high ? low : 0;
                ++mw.st.over_high;
              }
            }
          }
          const bp::write_result got = call();
          BP_FUZZ_CHECK(got.status == want.status);
          BP_FUZZ_CHECK(got.keep_writing == want.keep_writing);
          BP_FUZZ_CHECK(static_cast<bool>(got) == (want.status == status::ok && want.keep_writing));
          BP_FUZZ_CHECK(v.id == (got.status == status::ok ? -1 : id));
          break;
        }
        case 12: {  // the buffer: try_read / read_for(0) / read when it answers at once
          const int mode = static_cast<int>(in.pick(3));
          if (mode == 2 && mw.q.empty() && !mw.closed) break;
          const std::uint64_t fired_before = drains_fired;
          std::optional<payload> got = mode == 0   ? buf->try_read()
                                       : mode == 1 ? buf->read_for(0s)
                                                   : buf->read();
          BP_FUZZ_CHECK(got.has_value() == !mw.q.empty());
          if (!got) break;
          BP_FUZZ_CHECK(got->id == mw.q.front().first && got->size == mw.q.front().second);
          const std::size_t n = mw.q.front().second;
          mw.q.pop_front();
          mw.bytes -= n;
          if (buf_on_budget) mb.give_back(buf_stream, n);
          ++mw.st.reads;
          const bool fire = mw.need_drain && mw.bytes <= mw.drain_at;
          if (fire) {
            mw.need_drain = false;
            ++mw.st.drains;
          }
          BP_FUZZ_CHECK(drains_fired == fired_before + (fire ? 1 : 0));
          break;
        }
        case 13: {  // the buffer: wait_drain_for(0) / wait_drain when it answers at once
          const bool blocking = in.boolean();
          status want = status::ok;
          if (mw.need_drain) want = mw.closed ? status::closed : status::timeout;
          if (blocking && want == status::timeout) break;
          BP_FUZZ_CHECK((blocking ? buf->wait_drain() : buf->wait_drain_for(0s)) == want);
          break;
        }
        case 14:  // close the buffer (Node's end())
          buf->close();
          mw.closed = true;
          if (buf_on_budget) mb.streams[buf_stream].closed = true;
          break;
        default:
          break;
      }

      // Conservation and counters after every step.
      const auto st = budget.stats();
      BP_FUZZ_CHECK(st.capacity == cap);
      BP_FUZZ_CHECK(st.in_use == mb.in_use && budget.in_use() == mb.in_use);
      BP_FUZZ_CHECK(budget.available() == cap - mb.in_use);
      BP_FUZZ_CHECK(st.peak == mb.peak && budget.peak() == mb.peak);
      BP_FUZZ_CHECK(st.streams == mb.open_handles());
      BP_FUZZ_CHECK(st.active_streams == mb.active());
      BP_FUZZ_CHECK(budget.active_streams() == std::max<std::size_t>(1, mb.active()));
      BP_FUZZ_CHECK(budget.fair_share() == mb.fair_share());
      BP_FUZZ_CHECK(st.granted == mb.granted);
      BP_FUZZ_CHECK(st.waits == mb.waits);
      BP_FUZZ_CHECK(st.timeouts == mb.timeouts);
      BP_FUZZ_CHECK(st.refused == mb.refused);
      BP_FUZZ_CHECK(budget.is_closed() == mb.closed);
      std::size_t sum = 0;
      for (const auto& hr : held) sum += hr.bytes;
      for (const auto& e : mc.q) sum += e.second;
      if (buf_on_budget) sum += mw.bytes;
      BP_FUZZ_CHECK(sum == mb.in_use);
      for (std::size_t i = 0; i < handles.size(); ++i) {
        if (!handles[i]) continue;
        const auto& ms = mb.streams[handle_stream[i]];
        BP_FUZZ_CHECK(handles[i].in_use() == ms.held);
        BP_FUZZ_CHECK(handles[i].is_closed() == (ms.closed || mb.closed));
        BP_FUZZ_CHECK(handles[i].fair_share() == mb.fair_share());
      }
      // The channel.
      std::size_t ch_bytes = 0;
      for (const auto& e : mc.q) ch_bytes += e.second;
      BP_FUZZ_CHECK(ch->bytes() == ch_bytes && mb.streams[ch_stream].held == ch_bytes);
      BP_FUZZ_CHECK(ch->size() == mc.q.size());
      BP_FUZZ_CHECK(ch->is_closed() == mc.closed);
      BP_FUZZ_CHECK(ch->budget_stream().is_closed() == (mc.closed || mb.closed));
      const auto cs = ch->stats();
      BP_FUZZ_CHECK(cs.sent == mc.st.sent);
      BP_FUZZ_CHECK(cs.received == mc.st.received);
      BP_FUZZ_CHECK(cs.dropped == mc.st.dropped);
      BP_FUZZ_CHECK(cs.evicted == mc.st.evicted);
      BP_FUZZ_CHECK(cs.rejected == mc.st.rejected);
      BP_FUZZ_CHECK(cs.high_watermark == mc.st.high_watermark);
      BP_FUZZ_CHECK(cs.sent == cs.received + ch->size() + cs.evicted);
      BP_FUZZ_CHECK(ch_handled == ch_expected);  // exactly once, in FIFO order
      // The buffer.
      BP_FUZZ_CHECK(buf->buffered_bytes() == mw.bytes);
      BP_FUZZ_CHECK(buf->size() == mw.q.size());
      BP_FUZZ_CHECK(buf->need_drain() == mw.need_drain);
      BP_FUZZ_CHECK(buf->is_closed() == mw.closed);
      BP_FUZZ_CHECK(buf->high_watermark() == high && buf->low_watermark() == low);
      BP_FUZZ_CHECK(buf->high_watermark_in_effect() == high_in_effect());
      if (buf_on_budget) BP_FUZZ_CHECK(mb.streams[buf_stream].held == mw.bytes);
      const auto ws = buf->stats();
      BP_FUZZ_CHECK(ws.writes == mw.st.writes);
      BP_FUZZ_CHECK(ws.reads == mw.st.reads);
      BP_FUZZ_CHECK(ws.over_high == mw.st.over_high);
      BP_FUZZ_CHECK(ws.drains == mw.st.drains && drains_fired == mw.st.drains);
      BP_FUZZ_CHECK(ws.refused == mw.st.refused);
      BP_FUZZ_CHECK(ws.buffered_bytes == mw.bytes);
      BP_FUZZ_CHECK(ws.peak_bytes == mw.st.peak_bytes);
      BP_FUZZ_CHECK(live == static_cast<int>(mc.q.size() + mw.q.size()));
    }

    // Destruction: the channel hands what it still buffers to its drop handler, its bytes given
    // back first; the buffer's items die with it; every byte comes back.
    for (const auto& e : mc.q) ch_expected.push_back(e.first);
    ch.reset();
    BP_FUZZ_CHECK(ch_handled == ch_expected);
    buf.reset();
    std::size_t still = 0;
    for (const auto& hr : held) still += hr.bytes;
    BP_FUZZ_CHECK(budget.in_use() == still);
    held.clear();
    BP_FUZZ_CHECK(budget.in_use() == 0);
    BP_FUZZ_CHECK(budget.stats().active_streams == 0);
  }
  BP_FUZZ_CHECK(live == 0);
}

// Bad arguments name themselves.
void run_invalid(bp::fuzz::input& in) {
  switch (in.pick(6)) {
    case 0:
      BP_FUZZ_CHECK(
          bp::fuzz::names(bp::fuzz::thrown_invalid([] { bp::memory_budget b(0); }), "capacity"));
      break;
    case 1:
      BP_FUZZ_CHECK(bp::fuzz::names(bp::fuzz::thrown_invalid([&] {
                                      bp::memory_budget b(bp::memory_budget::max_capacity +
                                                          in.in_range<std::size_t>(1, 1000));
                                    }),
                                    "capacity"));
      break;
    case 2:
      BP_FUZZ_CHECK(bp::fuzz::names(bp::fuzz::thrown_invalid([] {
                                      bp::watermark_buffer<payload> w(
                                          {.high_watermark = 0, .size = size_of});
                                    }),
                                    "high_watermark"));
      break;
    case 3: {
      const std::size_t h = in.in_range<std::size_t>(1, 100);
      BP_FUZZ_CHECK(bp::fuzz::names(bp::fuzz::thrown_invalid([&] {
                                      bp::watermark_buffer<payload> w({.high_watermark = h,
                                                                       .low_watermark = h + 1,
                                                                       .size = size_of});
                                    }),
                                    "low_watermark"));
      break;
    }
    case 4: {
      BP_FUZZ_CHECK(bp::fuzz::names(bp::fuzz::thrown_invalid([] {
                                      bp::watermark_buffer<payload> w(
                                          {.high_watermark = 1, .size = {}});
                                    }),
                                    "size"));
      bp::memory_budget b(8);
      BP_FUZZ_CHECK(bp::fuzz::names(bp::fuzz::thrown_invalid([&] {
                                      bp::budgeted_channel<payload> c(b,
                                                                      {.capacity = 1, .size = {}});
                                    }),
                                    "size"));
      break;
    }
    default: {  // a lossy rendezvous has nothing to drop
      bp::memory_budget b(8);
      const auto what = bp::fuzz::thrown_invalid([&] {
        bp::budgeted_channel<payload> c(b, 0, static_cast<overflow>(in.in_range<int>(1, 3)));
      });
      BP_FUZZ_CHECK(bp::fuzz::names(what, "capacity") || bp::fuzz::names(what, "policy"));
      BP_FUZZ_CHECK(b.stats().streams == 0);
      break;
    }
  }
  BP_FUZZ_CHECK(live == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bp::fuzz::input in(data, size);
  if (in.pick(8) == 0)
    run_invalid(in);
  else
    run(in);
  return 0;
}

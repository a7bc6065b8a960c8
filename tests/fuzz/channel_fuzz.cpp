// Differential fuzz target: bp::channel<T> against a sequential model written from
// docs/channel.md (not from the code). One thread drives every verb, so each call's answer,
// every counter and every value's fate are fully determined by the contract:
//   - FIFO by slot; a slot is a value, a reserved slot (a permit's, not yet filled) or a given-back
//     one, which is free once everything ahead of it is gone;
//   - the policy table for a full buffer, with drop_oldest refusing (`dropped`) when the oldest
//     slot holds no value yet;
//   - an rvalue not taken is left unmoved; every value accepted is delivered exactly once,
//     evicted to the drop handler, or handed to it at destruction;
//   - stats(): sent, received, dropped, evicted, rejected, high_watermark (largest size()), and
//     size() counting values only.
// Verbs that would wait forever in a single thread are called only when the model says they
// return at once; their timed forms are called with a zero timeout instead.
#include <bp/channel.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <stdexcept>
#include <vector>

#include "fuzz_input.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;

// A move-only value that remembers whether it was moved from, and counts live instances.
int live = 0;
struct item {
  int id = -1;
  explicit item(int i) noexcept : id(i) { ++live; }
  item(item&& o) noexcept : id(o.id) {
    o.id = -1;
    ++live;
  }
  item& operator=(item&& o) noexcept {
    id = o.id;
    o.id = -1;
    return *this;
  }
  item(const item&) = delete;
  item& operator=(const item&) = delete;
  ~item() { --live; }
};

// The model's slots, oldest first.
struct model_slot {
  enum kind_t { value, reserved, given_back } kind;
  int id;      // value: the item's id
  int permit;  // reserved: whose
};

struct model {
  std::size_t cap = 1;
  overflow policy = overflow::block;
  bool closed = false;
  std::deque<model_slot> slots;
  std::uint64_t sent = 0, received = 0, dropped = 0, evicted = 0, rejected = 0;
  std::size_t high = 0;
  std::vector<int> undelivered;  // what the drop handler must have seen, in order

  // Given-back slots at the head are free.
  void settle() {
    while (!slots.empty() && slots.front().kind == model_slot::given_back) slots.pop_front();
  }
  std::size_t values() const {
    std::size_t n = 0;
    for (const auto& s : slots) n += s.kind == model_slot::value;
    return n;
  }
  bool front_is_value() const { return !slots.empty() && slots.front().kind == model_slot::value; }
  void note_size() { high = std::max(high, values()); }

  // What one send answers when it may not wait (the verb's own wait is decided by the caller).
  // Returns nullopt when a block-policy channel is full (the caller answers full or timeout).
  std::optional<status> send(int id) {
    settle();
    if (closed) return status::closed;
    if (slots.size() < cap) {
      slots.push_back({model_slot::value, id, -1});
      ++sent;
      note_size();
      return status::ok;
    }
    switch (policy) {
      case overflow::drop_newest:
        ++dropped;
        return status::dropped;
      case overflow::reject:
        ++rejected;
        return status::full;
      case overflow::drop_oldest:
        if (!front_is_value()) {
          ++dropped;
          return status::dropped;
        }
        undelivered.push_back(slots.front().id);
        slots.pop_front();
        ++evicted;
        settle();
        slots.push_back({model_slot::value, id, -1});
        ++sent;
        note_size();
        return status::ok;
      case overflow::block:
        break;
    }
    return std::nullopt;
  }

  std::optional<int> recv() {
    settle();
    if (!front_is_value()) return std::nullopt;
    const int id = slots.front().id;
    slots.pop_front();
    ++received;
    settle();
    return id;
  }

  // True when a blocking receive returns at once: a value is first, or closed and drained.
  bool recv_returns_now() {
    settle();
    return front_is_value() || (closed && slots.empty());
  }
};

struct permit_state {
  bp::send_permit<item> permit;
  int id = 0;  // the model's permit id
};

void check_stats(const bp::channel<item>& ch, const model& m) {
  const auto st = ch.stats();
  BP_FUZZ_CHECK(st.sent == m.sent);
  BP_FUZZ_CHECK(st.received == m.received);
  BP_FUZZ_CHECK(st.dropped == m.dropped);
  BP_FUZZ_CHECK(st.evicted == m.evicted);
  BP_FUZZ_CHECK(st.rejected == m.rejected);
  BP_FUZZ_CHECK(st.high_watermark == m.high);
  BP_FUZZ_CHECK(ch.size() == m.values());
  BP_FUZZ_CHECK(ch.is_closed() == m.closed);
  BP_FUZZ_CHECK(st.sent == st.received + ch.size() + st.evicted);
}

void run(bp::fuzz::input& in) {
  model m;
  m.cap = in.in_range<std::size_t>(0, 8);
  m.policy = static_cast<overflow>(in.pick(4));
  if (m.cap == 0 && m.policy != overflow::block) {  // a rendezvous has nothing to drop
    bool threw = false;
    try {
      bp::channel<item> ch(0, m.policy);
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    BP_FUZZ_CHECK(threw);
    return;
  }
  std::vector<int> handled;
  std::vector<permit_state> permits;
  int next_id = 1, next_permit = 1;
  {
    bp::channel<item> ch(m.cap, m.policy, [&](item&& v) { handled.push_back(v.id); });

    auto expect_taken = [](status answer, const item& arg, int id) {
      if (answer == status::ok)
        BP_FUZZ_CHECK(arg.id == -1);
      else
        BP_FUZZ_CHECK(arg.id == id);  // not taken: left unmoved
    };

    for (int step = 0; step < 256 && !in.empty(); ++step) {
      switch (in.pick(14)) {
        case 0: {  // try_send
          const int id = next_id++;
          item v(id);
          const status want = m.send(id).value_or(status::full);
          if (m.policy == overflow::block && want == status::full) ++m.rejected;
          const status got = ch.try_send(std::move(v));
          BP_FUZZ_CHECK(got == want);
          expect_taken(got, v, id);
          break;
        }
        case 1: {  // send: blocking only when the model says it will not wait
          const int id = next_id++;
          item v(id);
          const auto want = m.send(id);
          status got;
          if (want) {
            got = ch.send(std::move(v));
            BP_FUZZ_CHECK(got == *want);
          } else {
            got = ch.send_for(std::move(v), 0s);
            BP_FUZZ_CHECK(got == status::timeout);
          }
          expect_taken(got, v, id);
          break;
        }
        case 2: {  // send_until a time already past
          const int id = next_id++;
          item v(id);
          const status want = m.send(id).value_or(status::timeout);
          const status got = ch.send_until(std::move(v), std::chrono::steady_clock::now() - 1s);
          BP_FUZZ_CHECK(got == want);
          expect_taken(got, v, id);
          break;
        }
        case 3: {  // try_recv / recv_for(0)
          const auto want = m.recv();
          auto got = in.boolean() ? ch.try_recv() : ch.recv_for(0s);
          BP_FUZZ_CHECK(got.has_value() == want.has_value());
          if (got) BP_FUZZ_CHECK(got->id == *want);
          break;
        }
        case 4: {  // recv, when it returns at once
          if (!m.recv_returns_now()) break;
          const auto want = m.recv();
          auto got = ch.recv();
          BP_FUZZ_CHECK(got.has_value() == want.has_value());
          if (got) BP_FUZZ_CHECK(got->id == *want);
          break;
        }
        case 5: {  // try_send_n / send_n_for(0) / send_n when it cannot wait
          const std::size_t k = in.in_range<std::size_t>(0, 10);
          const int mode = static_cast<int>(in.pick(3));
          std::vector<item> batch;
          std::vector<int> ids;
          for (std::size_t i = 0; i < k; ++i) {
            ids.push_back(next_id);
            batch.emplace_back(next_id++);
          }
          // The model: one send per value, stopping at the first not taken.
          model trial = m;
          bp::send_n_result want{0, status::ok};
          for (int id : ids) {
            auto a = trial.send(id);
            if (!a) {
              if (mode == 0) ++trial.rejected;
              a = mode == 0 ? status::full : status::timeout;
            }
            if (*a != status::ok) {
              want.answer = *a;
              break;
            }
            ++want.count;
          }
          if (mode == 2 && want.answer == status::timeout) break;  // send_n would wait: skip
          bp::send_n_result got;
          if (mode == 0)
            got = ch.try_send_n(batch);
          else if (mode == 1)
            got = ch.send_n_for(batch, 0s);
          else
            got = ch.send_n(batch);
          m = trial;
          BP_FUZZ_CHECK(got == want);
          for (std::size_t i = 0; i < k; ++i)
            BP_FUZZ_CHECK(batch[i].id == (i < got.count ? -1 : ids[i]));
          break;
        }
        case 6: {  // try_recv_many / recv_many_for(0) / recv_many when it returns at once /
                   // recv_batch_for with no time to linger or wait (takes what is buffered)
          const std::size_t max = in.in_range<std::size_t>(0, 10);
          const int mode = static_cast<int>(in.pick(4));
          if (mode == 2 && max != 0 && !m.recv_returns_now()) break;
          std::vector<int> want;
          while (want.size() < max) {
            auto v = m.recv();
            if (!v) break;
            want.push_back(*v);
          }
          std::vector<item> out;
          out.emplace_back(0);  // appended to, never replaced
          std::size_t n = 0;
          if (mode == 0)
            n = ch.try_recv_many(out, max);
          else if (mode == 1)
            n = ch.recv_many_for(out, max, 0s);
          else if (mode == 2)
            n = ch.recv_many(out, max);
          else
            n = ch.recv_batch_for(out, max, 0s, 0s);
          BP_FUZZ_CHECK(n == want.size());
          BP_FUZZ_CHECK(out.size() == n + 1 && out[0].id == 0);
          for (std::size_t i = 0; i < n; ++i) BP_FUZZ_CHECK(out[i + 1].id == want[i]);
          break;
        }
        case 7: {  // try_reserve / reserve_for(0) / reserve when it cannot wait
          const std::size_t n = in.in_range<std::size_t>(0, 9);
          const int mode = static_cast<int>(in.pick(3));
          if (n == 0 || n > m.cap) {
            bool threw = false;
            try {
              (void)ch.try_reserve(n);
            } catch (const std::invalid_argument&) {
              threw = true;
            }
            BP_FUZZ_CHECK(threw);
            break;
          }
          m.settle();
          status want = status::ok;
          if (m.closed)
            want = status::closed;
          else if (m.slots.size() + n > m.cap)
            want = mode == 0 ? status::full : status::timeout;
          if (mode == 2 && want == status::timeout) break;  // reserve would wait: skip
          bp::send_permit<item> p = mode == 0   ? ch.try_reserve(n)
                                    : mode == 1 ? ch.reserve_for(n, 0s)
                                                : ch.reserve(n);
          BP_FUZZ_CHECK(p.answer() == want);
          BP_FUZZ_CHECK(static_cast<bool>(p) == (want == status::ok));
          if (!p) {
            BP_FUZZ_CHECK(p.remaining() == 0);
            break;
          }
          BP_FUZZ_CHECK(p.remaining() == n);
          const int pid = next_permit++;
          for (std::size_t i = 0; i < n; ++i) m.slots.push_back({model_slot::reserved, 0, pid});
          permits.push_back({std::move(p), pid});
          break;
        }
        case 8: {  // a permit sends its next value
          if (permits.empty()) break;
          auto& ps = permits[in.pick(permits.size())];
          const int id = next_id++;
          item v(id);
          model_slot* mine = nullptr;
          for (auto& s : m.slots)
            if (s.kind == model_slot::reserved && s.permit == ps.id) {
              mine = &s;
              break;
            }
          if (!mine) {
            bool threw = false;
            try {
              ps.permit.send(std::move(v));
            } catch (const std::logic_error&) {
              threw = true;
            }
            BP_FUZZ_CHECK(threw && v.id == id);
            break;
          }
          ps.permit.send(std::move(v));
          BP_FUZZ_CHECK(v.id == -1);
          *mine = {model_slot::value, id, -1};
          ++m.sent;
          m.note_size();
          break;
        }
        case 9: {  // a permit is released or destroyed
          if (permits.empty()) break;
          const std::size_t i = in.pick(permits.size());
          for (auto& s : m.slots)
            if (s.kind == model_slot::reserved && s.permit == permits[i].id)
              s.kind = model_slot::given_back;
          m.settle();
          if (in.boolean())
            permits[i].permit.release();
          else
            permits.erase(permits.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
        case 10:  // close (idempotent)
          ch.close();
          m.closed = true;
          break;
        case 11: {  // a permit moved into another
          if (permits.size() < 2) break;
          const std::size_t a = in.pick(permits.size()), b = in.pick(permits.size());
          if (a == b) break;
          for (auto& s : m.slots)  // a's unused slots are given back, b's pass to a
            if (s.kind == model_slot::reserved && s.permit == permits[a].id)
              s.kind = model_slot::given_back;
          m.settle();
          permits[a].permit = std::move(permits[b].permit);
          permits[a].id = permits[b].id;
          permits.erase(permits.begin() + static_cast<std::ptrdiff_t>(b));
          break;
        }
        default:  // observers only
          break;
      }
      check_stats(ch, m);
      BP_FUZZ_CHECK(handled == m.undelivered);
    }
    for (auto& ps : permits) {  // the channel must outlive its permits
      for (auto& s : m.slots)
        if (s.kind == model_slot::reserved && s.permit == ps.id) s.kind = model_slot::given_back;
    }
    permits.clear();
    m.settle();
    check_stats(ch, m);
    for (const auto& s : m.slots)
      if (s.kind == model_slot::value) m.undelivered.push_back(s.id);
  }
  BP_FUZZ_CHECK(handled == m.undelivered);  // what was still buffered went to the handler
  BP_FUZZ_CHECK(live == 0);                 // nothing leaked, nothing destroyed twice
}

// The ends made by make_channel: the last sender gone closes the channel, the last receiver
// gone makes sends answer closed, an empty end answers closed / nothing.
void run_ends(bp::fuzz::input& in) {
  const std::size_t cap = in.in_range<std::size_t>(1, 4);
  auto [tx0, rx0] = bp::make_channel<int>(cap);
  std::vector<bp::sender<int>> txs;
  std::vector<bp::receiver<int>> rxs;
  txs.push_back(std::move(tx0));
  rxs.push_back(std::move(rx0));
  std::size_t live_tx = 1, live_rx = 1;
  bool closed = false;
  std::deque<int> buffered;
  int next = 0;
  for (int step = 0; step < 128 && !in.empty(); ++step) {
    switch (in.pick(7)) {
      case 0:  // copy a sender
        txs.push_back(txs[in.pick(txs.size())]);
        // A copy of an empty handle is empty: count the owners from the handles themselves.
        live_tx = 0;
        for (auto& t : txs) live_tx += static_cast<bool>(t);
        break;
      case 1:  // copy a receiver
        rxs.push_back(rxs[in.pick(rxs.size())]);
        live_rx = 0;
        for (auto& r : rxs) live_rx += static_cast<bool>(r);
        break;
      case 2: {  // reset or move away a sender
        auto& t = txs[in.pick(txs.size())];
        if (!t) break;
        if (in.boolean())
          t.reset();
        else
          auto gone = std::move(t);
        if (--live_tx == 0) closed = true;
        break;
      }
      case 3: {  // reset a receiver
        auto& r = rxs[in.pick(rxs.size())];
        if (!r) break;
        r.reset();
        if (--live_rx == 0) closed = true;
        break;
      }
      case 4: {  // try_send through any sender handle
        auto& t = txs[in.pick(txs.size())];
        const status got = t.try_send(next);
        status want = status::ok;
        if (!t || closed)
          want = status::closed;
        else if (buffered.size() == cap)
          want = status::full;
        BP_FUZZ_CHECK(got == want);
        if (got == status::ok) buffered.push_back(next);
        ++next;
        break;
      }
      case 5: {  // try_recv through any receiver handle
        auto& r = rxs[in.pick(rxs.size())];
        auto got = r.try_recv();
        if (!r) {
          BP_FUZZ_CHECK(!got);
          break;
        }
        BP_FUZZ_CHECK(got.has_value() == !buffered.empty());
        if (got) {
          BP_FUZZ_CHECK(*got == buffered.front());
          buffered.pop_front();
        }
        break;
      }
      case 6: {  // observers agree with the model
        for (auto& t : txs) BP_FUZZ_CHECK(t.is_closed() == (!t || closed));
        for (auto& r : rxs) BP_FUZZ_CHECK(r.is_closed() == (!r || closed));
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  bp::fuzz::input in(data, size);
  if (in.boolean())
    run(in);
  else
    run_ends(in);
  return 0;
}

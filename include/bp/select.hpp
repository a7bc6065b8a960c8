// bp/select.hpp: wait on several channels at once, take from (or give to) the first that is
// ready: Go's `select`, for threads and for coroutines.
//
//   bp::recv_case(ch, out)    ready when `ch` has a value (moved into `out`) or is closed and
//                             drained (answer `closed`, `out` untouched)
//   bp::send_case(ch, value)  ready when `ch` has room (the value is moved in: `ok`), is closed
//                             (`closed`, value untouched), or its policy answers at once
//                             (drop_newest `dropped`, reject `full`, drop_oldest `ok`)
//   bp::select(cases...)                    waits until one case is ready and completes it
//   bp::select_for(timeout, cases...)       ... or answers `timeout`
//   bp::select_until(deadline, cases...)
//   bp::select(stop_token, cases...)        ... or answers `cancelled` once the token stops
//   bp::try_select(cases...)                never waits: `full` when none is ready (Go's
//                                           `default:` case)
//   co_await bp::async_select(cases...)     the same for a coroutine (no thread waits); with
//   co_await bp::async_select(options, cases...)  a stop token and/or bp::resume_on(executor)
//   co_await bp::async_select_for(timeout[, options], cases...)
//
// Each answers a bp::select_result: `index`, the case that completed (in argument order), and
// `answer`, what it answered. With no case completed, `index` is bp::select_none and `answer`
// says why: timeout, cancelled, or full (try_select).
//
// Example:
//   Order o; Quote q;
//   switch (auto r = bp::select_for(100ms, bp::recv_case(orders, o), bp::recv_case(quotes, q));
//           r.index) {
//     case 0: r.answer == bp::status::ok ? handle(o) : orders_done(); break;
//     case 1: r.answer == bp::status::ok ? handle(q) : quotes_done(); break;
//     default: idle();  // r.answer == bp::status::timeout
//   }
//
// Semantics:
// - Exactly one case completes. A case not chosen consumes nothing: no value is taken from its
//   channel, no slot is held, and the value of a send case not chosen stays with the caller.
// - Fair: among the cases ready at the same moment, each is chosen with equal probability (the
//   cases are polled in a fresh random order each time, as Go does), so one busy channel cannot
//   starve another.
// - A closed channel's case is ready: a receive once closed and drained, a send at once, both
//   answering `closed`. As in Go, a loop over select must drop (or stop selecting on) a case that
//   answered closed, or it will be chosen again and again.
// - Waiting burns no CPU: the selecting thread (or coroutine) is registered on every case's
//   channel and parked; whichever channel changes first wakes it, and the others' wake-ups it
//   absorbed are passed on, so no other waiter of those channels misses one.
// - Capacity-0 (rendezvous) channels work as in Go: the select queues a node in the channel, and
//   the party that comes along on the other side (a plain send or receive, a coroutine, another
//   select) completes the case by handing the value over (detail/select_claim.hpp). A
//   drop_oldest send case may call its channel's drop handler inside the select's attempt:
//   such a handler must not wait on a channel (it should never wait anyway).
//
// How it differs from the others: Go's `select` (the same, plus nil cases), tokio::select! (runs
// whole futures and drops the losers, which may lose a value that a loser had already received
// unless the future is cancel safe; here no case is ever half done; tokio picks randomly too unless
// `biased;`), Kotlin's select (biased to the first clause unless selectUnbiased).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>

#include "channel.hpp"
#include "detail/async_op.hpp"
#include "detail/deadline.hpp"
#include "detail/event_count.hpp"
#include "detail/rendezvous.hpp"
#include "detail/select_claim.hpp"
#include "detail/stop.hpp"
#include "detail/timer.hpp"
#include "detail/trampoline.hpp"
#include "status.hpp"

namespace bp {

inline constexpr std::size_t select_none = std::numeric_limits<std::size_t>::max();

struct select_result {
  std::size_t index = select_none;  // the case that completed, or select_none
  status answer = status::full;     // its answer, or why none completed
  friend bool operator==(const select_result&, const select_result&) = default;
};

template <class T>
class recv_case_t {
 public:
  using value_type = T;
  recv_case_t(channel<T>& ch, T& out) noexcept : ch_(&ch), out_(&out) {}

 private:
  friend struct detail::select_access;
  channel<T>* ch_;
  T* out_;
};

template <class T>
class send_case_t {
 public:
  using value_type = T;
  send_case_t(channel<T>& ch, T& value) noexcept : ch_(&ch), value_(&value) {}

 private:
  friend struct detail::select_access;
  channel<T>* ch_;
  T* value_;
};

// A receive case: `out` gets the value on `ok`.
template <class T>
recv_case_t<T> recv_case(channel<T>& ch, T& out) noexcept {
  return recv_case_t<T>(ch, out);
}
// A send case: `value` is moved into the channel on `ok` only.
template <class T>
send_case_t<T> send_case(channel<T>& ch, T& value) noexcept {
  return send_case_t<T>(ch, value);
}

// What bp::select accepts: the cases made by recv_case and send_case.
template <class C>
inline constexpr bool is_select_case = false;
template <class T>
inline constexpr bool is_select_case<recv_case_t<T>> = true;
template <class T>
inline constexpr bool is_select_case<send_case_t<T>> = true;
template <class C>
concept select_case = is_select_case<std::remove_cvref_t<C>>;

namespace detail {

// A capacity-0 case's own state: its node in the channel's rendezvous (where a party that comes
// along completes the case, detail/select_claim.hpp) and a received value until the select
// hands it to the caller.
template <class T>
struct select_rv_state {
  typename rendezvous<T>::node node;
  std::optional<T> value;
};

// One case, type-erased: try it now (never waits), and where to wait for it.
struct select_slot {
  void* c = nullptr;
  std::optional<status> (*try_now)(void*) = nullptr;  // nullopt: not ready
  bool (*ready)(void*) = nullptr;  // might try_now succeed? (cheap, may say yes wrongly)
  event_count* events = nullptr;
  // Capacity-0 cases only (try_now is null then): one attempt under the channel's mutex, which
  // with `enlist` leaves the case's node queued; the node leaving the channel; a received
  // value handed to the caller.
  void* rv = nullptr;
  std::optional<status> (*try_rv)(void* c, void* rv, select_claim& claim, bool enlist,
                                  std::uint32_t& completed, bool& decided) = nullptr;
  void (*leave)(void* c, void* rv) = nullptr;
  void (*deliver)(void* c, void* rv) = nullptr;
};

struct select_access {
  template <class T>
  static std::optional<status> try_recv(void* p) {
    auto& c = *static_cast<recv_case_t<T>*>(p);
    if (auto v = c.ch_->pop_one()) {
      *c.out_ = std::move(*v);
      return status::ok;
    }
    if (c.ch_->ring_.closed_and_drained()) return status::closed;
    return std::nullopt;
  }
  template <class T>
  static std::optional<status> try_send(void* p) {
    auto& c = *static_cast<send_case_t<T>*>(p);
    channel<T>& ch = *c.ch_;
    if (ch.policy_ != overflow::block) return ch.send_impl(*c.value_, true, forever());
    if (auto r = ch.push_once(*c.value_)) return r;
    if (ch.pass_tombstones()) return ch.push_once(*c.value_);
    return std::nullopt;
  }

  template <class T>
  static bool recv_ready(void* p) {
    const channel<T>& ch = *static_cast<recv_case_t<T>*>(p)->ch_;
    return !ch.ring_.settled_empty() || ch.ring_.is_closed();
  }
  template <class T>
  static bool send_ready(void* p) {
    const channel<T>& ch = *static_cast<send_case_t<T>*>(p)->ch_;
    return !ch.ring_.settled_full() || ch.ring_.is_closed();
  }

  // A capacity-0 case: one attempt in the channel's rendezvous.
  template <class Case>
  static std::optional<status> try_rv(void* c, void* rv, select_claim& claim, bool enlist,
                                      std::uint32_t& completed, bool& decided) {
    using T = typename Case::value_type;
    auto& ch = *static_cast<Case*>(c)->ch_;
    auto& st = *static_cast<select_rv_state<T>*>(rv);
    using attempt = typename rendezvous<T>::select_try;
    switch (ch.rendezvous_.select_attempt(st.node, &st.value, claim, enlist, completed)) {
      case attempt::done:
        return status::ok;
      case attempt::closed:
        return status::closed;
      case attempt::decided:
        decided = true;
        return std::nullopt;
      case attempt::not_ready:
        break;
    }
    return std::nullopt;
  }
  template <class Case>
  static void leave_rv(void* c, void* rv) {
    using T = typename Case::value_type;
    static_cast<Case*>(c)->ch_->rendezvous_.select_leave(
        static_cast<select_rv_state<T>*>(rv)->node);
  }
  template <class T>
  static void deliver_rv(void* c, void* rv) {
    auto& st = *static_cast<select_rv_state<T>*>(rv);
    if (st.value) *static_cast<recv_case_t<T>*>(c)->out_ = std::move(*st.value);
  }

  template <class T>
  static select_slot slot(recv_case_t<T>& c, std::size_t i, select_rv_state<T>& rv) {
    if (c.ch_->capacity() != 0) return {&c, &try_recv<T>, &recv_ready<T>, &c.ch_->not_empty_};
    rv.node.case_index = static_cast<std::uint32_t>(i);
    select_slot s{&c, nullptr, &never_ready, &rv.node.ready};
    s.rv = &rv;
    s.try_rv = &try_rv<recv_case_t<T>>;
    s.leave = &leave_rv<recv_case_t<T>>;
    s.deliver = &deliver_rv<T>;
    return s;
  }
  template <class T>
  static select_slot slot(send_case_t<T>& c, std::size_t i, select_rv_state<T>& rv) {
    if (c.ch_->capacity() != 0) return {&c, &try_send<T>, &send_ready<T>, &c.ch_->not_full_};
    rv.node.case_index = static_cast<std::uint32_t>(i);
    rv.node.src = c.value_;
    select_slot s{&c, nullptr, &never_ready, &rv.node.ready};
    s.rv = &rv;
    s.try_rv = &try_rv<send_case_t<T>>;
    s.leave = &leave_rv<send_case_t<T>>;
    return s;
  }

  static bool never_ready(void*) noexcept { return false; }
};

// A cheap per-thread generator for the polling order (xorshift64*); quality enough for
// fairness, and no shared state between threads.
inline std::uint64_t select_random() noexcept {
  static thread_local std::uint64_t s =
      0x9E3779B97F4A7C15ull ^ reinterpret_cast<std::uintptr_t>(&s);
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1Dull;
}

// Polls every case once in a fresh random order; the first ready one completes. A select with
// capacity-0 cases passes its `claim`: each attempt is then made busy (detail/select_claim.hpp),
// and a case another party completed meanwhile is the answer; with `enlist`, a capacity-0 case
// that is not ready leaves its node queued in its channel.
template <std::size_t N>
select_result poll_cases(const std::array<select_slot, N>& slots, select_claim* claim = nullptr,
                         bool enlist = false) {
  std::array<std::size_t, N> order;
  for (std::size_t i = 0; i < N; ++i) order[i] = i;
  for (std::size_t i = N; i > 1; --i) {  // Fisher-Yates
    const std::size_t j = static_cast<std::size_t>(select_random() % i);
    std::swap(order[i - 1], order[j]);
  }
  for (std::size_t k = 0; k < N; ++k) {
    const std::size_t i = order[k];
    const select_slot& s = slots[i];
    std::uint32_t completed = 0;
    if (s.try_rv != nullptr) {
      bool decided = false;
      if (auto r = s.try_rv(s.c, s.rv, *claim, enlist, completed, decided)) return {i, *r};
      if (decided) return {completed, status::ok};
      continue;
    }
    if (claim == nullptr) {
      if (auto r = s.try_now(s.c)) return {i, *r};
      continue;
    }
    std::optional<status> r;
    {
      // Wake-ups this attempt causes (a coroutine waiting for the slot it frees) run once the
      // select is no longer busy: run inline while busy, such a coroutine could wait for a
      // rendezvous mutex whose holder waits for this select.
      trampoline_scope after_attempt;
      if (!claim->begin(completed)) return {completed, status::ok};
      r = s.try_now(s.c);
      claim->end(r ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(i)) : std::nullopt);
    }
    if (r) return {i, *r};
  }
  return {select_none, status::full};
}

// The end of a select with capacity-0 cases (`claim` null: none, nothing to do). Giving up
// (no case, `r`) closes the decision, unless another party completed a case just before: that
// case is the answer then. Every node leaves its channel; a value a capacity-0 receive case got
// goes to the caller's variable.
template <std::size_t N>
select_result finish_cases(const std::array<select_slot, N>& slots, select_claim* claim,
                           select_result r) {
  if (claim == nullptr) return r;
  if (r.index == select_none)
    if (auto k = claim->close_out()) r = {*k, status::ok};
  for (const select_slot& s : slots)
    if (s.leave != nullptr) s.leave(s.c, s.rv);
  if (r.index != select_none && r.answer == status::ok && slots[r.index].deliver != nullptr)
    slots[r.index].deliver(slots[r.index].c, slots[r.index].rv);
  return r;
}

template <std::size_t N>
select_claim* claim_if_needed(const std::array<select_slot, N>& slots, select_claim& c) noexcept {
  for (const select_slot& s : slots)
    if (s.try_rv != nullptr) return &c;
  return nullptr;
}

// The registration of one selector on every case's event count. Each node is an async waiter
// (detail/event_count.hpp) whose wake marks it and, for the first wake of a round, calls
// `on_first_wake(ctx)`. A wake the selector absorbed on a channel whose case it did not complete
// is passed on (notify_one), so another waiter of that channel does not miss it.
template <std::size_t N>
class select_waiters {
 public:
  struct node : async_waiter {
    select_waiters* owner = nullptr;
    bool parked = false;
    std::atomic<bool> woken{false};
  };

  // What the first wake of a round calls. `inside`: while wakes in flight are still counted
  // (the callee touches memory the selector frees once disarm() returns: a thread's parker);
  // otherwise after (the callee owns the selector from then on: a coroutine's resumption).
  void (*on_first_wake)(void* ctx) noexcept = nullptr;
  void* ctx = nullptr;
  bool inside = true;

  // Claims the round (a wake, a stop callback, a timed-out thread): true if it got there first.
  // Whoever does not get it leaves a mark (`pending`) for an owner that is still arming.
  bool claim() noexcept {
    return (round_.fetch_or(owned | pending, std::memory_order_acq_rel) & owned) == 0;
  }
  [[nodiscard]] bool fired() const noexcept { return round_.load(std::memory_order_acquire) != 0; }

  // Registers on every case, then re-polls. Answers a completed case, `cancelled` when abort()
  // says so, or select_none / full with every node parked and the round open: from then on
  // the first wake (or claim()) owns the round, and the caller must not touch the nodes.
  // While it arms, the caller owns the round: wakes only mark their node; a wake that came
  // meanwhile is found when the round opens, and the arming goes on with a new poll.
  template <class Abort>
  select_result arm(const std::array<select_slot, N>& slots, select_claim* claim, Abort&& abort) {
    for (;;) {
      round_.store(owned, std::memory_order_relaxed);  // ours while we arm
      std::array<std::uint32_t, N> keys;
      for (std::size_t i = 0; i < N; ++i) keys[i] = slots[i].events->prepare_wait();
      if (auto r = poll_cases(slots, claim, true); r.index != select_none) {
        for (std::size_t i = 0; i < N; ++i) slots[i].events->cancel_wait();
        return r;
      }
      // A case that failed the poll but looks ready is half-way through a change on another
      // thread (a value being published, a slot being freed). That change may already have
      // made its notify, before we registered: wait for it by yielding, not parking (as the
      // channel's own waits do, `settled` in detail/wait.hpp).
      bool in_flight = false;
      for (std::size_t i = 0; i < N && !in_flight; ++i) in_flight = slots[i].ready(slots[i].c);
      if (in_flight) {
        for (std::size_t i = 0; i < N; ++i) slots[i].events->cancel_wait();
        std::this_thread::yield();
        continue;
      }
      bool again = false, aborted = false;
      for (std::size_t i = 0; i < N; ++i) {
        node& n = nodes_[i];
        n.owner = this;
        n.on_wake = &select_waiters::woken_node;
        n.woken.store(false, std::memory_order_relaxed);
        n.parked = false;
        if (again || aborted) {
          slots[i].events->cancel_wait();
          continue;
        }
        switch (slots[i].events->park_async(n, keys[i], abort)) {
          case park_result::parked:
            n.parked = true;
            break;
          case park_result::retry:
            again = true;
            break;
          case park_result::aborted:
            aborted = true;
            break;
        }
      }
      if (!again && !aborted) {
        // Open the round unless a wake came while it was ours. Once open, it belongs to the
        // first wake: nothing of this object may be touched here any more.
        std::uint32_t expected = owned;
        if (round_.compare_exchange_strong(expected, 0, std::memory_order_acq_rel))
          return {select_none, status::full};
        round_.store(owned, std::memory_order_relaxed);  // a wake came: still ours, go again
      }
      auto got = poll_cases(slots, claim, true);
      disarm(slots, got.index);
      if (got.index != select_none) return got;
      if (aborted) return {select_none, status::cancelled};
    }
  }

  // Takes every node off its event count. A node a notifier has taken is waited for until its
  // wake has run (it touches this object). A wake absorbed by a node whose case is not `chosen`
  // is passed on, but only while that case still looks ready: a wake whose credit someone
  // already took is dropped, or two idle selectors would hand it back and forth for ever.
  void disarm(const std::array<select_slot, N>& slots, std::size_t chosen) {
    for (std::size_t i = 0; i < N; ++i) {
      node& n = nodes_[i];
      if (!n.parked) continue;
      n.parked = false;
      if (slots[i].events->unpark_async(n)) continue;
      while (!n.woken.load(std::memory_order_acquire)) std::this_thread::yield();
      if (i != chosen && slots[i].ready(slots[i].c)) slots[i].events->notify_one();
    }
    while (finishing_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  }

 private:
  static void woken_node(async_waiter& w) noexcept {
    auto& n = static_cast<node&>(w);
    select_waiters& self = *n.owner;
    self.finishing_.fetch_add(1, std::memory_order_relaxed);
    n.woken.store(true, std::memory_order_release);
    const bool first = self.claim();
    const auto call = self.on_first_wake;
    void* const ctx = self.ctx;
    const bool inside = self.inside;
    if (first && inside) call(ctx);
    self.finishing_.fetch_sub(1, std::memory_order_release);  // the last touch of `self`...
    if (first && !inside) call(ctx);                          // ...unless we own the round
  }

  static constexpr std::uint32_t owned = 1, pending = 2;

  std::array<node, N> nodes_{};
  std::atomic<std::uint32_t> round_{0};  // owned | pending
  std::atomic<int> finishing_{0};
};

// The capacity-0 state of each case (used by the cases whose channel has capacity 0).
template <class... Cases>
using select_rv_states = std::tuple<select_rv_state<typename Cases::value_type>...>;

template <class... Cases, std::size_t... I>
std::array<select_slot, sizeof...(Cases)> make_slots_impl(select_rv_states<Cases...>& rv,
                                                          std::index_sequence<I...>,
                                                          Cases&... cases) {
  return {select_access::slot(cases, I, std::get<I>(rv))...};
}
template <class... Cases>
std::array<select_slot, sizeof...(Cases)> make_slots(select_rv_states<Cases...>& rv,
                                                     Cases&... cases) {
  return make_slots_impl(rv, std::index_sequence_for<Cases...>{}, cases...);
}

// The blocking select: poll; register on every case; park on a private event count until a
// case's channel wakes us (or the deadline, or the stop token of the calling scope).
template <std::size_t N>
select_result select_blocking(const std::array<select_slot, N>& slots, bool may_wait,
                              clock::time_point deadline) {
  select_claim decision;
  select_claim* const claim = claim_if_needed(slots, decision);
  if (auto r = poll_cases(slots, claim); r.index != select_none || !may_wait)
    return finish_cases(slots, claim, r);
  const std::stop_token* stop = stop_to_watch();
  event_count ready;
  select_waiters<N> waiters;
  waiters.ctx = &ready;
  waiters.on_first_wake = [](void* ec) noexcept { static_cast<event_count*>(ec)->notify_all(); };
  for (;;) {
    auto r = waiters.arm(slots, claim, [&] { return stop != nullptr && stop->stop_requested(); });
    if (r.index != select_none) return finish_cases(slots, claim, r);
    if (r.answer == status::cancelled) {
      r = finish_cases(slots, claim, r);
      if (r.index == select_none) current_stop.stopped = true;
      return r;
    }
    const bool woke = wait_loop(
        ready, deadline, [&] { return waiters.fired(); }, no_spin, always_settled{});
    if (!woke) (void)waiters.claim();  // close the round before taking the nodes back
    auto got = poll_cases(slots, claim, true);
    waiters.disarm(slots, got.index);
    if (got.index != select_none) return finish_cases(slots, claim, got);
    if (!woke) {
      const status why = gave_up();
      return finish_cases(slots, claim, {select_none, why});
    }
  }
}

// co_await bp::async_select(...): the same rounds, with the coroutine suspended instead of a
// parked thread. The first wake of a round (or the stop callback) polls on its own thread and
// either completes a case and resumes the coroutine, or registers for another round.
template <class... Cases>
class select_op : private trampoline_job {
  static constexpr std::size_t N = sizeof...(Cases);

 public:
  select_op(async_options opts, clock::time_point deadline, Cases... cases)
      : cases_(cases...),
        slots_(std::apply([this](auto&... c) { return make_slots(rv_, c...); }, cases_)),
        claim_(claim_if_needed(slots_, decision_)),
        deadline_(deadline),
        opts_(std::move(opts)) {
    waiters_.ctx = this;
    waiters_.inside = false;
    waiters_.on_first_wake = [](void* self) noexcept {
      auto& op = *static_cast<select_op*>(self);
      op.run = &select_op::round_job;
      run_on_trampoline(op);
    };
  }
  select_op(const select_op&) = delete;
  select_op& operator=(const select_op&) = delete;

  bool await_ready() {
    result_ = poll_cases(slots_, claim_);
    if (result_.index == select_none) return false;
    result_ = finish_cases(slots_, claim_, result_);
    return true;
  }
  bool await_suspend(std::coroutine_handle<> h) noexcept {
    handle_ = h;
    if (opts_.stop.stop_possible()) on_stop_.emplace(opts_.stop, stopper{this});
    if (deadline_ != forever()) {
      timer_.when = deadline_;
      timer_.op = this;
      timer_.fire = [](timer_node& t) noexcept {
        static_cast<deadline_timer&>(t).op->stop_round();
      };
      timer_armed_ = true;
      timer_service::instance().schedule(timer_);
    }
    if (!start_round()) return true;  // parked: nothing here may touch *this any more
    disarm_timer();
    return false;
  }
  select_result await_resume() const noexcept { return result_; }

 private:
  struct stopper {
    select_op* op;
    void operator()() const noexcept { op->stop_round(); }
  };
  struct deadline_timer : timer_node {
    select_op* op = nullptr;
  };

  // The stop callback or the deadline: end the round now unless a wake already owns it (it
  // will see the stop or the deadline when it finds no case ready).
  void stop_round() noexcept {
    if (!waiters_.claim()) return;
    run = &select_op::round_job;
    run_on_trampoline(*this);
  }

  bool gave_up() const noexcept {
    return opts_.stop.stop_requested() || (deadline_ != forever() && expired(deadline_));
  }
  select_result why_none() const noexcept {
    return {select_none, opts_.stop.stop_requested() ? status::cancelled : status::timeout};
  }

  void disarm_timer() noexcept {
    if (!timer_armed_) return;
    timer_armed_ = false;
    (void)timer_service::instance().cancel(timer_);
  }

  // Registers for a round; true when the select is over (result_ set), false when parked (a
  // wake may then resume the coroutine at any moment: nothing here may be touched after).
  bool start_round() noexcept {
    const auto r = waiters_.arm(slots_, claim_, [this] { return gave_up(); });
    if (r.index == select_none && r.answer != status::cancelled) return false;
    result_ = finish_cases(slots_, claim_, r.index == select_none ? why_none() : r);
    return true;
  }

  // The round fired (a wake or the stop): finish it, then resume or go again.
  static void round_job(trampoline_job& j) noexcept {
    auto& op = static_cast<select_op&>(j);
    auto got = poll_cases(op.slots_, op.claim_, true);
    op.waiters_.disarm(op.slots_, got.index);
    if (got.index != select_none) {
      op.result_ = finish_cases(op.slots_, op.claim_, got);
    } else if (op.gave_up()) {
      op.result_ = finish_cases(op.slots_, op.claim_, op.why_none());
    } else if (!op.start_round()) {
      return;  // parked for another round
    }
    op.resume();
  }

  void resume() noexcept {
    disarm_timer();  // returns once the timer cannot touch us (it may be what got us here)
    if (!opts_.on.is_inline()) {
      opts_.on.post(handle_);
      return;
    }
    run = &select_op::resume_job;
    run_on_trampoline(*this);
  }
  static void resume_job(trampoline_job& j) noexcept {
    resume_flat(static_cast<select_op&>(j).handle_);
  }

  std::tuple<Cases...> cases_;  // the slots point into it: the op is never moved
  select_rv_states<Cases...> rv_;
  std::array<select_slot, N> slots_;
  select_claim decision_;
  select_claim* claim_;  // &decision_ when a case is on a capacity-0 channel, else null
  select_waiters<N> waiters_;
  select_result result_{};
  std::coroutine_handle<> handle_{};
  clock::time_point deadline_;
  deadline_timer timer_{};
  bool timer_armed_ = false;
  async_options opts_;
  std::optional<std::stop_callback<stopper>> on_stop_;  // last: destroyed first
};

}  // namespace detail

template <select_case... Cases>
[[nodiscard]] select_result select(Cases... cases) {
  detail::select_rv_states<Cases...> rv;
  auto slots = detail::make_slots(rv, cases...);
  return detail::select_blocking(slots, true, detail::forever());
}

template <select_case... Cases>
[[nodiscard]] select_result try_select(Cases... cases) {
  detail::select_rv_states<Cases...> rv;
  auto slots = detail::make_slots(rv, cases...);
  return detail::select_blocking(slots, false, detail::forever());
}

template <class Rep, class Period, select_case... Cases>
[[nodiscard]] select_result select_for(std::chrono::duration<Rep, Period> timeout, Cases... cases) {
  const auto deadline = detail::deadline_after(timeout);
  detail::select_rv_states<Cases...> rv;
  auto slots = detail::make_slots(rv, cases...);
  return detail::select_blocking(slots, true, deadline);
}

template <class Clock, class Duration, select_case... Cases>
[[nodiscard]] select_result select_until(std::chrono::time_point<Clock, Duration> deadline,
                                         Cases... cases) {
  const auto steady = detail::to_steady(deadline);
  detail::select_rv_states<Cases...> rv;
  auto slots = detail::make_slots(rv, cases...);
  return detail::select_blocking(slots, true, steady);
}

template <select_case... Cases>
[[nodiscard]] select_result select(const std::stop_token& stop, Cases... cases) {
  detail::select_rv_states<Cases...> rv;
  auto slots = detail::make_slots(rv, cases...);
  detail::stop_scope scope(stop);
  return detail::select_blocking(slots, true, detail::forever());
}

// The awaitable select. The cases refer to the caller's variables: await it at once.
template <select_case... Cases>
requires(sizeof...(Cases) > 0)
    [[nodiscard]] detail::select_op<Cases...> async_select(async_options opts, Cases... cases) {
  return detail::select_op<Cases...>(std::move(opts), detail::forever(), cases...);
}
template <select_case... Cases>
requires(sizeof...(Cases) > 0)
    [[nodiscard]] detail::select_op<Cases...> async_select(Cases... cases) {
  return detail::select_op<Cases...>(async_options{}, detail::forever(), cases...);
}
// With a timeout: {select_none, timeout} once it passes first. A coroutine resumed by its
// timeout runs on bp's timer thread unless the options name an executor.
template <class Rep, class Period, select_case... Cases>
requires(sizeof...(Cases) > 0) [[nodiscard]] detail::select_op<Cases...> async_select_for(
    std::chrono::duration<Rep, Period> timeout, async_options opts, Cases... cases) {
  return detail::select_op<Cases...>(std::move(opts), detail::deadline_after(timeout), cases...);
}
template <class Rep, class Period, select_case... Cases>
requires(sizeof...(Cases) > 0) [[nodiscard]] detail::select_op<Cases...> async_select_for(
    std::chrono::duration<Rep, Period> timeout, Cases... cases) {
  return detail::select_op<Cases...>(async_options{}, detail::deadline_after(timeout), cases...);
}

}  // namespace bp

// bp/asio.hpp: bp's waiting verbs as asio asynchronous operations (standalone asio, 1.22 or
// later; Debian's libasio-dev). Optional: include it only where asio is available. With clang
// and asio before 1.24, asio::use_awaitable needs -DASIO_HAS_CO_AWAIT -DASIO_HAS_STD_COROUTINE
// (those versions look for clang's coroutines under the Coroutines TS's names only).
//
//   bp::asio_interop::async_send(ch, value, token)           void(bp::status)
//   bp::asio_interop::async_send_for(ch, value, d, token)    void(bp::status)
//   bp::asio_interop::async_recv(ch, token)                  void(bp::status, T)
//   bp::asio_interop::async_recv_for(ch, d, token)           void(bp::status, T)
//   bp::asio_interop::async_acquire(sem, n, token)           void(bp::status)
//   bp::asio_interop::async_acquire_for(sem, n, d, token)    void(bp::status)
//   bp::asio_interop::async_acquire(limiter, token)          void(bp::limiter_permit)
//   bp::asio_interop::async_acquire_for(limiter, d, token)   void(bp::limiter_permit)
//   bp::asio_interop::async_reserve(budget, bytes, token)    void(bp::memory_permit)
//   bp::asio_interop::async_reserve_for(budget, bytes, d, token)  void(bp::memory_permit)
//   bp::asio_interop::async_acquire(bucket, n, token)        void(bp::status)
//   bp::asio_interop::async_acquire_for(bucket, n, d, token) void(bp::status)
//   bp::asio_interop::async_wait_drain(buf, token)           void(bp::status)
//   bp::asio_interop::async_select(cases..., token)          void(bp::select_result)
//   bp::asio_interop::async_select_for(d, cases..., token)   void(bp::select_result)
//
// `ch` is a bp::channel<T>, a bp::sender<T> / bp::receiver<T> (bp/channel_ends.hpp) or, for
// receiving, a bp::unbounded_channel<T>; `sem` a bp::semaphore; `limiter` a
// bp::concurrency_limiter; `budget` a bp::memory_budget or one of its streams; `bucket` a
// bp::token_bucket or bp::leaky_bucket; `buf` a bp::watermark_buffer<T>; `cases` bp::recv_case /
// bp::send_case (bp/select.hpp). A bp::budgeted_channel<T> sends like a channel. The token
// is any asio completion token: asio::use_awaitable, a plain callable, asio::deferred
// (asio::experimental::deferred before asio 1.24), asio::bind_executor(ex, ...),
// asio::bind_cancellation_slot(slot, ...), ...
//
// Example (examples/asio_pubsub.hpp, a session's writer):
//
//   namespace bpa = bp::asio_interop;
//   for (;;) {
//     auto [st, line] = co_await bpa::async_recv(outbox, asio::use_awaitable);
//     if (st != bp::status::ok) break;  // closed (the session ends) or cancelled
//     co_await asio::async_write(socket, asio::buffer(line), asio::use_awaitable);
//   }
//
// Answers are the verbs' own (docs/async.md): the first argument is a bp::status, never an
// asio::error_code, so use_awaitable never throws for `closed` or `cancelled` and a closed
// channel reads like the end of a stream. A receive that is not `ok` passes a value-initialized
// T (so T must be default-constructible, as asio's own channels require).
//
// Where the handler runs: always posted (asio::post) to the handler's associated executor,
// never inside the initiating call and never on the thread of the bp call that completed the
// wait (a sender on another io_context or a plain thread). A plain callback without one runs
// on asio::system_executor: bind one with asio::bind_executor(ex, callback). use_awaitable's
// handler is associated with the coroutine's executor, so the coroutine continues where it
// was. The operation holds outstanding work on that executor until the handler is posted, so
// io_context::run() does not return while a bp wait is pending.
//
// Cancellation: a connected cancellation slot (asio::bind_cancellation_slot, an awaitable's
// cancellation state, awaitable operators) is wired to a std::stop_source whose token is given
// to the bp verb. Any cancellation type (terminal, partial, total) cancels, because a
// cancelled bp wait took nothing: the answer is bp::status::cancelled, a send's value stays in
// the caller's variable, a receive consumed nothing, an acquire holds no permit. As asio
// requires, emit the signal from the handler's executor (or otherwise serialized with the
// operation's start and completion).
//
// Lifetimes: the primitive (channel, end, semaphore, limiter) must outlive the operation, as
// an I/O object does in asio. A send's `value` is taken by reference, like a buffer: it is
// moved from only when the answer is `ok`, and must stay alive until the handler runs (with
// use_awaitable a local of the coroutine does). So must the variables a select's cases name
// (the receive cases' `out`, the send cases' values). Before destroying an io_context whose
// handlers wait on bp, close the primitive or cancel the waits: a wait that never ends keeps its
// handler (and its work count) forever.
//
// Cost: one allocation per operation, the frame of a small coroutine that awaits the bp verb
// (it holds the handler and the wait's state: 560-704 bytes with g++ 12), plus what asio::post
// allocates for the completion (recycled by asio on its own threads) and, when a cancellation
// slot is connected, a std::stop_source's shared state and the slot's handler. docs/design.md,
// "The asio bridge".
//
// Thread safety: as the primitives'. Operations may start from any thread and complete on any
// executor; the bp primitive serializes the waits.
#pragma once

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "concurrency_limiter.hpp"
#include "detail/async_op.hpp"
#include "leaky_bucket.hpp"
#include "memory_budget.hpp"
#include "select.hpp"
#include "semaphore.hpp"
#include "status.hpp"
#include "token_bucket.hpp"
#include "watermark_buffer.hpp"

namespace bp::asio_interop {

namespace detail {

// The coroutine that carries one operation: it starts at once, awaits the bp verb, posts the
// completion (which owns the handler from then on) and ends, freeing its frame.
struct bridge {
  struct promise_type {
    bridge get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    // The bridge only awaits a bp verb and posts: what could throw here (asio::post out of
    // memory) leaves no one to report to.
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

// Stops the wait's std::stop_source when the slot is signalled. It holds its own copy of the
// source: the stop state is shared, so a late signal after the wait ended touches live memory.
struct canceller {
  std::stop_source source;
  void operator()(asio::cancellation_type type) noexcept {
    if (type != asio::cancellation_type::none) source.request_stop();
  }
};

// Runs on the handler's executor: clears the slot (before the handler, as asio asks), then
// calls the handler with the answer.
template <class Handler, class Slot, class Args>
struct completion {
  Handler handler;
  Slot slot;
  bool connected;
  Args args;

  void operator()() {
    if (connected) slot.clear();
    std::apply(std::move(handler), std::move(args));
  }
};

template <class Handler, class Op>
bridge run(Handler handler, Op op) {
  auto ex = asio::get_associated_executor(handler);
  auto work = asio::make_work_guard(ex);
  auto slot = asio::get_associated_cancellation_slot(handler);
  const bool connected = slot.is_connected();
  std::stop_source stop(std::nostopstate);
  if (connected) {
    stop = std::stop_source();
    slot.template emplace<canceller>(canceller{stop});
  }
  auto args = op.finish(co_await op.start(async_options(stop.get_token())));
  asio::post(ex, completion<Handler, decltype(slot), decltype(args)>{std::move(handler), slot,
                                                                     connected, std::move(args)});
  // The work is given back only once post() has returned: the handler may already have run on
  // another thread, and until then the executor's context (an io_context that its owner
  // destroys as soon as run() returns) must not run out of work while post() still signals it.
  work.reset();
}

// One initiation for every verb: starts the bridge with the verb's state.
struct initiate {
  template <class Handler, class Op>
  void operator()(Handler&& handler, Op op) const {
    (void)run(std::forward<Handler>(handler), std::move(op));
  }
};

template <class Chan>
using value_t = typename std::remove_cvref_t<Chan>::value_type;

template <class Chan>
concept can_send = requires(Chan& ch, value_t<Chan>& v, async_options o) {
  ch.async_send(std::move(v), std::move(o));
};
template <class Chan>
concept can_recv = std::default_initializable<value_t<Chan>> &&
    requires(Chan& ch, value_t<Chan>& out, async_options o) {
  ch.async_recv(out, std::move(o));
};

template <class Chan>
struct send_op {
  Chan* ch;
  value_t<Chan>* value;
  auto start(async_options o) { return ch->async_send(std::move(*value), std::move(o)); }
  std::tuple<status> finish(status s) { return {s}; }
};

template <class Chan, class Duration>
struct send_for_op {
  Chan* ch;
  value_t<Chan>* value;
  Duration timeout;
  auto start(async_options o) {
    return ch->async_send_for(std::move(*value), timeout, std::move(o));
  }
  std::tuple<status> finish(status s) { return {s}; }
};

template <class Chan>
struct recv_op {
  Chan* ch;
  value_t<Chan> out{};
  auto start(async_options o) { return ch->async_recv(out, std::move(o)); }
  std::tuple<status, value_t<Chan>> finish(status s) { return {s, std::move(out)}; }
};

template <class Chan, class Duration>
struct recv_for_op {
  Chan* ch;
  Duration timeout;
  value_t<Chan> out{};
  auto start(async_options o) { return ch->async_recv_for(out, timeout, std::move(o)); }
  std::tuple<status, value_t<Chan>> finish(status s) { return {s, std::move(out)}; }
};

// The semaphore's own check, made before the operation starts so that it throws to the caller
// (inside the bridge it would have nobody to reach).
inline void check_count(std::size_t n) {
  if (n > semaphore::max_count) {
    throw std::invalid_argument("bp::asio_interop::async_acquire: n (" + std::to_string(n) +
                                ") exceeds 2^62");
  }
}

struct acquire_op {
  semaphore* sem;
  std::size_t n;
  auto start(async_options o) { return sem->async_acquire(n, std::move(o)); }
  std::tuple<status> finish(result r) { return {r.value()}; }
};

template <class Duration>
struct acquire_for_op {
  semaphore* sem;
  std::size_t n;
  Duration timeout;
  auto start(async_options o) { return sem->async_acquire_for(n, timeout, std::move(o)); }
  std::tuple<status> finish(result r) { return {r.value()}; }
};

struct limiter_op {
  concurrency_limiter* lim;
  auto start(async_options o) { return lim->async_acquire(std::move(o)); }
  std::tuple<limiter_permit> finish(limiter_permit p) { return {std::move(p)}; }
};

template <class Duration>
struct limiter_for_op {
  concurrency_limiter* lim;
  Duration timeout;
  auto start(async_options o) { return lim->async_acquire_for(timeout, std::move(o)); }
  std::tuple<limiter_permit> finish(limiter_permit p) { return {std::move(p)}; }
};

template <class Budget>
concept byte_budget =
    std::same_as<Budget, memory_budget> || std::same_as<Budget, memory_budget::stream>;
template <class Bucket>
concept rate_bucket = std::same_as<Bucket, token_bucket> || std::same_as<Bucket, leaky_bucket>;

// The budget's own check, made before the operation starts (as check_count).
template <class Budget>
void check_bytes(const Budget& b, std::size_t bytes) {
  std::size_t capacity = 0;
  if constexpr (std::same_as<Budget, memory_budget>) {
    capacity = b.capacity();
  } else {
    if (b.budget() == nullptr) return;  // an empty stream answers closed
    capacity = b.budget()->capacity();
  }
  if (bytes > capacity)
    throw std::invalid_argument("bp::asio_interop::async_reserve: bytes " + std::to_string(bytes) +
                                " exceeds the budget's capacity of " + std::to_string(capacity));
}
template <class Bucket>
void check_tokens(const Bucket& b, std::size_t n) {
  std::size_t limit = 0;
  if constexpr (std::same_as<Bucket, token_bucket>) {
    limit = b.burst();
  } else {
    limit = b.capacity();
  }
  if (n > limit)
    throw std::invalid_argument("bp::asio_interop::async_acquire: n (" + std::to_string(n) +
                                ") exceeds the bucket's " + std::to_string(limit));
}

template <class Budget>
struct reserve_op {
  Budget* budget;
  std::size_t bytes;
  auto start(async_options o) { return budget->async_reserve(bytes, std::move(o)); }
  std::tuple<memory_permit> finish(memory_permit p) { return {std::move(p)}; }
};

template <class Budget, class Duration>
struct reserve_for_op {
  Budget* budget;
  std::size_t bytes;
  Duration timeout;
  auto start(async_options o) { return budget->async_reserve_for(bytes, timeout, std::move(o)); }
  std::tuple<memory_permit> finish(memory_permit p) { return {std::move(p)}; }
};

template <class Bucket>
struct bucket_op {
  Bucket* bucket;
  std::size_t n;
  auto start(async_options o) { return bucket->async_acquire(n, std::move(o)); }
  std::tuple<status> finish(result r) { return {r.value()}; }
};

template <class Bucket, class Duration>
struct bucket_for_op {
  Bucket* bucket;
  std::size_t n;
  Duration timeout;
  auto start(async_options o) { return bucket->async_acquire_for(n, timeout, std::move(o)); }
  std::tuple<status> finish(result r) { return {r.value()}; }
};

template <class Buffer>
struct drain_op {
  Buffer* buf;
  auto start(async_options o) { return buf->async_wait_drain(std::move(o)); }
  std::tuple<status> finish(status s) { return {s}; }
};

template <class T>
inline constexpr bool is_watermark_buffer = false;
template <class T>
inline constexpr bool is_watermark_buffer<watermark_buffer<T>> = true;

// A select's cases, kept until the bridge starts the select; `timeout` (a duration) or none.
template <class Timeout, class... Cases>
struct select_cases_op {
  std::tuple<Cases...> cases;
  Timeout timeout;
  auto start(async_options o) {
    return std::apply(
        [&](Cases&... c) {
          if constexpr (std::is_same_v<Timeout, std::nullptr_t>) {
            return bp::async_select(std::move(o), c...);
          } else {
            return bp::async_select_for(timeout, std::move(o), c...);
          }
        },
        cases);
  }
  std::tuple<select_result> finish(select_result r) { return {r}; }
};

// The completion token is the last argument, after the cases: splits it off.
template <class Timeout, class Args, std::size_t... I>
auto initiate_select(Timeout timeout, Args&& args, std::index_sequence<I...>) {
  using op = select_cases_op<Timeout, std::remove_cvref_t<std::tuple_element_t<I, Args>>...>;
  static_assert((select_case<std::tuple_element_t<I, Args>> && ...),
                "bp::asio_interop::async_select: every argument but the last (the completion "
                "token) must be a bp::recv_case or bp::send_case");
  auto&& token = std::get<sizeof...(I)>(args);
  return asio::async_initiate<decltype(token), void(select_result)>(
      initiate{}, token, op{{std::get<I>(args)...}, timeout});
}

}  // namespace detail

// Sends `value` into `ch` (a bp::channel<T> or bp::sender<T>): void(bp::status), the answers
// of ch.send(): ok, dropped, full, closed, plus cancelled. Waits only where send() would (a
// full `block` channel). `value` is moved from only on `ok` and must live until completion.
template <class Chan, class CompletionToken>
requires detail::can_send<Chan>
auto async_send(Chan& ch, detail::value_t<Chan>& value, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(status)>(detail::initiate{}, token,
                                                             detail::send_op<Chan>{&ch, &value});
}

// As async_send, answering `timeout` once `timeout` passes first (counted from the start).
template <class Chan, class Rep, class Period, class CompletionToken>
requires detail::can_send<Chan>
auto async_send_for(Chan& ch, detail::value_t<Chan>& value,
                    std::chrono::duration<Rep, Period> timeout, CompletionToken&& token) {
  using op = detail::send_for_op<Chan, std::chrono::duration<Rep, Period>>;
  return asio::async_initiate<CompletionToken, void(status)>(detail::initiate{}, token,
                                                             op{&ch, &value, timeout});
}

// Receives from `ch` (a bp::channel<T>, bp::receiver<T> or bp::unbounded_channel<T>):
// void(bp::status, T): ok with the value, or closed (closed and drained) / cancelled with T{}.
template <class Chan, class CompletionToken>
requires detail::can_recv<Chan>
auto async_recv(Chan& ch, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(status, detail::value_t<Chan>)>(
      detail::initiate{}, token, detail::recv_op<Chan>{&ch});
}

// As async_recv, answering `timeout` (with T{}) once `timeout` passes first.
template <class Chan, class Rep, class Period, class CompletionToken>
requires detail::can_recv<Chan>
auto async_recv_for(Chan& ch, std::chrono::duration<Rep, Period> timeout, CompletionToken&& token) {
  using op = detail::recv_for_op<Chan, std::chrono::duration<Rep, Period>>;
  return asio::async_initiate<CompletionToken, void(status, detail::value_t<Chan>)>(
      detail::initiate{}, token, op{&ch, timeout});
}

// Acquires `n` permits of `sem`, in its FIFO queue: void(bp::status), ok | closed | cancelled.
// Give them back with sem.release(n).
template <class CompletionToken>
auto async_acquire(semaphore& sem, std::size_t n, CompletionToken&& token) {
  detail::check_count(n);
  return asio::async_initiate<CompletionToken, void(status)>(detail::initiate{}, token,
                                                             detail::acquire_op{&sem, n});
}

// As async_acquire, answering `timeout` once `timeout` passes first.
template <class Rep, class Period, class CompletionToken>
auto async_acquire_for(semaphore& sem, std::size_t n, std::chrono::duration<Rep, Period> timeout,
                       CompletionToken&& token) {
  detail::check_count(n);
  using op = detail::acquire_for_op<std::chrono::duration<Rep, Period>>;
  return asio::async_initiate<CompletionToken, void(status)>(detail::initiate{}, token,
                                                             op{&sem, n, timeout});
}

// Waits for a slot of `lim`: void(bp::limiter_permit), a permit (release it, or let it go, when
// the request is done) or an empty one answering closed / cancelled. A handler that is
// destroyed without running gives its permit back.
template <class CompletionToken>
auto async_acquire(concurrency_limiter& lim, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(limiter_permit)>(detail::initiate{}, token,
                                                                     detail::limiter_op{&lim});
}

// As async_acquire, an empty permit answering `timeout` once `timeout` passes first.
template <class Rep, class Period, class CompletionToken>
auto async_acquire_for(concurrency_limiter& lim, std::chrono::duration<Rep, Period> timeout,
                       CompletionToken&& token) {
  using op = detail::limiter_for_op<std::chrono::duration<Rep, Period>>;
  return asio::async_initiate<CompletionToken, void(limiter_permit)>(detail::initiate{}, token,
                                                                     op{&lim, timeout});
}

// Reserves `bytes` of `budget` (a bp::memory_budget or one of its streams), with the budget's
// fairness between streams: void(bp::memory_permit), holding the bytes (answer ok) or empty
// (closed, cancelled). bytes above the budget's capacity throw std::invalid_argument here.
template <class Budget, class CompletionToken>
requires detail::byte_budget<Budget>
auto async_reserve(Budget& budget, std::size_t bytes, CompletionToken&& token) {
  detail::check_bytes(budget, bytes);
  return asio::async_initiate<CompletionToken, void(memory_permit)>(
      detail::initiate{}, token, detail::reserve_op<Budget>{&budget, bytes});
}

// As async_reserve, answering an empty permit with `timeout` once `timeout` passes first.
template <class Budget, class Rep, class Period, class CompletionToken>
requires detail::byte_budget<Budget>
auto async_reserve_for(Budget& budget, std::size_t bytes,
                       std::chrono::duration<Rep, Period> timeout, CompletionToken&& token) {
  detail::check_bytes(budget, bytes);
  using op = detail::reserve_for_op<Budget, std::chrono::duration<Rep, Period>>;
  return asio::async_initiate<CompletionToken, void(memory_permit)>(detail::initiate{}, token,
                                                                    op{&budget, bytes, timeout});
}

// Waits until `n` tokens of `bucket` (a bp::token_bucket or bp::leaky_bucket) are due:
// void(bp::status), ok | closed | cancelled. A cancelled wait gives its tokens back. n above the
// bucket's burst (capacity) throws std::invalid_argument here.
template <class Bucket, class CompletionToken>
requires detail::rate_bucket<Bucket>
auto async_acquire(Bucket& bucket, std::size_t n, CompletionToken&& token) {
  detail::check_tokens(bucket, n);
  return asio::async_initiate<CompletionToken, void(status)>(detail::initiate{}, token,
                                                             detail::bucket_op<Bucket>{&bucket, n});
}

// As async_acquire, answering `timeout` at once when the tokens cannot be due within `timeout`
// (as the bucket's acquire_for: nothing is claimed then).
template <class Bucket, class Rep, class Period, class CompletionToken>
requires detail::rate_bucket<Bucket>
auto async_acquire_for(Bucket& bucket, std::size_t n, std::chrono::duration<Rep, Period> timeout,
                       CompletionToken&& token) {
  detail::check_tokens(bucket, n);
  using op = detail::bucket_for_op<Bucket, std::chrono::duration<Rep, Period>>;
  return asio::async_initiate<CompletionToken, void(status)>(detail::initiate{}, token,
                                                             op{&bucket, n, timeout});
}

// Waits until the watermark buffer `buf` drains (Node's 'drain'): void(bp::status), ok at once
// when it is not paused, closed, or cancelled; as buf.wait_drain().
template <class Buffer, class CompletionToken>
requires detail::is_watermark_buffer<Buffer>
auto async_wait_drain(Buffer& buf, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(status)>(detail::initiate{}, token,
                                                             detail::drain_op<Buffer>{&buf});
}

// bp::select as an asio operation: async_select(case, case, ..., token) completes with
// void(bp::select_result) once one case completed (its index and answer), or with
// {select_none, cancelled} on cancellation; the cases' semantics are bp::select's (one case
// completes, the others consume nothing, random among the ready ones). The variables the cases
// name must live until the handler runs.
template <class... Args>
requires(sizeof...(Args) >= 2) auto async_select(Args&&... args) {
  return detail::initiate_select(nullptr, std::forward_as_tuple(std::forward<Args>(args)...),
                                 std::make_index_sequence<sizeof...(Args) - 1>{});
}

// As async_select, completing with {select_none, timeout} once `timeout` passes first (counted
// from the start).
template <class Rep, class Period, class... Args>
requires(sizeof...(Args) >= 2) auto async_select_for(std::chrono::duration<Rep, Period> timeout,
                                                     Args&&... args) {
  return detail::initiate_select(timeout, std::forward_as_tuple(std::forward<Args>(args)...),
                                 std::make_index_sequence<sizeof...(Args) - 1>{});
}

}  // namespace bp::asio_interop

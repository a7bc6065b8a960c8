// Internal: cancellation of blocking verbs by std::stop_token.
//
// The stop_token overloads of the waiting verbs do not thread a token through every layer of
// every primitive. They open a stop_scope for the length of the call; the one wait loop
// (detail/wait.hpp) looks at the scope of its thread before it parks, registers a
// std::stop_callback that notifies the event count it parks on, and gives up when the token is
// stopped. A stop request therefore wakes the waiter at once (one futex wake), and every wait
// inside the verb (a budget wait, then a channel wait, say) is covered without each primitive
// knowing about tokens. The verb answers what it answers for a timeout, and the scope turns that
// into `cancelled`: nothing was taken, a value sent stays with the caller.
//
// A scope belongs to one thread and one call; scopes nest (the inner token rules inside).
// Callbacks a verb runs (drop handlers) run inside the scope: a wait in them is cancelled too.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <utility>

#include "../status.hpp"

namespace bp::detail {

struct stop_slot {
  const std::stop_token* token = nullptr;  // the token of the verb running on this thread
  bool stopped = false;                    // a wait of that verb gave up because of it
};

inline thread_local stop_slot current_stop{};

class stop_scope {
 public:
  explicit stop_scope(const std::stop_token& token) noexcept : saved_(current_stop) {
    current_stop = stop_slot{&token, false};
  }
  stop_scope(const stop_scope&) = delete;
  stop_scope& operator=(const stop_scope&) = delete;
  ~stop_scope() { current_stop = saved_; }

  [[nodiscard]] bool stopped() const noexcept { return current_stop.stopped; }

 private:
  stop_slot saved_;
};

// The token a wait on this thread must watch, or nullptr (the common case: one thread_local load).
inline const std::stop_token* stop_to_watch() noexcept {
  const std::stop_token* t = current_stop.token;
  return t != nullptr && t->stop_possible() ? t : nullptr;
}

// The answer of a wait that gave up: `cancelled` when the stop token made it, else `timeout`.
inline status gave_up() noexcept {
  return current_stop.stopped ? status::cancelled : status::timeout;
}

// The same, counting a timeout (not a cancellation) in a primitive's statistics.
inline status gave_up(std::atomic<std::uint64_t>& timeouts) noexcept {
  const status s = gave_up();
  if (s == status::timeout) timeouts.fetch_add(1, std::memory_order_relaxed);
  return s;
}

// The answer of a wait that may have ended by close or by the stop token: `cancelled` for the
// token, else `closed`.
inline status closed_or_gave_up() noexcept {
  return current_stop.stopped ? status::cancelled : status::closed;
}

// Turns a verb's "not done" answer into `cancelled` when the scope's token made it give up.
inline void mark_cancelled(status& s) noexcept {
  if (s != status::ok) s = status::cancelled;
}
inline void mark_cancelled(result& r) noexcept {
  if (r != status::ok) r = status::cancelled;
}
template <class R>
requires requires(R r) {
  r.answer = status::cancelled;
}
inline void mark_cancelled(R& r) noexcept {
  if (r.answer != status::ok) r.answer = status::cancelled;
}
template <class R>
inline void mark_cancelled(R&) noexcept {}  // optional, counts, grants: their own answer says

// Runs `verb` inside a stop_scope for `token` and returns its answer, `cancelled` if the token
// made it give up.
template <class Verb>
decltype(auto) with_stop(const std::stop_token& token, Verb&& verb) {
  stop_scope scope(token);
  auto r = std::forward<Verb>(verb)();
  if (scope.stopped()) mark_cancelled(r);
  return r;
}

}  // namespace bp::detail

// bp/status.hpp: the answers every flow-control primitive of the library gives.
//
//   bp::overflow  what a bounded buffer does when it is full (block, drop_newest, drop_oldest,
//                 reject): wait, or lose something on purpose and count it.
//   bp::status    the answer of every waiting verb: ok, dropped, full, closed, timeout,
//                 cancelled. Full, closed, timeout and cancelled are different answers on
//                 purpose (tokio's TrySendError, P0260's conqueue_errc): the caller decides
//                 what each means for its data.
//   bp::result    a bp::status that also tests as bool (true only for ok): the answer of the
//                 verbs that take credit without handing over a value (semaphore, throttles),
//                 so `if (sem.acquire_for(1, 10ms))` reads naturally and `timeout` and
//                 `closed` stay apart.
//
//   switch (ch.send(std::move(v))) {
//     case bp::status::ok:        break;
//     case bp::status::dropped:   ++lost; break;          // drop_newest: v is still ours
//     case bp::status::full:      retry_later(v); break;  // reject: v is still ours
//     case bp::status::closed:    return;
//     case bp::status::timeout:   break;                  // send_for ran out of time
//     case bp::status::cancelled: return;                 // its std::stop_token was stopped
//   }
#pragma once

#include <ostream>
#include <string_view>

namespace bp {

// What a full bounded buffer does with a new value. See bp::channel for the exact answers.
enum class overflow {
  block,        // the sender waits for a free slot: nothing is lost (Go channels)
  drop_newest,  // the new value is refused and counted: `dropped`
  drop_oldest,  // the oldest buffered value is evicted (to the drop handler), the new one enters
  reject,       // nothing is enqueued, the sender is told `full` at once and decides
};

// The answer of a waiting verb (for a send: what happened to the value).
enum class status {
  ok,         // done: the value or the credit was taken
  dropped,    // drop_newest (or drop_oldest with nothing evictable): the value was not taken
  full,       // reject (or a try_ verb): no room or no credit now, nothing was taken
  closed,     // the primitive is closed: nothing was taken
  timeout,    // a _for/_until verb ran out of time: nothing was taken
  cancelled,  // a std::stop_token given to the verb was stopped while it waited: nothing was taken
};

// A status that converts to bool (true only for `ok`), for the verbs whose only success is
// `ok` and whose answer used to be a plain bool: `bool got = sem.try_acquire();` still works,
// and so do `r == bp::status::timeout`, `bp::status s = r;` and `<<`. To switch on it, switch
// on r.value() (with two implicit conversions the compiler cannot pick one for `switch`).
class [[nodiscard]] result {
 public:
  constexpr result(status s) noexcept : s_(s) {}             // NOLINT: implicit on purpose
  constexpr operator status() const noexcept { return s_; }  // NOLINT: implicit on purpose
  constexpr operator bool() const noexcept { return s_ == status::ok; }  // NOLINT: ditto
  [[nodiscard]] constexpr status value() const noexcept { return s_; }

  friend constexpr bool operator==(result a, result b) noexcept { return a.s_ == b.s_; }
  friend constexpr bool operator==(result a, status b) noexcept { return a.s_ == b; }

 private:
  status s_;
};

[[nodiscard]] constexpr std::string_view to_string(overflow p) noexcept {
  switch (p) {
    case overflow::block:
      return "block";
    case overflow::drop_newest:
      return "drop_newest";
    case overflow::drop_oldest:
      return "drop_oldest";
    case overflow::reject:
      return "reject";
  }
  return "invalid";
}

[[nodiscard]] constexpr std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::ok:
      return "ok";
    case status::dropped:
      return "dropped";
    case status::full:
      return "full";
    case status::closed:
      return "closed";
    case status::timeout:
      return "timeout";
    case status::cancelled:
      return "cancelled";
  }
  return "invalid";
}

inline std::ostream& operator<<(std::ostream& os, overflow p) {
  return os << to_string(p);
}
inline std::ostream& operator<<(std::ostream& os, status s) {
  return os << to_string(s);
}
inline std::ostream& operator<<(std::ostream& os, result r) {
  return os << to_string(r.value());
}

}  // namespace bp

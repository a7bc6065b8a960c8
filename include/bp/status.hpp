// bp/status.hpp: the answers every flow-control primitive of the library gives.
//
//   bp::overflow  what a bounded buffer does when it is full (block, drop_newest, drop_oldest,
//                 reject): the seed's Block and Drop strategies.
//   bp::status    the answer to a send: ok, dropped, full, closed, timeout. Full, closed and
//                 timeout are different answers on purpose (tokio's TrySendError, P0260's
//                 conqueue_errc): the caller decides what each means for its data.
//
//   switch (ch.send(std::move(v))) {
//     case bp::status::ok:      break;
//     case bp::status::dropped: ++lost; break;          // drop_newest: v is still ours
//     case bp::status::full:    retry_later(v); break;  // reject: v is still ours
//     case bp::status::closed:  return;
//     case bp::status::timeout: break;                  // send_for ran out of time
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

// The answer to a send.
enum class status {
  ok,       // the value was taken
  dropped,  // drop_newest: the buffer was full, the value was not taken
  full,     // reject (or a try_ operation): the buffer was full, the value was not taken
  closed,   // the channel is closed: nothing was enqueued
  timeout,  // a _for/_until operation ran out of time: nothing was enqueued
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
  }
  return "invalid";
}

inline std::ostream& operator<<(std::ostream& os, overflow p) {
  return os << to_string(p);
}
inline std::ostream& operator<<(std::ostream& os, status s) {
  return os << to_string(s);
}

}  // namespace bp

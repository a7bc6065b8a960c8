// Internal: the one place the receive verbs are spelled out, the counterpart of send_verbs.hpp.
// Every queue that receives one value (bp::channel, bp::unbounded_channel) has the same verbs:
//
//   std::optional<T> recv(), try_recv(), recv_for(d), recv_until(t)   std::nullopt: no value
//   status recv(T&), try_recv(T&), recv_for(T&, d), recv_until(T&, t) ok | full | timeout | closed
//   the waiting ones again with a trailing std::stop_token            ... | cancelled
//
// A face derives from recv_verbs<Face, T> and implements two functions:
//
//   std::optional<T> recv_impl(bool may_wait, clock::time_point deadline);
//   status recv_into(T& out, bool may_wait, clock::time_point deadline);
//
// `may_wait == false` is try_recv; a deadline of forever() is recv. recv_into moves into `out`
// only on `ok` and answers `closed` only once closed and drained.
#pragma once

#include <chrono>
#include <optional>
#include <stop_token>

#include "../status.hpp"
#include "deadline.hpp"
#include "stop.hpp"

namespace bp::detail {

template <class Face, class T>
class recv_verbs {
 public:
  // Waits while empty; std::nullopt once closed and drained.
  [[nodiscard]] std::optional<T> recv() { return self().recv_impl(true, forever()); }
  // std::nullopt when nothing is buffered right now.
  [[nodiscard]] std::optional<T> try_recv() { return self().recv_impl(false, forever()); }
  // std::nullopt when closed and drained, or when the timeout passes first.
  template <class Rep, class Period>
  [[nodiscard]] std::optional<T> recv_for(std::chrono::duration<Rep, Period> timeout) {
    return self().recv_impl(true, deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] std::optional<T> recv_until(std::chrono::time_point<Clock, Duration> deadline) {
    return self().recv_impl(true, to_steady(deadline));
  }
  // std::nullopt when closed and drained, or when `stop` was stopped first.
  [[nodiscard]] std::optional<T> recv(const std::stop_token& stop) {
    stop_scope scope(stop);
    return self().recv_impl(true, forever());
  }

  // The value is moved into `out` on `ok`; otherwise `out` is untouched.
  [[nodiscard]] status recv(T& out) { return self().recv_into(out, true, forever()); }
  [[nodiscard]] status try_recv(T& out) { return self().recv_into(out, false, forever()); }
  template <class Rep, class Period>
  [[nodiscard]] status recv_for(T& out, std::chrono::duration<Rep, Period> timeout) {
    return self().recv_into(out, true, deadline_after(timeout));
  }
  template <class Clock, class Duration>
  [[nodiscard]] status recv_until(T& out, std::chrono::time_point<Clock, Duration> deadline) {
    return self().recv_into(out, true, to_steady(deadline));
  }

  // Cancellable: `cancelled` once `stop` is stopped while waiting (nothing was taken).
  [[nodiscard]] status recv(T& out, const std::stop_token& stop) {
    return with_stop(stop, [&] { return self().recv_into(out, true, forever()); });
  }
  template <class Rep, class Period>
  [[nodiscard]] status recv_for(T& out, std::chrono::duration<Rep, Period> timeout,
                                const std::stop_token& stop) {
    const auto deadline = deadline_after(timeout);
    return with_stop(stop, [&] { return self().recv_into(out, true, deadline); });
  }
  template <class Clock, class Duration>
  [[nodiscard]] status recv_until(T& out, std::chrono::time_point<Clock, Duration> deadline,
                                  const std::stop_token& stop) {
    const auto steady = to_steady(deadline);
    return with_stop(stop, [&] { return self().recv_into(out, true, steady); });
  }

  // What a range-for over the face calls: recv() (see detail/recv_iterator.hpp).
  static constexpr auto next = static_cast<std::optional<T> (recv_verbs::*)()>(&recv_verbs::recv);

 protected:
  recv_verbs() = default;
  ~recv_verbs() = default;

 private:
  Face& self() noexcept { return static_cast<Face&>(*this); }
};

}  // namespace bp::detail

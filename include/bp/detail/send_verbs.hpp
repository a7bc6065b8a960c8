// Internal: the one place the send verbs are spelled out. Every face that sends one value
// (bp::channel, bp::budgeted_channel, bp::sender) has the same eight overloads: send, try_send,
// send_for and send_until, each for `T&&` (an rvalue left unmoved unless taken) and
// `const T&` (copied first). A face derives from send_verbs<Face, T> and implements one
// function, which the overloads call:
//
//   status send_value(T& value, bool may_wait, clock::time_point deadline) [const];
//
// It moves from `value` only when it answers `ok`; `may_wait == false` is try_send; a deadline
// of forever() is send. Faces whose send_value is const (handles such as bp::sender) get const
// verbs as well. The waiting verbs also come with a trailing std::stop_token: they answer
// `cancelled` when it is stopped while they wait, and the value stays with the caller.
#pragma once

#include <chrono>
#include <concepts>
#include <stop_token>
#include <utility>

#include "deadline.hpp"
#include "stop.hpp"

namespace bp::detail {

template <class Face, class T, class Status>
class send_verbs {
  template <class F>
  static constexpr bool const_face = requires(const F& f, T& v) {
    f.send_value(v, true, clock::time_point{});
  };

 public:
  [[nodiscard]] Status send(T&& value) { return self().send_value(value, true, forever()); }
  [[nodiscard]] Status send(T&& value) const requires const_face<Face> {
    return cself().send_value(value, true, forever());
  }
  [[nodiscard]] Status send(const T& value) requires std::copy_constructible<T> {
    T copy(value);
    return self().send_value(copy, true, forever());
  }
  [[nodiscard]] Status send(const T& value) const requires std::copy_constructible<T> &&
      const_face<Face> {
    T copy(value);
    return cself().send_value(copy, true, forever());
  }

  // Never waits.
  [[nodiscard]] Status try_send(T&& value) { return self().send_value(value, false, forever()); }
  [[nodiscard]] Status try_send(T&& value) const requires const_face<Face> {
    return cself().send_value(value, false, forever());
  }
  [[nodiscard]] Status try_send(const T& value) requires std::copy_constructible<T> {
    T copy(value);
    return self().send_value(copy, false, forever());
  }
  [[nodiscard]] Status try_send(const T& value) const requires std::copy_constructible<T> &&
      const_face<Face> {
    T copy(value);
    return cself().send_value(copy, false, forever());
  }

  template <class Rep, class Period>
  [[nodiscard]] Status send_for(T&& value, std::chrono::duration<Rep, Period> timeout) {
    return self().send_value(value, true, deadline_after(timeout));
  }
  template <class Rep, class Period>
  [[nodiscard]] Status send_for(
      T&& value, std::chrono::duration<Rep, Period> timeout) const requires const_face<Face> {
    return cself().send_value(value, true, deadline_after(timeout));
  }
  template <class Rep, class Period>
  [[nodiscard]] Status send_for(const T& value, std::chrono::duration<Rep, Period> timeout) requires
      std::copy_constructible<T> {
    T copy(value);
    return self().send_value(copy, true, deadline_after(timeout));
  }
  template <class Rep, class Period>
  [[nodiscard]] Status send_for(const T& value, std::chrono::duration<Rep, Period> timeout)
      const requires std::copy_constructible<T> && const_face<Face> {
    T copy(value);
    return cself().send_value(copy, true, deadline_after(timeout));
  }

  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline) {
    return self().send_value(value, true, to_steady(deadline));
  }
  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline)
      const requires const_face<Face> {
    return cself().send_value(value, true, to_steady(deadline));
  }
  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(
      const T& value,
      std::chrono::time_point<Clock, Duration> deadline) requires std::copy_constructible<T> {
    T copy(value);
    return self().send_value(copy, true, to_steady(deadline));
  }
  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(const T& value, std::chrono::time_point<Clock, Duration> deadline)
      const requires std::copy_constructible<T> && const_face<Face> {
    T copy(value);
    return cself().send_value(copy, true, to_steady(deadline));
  }

  // Cancellable: as above, `cancelled` when `stop` is stopped while waiting.
  [[nodiscard]] Status send(T&& value, const std::stop_token& stop) {
    return with_stop(stop, [&] { return self().send_value(value, true, forever()); });
  }
  [[nodiscard]] Status send(T&& value,
                            const std::stop_token& stop) const requires const_face<Face> {
    return with_stop(stop, [&] { return cself().send_value(value, true, forever()); });
  }
  [[nodiscard]] Status send(const T& value,
                            const std::stop_token& stop) requires std::copy_constructible<T> {
    T copy(value);
    return with_stop(stop, [&] { return self().send_value(copy, true, forever()); });
  }
  [[nodiscard]] Status send(const T& value, const std::stop_token& stop)
      const requires std::copy_constructible<T> && const_face<Face> {
    T copy(value);
    return with_stop(stop, [&] { return cself().send_value(copy, true, forever()); });
  }
  template <class Rep, class Period>
  [[nodiscard]] Status send_for(T&& value, std::chrono::duration<Rep, Period> timeout,
                                const std::stop_token& stop) {
    const auto deadline = deadline_after(timeout);
    return with_stop(stop, [&] { return self().send_value(value, true, deadline); });
  }
  template <class Rep, class Period>
  [[nodiscard]] Status send_for(T&& value, std::chrono::duration<Rep, Period> timeout,
                                const std::stop_token& stop) const requires const_face<Face> {
    const auto deadline = deadline_after(timeout);
    return with_stop(stop, [&] { return cself().send_value(value, true, deadline); });
  }
  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline,
                                  const std::stop_token& stop) {
    const auto steady = to_steady(deadline);
    return with_stop(stop, [&] { return self().send_value(value, true, steady); });
  }
  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(T&& value, std::chrono::time_point<Clock, Duration> deadline,
                                  const std::stop_token& stop) const requires const_face<Face> {
    const auto steady = to_steady(deadline);
    return with_stop(stop, [&] { return cself().send_value(value, true, steady); });
  }
  template <class Rep, class Period>
  [[nodiscard]] Status send_for(const T& value, std::chrono::duration<Rep, Period> timeout,
                                const std::stop_token& stop) requires std::copy_constructible<T> {
    T copy(value);
    return send_for(std::move(copy), timeout, stop);
  }
  template <class Rep, class Period>
  [[nodiscard]] Status send_for(
      const T& value, std::chrono::duration<Rep, Period> timeout,
      const std::stop_token& stop) const requires std::copy_constructible<T> && const_face<Face> {
    T copy(value);
    return send_for(std::move(copy), timeout, stop);
  }
  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(const T& value, std::chrono::time_point<Clock, Duration> deadline,
                                  const std::stop_token& stop) requires std::copy_constructible<T> {
    T copy(value);
    return send_until(std::move(copy), deadline, stop);
  }
  template <class Clock, class Duration>
  [[nodiscard]] Status send_until(
      const T& value, std::chrono::time_point<Clock, Duration> deadline,
      const std::stop_token& stop) const requires std::copy_constructible<T> && const_face<Face> {
    T copy(value);
    return send_until(std::move(copy), deadline, stop);
  }

 protected:
  send_verbs() = default;
  ~send_verbs() = default;

 private:
  Face& self() noexcept { return static_cast<Face&>(*this); }
  const Face& cself() const noexcept { return static_cast<const Face&>(*this); }
};

}  // namespace bp::detail

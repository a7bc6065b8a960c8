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
// verbs as well.
#pragma once

#include <chrono>
#include <concepts>
#include <utility>

#include "deadline.hpp"

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

 protected:
  send_verbs() = default;
  ~send_verbs() = default;

 private:
  Face& self() noexcept { return static_cast<Face&>(*this); }
  const Face& cself() const noexcept { return static_cast<const Face&>(*this); }
};

}  // namespace bp::detail

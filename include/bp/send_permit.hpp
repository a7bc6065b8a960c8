// bp/send_permit.hpp: slots of a bp::channel claimed ahead of their values (channel::reserve),
// tokio's Permit: a bp::grant whose unused slots go back when it is destroyed.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "channel_fwd.hpp"
#include "grant.hpp"
#include "status.hpp"

namespace bp {

namespace detail {
// What a send_permit holds: the channel, the next claimed slot's ticket, the slots left.
template <class Channel>
struct send_permit_traits {
  struct held {
    Channel* ch = nullptr;
    std::uint64_t next = 0;
    std::size_t left = 0;
  };
  static bool holds(const held& h) noexcept { return h.left != 0; }
  static void give_back(held& h) noexcept { h.ch->permit_skip(h.next, h.left); }
};
}  // namespace detail

// n slots of a channel claimed by channel::reserve (tokio's Permit). Each send() moves one value
// into the next claimed slot and cannot fail, not even if the channel was closed since the
// reservation (the slots were claimed before close, so their values are delivered). Values keep
// FIFO order by slot: a reserved slot holds back the values sent after it was reserved until it
// is filled or given back. Destruction or release() gives the unused slots back; like any slot
// of a ring they become free once every value ahead of them has been received (then at once,
// with or without a receiver). An unsuccessful reservation yields an empty permit: `!permit`,
// answer() says why.
// Thread safety: a permit is used by one thread at a time; it may be moved between threads.
// Errors: send() on a permit with no slot left throws std::logic_error.
template <channel_element T>
class send_permit : public grant<detail::send_permit_traits<channel<T>>> {
  using base = grant<detail::send_permit_traits<channel<T>>>;
  using base::held_;
  using typename base::held_type;

 public:
  send_permit() noexcept = default;
  send_permit(send_permit&&) noexcept = default;
  send_permit& operator=(send_permit&&) noexcept = default;
  ~send_permit() = default;

  // answer(): ok if the reservation succeeded (whether or not its slots are used up), else why
  // not. The permit tests true when that answer was ok, also once its slots are used up.
  explicit operator bool() const noexcept { return this->answer() == status::ok; }
  // Reserved slots not used yet.
  [[nodiscard]] std::size_t remaining() const noexcept { return held_.left; }

  void send(T&& value) {
    if (held_.left == 0) throw std::logic_error("bp::send_permit::send: no reserved slot left");
    --held_.left;
    held_.ch->permit_publish(held_.next++, std::move(value));
  }
  void send(const T& value) requires std::copy_constructible<T> {
    T copy(value);
    send(std::move(copy));
  }

  // Gives the unused slots back now.
  void release() noexcept { this->give_back(); }

 private:
  friend class channel<T>;
  send_permit(channel<T>* ch, std::uint64_t first, std::size_t n, status answer) noexcept
      : base(held_type{ch, first, n}, answer) {}
};

}  // namespace bp
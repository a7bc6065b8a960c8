// bp/channel_fwd.hpp: declarations of the channel family, for headers that name the types
// without needing their definitions (bp/send_permit.hpp, bp/channel_ends.hpp, user headers).
//
//   bp::channel_element  what a channel can carry: an object type whose move and destruction
//                        do not throw (a value moves into a slot after the slot is claimed, where
//                        an exception could not be undone).
#pragma once

#include <type_traits>

namespace bp {

template <class T>
concept channel_element = std::is_object_v<T> && std::is_nothrow_move_constructible_v<T> &&
    std::is_nothrow_destructible_v<T>;

template <channel_element T>
class channel;
template <channel_element T>
class send_permit;
template <channel_element T>
class sender;
template <channel_element T>
class receiver;

namespace detail {
struct select_access;  // bp/select.hpp
}  // namespace detail

}  // namespace bp

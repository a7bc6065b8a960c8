// bp/nats/codec.hpp: how values become message payloads and back.
//
//   bp::nats::codec_for<C, T>  the concept a codec satisfies: C::encode(const T&, bytes&) appends
//                              the payload, C::decode(std::span<const std::byte>) -> T.
//   bp::nats::viewing_codec    optional: C::view(const T&) -> std::span<const std::byte>, the
//                              payload as it already is in memory; a sender then sends those
//                              bytes without encoding a copy (std::string, byte vectors and
//                              arithmetic types have it).
//   bp::nats::default_codec<T> built in for std::string, std::vector<std::byte> and arithmetic
//                              types (native byte order: both ends on the same architecture).
//
// A user codec (JSON, protobuf, ...):
//
//   struct order_codec {
//     static void encode(const order& o, std::vector<std::byte>& out) { ... append ... }
//     static order decode(std::span<const std::byte> in) { ... }  // throws on bad input
//   };
//   bp::nats::sender<order, order_codec> tx(opts);
#pragma once

#include <concepts>
#include <cstddef>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace bp::nats {

// A codec is a type with two static functions. encode appends to `out` (which may already hold
// bytes) and may throw; decode gets exactly one payload and throws on malformed input (the
// receiver then terminates that message so it is not redelivered, and rethrows).
template <class C, class T>
concept codec_for = requires(const T& value, std::vector<std::byte>& out,
                             std::span<const std::byte> in) {
  C::encode(value, out);
  { C::decode(in) } -> std::same_as<T>;
};

// A codec whose payload is the value's own bytes: C::view(value) gives them, valid while the
// value is (a send copies them into the message before it returns).
template <class C, class T>
concept viewing_codec = requires(const T& value) {
  { C::view(value) } -> std::convertible_to<std::span<const std::byte>>;
};

template <class T>
struct default_codec;  // no default for other types: pass a codec

template <>
struct default_codec<std::string> {
  static void encode(const std::string& s, std::vector<std::byte>& out) {
    const auto v = view(s);
    out.insert(out.end(), v.begin(), v.end());
  }
  static std::span<const std::byte> view(const std::string& s) noexcept {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
  }
  static std::string decode(std::span<const std::byte> in) {
    return std::string(reinterpret_cast<const char*>(in.data()), in.size());
  }
};

template <>
struct default_codec<std::vector<std::byte>> {
  static void encode(const std::vector<std::byte>& v, std::vector<std::byte>& out) {
    out.insert(out.end(), v.begin(), v.end());
  }
  static std::span<const std::byte> view(const std::vector<std::byte>& v) noexcept { return v; }
  static std::vector<std::byte> decode(std::span<const std::byte> in) {
    return std::vector<std::byte>(in.begin(), in.end());
  }
};

// Arithmetic values as their object representation: both ends must share byte order and type.
template <class T>
requires std::is_arithmetic_v<T>
struct default_codec<T> {
  static void encode(const T& v, std::vector<std::byte>& out) {
    const auto b = view(v);
    out.insert(out.end(), b.begin(), b.end());
  }
  static std::span<const std::byte> view(const T& v) noexcept {
    return {reinterpret_cast<const std::byte*>(&v), sizeof(T)};
  }
  static T decode(std::span<const std::byte> in) {
    if (in.size() != sizeof(T))
      throw std::invalid_argument("bp::nats::default_codec: payload of " +
                                  std::to_string(in.size()) + " bytes, expected " +
                                  std::to_string(sizeof(T)));
    T v;
    std::memcpy(&v, in.data(), sizeof(T));
    return v;
  }
};

}  // namespace bp::nats

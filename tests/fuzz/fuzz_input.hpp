// Test support: reads a fuzzer's bytes as a stream of small decisions (which verb, which
// argument). Every read is total: an exhausted input reads as zeros, so any byte string is a
// valid program and the fuzzer never wastes executions on rejected inputs. (clang's
// FuzzedDataProvider does the same, but only clang ships it, and these targets are also built
// by g++ to replay their corpora in the ordinary test runs.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace bp::fuzz {

class input {
 public:
  input(const std::uint8_t* data, std::size_t size) noexcept : p_(data), end_(data + size) {}

  [[nodiscard]] bool empty() const noexcept { return p_ == end_; }
  [[nodiscard]] std::size_t remaining() const noexcept {
    return static_cast<std::size_t>(end_ - p_);
  }

  std::uint8_t byte() noexcept { return p_ == end_ ? 0 : *p_++; }
  bool boolean() noexcept { return (byte() & 1) != 0; }

  // A value in [lo, hi], from as few bytes as the range needs.
  template <class I>
  I in_range(I lo, I hi) noexcept {
    static_assert(std::is_integral_v<I>);
    using U = std::make_unsigned_t<I>;
    const auto span = static_cast<std::uint64_t>(static_cast<U>(hi) - static_cast<U>(lo));
    std::uint64_t v = 0;
    for (std::uint64_t seen = 0; seen < span && !empty(); seen = (seen << 8) | 0xff)
      v = (v << 8) | byte();
    if (span != UINT64_MAX) v %= span + 1;
    return static_cast<I>(static_cast<U>(static_cast<U>(lo) + static_cast<U>(v)));
  }

  // One of `n` choices, from one byte.
  std::size_t pick(std::size_t n) noexcept { return n == 0 ? 0 : byte() % n; }

  // Up to `max` bytes as a string (length first).
  std::string bytes(std::size_t max) {
    const std::size_t n = in_range<std::size_t>(0, max);
    std::string s;
    while (s.size() < n && !empty()) s.push_back(static_cast<char>(byte()));
    return s;
  }

  // Whatever is left, as a string.
  std::string rest() {
    std::string s(reinterpret_cast<const char*>(p_), remaining());
    p_ = end_;
    return s;
  }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
};

// The message of the std::invalid_argument that `f()` throws; empty when it throws none.
template <class F>
std::string thrown_invalid(F&& f) {
  try {
    (void)f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

// Whether an error message names the argument `arg`.
inline bool names(const std::string& what, const char* arg) {
  return what.find(arg) != std::string::npos;
}

}  // namespace bp::fuzz

// A check that holds in every build type (assert() vanishes under NDEBUG): prints what failed
// and aborts, which libFuzzer reports as a crash with the input that caused it.
#define BP_FUZZ_CHECK(cond)                                                         \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

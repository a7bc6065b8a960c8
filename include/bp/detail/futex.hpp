// Internal: park a thread on a 32-bit word until another thread changes it and wakes it, with
// an optional absolute deadline on the steady clock. On Linux this is the futex system call
// (FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, which is what steady_clock
// reads); elsewhere a striped table of mutex + condition variable gives the same contract.
//
// Contract (both back ends): `futex_wait(w, expected, deadline)` returns at once when `w` no
// longer holds `expected`; otherwise it sleeps until a `futex_wake` on `w`, the deadline, or a
// spurious wake-up. Callers always re-check their condition, so spurious returns are harmless.
// A waker must change `w` *before* calling `futex_wake`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#else
#include <condition_variable>
#include <functional>
#include <mutex>
#endif

#include "deadline.hpp"

namespace bp::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);

#if defined(__linux__)

// Returns false only when the deadline has passed.
inline bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       clock::time_point deadline = clock::time_point::max()) noexcept {
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline != clock::time_point::max()) {
    const auto since = deadline.time_since_epoch();
    if (since.count() < 0) return false;
    const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
    ts.tv_sec = static_cast<time_t>(secs.count());
    ts.tv_nsec = static_cast<long>(std::chrono::nanoseconds(since - secs).count());
    tsp = &ts;
  }
  const long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word),
                            FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, tsp, nullptr,
                            FUTEX_BITSET_MATCH_ANY);
  return !(rc == -1 && errno == ETIMEDOUT);
}

inline void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE | FUTEX_PRIVATE_FLAG,
            count, nullptr, nullptr, 0);
}

#else  // portable fallback: a striped parking table

struct park_stripe {
  std::mutex m;
  std::condition_variable cv;
};

inline park_stripe& stripe_for(const void* p) noexcept {
  static park_stripe table[64];
  return table[std::hash<const void*>{}(p) % 64];
}

inline bool futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                       clock::time_point deadline = clock::time_point::max()) {
  auto& s = stripe_for(&word);
  std::unique_lock lock(s.m);
  if (word.load(std::memory_order_acquire) != expected) return true;
  if (deadline == clock::time_point::max()) {
    s.cv.wait(lock);
    return true;
  }
  return s.cv.wait_until(lock, deadline) == std::cv_status::no_timeout;
}

inline void futex_wake(std::atomic<std::uint32_t>& word, int) {
  auto& s = stripe_for(&word);
  { std::lock_guard lock(s.m); }  // a waiter that saw the old value is now inside wait()
  s.cv.notify_all();
}

#endif

}  // namespace bp::detail

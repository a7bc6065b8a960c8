// Test helper: the smallest coroutine type, so the async verbs are tested without any runtime.
// A `detached` coroutine starts at once and ends on its own; it counts itself in `live` while
// its frame exists and records the size of the frames it allocates.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <new>

namespace bp::test {

struct detached {
  static inline std::atomic<long> live{0};
  static inline std::atomic<std::size_t> last_frame_size{0};

  struct promise_type {
    static void* operator new(std::size_t n) {
      last_frame_size.store(n, std::memory_order_relaxed);
      return ::operator new(n);
    }
    static void operator delete(void* p) noexcept { ::operator delete(p); }

    promise_type() noexcept { live.fetch_add(1, std::memory_order_relaxed); }
    ~promise_type() { live.fetch_sub(1, std::memory_order_release); }
    detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

}  // namespace bp::test

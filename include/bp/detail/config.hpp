// Internal: platform knobs shared by every primitive (cache-line size, CPU relax hint,
// sanitizer detection). Not part of the public API.
#pragma once

#include <cstddef>
#include <new>

namespace bp::detail {

// The size we pad hot atomics to. `std::hardware_destructive_interference_size` is 64 on the
// x86-64 and most AArch64 targets we run on, but GCC warns when it appears in a header (its
// value may differ between translation units compiled with different -mtune), so we pin it.
inline constexpr std::size_t cache_line = 64;

// A hint to the CPU that we are in a spin-wait loop: lowers power and frees pipeline resources
// for the sibling hyper-thread. Never a substitute for parking.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
  asm volatile("yield" ::: "memory");
#endif
}

#if defined(__SANITIZE_THREAD__)
inline constexpr bool tsan = true;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool tsan = true;
#else
inline constexpr bool tsan = false;
#endif
#else
inline constexpr bool tsan = false;
#endif

}  // namespace bp::detail

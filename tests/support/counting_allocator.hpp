// Test and benchmark helper: replaces the global allocation functions with counting ones, so a
// program can show that a hot path allocates nothing per item (compare allocations() before
// and after). Include it in exactly one translation unit of a program (a test or benchmark
// executable): it defines the replaceable operator new/delete family.
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

// The replacement operators pair malloc/free themselves; GCC cannot see that once they are
// inlined into callers and warns about "mismatched" new/free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace bp::test {
inline std::atomic<long> allocation_count{0};
// Heap allocations made by the whole program so far.
inline long allocations() noexcept {
  return allocation_count.load(std::memory_order_relaxed);
}
}  // namespace bp::test

void* operator new(std::size_t n) {
  bp::test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  bp::test::allocation_count.fetch_add(1, std::memory_order_relaxed);
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

// Internal: a FIFO ring that grows by doubling and never shrinks, for buffers whose bound is in
// bytes rather than items (bp::watermark_buffer). Unlike std::deque it allocates nothing in
// steady state: once it has grown to the largest backlog seen, pushes and pops only move values.
// Not thread-safe: its owner locks.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace bp::detail {

template <class T>
class growable_ring {
  static_assert(std::is_nothrow_move_constructible_v<T>);

 public:
  growable_ring() = default;
  growable_ring(const growable_ring&) = delete;
  growable_ring& operator=(const growable_ring&) = delete;

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  // Makes room for one more value; with reserve(), the only members that allocate (and may
  // throw).
  void reserve_one() {
    if (size_ < capacity_) return;
    grow_to(capacity_ ? capacity_ * 2 : 16);
  }

  // Makes room for `n` values in all (rounded up to a power of two), so that a known backlog
  // never allocates later.
  void reserve(std::size_t n) {
    std::size_t cap = capacity_ ? capacity_ : 16;
    while (cap < n) cap *= 2;
    if (cap != capacity_) grow_to(cap);
  }

  // Requires room (reserve_one() first).
  void push(T&& value) noexcept {
    slots_[(head_ + size_) & (capacity_ - 1)].emplace(std::move(value));
    ++size_;
  }

  // Requires !empty().
  [[nodiscard]] T pop() noexcept {
    auto& slot = slots_[head_];
    T value(std::move(*slot));
    slot.reset();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return value;
  }

 private:
  void grow_to(std::size_t cap) {
    auto slots = std::make_unique<std::optional<T>[]>(cap);
    for (std::size_t i = 0; i < size_; ++i) {
      auto& from = slots_[(head_ + i) & (capacity_ - 1)];
      slots[i].emplace(std::move(*from));
      from.reset();
    }
    slots_ = std::move(slots);
    capacity_ = cap;
    head_ = 0;
  }

  std::unique_ptr<std::optional<T>[]> slots_;
  std::size_t capacity_ = 0;  // 0 or a power of two
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace bp::detail

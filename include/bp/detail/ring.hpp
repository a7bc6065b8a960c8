// Internal: the bounded MPMC ring under bp::channel. Lock-free, allocation-free after
// construction, any capacity >= 1, exactly `capacity` items.
//
// Each slot carries a sequence number (after D. Vyukov's bounded MPMC queue): for the ticket
// `pos` the slot `pos % capacity` is free when `seq == 2*pos` and holds the item when
// `seq == 2*pos + 1`; a pop sets it to `2*(pos + capacity)`, free for the next lap. (Vyukov's
// `pos`/`pos + 1` encoding cannot tell "full with t" from "free for t + 1" when capacity is
// 1; doubling keeps every capacity unambiguous, and tickets stay below 2^62.) Producers
// claim tickets by CAS on `tail_`, consumers on `head_`, so contention is per index, never a
// lock. The top bit of `tail_` is the closed flag: closing and claiming a ticket are one atomic
// word, so a push either got its ticket before close() (and is delivered) or answers `closed`.
//
// Reservations (channel::reserve): a run of tickets claimed ahead of its values. Its slots are
// marked `reserved` (`2t | reserved_mark`) until the value is published (`2t + 1`) or the
// ticket is given back as a tombstone (`(2t + 1) | skip_mark`), which pops skip.
//
// Memory ordering: the release store of `seq` after constructing (or destroying) the value and
// the acquire load of `seq` before touching it carry the payload's happens-before edge. The
// ticket CASes are seq_cst: they are the "publish" half of the channel's event counts (see
// detail/event_count.hpp), paired with the seq_cst ticket loads of `settled_empty()` and
// `settled_full()` that a waiter makes after registering. So each operation costs exactly one
// locked instruction on x86 (the CAS); the publishing store and all loads are plain.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

#include "config.hpp"

namespace bp::detail {

enum class push_result { ok, full, closed };

template <class T>
class ring {
 public:
  static constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
  // Marks on a slot's `seq` (tickets stay far below 2^59, so `2t + 1` never reaches them).
  static constexpr std::uint64_t reserved_mark = std::uint64_t{1} << 62;
  static constexpr std::uint64_t skip_mark = std::uint64_t{1} << 61;
  static constexpr std::uint64_t marks = reserved_mark | skip_mark;

  explicit ring(std::size_t capacity) : cap_(capacity) {
    if (cap_ == 0) return;
    if (cap_ > 1 && (cap_ & (cap_ - 1)) == 0) mask_ = cap_ - 1;
    slots_ =
        static_cast<slot*>(::operator new[](sizeof(slot) * cap_, std::align_val_t{alignof(slot)}));
    for (std::size_t i = 0; i < cap_; ++i) ::new (&slots_[i]) slot(2 * i);
  }

  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;

  // Destroys what is still buffered; the owner drains it first if it wants the values.
  ~ring() {
    if (!slots_) return;
    std::uint64_t passed = 0;
    while (auto v = try_pop(passed)) {
    }
    for (std::size_t i = 0; i < cap_; ++i) slots_[i].~slot();
    ::operator delete[](slots_, std::align_val_t{alignof(slot)});
  }

  // Takes `v` (moves from it) only on `ok`, and then stores the ticket it got in `ticket`.
  push_result try_push(T& v, std::uint64_t& ticket) noexcept {
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (pos & closed_bit) return push_result::closed;
      slot& s = slots_[index(pos)];
      const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>((seq & ~marks) - 2 * pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          ::new (s.ptr()) T(std::move(v));
          s.seq.store(2 * pos + 1, std::memory_order_release);
          ticket = pos;
          return push_result::ok;
        }
      } else if (diff < 0) {
        // The slot still holds the value of the previous lap: full. Re-read the tail once so a
        // stale `pos` (another producer moved on) is not mistaken for fullness.
        const std::uint64_t now = tail_.load(std::memory_order_relaxed);
        if (now == pos) return push_result::full;
        pos = now;
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  // Pops the oldest value; tombstones met on the way are passed and counted in `passed` (each
  // frees a slot, so the caller wakes senders for them too).
  std::optional<T> try_pop(std::uint64_t& passed) noexcept {
    std::uint64_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      slot& s = slots_[index(pos)];
      const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>((seq & ~marks) - (2 * pos + 1));
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
          if (seq & skip_mark) [[unlikely]] {  // a reservation given back: no value here
            release_tombstone(s, pos);
            ++passed;
            ++pos;
            continue;
          }
          T* p = s.ptr();
          std::optional<T> out(std::move(*p));
          p->~T();
          s.seq.store(2 * (pos + cap_), std::memory_order_release);
          return out;
        }
      } else if (diff < 0) {
        const std::uint64_t now = head_.load(std::memory_order_relaxed);
        if (now == pos) return std::nullopt;  // empty, or the producer of `pos` is mid-push
        pos = now;
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  // Batch push: claims with one CAS the longest run of free slots from the tail (at most
  // `max`), then moves `*first++` into each. Returns how many were pushed (0 when full or
  // closed; `closed` tells which) and the first ticket of the run.
  template <class It>
  std::size_t try_push_n(It& first, std::size_t max, std::uint64_t& ticket, bool& closed) noexcept {
    if (max > cap_) max = cap_;
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      closed = (pos & closed_bit) != 0;
      if (closed) return 0;
      std::size_t k = 0;
      while (k < max && slots_[index(pos + k)].seq.load(std::memory_order_acquire) == 2 * (pos + k))
        ++k;
      if (k == 0) {
        const std::uint64_t seq = slots_[index(pos)].seq.load(std::memory_order_acquire);
        const std::uint64_t now = tail_.load(std::memory_order_relaxed);
        if (static_cast<std::int64_t>((seq & ~marks) - 2 * pos) < 0 && now == pos) return 0;
        pos = now;
        continue;
      }
      if (tail_.compare_exchange_weak(pos, pos + k, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        for (std::size_t i = 0; i < k; ++i, ++first) {
          slot& s = slots_[index(pos + i)];
          ::new (s.ptr()) T(std::move(*first));
          s.seq.store(2 * (pos + i) + 1, std::memory_order_release);
        }
        ticket = pos;
        return k;
      }
    }
  }

  // Batch pop: claims with one CAS the longest run of published values from the head (at most
  // `max`) and moves each into `*out++`. Returns how many.
  template <class Out>
  std::size_t try_pop_n(Out& out, std::size_t max, std::uint64_t& passed) noexcept {
    if (max > cap_) max = cap_;
    std::uint64_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      std::size_t k = 0;
      while (k < max &&
             slots_[index(pos + k)].seq.load(std::memory_order_acquire) == 2 * (pos + k) + 1)
        ++k;
      if (k == 0) {
        slot& s = slots_[index(pos)];
        const std::uint64_t seq = s.seq.load(std::memory_order_acquire);
        const auto diff = static_cast<std::int64_t>((seq & ~marks) - (2 * pos + 1));
        if (diff == 0 && (seq & skip_mark)) {  // a tombstone at the head: pass it
          if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                          std::memory_order_relaxed)) {
            release_tombstone(s, pos);
            ++passed;
            ++pos;
          }
          continue;
        }
        const std::uint64_t now = head_.load(std::memory_order_relaxed);
        if (diff < 0 && now == pos) return 0;  // empty (or the head is reserved / mid-push)
        pos = now;
        continue;
      }
      if (head_.compare_exchange_weak(pos, pos + k, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        for (std::size_t i = 0; i < k; ++i) {
          slot& s = slots_[index(pos + i)];
          T* p = s.ptr();
          *out = std::move(*p);
          ++out;
          p->~T();
          s.seq.store(2 * (pos + i + cap_), std::memory_order_release);
        }
        return k;
      }
    }
  }

  // Claims exactly `n` consecutive free slots (all or nothing) for later publish()/skip(), and
  // marks them reserved. `ticket` receives the first ticket.
  push_result try_claim_n(std::size_t n, std::uint64_t& ticket) noexcept {
    std::uint64_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      if (pos & closed_bit) return push_result::closed;
      std::size_t k = 0;
      while (k < n && slots_[index(pos + k)].seq.load(std::memory_order_acquire) == 2 * (pos + k))
        ++k;
      if (k < n) {
        const std::uint64_t now = tail_.load(std::memory_order_relaxed);
        if (now == pos) return push_result::full;
        pos = now;
        continue;
      }
      if (tail_.compare_exchange_weak(pos, pos + n, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        for (std::size_t i = 0; i < n; ++i)
          slots_[index(pos + i)].seq.store(2 * (pos + i) | reserved_mark,
                                           std::memory_order_release);
        ticket = pos;
        return push_result::ok;
      }
    }
  }

  // Publishes the value of a claimed ticket.
  void publish(std::uint64_t ticket, T&& v) noexcept {
    slot& s = slots_[index(ticket)];
    ::new (s.ptr()) T(std::move(v));
    s.seq.store(2 * ticket + 1, std::memory_order_release);
  }

  // Gives a claimed ticket back: its slot becomes a tombstone that the next pop passes.
  void skip(std::uint64_t ticket) noexcept {
    slots_[index(ticket)].seq.store((2 * ticket + 1) | skip_mark, std::memory_order_release);
  }

  // Passes the tombstones at the head (given-back reservations), freeing their slots. Returns
  // how many it passed.
  std::uint64_t pass_tombstones() noexcept {
    std::uint64_t passed = 0;
    std::uint64_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      slot& s = slots_[index(pos)];
      if (s.seq.load(std::memory_order_acquire) != ((2 * pos + 1) | skip_mark)) return passed;
      if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
        release_tombstone(s, pos);
        ++passed;
        ++pos;
      }
    }
  }

  // Tombstones passed by pops so far.
  [[nodiscard]] std::uint64_t skipped() const noexcept {
    return skipped_.load(std::memory_order_relaxed);
  }

  // Returns true if this call closed the ring (false if it already was).
  bool close() noexcept {
    return (tail_.fetch_or(closed_bit, std::memory_order_seq_cst) & closed_bit) == 0;
  }

  [[nodiscard]] bool is_closed() const noexcept {
    return (tail_.load(std::memory_order_seq_cst) & closed_bit) != 0;
  }

  // Every ticket handed to a push has been claimed by a pop: empty, and no push under way.
  // (A push that claimed its ticket but has not yet published its value makes this false: a
  // receiver must then retry shortly, not sleep, because that push may not see it waiting.)
  // A head slot held by a reservation counts as settled too: a reservation publishes with a
  // fenced notify (channel::send_permit), so a receiver may sleep until then.
  [[nodiscard]] bool settled_empty() const noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_seq_cst) & ~closed_bit;
    const std::uint64_t h = head_.load(std::memory_order_seq_cst);
    if (h == t) return true;
    return slots_[index(h)].seq.load(std::memory_order_seq_cst) == (2 * h | reserved_mark);
  }

  // The oldest slot holds no value yet and none is being written into it: a reservation not yet
  // filled. (Best effort: the head may move the moment this returns.)
  [[nodiscard]] bool head_reserved() const noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_seq_cst) & ~closed_bit;
    const std::uint64_t h = head_.load(std::memory_order_seq_cst);
    return h != t &&
           slots_[index(h)].seq.load(std::memory_order_seq_cst) == (2 * h | reserved_mark);
  }

  // Fewer than `n` slots are free or being freed: no pop under way could make room for `n`.
  [[nodiscard]] bool settled_full(std::size_t n = 1) const noexcept {
    const std::uint64_t h = head_.load(std::memory_order_seq_cst);
    const std::uint64_t t = tail_.load(std::memory_order_seq_cst) & ~closed_bit;
    return t - h > cap_ - n;
  }

  // Closed, and every ticket handed out before close() has been popped: strictly empty (a
  // reserved slot is not drained: its permit may still publish a value).
  [[nodiscard]] bool closed_and_drained() const noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_seq_cst);
    return (t & closed_bit) && head_.load(std::memory_order_seq_cst) == (t & ~closed_bit);
  }

  // Items buffered now; best effort under concurrency, never above capacity. The tail is read
  // first: the head can only have moved forward since, so the difference cannot overshoot.
  [[nodiscard]] std::size_t size() const noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_acquire) & ~closed_bit;
    const std::uint64_t h = head_.load(std::memory_order_acquire);
    if (h >= t) return 0;
    const std::uint64_t n = t - h;
    return n > cap_ ? cap_ : static_cast<std::size_t>(n);
  }

  // Buffered items right after this thread's successful push at ticket `pos`, when that may be
  // more than `floor` (the high watermark so far); 0 when it cannot be. Reading the head costs
  // a cache miss per push while items stream through a nearly empty ring (the consumers write
  // it on every pop), so the producers keep `head_hint_`, a past value of the head (a lower
  // bound: the head only grows), on the line of the tail they own anyway: `pos + 1 - hint`
  // bounds the size from above, and only when that bound passes `floor` is the head read (and
  // the hint refreshed). The answer stays exact: no new maximum is ever missed.
  [[nodiscard]] std::size_t size_after_push_above(std::uint64_t pos, std::size_t floor) noexcept {
    const std::uint64_t hint = head_hint_.load(std::memory_order_relaxed);
    if (hint >= pos + 1 || pos + 1 - hint <= floor) return 0;
    const std::uint64_t h = head_.load(std::memory_order_relaxed);
    head_hint_.store(h, std::memory_order_relaxed);
    const std::uint64_t n = pos + 1 > h ? pos + 1 - h : 0;
    return n > cap_ ? cap_ : static_cast<std::size_t>(n);
  }

  [[nodiscard]] std::uint64_t pushed() const noexcept {
    return tail_.load(std::memory_order_relaxed) & ~closed_bit;
  }
  [[nodiscard]] std::uint64_t popped() const noexcept {
    return head_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return cap_; }

 private:
  struct slot {
    explicit slot(std::uint64_t s) noexcept : seq(s) {}
    std::atomic<std::uint64_t> seq;
    alignas(T) unsigned char storage[sizeof(T)];
    T* ptr() noexcept { return std::launder(reinterpret_cast<T*>(storage)); }
  };

  void release_tombstone(slot& s, std::uint64_t pos) noexcept {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    s.seq.store(2 * (pos + cap_), std::memory_order_release);
  }

  // A mask when the capacity is a power of two (the common case), a division otherwise.
  std::size_t index(std::uint64_t pos) const noexcept {
    return static_cast<std::size_t>(mask_ ? (pos & mask_) : (pos % cap_));
  }

  alignas(cache_line) std::atomic<std::uint64_t> tail_{0};
  std::atomic<std::uint64_t> head_hint_{0};  // producers' past view of head_ (see above)
  alignas(cache_line) std::atomic<std::uint64_t> head_{0};
  alignas(cache_line) slot* slots_ = nullptr;
  std::size_t cap_;
  std::uint64_t mask_ = 0;  // capacity - 1 if the capacity is a power of two > 1, else 0
  alignas(cache_line) std::atomic<std::uint64_t> skipped_{0};  // tombstones passed
};

}  // namespace bp::detail

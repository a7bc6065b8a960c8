// Internal: the reorder window of an ordered bp::pipeline stage with parallelism > 1 (TBB's
// serial_in_order). Not part of the public API.
//
// Workers take items one at a time under the stage's take mutex and number them in input
// order; each deposits its results (zero or more values) under its number, and whoever
// deposits the oldest missing number becomes the emitter: it hands results downstream in
// number order until it meets a number still being worked on. The window is bounded: an item
// is taken only while its number is within `size` of the oldest not yet emitted, so one slow
// item stalls its stage after `size` items instead of letting results pile up behind it.
//
// Memory ordering: every slot, the emitted count and the emitter flag are guarded by one
// mutex; a deposit happens-before the emission of its values (both under that mutex). A taker
// waits for room in the library's one wait loop (detail/wait.hpp), without its spin: the window
// is guarded by a mutex, and retrying would fight the emitter for it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "deadline.hpp"
#include "event_count.hpp"
#include "wait.hpp"

namespace bp::detail {

template <class Out>
class reorder_window {
 public:
  explicit reorder_window(std::size_t size) : slots_(size) {}

  // Called by the holder of the stage's take mutex only (which makes next_ single-threaded):
  // waits until the next number fits in the window, or until `give_up()` holds. A taker that
  // gave up must not assign() (its slot may still hold results not yet emitted). When it has
  // to wait, the wait runs inside around(wait) (the stage times it); when not, nothing does.
  template <class GiveUp, class Around>
  void wait_for_room(GiveUp give_up, Around around) {
    auto ready = [&] {
      std::lock_guard lock(m_);
      return next_ < emitted_ + slots_.size() || give_up();
    };
    if (ready()) return;
    around([&] { (void)wait_loop(room_, forever(), ready, no_spin, always_settled{}); });
  }
  // Also under the take mutex, after wait_for_room found room: the number of the item taken.
  std::uint64_t assign() noexcept { return next_++; }

  // Deposits the results of item `seq` (swapping `values` with the slot's spare vector, so
  // vectors circulate and steady state allocates nothing), then, unless another worker is
  // emitting, emits every result that is now in order: emit(values) is called without the
  // mutex held, so a full output link blocks only this worker.
  template <class Emit>
  void deposit(std::uint64_t seq, std::vector<Out>& values, Emit emit) {
    std::unique_lock lock(m_);
    slot& s = slots_[seq % slots_.size()];
    s.values.swap(values);
    s.ready = true;
    if (emitting_) return;
    emitting_ = true;
    for (;;) {
      slot& head = slots_[emitted_ % slots_.size()];
      if (!head.ready) break;
      head.ready = false;
      head.values.swap(values);
      ++emitted_;
      lock.unlock();
      room_.notify_one();
      emit(values);
      values.clear();
      lock.lock();
    }
    emitting_ = false;
  }

  // Wakes a taker waiting for room so that it re-checks its give_up condition (which the caller
  // made true before calling).
  void wake() { room_.notify_all(); }

 private:
  struct slot {
    std::vector<Out> values;
    bool ready = false;
  };

  std::mutex m_;
  alignas(cache_line)
      event_count room_;  // notified when the oldest result is emitted, and by wake()
  std::vector<slot> slots_;
  std::uint64_t next_ = 0;     // next number to assign (take mutex)
  std::uint64_t emitted_ = 0;  // numbers below this were emitted (m_)
  bool emitting_ = false;      // a worker is emitting (m_)
};

}  // namespace bp::detail

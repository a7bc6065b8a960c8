// Internal: the thread of a bp::rs stage whose work may block (from_channel's receive,
// into_channel's send), owned by that stage instead of detached.
//
// The stage holds an owned_pump; the function the pump runs holds a shared_ptr to the stage
// and drops it as its last act, so the stage lives as long as the pump needs it (a subscriber
// may drop its subscription and still expect the elements it requested). The stage is then
// destroyed on whichever thread drops the last reference:
// - another thread: the pump has already let go of the stage and has nothing left to do but
//   return, so ~owned_pump joins it; the join is short and waits for no lock, whatever locks
//   the caller holds.
// - the pump thread itself (the pump held the last reference): a thread cannot join itself, so
//   it detaches, the one case where it does. What is left of the thread then is returning from
//   its function; it touches nothing of the stage any more.
// Either way no pump thread outlives its stage by more than its own return.
#pragma once

#include <thread>
#include <utility>

namespace bp::rs::detail {

class owned_pump {
 public:
  owned_pump() = default;
  owned_pump(const owned_pump&) = delete;
  owned_pump& operator=(const owned_pump&) = delete;

  // Runs `f` on a new thread; once. The write of the thread handle happens-before the
  // destructor, which runs after the last reference to the stage is released (the reference
  // counter's release/acquire orders them).
  template <class F>
  void start(F&& f) {
    thread_ = std::thread(std::forward<F>(f));
  }

  ~owned_pump() {
    if (!thread_.joinable()) return;
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();  // destroyed by the pump's own last reference: see above
    else
      thread_.join();
  }

 private:
  std::thread thread_;
};

}  // namespace bp::rs::detail

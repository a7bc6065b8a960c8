// Internal: resuming coroutines with a bounded stack.
//
// A task awaiting a task that completes at once, a million times in a loop (or a million levels
// deep), must not grow the stack. C++20's answer is symmetric transfer (await_suspend returning
// the next handle, which the compiler turns into a tail call), but the tail call is a quality of
// implementation: GCC 12 emits it only when optimizing (-O2) and not under ThreadSanitizer, so a
// debug or TSan build of a symmetric-transfer task overflows the stack on such chains. bp's
// runtime therefore hands control over through a per-thread trampoline that works at every
// optimization level:
//
//   resume_flat(h)   resumes h, then every coroutine that h (and its successors) handed control
//                    to, one after the other from this loop: the stack depth stays constant.
//   transfer(h)      called from an await_suspend that returns void: queues h on the innermost
//                    loop of this thread (which runs it as soon as the current coroutine has
//                    suspended), or, with no loop running or its slot taken, starts a loop.
//
// Every place bp resumes a coroutine from outside one (sync_wait, the executors' threads,
// inline_executor) goes through resume_flat, so a thread blocking in sync_wait inside a
// coroutine never waits for work queued on a loop below it.
#pragma once

#include <coroutine>
#include <utility>

namespace bp::detail {

struct trampoline {
  std::coroutine_handle<> next{};
  trampoline* outer = nullptr;
};

inline trampoline*& current_trampoline() noexcept {
  static thread_local trampoline* current = nullptr;
  return current;
}

inline void resume_flat(std::coroutine_handle<> h) {
  struct scope {
    trampoline level;
    scope() noexcept : level{{}, current_trampoline()} { current_trampoline() = &level; }
    ~scope() { current_trampoline() = level.outer; }  // also if a resumption throws
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;
  } s;
  h.resume();
  while (s.level.next) std::exchange(s.level.next, {}).resume();
}

inline void transfer(std::coroutine_handle<> h) {
  trampoline* level = current_trampoline();
  if (level != nullptr && !level->next) {
    level->next = h;
    return;
  }
  resume_flat(h);
}

}  // namespace bp::detail

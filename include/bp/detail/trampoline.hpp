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

#include "stop.hpp"

namespace bp::detail {

struct trampoline {
  std::coroutine_handle<> next{};
  trampoline* outer = nullptr;
};

inline trampoline*& current_trampoline() noexcept {
  static thread_local trampoline* current = nullptr;
  return current;
}

// The coroutines resumed here are not part of any blocking verb this thread may be running (a
// send that hands its value to a waiting coroutine resumes it inline): they run outside that
// verb's stop_scope (detail/stop.hpp), so their own waits do not watch the verb's token.
inline void resume_flat(std::coroutine_handle<> h) {
  struct scope {
    trampoline level;
    stop_slot verb_stop;
    scope() noexcept : level{{}, current_trampoline()}, verb_stop(current_stop) {
      current_trampoline() = &level;
      current_stop = stop_slot{};
    }
    ~scope() {  // also if a resumption throws
      current_trampoline() = level.outer;
      current_stop = verb_stop;
    }
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

// The primitives' trampoline: a FIFO of jobs per thread (wake an awaiter, resume a coroutine).
// A waker (a sender, a releaser, a close) may wake many awaiters, and a woken awaiter's attempt
// may wake others: each job runs after the one in progress instead of inside it, so the stack
// stays flat however long the chain, and trampoline_scope holds jobs back while the waker holds
// a lock. Resumptions go through resume_flat, so a resumed task's transfers stay bounded too.
// A unit of work for the trampoline: wake an awaiter, or resume a coroutine.
struct trampoline_job {
  trampoline_job* next_job = nullptr;
  void (*run)(trampoline_job&) noexcept = nullptr;
};

struct trampoline_queue {
  bool running = false;
  trampoline_job* head = nullptr;
  trampoline_job* tail = nullptr;

  void drain() noexcept {
    while (head != nullptr) {
      trampoline_job* j = head;
      head = j->next_job;  // read first: running may end the job's life
      if (head == nullptr) tail = nullptr;
      j->run(*j);
    }
  }
};

inline trampoline_queue& this_thread_trampoline() noexcept {
  static thread_local trampoline_queue q;
  return q;
}

// Runs `job` now, or after the job this thread is running when there is one.
inline void run_on_trampoline(trampoline_job& job) noexcept {
  trampoline_queue& q = this_thread_trampoline();
  job.next_job = nullptr;
  if (q.running) {
    (q.tail != nullptr ? q.tail->next_job : q.head) = &job;
    q.tail = &job;
    return;
  }
  q.running = true;
  job.run(job);
  q.drain();
  q.running = false;
}

// Holds back the coroutines this thread wakes until the scope ends. A primitive that serves
// waiters under its mutex opens one before taking the mutex (so it closes after the unlock): a
// coroutine resumed inline must not run while its waker holds a lock the coroutine may take.
class trampoline_scope {
 public:
  trampoline_scope() noexcept : q_(this_thread_trampoline()), outer_(q_.running) {
    q_.running = true;
  }
  trampoline_scope(const trampoline_scope&) = delete;
  trampoline_scope& operator=(const trampoline_scope&) = delete;
  ~trampoline_scope() {
    if (outer_) return;
    q_.drain();
    q_.running = false;
  }

 private:
  trampoline_queue& q_;
  bool outer_;
};

}  // namespace bp::detail

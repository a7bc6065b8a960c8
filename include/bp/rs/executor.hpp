// bp/rs/executor.hpp: where observe_on runs its deliveries.
//
//   bp::rs::executor   any callable taking a std::function<void()> and running it, now or later,
//                      on some thread (a thread pool's post, an event loop's dispatch, ...)
//   bp::rs::worker     one thread that runs the tasks given to its executor in FIFO order
//
// Example:
//
//   bp::rs::worker ui;
//   auto sub = bp::rs::subscribe(bp::rs::range(0, 100) | bp::rs::observe_on(ui.executor(), 16),
//                                [](std::int64_t v) { draw(v); });  // runs on ui's thread
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "../detail/deadline.hpp"
#include "../detail/event_count.hpp"
#include "../detail/wait.hpp"

namespace bp::rs {

// Runs the task it is given (on whatever thread it chooses). It must run every task exactly
// once and must not run two tasks of one observe_on subscription at once unless it is told to
// (observe_on schedules at most one task of a subscription at a time anyway).
using executor = std::function<void(std::function<void()>)>;

// A single thread running tasks in FIFO order.
//
// Thread safety: executor() and the executors it returns may be used from any thread. The
// executor keeps the queue alive, not the thread: tasks given after the worker was destroyed
// run on the calling thread at once, so nothing scheduled is ever lost.
//
// Allocation: a task whose callable fits std::function's small buffer (a pointer or two) costs
// no allocation beyond the queue's amortised growth.
class worker {
 public:
  worker() : state_(std::make_shared<state>()), thread_([s = state_] { s->run(); }) {}
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  // Runs every task already queued, then joins the thread.
  ~worker() {
    {
      std::lock_guard lock(state_->m);
      state_->stopping = true;
    }
    state_->ready.notify_all();
    thread_.join();
  }

  [[nodiscard]] rs::executor executor() const {
    return [s = state_](std::function<void()> task) { s->post(std::move(task)); };
  }

  // True when called from this worker's thread.
  [[nodiscard]] bool on_worker_thread() const noexcept {
    return std::this_thread::get_id() == thread_.get_id();
  }

 private:
  struct state {
    std::mutex m;
    // The worker waits for a task in the library's one wait loop (without its spin: the queue
    // is guarded by a mutex, and retrying would fight the posters for it).
    alignas(bp::detail::cache_line) bp::detail::event_count ready;
    std::deque<std::function<void()>> tasks;
    bool stopping = false;
    bool stopped = false;

    void post(std::function<void()> task) {
      {
        std::lock_guard lock(m);
        if (stopped) {
          // The worker is gone: run here rather than lose it (outside the lock).
        } else {
          tasks.push_back(std::move(task));
          task = nullptr;
        }
      }
      if (task) {
        task();
        return;
      }
      ready.notify_one();  // one load when the worker is busy
    }

    void run() {
      for (;;) {
        std::function<void()> task;
        bool stop = false;
        auto attempt = [&] {
          std::lock_guard lock(m);
          if (!tasks.empty()) {
            task = std::move(tasks.front());
            tasks.pop_front();
            return true;
          }
          if (stopping) stopped = stop = true;
          return stop;
        };
        (void)bp::detail::wait_loop(ready, bp::detail::forever(), attempt, bp::detail::no_spin,
                                    bp::detail::always_settled{});
        if (stop) return;
        task();
      }
    }
  };

  std::shared_ptr<state> state_;
  std::thread thread_;
};

}  // namespace bp::rs

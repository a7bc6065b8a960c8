// Bounding work in flight with bp::semaphore and bp::permit: 16 jobs, at most 4 at a time.
// A permit moves into the worker thread and gives its slot back when the job ends, even on
// an early return. The example checks that no more than 4 ever ran at once.
#include <bp/semaphore.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main() {
  bp::semaphore slots(4);
  std::atomic<int> running{0};
  std::atomic<int> peak{0};
  std::vector<std::thread> jobs;
  for (int i = 0; i < 16; ++i) {
    bp::permit p = slots.acquire_permit();  // waits while 4 jobs run
    if (!p) return 1;                       // only if closed
    jobs.emplace_back([p = std::move(p), &running, &peak] {
      const int now = ++running;
      int seen = peak.load();
      while (now > seen && !peak.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(2ms);  // the work
      --running;
    });  // the permit is destroyed with the lambda: the slot is free again
  }
  for (auto& j : jobs) j.join();
  std::printf("16 jobs, at most %d at a time (limit 4), %zu permits free at the end\n", peak.load(),
              slots.available());
  return peak.load() <= 4 && slots.available() == 4 ? 0 : 1;
}

// Rate limiting with bp::token_bucket and bp::leaky_bucket: the header's example, compiled.
//
// Part 1 runs on a bp::manual_clock (deterministic): a token bucket lets a burst through,
// then the rate; a leaky bucket spaces the same requests evenly; reserve() says how long to
// wait. Part 2 runs in real time: 4 threads share a 500/s bucket for 200 ms (1 s without
// --quick) and the count granted is checked against rate * time + burst.
#include <bp/rate.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  bool ok = true;

  // --- 1. semantics on a manual clock -----------------------------------------------------
  bp::manual_clock clock;
  bp::token_bucket bucket(100.0, 10, clock);  // 100 per second, bursts of 10
  bp::leaky_bucket smooth(100.0, 10, clock);  // one per 10 ms, 10 may queue
  int bucket_ok = 0, smooth_ok = 0;
  for (int i = 0; i < 20; ++i) {  // 20 requests at the same instant
    bucket_ok += bucket.try_acquire() ? 1 : 0;
    smooth_ok += smooth.try_acquire() ? 1 : 0;
  }
  std::printf("20 requests at once: token bucket lets %d through, leaky bucket %d\n", bucket_ok,
              smooth_ok);
  ok = ok && bucket_ok == 10 && smooth_ok == 1;

  auto r = bucket.reserve(3);  // the bucket is empty: 3 tokens take 30 ms
  std::printf("reserve(3) on the empty bucket: wait %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<std::chrono::milliseconds>(r.delay()).count()));
  ok = ok && r.delay() == 30ms;
  clock.advance(30ms);
  ok = ok && r.delay() == 0ms && r.wait();  // due: returns at once

  // --- 2. real time, shared by threads -------------------------------------------------------
  const auto run_for = quick ? 200ms : 1000ms;
  const double rate = 500.0;
  const auto t0 = std::chrono::steady_clock::now();
  bp::token_bucket shared(rate, 20);
  std::atomic<long> granted{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int i = 0; i < 4; ++i) {
    workers.emplace_back([&] {
      while (!stop.load()) {
        if (shared.acquire()) ++granted;  // parks between tokens, false once closed
      }
    });
  }
  std::this_thread::sleep_for(run_for);
  stop = true;
  shared.close();  // wakes the parked workers
  for (auto& w : workers) w.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double bound = rate * secs + 20;
  std::printf("4 threads, %.0f/s for %.2f s: %ld granted (bound %.0f)\n", rate, secs,
              granted.load(), bound);
  ok = ok && static_cast<double>(granted.load()) <= bound &&
       static_cast<double>(granted.load()) >= 0.5 * rate * secs;

  std::printf("%s\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}

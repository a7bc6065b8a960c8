// Test helpers shared by the unit and stress tests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

namespace bp::test {

using namespace std::chrono_literals;

// Aborts the whole test binary if it outlives `limit`: no test can hang, even one that calls a
// blocking operation without a timeout (recv(), range-for). ctest's timeout is the second net.
class watchdog {
 public:
  explicit watchdog(std::chrono::seconds limit, const char* what = "test")
      : thread_([this, limit, what] {
          std::unique_lock lock(m_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: %s did not finish within %llds, aborting\n", what,
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~watchdog() {
    {
      std::lock_guard lock(m_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Waits (polling, bounded) until `pred` holds; returns whether it did.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 5000ms) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(100us);
  }
  return true;
}

// The message of the std::invalid_argument that `f()` throws ("<nothing thrown>" if none), so a
// test can check that the message names the offending argument.
template <class F>
std::string invalid_argument_message(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "<nothing thrown>";
}

// Counts live instances: catches leaks and double destruction (rigtorp, cppcoro's counted).
struct counted {
  static inline std::atomic<long> live{0};
  static inline std::atomic<long> constructed{0};
  int value = 0;
  bool moved_from = false;

  explicit counted(int v = 0) noexcept : value(v) { ++live, ++constructed; }
  counted(const counted& o) noexcept : value(o.value) { ++live, ++constructed; }
  counted(counted&& o) noexcept : value(o.value) {
    o.moved_from = true;
    ++live, ++constructed;
  }
  counted& operator=(const counted&) = default;
  counted& operator=(counted&& o) noexcept {
    value = o.value;
    o.moved_from = true;
    return *this;
  }
  ~counted() { --live; }
};

}  // namespace bp::test

// A counted value owns no heap data: sizeof is its whole cost to a memory budget.
namespace bp {
template <class T>
struct item_size;
template <>
struct item_size<test::counted> {
  std::size_t operator()(const test::counted&) const noexcept { return sizeof(test::counted); }
};
}  // namespace bp

namespace bp::test {}  // namespace bp::test

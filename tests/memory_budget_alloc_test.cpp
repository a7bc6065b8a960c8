#include <bp/memory_budget.hpp>

#include <bp/budgeted_channel.hpp>
#include <bp/watermark_buffer.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "counting_allocator.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

TEST(MemoryBudgetAlloc, ReservationsAllocateNothing) {
  bp::memory_budget budget(1 << 20);
  auto s = budget.open_stream();
  const long before = bp::test::allocations();
  for (int i = 0; i < 100000; ++i) {
    auto r = s.try_reserve(100 + static_cast<std::size_t>(i % 1000));
    auto part = r.split(50);
    r.release(10);
    auto timed = budget.reserve_for(64, 1ms);
    auto refused = s.try_reserve(budget.capacity());  // does not fit: answers full
  }
  EXPECT_EQ(bp::test::allocations() - before, 0);
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(MemoryBudgetAlloc, WaitingAndWakingAllocateNothing) {
  bp::test::watchdog dog(60s);
  bp::memory_budget budget(1000);
  auto a = budget.open_stream();
  auto b = budget.open_stream();
  std::atomic<bool> go{false};
  std::atomic<bool> failed{false};
  constexpr int n = 20000;
  auto worker = [&](bp::memory_budget::stream& s) {
    while (!go) std::this_thread::yield();
    for (int i = 0; i < n; ++i) {
      auto r = s.reserve_for(600, 10s);  // two never fit at once: one waits
      if (!r) failed = true;
    }
  };
  std::thread ta(worker, std::ref(a));
  std::thread tb(worker, std::ref(b));
  std::this_thread::sleep_for(10ms);
  const long before = bp::test::allocations();
  go = true;
  ta.join();
  tb.join();
  EXPECT_FALSE(failed);
  EXPECT_EQ(bp::test::allocations() - before, 0) << "parks and wakes included";
}

TEST(MemoryBudgetAlloc, BudgetedChannelAllocatesNothingPerItem) {
  bp::memory_budget budget(1 << 20);
  bp::budgeted_channel<std::uint64_t> ch(budget, 64);
  const long before = bp::test::allocations();
  for (std::uint64_t i = 0; i < 100000; ++i) {
    (void)ch.try_send(i);
    if (i % 3 == 0) (void)ch.try_recv();
  }
  while (ch.try_recv()) {
  }
  EXPECT_EQ(bp::test::allocations() - before, 0);
  EXPECT_EQ(budget.in_use(), 0u);
}

TEST(MemoryBudgetAlloc, WatermarkBufferAllocatesNothingOnceGrown) {
  bp::memory_budget budget(1 << 20);
  int drains = 0;
  bp::watermark_buffer<std::uint64_t> buf(
      {.high_watermark = 256, .on_drain = [&] { ++drains; }, .budget = &budget});
  for (std::uint64_t i = 0; i < 100; ++i) (void)buf.write(i);  // grows the ring to 128 slots
  while (buf.try_read()) {
  }
  const long before = bp::test::allocations();
  for (std::uint64_t lap = 0; lap < 1000; ++lap) {
    for (std::uint64_t i = 0; i < 100; ++i) (void)buf.write(i);
    while (buf.try_read()) {
    }
  }
  EXPECT_EQ(bp::test::allocations() - before, 0);
  EXPECT_GT(drains, 1000);
}

}  // namespace

#include <bp/channel.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "test_util.hpp"

// The replacement operators below pair malloc/free themselves; GCC cannot see that once they
// are inlined into callers and warns about "mismatched" new/free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// A counting global allocator: this binary counts every heap allocation, so the hot paths can be
// shown to allocate nothing per item (the ring is allocated once, in the constructor).
namespace {
std::atomic<long> g_allocations{0};
}

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto al = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(al, (n + al - 1) / al * al)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace {

using namespace std::chrono_literals;

struct payload {
  std::uint64_t a, b, c;
};

class AllocPerPolicy : public ::testing::TestWithParam<bp::overflow> {};
INSTANTIATE_TEST_SUITE_P(Channel, AllocPerPolicy,
                         ::testing::Values(bp::overflow::block, bp::overflow::drop_newest,
                                           bp::overflow::drop_oldest, bp::overflow::reject),
                         [](const auto& info) { return std::string(bp::to_string(info.param)); });

TEST_P(AllocPerPolicy, SingleThreadedHotPathAllocatesNothing) {
  bp::channel<payload> ch(64, GetParam(), [](payload&&) {});
  const long before = g_allocations.load();
  for (std::uint64_t i = 0; i < 100000; ++i) {
    (void)ch.try_send(payload{i, i, i});
    if (i % 3 == 0) (void)ch.try_recv();
  }
  while (ch.try_recv()) {
  }
  EXPECT_EQ(g_allocations.load() - before, 0);
}

TEST(ChannelAlloc, BlockingProducerConsumerAllocatesNothingPerItem) {
  bp::test::watchdog dog(60s);
  bp::channel<std::uint64_t> ch(16);
  std::atomic<bool> go{false};
  constexpr std::uint64_t n = 200000;
  std::thread producer([&] {
    while (!go) std::this_thread::yield();
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(ch.send_for(i, 10s), bp::status::ok);
  });
  std::thread consumer([&] {
    while (!go) std::this_thread::yield();
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(ch.recv_for(10s), i);
  });
  std::this_thread::sleep_for(10ms);  // thread start-up allocations happen before we count
  const long before = g_allocations.load();
  go = true;
  producer.join();
  consumer.join();
  EXPECT_EQ(g_allocations.load() - before, 0) << "parks and wakes included";
}

TEST(ChannelAlloc, RendezvousAllocatesNothingPerItem) {
  bp::test::watchdog dog(60s);
  bp::channel<std::uint64_t> ch(0);
  std::atomic<bool> go{false};
  constexpr std::uint64_t n = 5000;
  std::thread producer([&] {
    while (!go) std::this_thread::yield();
    for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(ch.send_for(i, 10s), bp::status::ok);
  });
  std::this_thread::sleep_for(10ms);
  const long before = g_allocations.load();
  go = true;
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(ch.recv_for(10s), i);
  producer.join();
  EXPECT_EQ(g_allocations.load() - before, 0);
}

}  // namespace

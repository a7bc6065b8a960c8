#include <bp/channel.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>

#include "counting_allocator.hpp"
#include "test_util.hpp"

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
  const long before = bp::test::allocations();
  for (std::uint64_t i = 0; i < 100000; ++i) {
    (void)ch.try_send(payload{i, i, i});
    if (i % 3 == 0) (void)ch.try_recv();
  }
  while (ch.try_recv()) {
  }
  EXPECT_EQ(bp::test::allocations() - before, 0);
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
  const long before = bp::test::allocations();
  go = true;
  producer.join();
  consumer.join();
  EXPECT_EQ(bp::test::allocations() - before, 0) << "parks and wakes included";
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
  const long before = bp::test::allocations();
  go = true;
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(ch.recv_for(10s), i);
  producer.join();
  EXPECT_EQ(bp::test::allocations() - before, 0);
}

}  // namespace

// bp::rs::on: observe_on delivering on the runtime's executors (a thread pool, a run loop),
// in order and on the executor's threads.
#include <bp/rs/on.hpp>

#include <gtest/gtest.h>
#include <bp/streams.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

class rs_on_test : public ::testing::Test {
  bp::test::watchdog watchdog_{60s, "rs_on_test"};
};

TEST_F(rs_on_test, ObserveOnThreadPool) {
  bp::thread_pool pool(2);
  std::vector<std::int64_t> got;  // observe_on delivers one at a time: no lock needed
  std::atomic<bool> all_on_pool{true};
  auto h = bp::rs::subscribe(
      bp::rs::range(0, 10'000) | bp::rs::observe_on(bp::rs::on(pool.get_executor()), 16),
      [&](std::int64_t v) {
        if (!pool.running_in_this_thread()) all_on_pool = false;
        got.push_back(v);
      });
  ASSERT_TRUE(h.wait_for(30s));
  ASSERT_EQ(got.size(), 10'000u);
  for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<std::int64_t>(i));
  EXPECT_TRUE(all_on_pool.load());
}

TEST_F(rs_on_test, ObserveOnRunLoop) {
  bp::run_loop loop;
  const auto loop_thread = std::this_thread::get_id();
  std::vector<std::int64_t> got;
  bool all_on_loop = true;
  bool completed = false;
  auto h = bp::rs::subscribe(
      bp::rs::range(0, 1000) | bp::rs::observe_on(bp::rs::on(loop.get_executor()), 8),
      [&](std::int64_t v) {
        all_on_loop = all_on_loop && std::this_thread::get_id() == loop_thread;
        got.push_back(v);
      },
      {.on_complete = [&] {
        completed = true;
        loop.finish();
      }});
  loop.run();  // this thread is the loop: deliveries run here until on_complete finishes it
  EXPECT_TRUE(completed);
  EXPECT_TRUE(h.wait_for(5s));
  ASSERT_EQ(got.size(), 1000u);
  EXPECT_EQ(got.back(), 999);
  EXPECT_TRUE(all_on_loop);
}

TEST_F(rs_on_test, InlineExecutor) {
  std::int64_t sum = 0;
  auto h = bp::rs::subscribe(
      bp::rs::range(0, 100) | bp::rs::observe_on(bp::rs::on(bp::inline_executor{})),
      [&](std::int64_t v) { sum += v; });
  EXPECT_TRUE(h.wait_for(5s));
  EXPECT_EQ(sum, 4950);
}

}  // namespace

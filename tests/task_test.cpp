// bp::task, sync_wait, when_all and async_scope: values, void, references, exceptions, stack
// depth of synchronous chains, ordering and failure of when_all, owned fire-and-forget work.
// Every test runs under a watchdog: a lost wake-up aborts instead of hanging.
#include <bp/task.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <variant>
#include <vector>

#include "counting_allocator.hpp"
#include "cpu_time.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;

class task_test : public ::testing::Test {
  bp::test::watchdog watchdog_{60s, "task_test"};
};

bp::task<int> value(int v) {
  co_return v;
}
bp::task<void> nothing() {
  co_return;
}
bp::task<int> fail(std::string what) {
  throw std::runtime_error(what);
  co_return 0;
}
bp::task<void> fail_void() {
  throw std::logic_error("void");
  co_return;
}

TEST_F(task_test, Values) {
  EXPECT_EQ(bp::sync_wait(value(7)), 7);
  auto add = []() -> bp::task<int> { co_return co_await value(2) + co_await value(3); };
  EXPECT_EQ(bp::sync_wait(add()), 5);
  auto str = []() -> bp::task<std::string> { co_return std::string(100, 'x'); };
  EXPECT_EQ(bp::sync_wait(str()).size(), 100u);
}

TEST_F(task_test, MoveOnlyResult) {
  auto make = []() -> bp::task<std::unique_ptr<int>> { co_return std::make_unique<int>(9); };
  auto outer = [&]() -> bp::task<int> { co_return *(co_await make()); };
  EXPECT_EQ(bp::sync_wait(outer()), 9);
  static_assert(!std::is_copy_constructible_v<bp::task<int>>);
  static_assert(std::is_nothrow_move_constructible_v<bp::task<int>>);
}

TEST_F(task_test, Void) {
  int ran = 0;
  auto t = [&]() -> bp::task<void> {
    co_await nothing();
    ++ran;
  };
  bp::sync_wait(t());
  EXPECT_EQ(ran, 1);
}

TEST_F(task_test, References) {
  int x = 1;
  auto ref = [&]() -> bp::task<int&> { co_return x; };
  int& r = bp::sync_wait(ref());
  EXPECT_EQ(&r, &x);
  auto through = [&]() -> bp::task<int&> { co_return co_await ref(); };
  bp::sync_wait(through()) = 5;
  EXPECT_EQ(x, 5);
}

TEST_F(task_test, Lazy) {
  bool started = false;
  auto t = [&]() -> bp::task<void> {
    started = true;
    co_return;
  };
  {
    auto never = t();
    EXPECT_TRUE(never.valid());
    EXPECT_FALSE(started);
  }  // destroyed without running
  EXPECT_FALSE(started);
  auto once = t();
  auto moved = std::move(once);
  EXPECT_FALSE(once.valid());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
  bp::sync_wait(std::move(moved));
  EXPECT_TRUE(started);
}

TEST_F(task_test, ExceptionsPropagate) {
  EXPECT_THROW(bp::sync_wait(fail("boom")), std::runtime_error);
  EXPECT_THROW(bp::sync_wait(fail_void()), std::logic_error);
  auto catches = []() -> bp::task<std::string> {
    try {
      co_await fail("inner");
    } catch (const std::runtime_error& e) {
      co_return e.what();
    }
    co_return "not thrown";
  };
  EXPECT_EQ(bp::sync_wait(catches()), "inner");
  auto rethrows = []() -> bp::task<int> { co_return co_await fail("through") + 1; };
  EXPECT_THROW(bp::sync_wait(rethrows()), std::runtime_error);
}

// A million synchronously completing tasks, awaited in a loop and a million levels deep: the
// trampoline keeps the stack flat in debug and sanitizer builds too.
TEST_F(task_test, LongSynchronousLoopDoesNotGrowTheStack) {
  auto loop = []() -> bp::task<long> {
    long sum = 0;
    for (int i = 0; i < 1'000'000; ++i) sum += co_await value(1);
    co_return sum;
  };
  EXPECT_EQ(bp::sync_wait(loop()), 1'000'000);
}

bp::task<long> depth(int n) {
  if (n == 0) co_return 0;
  co_return co_await depth(n - 1) + 1;
}

TEST_F(task_test, DeepSynchronousRecursionDoesNotGrowTheStack) {
  EXPECT_EQ(bp::sync_wait(depth(1'000'000)), 1'000'000);
}

TEST_F(task_test, ResumesOnTheThreadThatCompletes) {
  bp::thread_pool pool(2);
  auto t = [&]() -> bp::task<bool> {
    co_await bp::schedule(pool.get_executor());
    co_return pool.running_in_this_thread();
  };
  auto outer = [&]() -> bp::task<bool> {
    const bool inner_on_pool = co_await t();
    co_return inner_on_pool&& pool.running_in_this_thread();  // the awaiter followed it
  };
  EXPECT_TRUE(bp::sync_wait(outer()));
}

struct ready_eleven {
  static bool await_ready() noexcept { return true; }
  static void await_suspend(std::coroutine_handle<>) noexcept {}
  static int await_resume() noexcept { return 11; }
};

TEST_F(task_test, AwaitsForeignAwaitables) {
  EXPECT_EQ(bp::sync_wait(ready_eleven{}), 11);
  bp::sync_wait(std::suspend_never{});
  bp::thread_pool pool(1);
  auto on_pool = [&]() -> bp::task<int> {
    co_await pool.get_executor().schedule();
    co_return 3;
  };
  EXPECT_EQ(bp::sync_wait(on_pool()), 3);
}

TEST_F(task_test, SyncWaitParksWithoutCpu) {
  bp::thread_pool pool(1);
  auto slow = [&]() -> bp::task<int> {
    co_await bp::schedule(pool.get_executor());
    std::this_thread::sleep_for(300ms);
    co_return 1;
  };
  const double t0 = bp::test::cpu_seconds();
  EXPECT_EQ(bp::sync_wait(slow()), 1);
  EXPECT_LT(bp::test::cpu_seconds() - t0, 0.05);  // 300 ms of waiting; a spin would burn all of it
}

TEST_F(task_test, SyncWaitWithRunLoop) {
  bp::run_loop loop;
  std::thread::id ran_on;
  auto t = [&]() -> bp::task<int> {
    co_await bp::schedule(loop.get_executor());
    ran_on = std::this_thread::get_id();
    co_return 4;
  };
  EXPECT_EQ(bp::sync_wait(loop, t()), 4);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  loop.finish();  // a pending finish() is consumed, not a reason to spin or return early
  EXPECT_EQ(bp::sync_wait(loop, t()), 4);
}

TEST_F(task_test, ExceptionFromAnotherThread) {
  bp::thread_pool pool(1);
  auto t = [&]() -> bp::task<int> {
    co_await bp::schedule(pool.get_executor());
    throw std::out_of_range("on the pool");
    co_return 0;
  };
  EXPECT_THROW(bp::sync_wait(t()), std::out_of_range);
}

// sync_wait inside a coroutine runs its own trampoline level: the inner work does not wait
// for the outer coroutine to suspend.
TEST_F(task_test, SyncWaitInsideACoroutine) {
  auto outer = []() -> bp::task<long> {
    const long inner = bp::sync_wait(depth(1000));
    co_return inner + co_await depth(10);
  };
  EXPECT_EQ(bp::sync_wait(outer()), 1010);
}

TEST_F(task_test, WhenAllReturnsInArgumentOrder) {
  auto [a, v, b] = bp::sync_wait(bp::when_all(value(1), nothing(), value(2)));
  EXPECT_EQ(a, 1);
  EXPECT_EQ(v, std::monostate{});
  EXPECT_EQ(b, 2);

  int target = 0;
  auto ref = [&]() -> bp::task<int&> { co_return target; };
  auto [r] = bp::sync_wait(bp::when_all(ref()));
  EXPECT_EQ(&r, &target);

  // Completing in reverse order on a pool: results still in argument order.
  bp::thread_pool pool(3);
  auto after = [&](int v, std::chrono::milliseconds d) -> bp::task<int> {
    co_await bp::schedule(pool.get_executor());
    std::this_thread::sleep_for(d);
    co_return v;
  };
  auto [x, y, z] = bp::sync_wait(bp::when_all(after(1, 60ms), after(2, 30ms), after(3, 0ms)));
  EXPECT_EQ(std::tie(x, y, z), std::make_tuple(1, 2, 3));
}

TEST_F(task_test, WhenAllRunsConcurrently) {
  // Each child waits for the other to have started: sequential awaiting would never finish.
  bp::thread_pool pool(2);
  std::atomic<int> started{0};
  auto meet = [&]() -> bp::task<bool> {
    co_await bp::schedule(pool.get_executor());
    started.fetch_add(1);
    co_return bp::test::eventually([&] { return started.load() == 2; });
  };
  auto [a, b] = bp::sync_wait(bp::when_all(meet(), meet()));
  EXPECT_TRUE(a && b);
}

TEST_F(task_test, WhenAllRethrowsTheFirstFailureAfterAllComplete) {
  int completed = 0;
  auto counted = [&](int v) -> bp::task<int> {
    ++completed;
    co_return v;
  };
  try {
    (void)bp::sync_wait(bp::when_all(counted(1), fail("first"), fail_void(), counted(2)));
    ADD_FAILURE() << "nothing thrown";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "first");
  }
  EXPECT_EQ(completed, 2);
}

TEST_F(task_test, WhenAllVector) {
  std::vector<bp::task<int>> ts;
  for (int i = 0; i < 100; ++i) ts.push_back(value(i));
  const auto out = bp::sync_wait(bp::when_all(std::move(ts)));
  ASSERT_EQ(out.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(out[static_cast<std::size_t>(i)], i);

  int ran = 0;
  auto inc = [&]() -> bp::task<void> {
    ++ran;
    co_return;
  };
  std::vector<bp::task<void>> vs;
  for (int i = 0; i < 10; ++i) vs.push_back(inc());
  bp::sync_wait(bp::when_all(std::move(vs)));
  EXPECT_EQ(ran, 10);

  EXPECT_TRUE(bp::sync_wait(bp::when_all(std::vector<bp::task<int>>{})).empty());
  std::vector<bp::task<int>> bad;
  bad.push_back(value(1));
  bad.push_back(fail("vector"));
  EXPECT_THROW((void)bp::sync_wait(bp::when_all(std::move(bad))), std::runtime_error);
}

TEST_F(task_test, AwaitingAllocatesOnlyFrames) {
  auto loop = []() -> bp::task<long> {
    long sum = 0;
    for (int i = 0; i < 1000; ++i) sum += co_await value(1);
    co_return sum;
  };
  auto t = loop();
  const long before = bp::test::allocations();
  EXPECT_EQ(bp::sync_wait(std::move(t)), 1000);
  // 1000 child frames at most (fewer when the compiler elides them), one sync_wait driver.
  EXPECT_LE(bp::test::allocations() - before, 1001);
}

TEST_F(task_test, AsyncScopeOwnsSpawnedWork) {
  std::atomic<int> ran{0};
  {
    bp::thread_pool pool(2);
    bp::async_scope scope;
    auto work = [&]() -> bp::task<void> {
      ran.fetch_add(1, std::memory_order_relaxed);
      co_return;
    };
    for (int i = 0; i < 10'000; ++i) scope.spawn(pool.get_executor(), work());
    scope.join();
    EXPECT_EQ(ran.load(), 10'000);
    EXPECT_EQ(scope.active(), 0u);
  }
  bp::async_scope inline_scope;
  inline_scope.spawn(value(1));  // any awaitable; the result is dropped
  EXPECT_EQ(inline_scope.active(), 0u);
}

TEST_F(task_test, AsyncScopeDestructorWaits) {
  std::atomic<int> ran{0};
  bp::thread_pool pool(2);
  {
    bp::async_scope scope;
    auto slow = [&]() -> bp::task<void> {
      std::this_thread::sleep_for(20ms);
      ran.fetch_add(1);
      co_return;
    };
    for (int i = 0; i < 4; ++i) scope.spawn(pool.get_executor(), slow());
  }  // no join(): the destructor waits, and the spawned frames are already gone
  EXPECT_EQ(ran.load(), 4);
}

TEST_F(task_test, AsyncScopeNestedSpawnAndFailure) {
  bp::thread_pool pool(2);
  bp::async_scope scope;
  std::atomic<int> ran{0};
  auto leaf = [&]() -> bp::task<void> {
    ran.fetch_add(1);
    co_return;
  };
  auto parent = [&]() -> bp::task<void> {
    for (int i = 0; i < 10; ++i) scope.spawn(pool.get_executor(), leaf());
    co_return;
  };
  for (int i = 0; i < 10; ++i) scope.spawn(pool.get_executor(), parent());
  scope.spawn(pool.get_executor(), fail_void());
  EXPECT_THROW(scope.join(), std::logic_error);
  EXPECT_EQ(ran.load(), 100);
  scope.join();  // the failure was reported once
}

}  // namespace

#include <bp/status.hpp>

#include <gtest/gtest.h>
#include <bp/rate.hpp>
#include <bp/semaphore.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <vector>

#include <sstream>

TEST(Status, NamesEveryAnswer) {
  EXPECT_EQ(bp::to_string(bp::status::ok), "ok");
  EXPECT_EQ(bp::to_string(bp::status::dropped), "dropped");
  EXPECT_EQ(bp::to_string(bp::status::full), "full");
  EXPECT_EQ(bp::to_string(bp::status::closed), "closed");
  EXPECT_EQ(bp::to_string(bp::status::timeout), "timeout");
  EXPECT_EQ(bp::to_string(static_cast<bp::status>(42)), "invalid");
}

TEST(Status, NamesEveryPolicy) {
  EXPECT_EQ(bp::to_string(bp::overflow::block), "block");
  EXPECT_EQ(bp::to_string(bp::overflow::drop_newest), "drop_newest");
  EXPECT_EQ(bp::to_string(bp::overflow::drop_oldest), "drop_oldest");
  EXPECT_EQ(bp::to_string(bp::overflow::reject), "reject");
  std::ostringstream os;
  os << bp::overflow::reject << ' ' << bp::status::timeout;
  EXPECT_EQ(os.str(), "reject timeout");
}

TEST(Result, TestsTrueOnlyForOkAndKeepsTheStatus) {
  const bp::result ok = bp::status::ok;
  const bp::result timeout = bp::status::timeout;
  EXPECT_TRUE(ok);
  EXPECT_FALSE(timeout);
  const bool as_bool = timeout;  // code written against a bool answer still compiles
  EXPECT_FALSE(as_bool);
  EXPECT_EQ(timeout, bp::status::timeout);
  EXPECT_EQ(bp::status::timeout, timeout);
  EXPECT_NE(timeout, bp::status::closed);
  const bp::status s = timeout;
  EXPECT_EQ(s, bp::status::timeout);
  switch (timeout.value()) {
    case bp::status::timeout:
      break;
    default:
      ADD_FAILURE() << "value() is not the status";
  }
  std::ostringstream os;
  os << timeout << ' ' << ok;
  EXPECT_EQ(os.str(), "timeout ok");
}

// Code written when these verbs answered bool keeps compiling and meaning the same.
TEST(Result, CodeWrittenForABoolAnswerStillWorks) {
  using namespace std::chrono_literals;
  bp::token_bucket tb(100.0, 2);
  bp::semaphore sem(1);
  EXPECT_EQ(tb.try_acquire(), true);
  EXPECT_EQ(true, tb.try_acquire());
  EXPECT_FALSE(tb.try_acquire());
  bool b = sem.try_acquire();
  EXPECT_TRUE(b);
  std::vector<bool> v;
  v.push_back(sem.try_acquire());
  EXPECT_FALSE(v.back());
  int n = 0;
  n += sem.try_acquire();
  EXPECT_EQ(n, 0);
  std::atomic<bool> a{true};
  a = sem.try_acquire();
  EXPECT_FALSE(a.load());
  auto f = [&]() -> bool { return sem.try_acquire(); };
  EXPECT_FALSE(f());
  std::vector<int> xs(3);
  EXPECT_EQ(std::count_if(xs.begin(), xs.end(), [&](int) { return sem.try_acquire(); }), 0);
  EXPECT_FALSE(sem.acquire_for(1, 1ms));
  EXPECT_EQ(sem.acquire_for(1, 1ms), bp::status::timeout);
  tb.close();
  EXPECT_EQ(tb.acquire(), false);
  EXPECT_EQ(tb.acquire(), bp::status::closed);
}

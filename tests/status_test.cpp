#include <bp/status.hpp>

#include <gtest/gtest.h>

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

#include <bp/clock.hpp>

#include <gtest/gtest.h>

#include <stdexcept>

namespace {

using namespace std::chrono_literals;

TEST(ManualClock, MovesOnlyWhenTold) {
  bp::manual_clock clock(5s);
  EXPECT_EQ(clock.now(), 5s);
  clock.advance(250ms);
  EXPECT_EQ(clock.now(), 5250ms);
  clock.advance_to(4s);  // never backwards
  EXPECT_EQ(clock.now(), 5250ms);
  clock.advance_to(6s);
  EXPECT_EQ(clock.now_ns(), 6'000'000'000);
  EXPECT_THROW(clock.advance(-1ns), std::invalid_argument);
}

TEST(ClockRef, SteadyByDefaultOrManual) {
  const bp::clock_ref steady;
  EXPECT_FALSE(steady.is_manual());
  const auto a = steady.now_ns();
  EXPECT_GE(steady.now_ns(), a);

  bp::manual_clock clock;
  const bp::clock_ref manual = clock;
  EXPECT_TRUE(manual.is_manual());
  EXPECT_EQ(manual.manual(), &clock);
  clock.advance(1ms);
  EXPECT_EQ(manual.now_ns(), 1'000'000);
}

}  // namespace

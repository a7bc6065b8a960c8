#include <bp/grant.hpp>

#include <gtest/gtest.h>

#include <utility>

namespace {

int given_back = 0;

struct counted_traits {
  struct held {
    int* pool = nullptr;
    int n = 0;
  };
  static bool holds(const held& h) noexcept { return h.pool != nullptr; }
  static void give_back(held& h) noexcept {
    *h.pool += h.n;
    ++given_back;
  }
};

class counted : public bp::grant<counted_traits> {
 public:
  counted() noexcept = default;
  counted(int* pool, int n) noexcept : grant(held_type{pool, n}, bp::status::ok) {}
  explicit counted(bp::status why) noexcept : grant(why) {}
  void done() noexcept { give_back(); }
  int keep() noexcept { return release_held().n; }
};

}  // namespace

TEST(Grant, GivesBackOnceOnDestructionAndCarriesTheAnswer) {
  given_back = 0;
  int pool = 0;
  {
    counted g(&pool, 3);
    EXPECT_TRUE(g);
    EXPECT_EQ(g.answer(), bp::status::ok);
  }
  EXPECT_EQ(pool, 3);
  EXPECT_EQ(given_back, 1);
  counted refused(bp::status::timeout);
  EXPECT_FALSE(refused);
  EXPECT_EQ(refused.answer(), bp::status::timeout);
}

TEST(Grant, MovesLeaveTheSourceEmptyAndAssignmentGivesBackTheOldOne) {
  given_back = 0;
  int pool = 0;
  counted a(&pool, 1);
  counted b(std::move(a));
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(b);
  counted c(&pool, 10);
  c = std::move(b);  // c's 10 go back, b's 1 moves in
  EXPECT_EQ(pool, 10);
  c.done();
  EXPECT_EQ(pool, 11);
  EXPECT_FALSE(c);
  c.done();  // idempotent
  EXPECT_EQ(given_back, 2);
  counted kept(&pool, 5);
  EXPECT_EQ(kept.keep(), 5);
  EXPECT_FALSE(kept);
  EXPECT_EQ(pool, 11);  // kept: nothing given back
}

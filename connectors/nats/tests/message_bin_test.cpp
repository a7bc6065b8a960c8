// message_bin: finished nats.c messages are freed in runs (bounded by a count and by bytes),
// on flush and when the bin goes; never lost (LeakSanitizer would report a message the bin
// kept), never freed twice, from many threads at once.
#include <cstddef>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nats/nats.h>

#include "connection.hpp"

namespace {

using bp::nats::detail::message_bin;

// A connection opens nats.c's library (and its collector thread) before any message exists;
// here no connection is made, so the tests open it themselves.
class message_bin_test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(nats_Open(-1), NATS_OK); }
};

natsMsg* message(std::size_t bytes) {
  const std::string payload(bytes, 'x');
  natsMsg* m = nullptr;
  EXPECT_EQ(
      natsMsg_Create(&m, "bin.test", nullptr, payload.data(), static_cast<int>(payload.size())),
      NATS_OK);
  return m;
}

TEST_F(message_bin_test, frees_a_run_once_it_holds_max_run_messages) {
  message_bin bin;
  for (std::size_t i = 1; i < message_bin::max_run; ++i) {
    bin.put(message(16));
    ASSERT_EQ(bin.held(), i);
  }
  bin.put(message(16));
  EXPECT_EQ(bin.held(), 0u);
}

TEST_F(message_bin_test, frees_a_run_once_it_holds_max_bytes) {
  message_bin bin;
  bin.put(message(16));
  bin.put(message(message_bin::max_bytes / 2));
  EXPECT_EQ(bin.held(), 2u);
  bin.put(message(message_bin::max_bytes / 2));
  EXPECT_EQ(bin.held(), 0u) << "a large message is not held back with the ones before it";
  bin.put(message(message_bin::max_bytes));
  EXPECT_EQ(bin.held(), 0u) << "a message of max_bytes alone is freed at once";
}

TEST_F(message_bin_test, flush_frees_what_it_holds_and_null_is_nothing) {
  message_bin bin;
  bin.put(nullptr);
  EXPECT_EQ(bin.held(), 0u);
  bin.put(message(8));
  bin.put(message(8));
  bin.flush();
  EXPECT_EQ(bin.held(), 0u);
  bin.flush();  // nothing held: nothing to do
  bin.put(message(8));
  // The bin's destructor frees the last one (LeakSanitizer checks).
}

TEST_F(message_bin_test, many_threads_put_at_once) {
  message_bin bin;
  constexpr int threads = 4, per_thread = 5000;
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&bin, t] {
      for (int i = 0; i < per_thread; ++i) {
        bin.put(message(static_cast<std::size_t>(8 + (i * 7 + t) % 300)));
        if (i % 1000 == 999) bin.flush();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_LT(bin.held(), message_bin::max_run);
}

}  // namespace

#include <bp/nats/sender.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <bp/nats/receiver.hpp>

#include "nats_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using bp::nats::receiver;
using bp::nats::sender;

class sender_test : public bp::test::nats_test {};

std::vector<std::string> drain(receiver<std::string>& rx) {
  std::vector<std::string> out;
  while (auto v = rx.recv_for(500ms)) out.push_back(*v);
  return out;
}

// --- invalid arguments: std::invalid_argument naming the field, before any network -----------

TEST(sender_options, invalid_arguments_name_the_field) {
  auto expect_field = [](bp::nats::options o, const std::string& field) {
    try {
      sender<std::string> tx(o);
      FAIL() << "no exception for " << field;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    }
  };
  bp::nats::options ok{.stream = "S", .subject = "s", .capacity = 1};
  auto o = ok;
  o.stream = "a.b";
  expect_field(o, "stream");
  o = ok;
  o.subject = "";
  expect_field(o, "subject");
  o = ok;
  o.capacity = 0;
  expect_field(o, "capacity");
  o = ok;
  o.servers = {};
  expect_field(o, "servers");
  o = ok;
  o.policy = static_cast<overflow>(42);
  expect_field(o, "policy");
  o = ok;
  o.policy = overflow::reject;
  o.max_in_flight = 8;
  expect_field(o, "max_in_flight");
  o = ok;
  o.fetch_batch = 0;
  expect_field(o, "fetch_batch");
  o = ok;
  o.max_ack_pending = 0;
  expect_field(o, "max_ack_pending");
  o = ok;
  o.ack_wait = 0ms;
  expect_field(o, "ack_wait");
  o = ok;
  o.retry_backoff_max = 0ms;
  expect_field(o, "retry_backoff_max");
}

// --- bad input: a clear bp::nats::error, never a hang ------------------------------------------

TEST(sender_errors, unreachable_server_fails_fast) {
  bp::test::watchdog dog(30s);
  bp::nats::options o{.servers = {"nats://127.0.0.1:" + std::to_string(bp::test::free_port())},
                      .connect_timeout = 1s,
                      .stream = "S",
                      .subject = "s",
                      .capacity = 1};
  const auto t0 = std::chrono::steady_clock::now();
  try {
    sender<std::string> tx(o);
    FAIL() << "connected to nothing";
  } catch (const bp::nats::error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot connect"), std::string::npos) << e.what();
    EXPECT_NE(e.status(), 0);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST_F(sender_test, missing_stream_with_bind_is_a_clear_error) {
  auto o = opts(1, overflow::block, "NOPE");
  o.setup = bp::nats::stream_setup::bind;
  try {
    sender<std::string> tx(o);
    FAIL() << "bound to a missing stream";
  } catch (const bp::nats::error& e) {
    EXPECT_NE(std::string(e.what()).find("'NOPE' not found"), std::string::npos) << e.what();
    EXPECT_EQ(e.js_code(), 10059);
  }
}

TEST_F(sender_test, bind_with_a_mismatched_policy_is_a_clear_error) {
  sender<std::string> creator(opts(4, overflow::drop_oldest));
  auto o = opts(4, overflow::block);
  o.setup = bp::nats::stream_setup::bind;
  EXPECT_THROW(sender<std::string> tx(o), bp::nats::error);
  o.policy = overflow::drop_oldest;
  sender<std::string> tx(o);
  EXPECT_EQ(tx.capacity(), 4u);
}

TEST_F(sender_test, oversize_message_is_a_clear_error) {
  auto o = opts(10, overflow::block);
  o.max_message_size = 100;
  sender<std::string> tx(o);
  EXPECT_EQ(tx.send(std::string(50, 'x')), status::ok);
  try {
    (void)tx.send(std::string(1000, 'x'));
    FAIL() << "a 1000-byte message went into a stream of max 100";
  } catch (const bp::nats::error& e) {
    EXPECT_NE(std::string(e.what()).find("1000 bytes"), std::string::npos) << e.what();
  }
  // Above the server's max_payload (1 MB by default).
  EXPECT_THROW((void)tx.send(std::string(2 << 20, 'x')), bp::nats::error);
  EXPECT_EQ(tx.stats().sent, 1u);
}

TEST_F(sender_test, oversize_message_fails_at_once_even_when_the_window_is_full) {
  auto o = opts(2, overflow::block);
  o.max_in_flight = 2;
  sender<std::string> tx(o);
  // Two fill the stream, two more are refused by the server and hold the window's slots.
  for (int i = 0; i < 4; ++i) ASSERT_EQ(tx.send_for(std::to_string(i), 2s), status::ok);
  const auto t0 = std::chrono::steady_clock::now();
  try {
    (void)tx.send_for(std::string(2 << 20, 'x'), 5s);
    FAIL() << "a message above the server's max_payload was accepted";
  } catch (const bp::nats::error& e) {
    EXPECT_NE(std::string(e.what()).find("max_payload"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "it waited for room first";
}

// --- each strategy's answers --------------------------------------------------------------------

TEST_F(sender_test, reject_answers_full_at_once_and_keeps_the_first) {
  sender<std::string> tx(opts(3, overflow::reject));
  for (int i = 0; i < 3; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(tx.send("3"), status::full);
  EXPECT_EQ(tx.try_send("4"), status::full);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  EXPECT_EQ(tx.size(), 3u);
  EXPECT_EQ(tx.stats().rejected, 2u);
  receiver<std::string> rx(opts(3, overflow::reject));
  EXPECT_EQ(drain(rx), (std::vector<std::string>{"0", "1", "2"}));
}

TEST_F(sender_test, drop_newest_answers_dropped) {
  sender<std::string> tx(opts(2, overflow::drop_newest));
  EXPECT_EQ(tx.send("a"), status::ok);
  EXPECT_EQ(tx.send("b"), status::ok);
  EXPECT_EQ(tx.send("c"), status::dropped);
  EXPECT_EQ(tx.stats().dropped, 1u);
  receiver<std::string> rx(opts(2, overflow::drop_newest));
  EXPECT_EQ(drain(rx), (std::vector<std::string>{"a", "b"}));
}

TEST_F(sender_test, drop_oldest_evicts_and_the_receiver_counts_it) {
  sender<std::string> tx(opts(3, overflow::drop_oldest));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  EXPECT_EQ(tx.size(), 3u);
  receiver<std::string> rx(opts(3, overflow::drop_oldest));
  EXPECT_EQ(drain(rx), (std::vector<std::string>{"7", "8", "9"}));
  EXPECT_EQ(rx.stats().evicted, 7u);
  EXPECT_EQ(rx.stats().received, 3u);
}

TEST_F(sender_test, block_try_send_is_full_and_send_for_times_out) {
  sender<std::string> tx(opts(2, overflow::block));
  EXPECT_EQ(tx.send("a"), status::ok);
  EXPECT_EQ(tx.send("b"), status::ok);
  EXPECT_EQ(tx.try_send("c"), status::full);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(tx.send_for("c", 300ms), status::timeout);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 300ms);
  EXPECT_LT(waited, 2s);
  EXPECT_EQ(tx.size(), 2u);
  // A receiver frees a slot: the waiting send gets in.
  receiver<std::string> rx(opts(2, overflow::block));
  std::thread consumer([&] {
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(rx.recv_for(5s), "a");
  });
  EXPECT_EQ(tx.send_for("c", 10s), status::ok);
  consumer.join();
  EXPECT_EQ(drain(rx), (std::vector<std::string>{"b", "c"}));
  EXPECT_GE(tx.stats().send_waits, 2u);
}

TEST_F(sender_test, send_after_close_answers_closed) {
  sender<std::string> tx(opts(4, overflow::block));
  EXPECT_EQ(tx.send("a"), status::ok);
  EXPECT_EQ(tx.close(), status::ok);
  EXPECT_TRUE(tx.is_closed());
  EXPECT_EQ(tx.close(), status::closed);  // idempotent
  EXPECT_EQ(tx.send("b"), status::closed);
  EXPECT_EQ(tx.try_send("b"), status::closed);
}

// --- producer window
// ------------------------------------------------------------------------------

TEST_F(sender_test, producer_window_delivers_everything_exactly_once_under_backpressure) {
  auto o = opts(8, overflow::block);
  o.max_in_flight = 32;
  sender<std::string> tx(o);
  receiver<std::string> rx(opts(8, overflow::block));
  constexpr int n = 300;
  std::vector<std::string> got;
  std::thread consumer([&] {
    while (got.size() < static_cast<std::size_t>(n)) {
      auto v = rx.recv_for(10s);
      if (!v) break;
      got.push_back(*v);
    }
  });
  for (int i = 0; i < n; ++i) ASSERT_EQ(tx.send_for(std::to_string(i), 20s), status::ok);
  EXPECT_EQ(tx.flush_for(20s), status::ok);
  consumer.join();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  std::vector<int> seen(n, 0);
  for (const auto& v : got) ++seen[std::stoi(v)];
  for (int i = 0; i < n; ++i) EXPECT_EQ(seen[i], 1) << "value " << i;
  EXPECT_EQ(tx.stats().sent, static_cast<std::uint64_t>(n));
  EXPECT_EQ(tx.failed(), 0u);
  EXPECT_EQ(rx.try_recv(), std::nullopt);
}

// A send waiting for room in a full window is woken by the acknowledgements (once an eighth
// of the window is free), never left to its own timer: with retry_backoff_max at 5 s a missed
// wake-up would cost seconds per wait. Two threads share the window, as waiters compete.
TEST_F(sender_test, producer_window_waiting_sends_are_woken_by_the_acknowledgements) {
  for (std::size_t window : {1u, 3u, 16u}) {
    auto o = opts(10000, overflow::block);
    o.max_in_flight = window;
    o.retry_backoff_max = 5s;
    sender<std::string> tx(o);
    constexpr int per_thread = 500;
    const auto t0 = std::chrono::steady_clock::now();
    auto produce = [&] {
      for (int i = 0; i < per_thread; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
    };
    std::thread other(produce);
    produce();
    other.join();
    ASSERT_EQ(tx.flush_for(10s), status::ok);
    const auto took = std::chrono::steady_clock::now() - t0;
    EXPECT_GT(tx.stats().send_waits, 0u) << "window " << window;
    EXPECT_LT(took, 4s) << "window " << window;
    EXPECT_EQ(tx.stats().sent, 2u * per_thread);
  }
}

TEST_F(sender_test, producer_window_try_send_answers_full_when_the_window_is_full) {
  auto o = opts(2, overflow::block);
  o.max_in_flight = 2;
  sender<std::string> tx(o);
  // Two fill the stream; the next two are refused by the server and wait in the window.
  int ok = 0;
  for (int i = 0; i < 4; ++i) ok += tx.send_for(std::to_string(i), 2s) == status::ok;
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(tx.flush_for(300ms), status::timeout);
  EXPECT_EQ(tx.try_send("x"), status::full);
  EXPECT_EQ(tx.send_for("x", 200ms), status::timeout);
  EXPECT_LE(tx.size(), 2u);
  receiver<std::string> rx(opts(2, overflow::block));
  std::vector<std::string> got;
  for (int i = 0; i < 4; ++i) {
    auto v = rx.recv_for(10s);
    ASSERT_TRUE(v);
    got.push_back(*v);
  }
  EXPECT_EQ(tx.flush_for(10s), status::ok);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2", "3"}));
}

}  // namespace

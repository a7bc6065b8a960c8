#include <bp/nats/receiver.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <bp/nats/sender.hpp>

#include "nats_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using bp::nats::receiver;
using bp::nats::sender;

class receiver_test : public bp::test::nats_test {};

TEST_F(receiver_test, range_for_drains_then_ends_after_the_senders_close) {
  sender<std::string> tx(opts(16, overflow::block));
  receiver<std::string> rx(opts(16, overflow::block));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  EXPECT_EQ(tx.close(), status::ok);
  std::vector<std::string> got;
  for (std::string v : rx) got.push_back(v);
  ASSERT_EQ(got.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(got[i], std::to_string(i));
  EXPECT_TRUE(rx.is_closed());
  EXPECT_EQ(rx.recv(), std::nullopt);
  // Received values and the marker were acknowledged (asynchronously): they leave the stream.
  EXPECT_TRUE(bp::test::eventually([&] { return rx.size() == 0; }, 5000ms));
}

// The end-of-stream marker is told from a value by its empty payload first, then by its
// header: an empty value (from a synchronous and from a window sender) stays a value.
TEST_F(receiver_test, empty_values_are_values_and_only_the_marker_ends) {
  sender<std::string> tx(opts(16, overflow::block));
  auto wo = opts(16, overflow::block);
  wo.max_in_flight = 4;
  sender<std::string> wtx(wo);
  receiver<std::string> rx(opts(16, overflow::block));
  ASSERT_EQ(tx.send(""), status::ok);
  ASSERT_EQ(wtx.send(""), status::ok);
  ASSERT_EQ(wtx.flush_for(5s), status::ok);
  ASSERT_EQ(tx.send("x"), status::ok);
  EXPECT_EQ(tx.close(), status::ok);
  std::vector<std::string> got;
  for (std::string v : rx) got.push_back(v);
  EXPECT_EQ(got, (std::vector<std::string>{"", "", "x"}));
  EXPECT_TRUE(rx.is_closed());
}

TEST_F(receiver_test, recv_for_times_out_and_try_recv_does_not_wait) {
  receiver<std::string> rx(opts(4, overflow::block));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(rx.recv_for(300ms), std::nullopt);
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 250ms);
  EXPECT_LT(waited, 3s);
  EXPECT_EQ(rx.try_recv(), std::nullopt);
  sender<std::string> tx(opts(4, overflow::block));
  ASSERT_EQ(tx.send("x"), status::ok);
  EXPECT_TRUE(bp::test::eventually([&] { return rx.try_recv() == std::optional<std::string>("x"); },
                                   5000ms));
}

TEST_F(receiver_test, close_ends_receiving_here) {
  receiver<std::string> rx(opts(4, overflow::block));
  std::thread closer([&] {
    std::this_thread::sleep_for(100ms);
    rx.close();
  });
  EXPECT_EQ(rx.recv(), std::nullopt);  // wakes within fetch_wait of the close
  closer.join();
  EXPECT_TRUE(rx.is_closed());
  std::string out;
  EXPECT_EQ(rx.recv(out), status::closed);
  EXPECT_EQ(rx.try_recv(out), status::closed);
  EXPECT_EQ(rx.recv_for(out, 1s), status::closed);
}

// The status answers tell "nothing yet" (full, timeout) from the end of stream (closed), and
// leave `out` alone unless they answer ok.
TEST_F(receiver_test, status_answers_tell_a_timeout_from_the_end_of_stream) {
  sender<std::string> tx(opts(16, overflow::block));
  receiver<std::string> rx(opts(16, overflow::block));
  std::string out = "untouched";
  EXPECT_EQ(rx.try_recv(out), status::full);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(rx.recv_for(out, 300ms), status::timeout);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 250ms);
  EXPECT_EQ(rx.recv_until(out, std::chrono::steady_clock::now() + 100ms), status::timeout);
  EXPECT_EQ(out, "untouched");

  for (const char* v : {"a", "b", "c"}) ASSERT_EQ(tx.send(v), status::ok);
  EXPECT_EQ(tx.close(), status::ok);
  // "a" is taken but not acknowledged: the marker after it cannot end the stream yet.
  auto held = rx.recv_message_for(5s);
  ASSERT_TRUE(held);
  EXPECT_EQ(held->value, "a");
  EXPECT_EQ(rx.recv_for(out, 5s), status::ok);
  EXPECT_EQ(out, "b");
  EXPECT_EQ(rx.recv(out), status::ok);
  EXPECT_EQ(out, "c");
  EXPECT_EQ(rx.recv_for(out, 500ms), status::timeout) << "a value before the marker is pending";
  EXPECT_EQ(rx.try_recv(out), status::full);
  EXPECT_FALSE(rx.is_closed());
  held->ack(true);
  EXPECT_EQ(rx.recv_for(out, 5s), status::closed);
  EXPECT_EQ(rx.recv(out), status::closed);
  EXPECT_EQ(rx.try_recv(out), status::closed);
  EXPECT_EQ(rx.recv_until(out, std::chrono::steady_clock::now() + 1s), status::closed);
  EXPECT_EQ(out, "c");
  EXPECT_TRUE(rx.is_closed());
}

TEST_F(receiver_test, nak_redelivers_and_unacked_messages_come_back_after_ack_wait) {
  auto o = opts(4, overflow::block);
  o.ack_wait = 1s;
  sender<std::string> tx(o);
  receiver<std::string> rx(o);
  ASSERT_EQ(tx.send("a"), status::ok);
  auto d = rx.recv_message_for(5s);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->value, "a");
  EXPECT_EQ(d->info().delivered, 1u);
  d->nak();
  auto again = rx.recv_message_for(5s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->value, "a");
  EXPECT_EQ(again->info().delivered, 2u);
  again->ack(true);
  ASSERT_EQ(tx.send("b"), status::ok);
  {
    auto b = rx.recv_message_for(5s);  // dropped without an answer: back after ack_wait
    ASSERT_TRUE(b);
    EXPECT_EQ(b->value, "b");
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto b2 = rx.recv_message_for(5s);
  ASSERT_TRUE(b2);
  EXPECT_EQ(b2->value, "b");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 500ms);
  b2->ack(true);
  EXPECT_EQ(rx.redelivered(), 2u);
  EXPECT_EQ(rx.size(), 0u);  // ack(true) waited for the server
}

TEST_F(receiver_test, term_removes_a_poison_message_and_a_decode_error_terms_it) {
  auto o = opts(4, overflow::block);
  o.ack_wait = 1s;
  sender<std::string> tx(o);
  ASSERT_EQ(tx.send("not an int"), status::ok);
  receiver<int> rx(o);
  EXPECT_THROW((void)rx.recv_for(5s), std::invalid_argument);
  EXPECT_EQ(rx.recv_for(1500ms), std::nullopt);  // terminated: not delivered again
  EXPECT_TRUE(bp::test::eventually([&] { return rx.size() == 0; }, 5000ms));
}

// The built-in codecs send a value's own bytes (no encoded copy); a user codec that only
// encodes is still a codec.
static_assert(bp::nats::viewing_codec<bp::nats::default_codec<std::string>, std::string>);
static_assert(bp::nats::viewing_codec<bp::nats::default_codec<std::vector<std::byte>>,
                                      std::vector<std::byte>>);
static_assert(bp::nats::viewing_codec<bp::nats::default_codec<double>, double>);

TEST_F(receiver_test, bytes_and_arithmetic_codecs_round_trip) {
  {
    sender<std::vector<std::byte>> tx(opts(4, overflow::block, "BYTES"));
    receiver<std::vector<std::byte>> rx(opts(4, overflow::block, "BYTES"));
    const std::vector<std::byte> v{std::byte{0}, std::byte{255}, std::byte{7}};
    ASSERT_EQ(tx.send(v), status::ok);
    EXPECT_EQ(rx.recv_for(5s), v);
  }
  sender<double> tx(opts(4, overflow::block, "NUM"));
  receiver<double> rx(opts(4, overflow::block, "NUM"));
  ASSERT_EQ(tx.send(2.5), status::ok);
  EXPECT_EQ(rx.recv_for(5s), 2.5);
}

struct point {
  int x, y;
  bool operator==(const point&) const = default;
};
struct point_codec {
  static void encode(const point& p, std::vector<std::byte>& out) {
    const std::string s = std::to_string(p.x) + "," + std::to_string(p.y);
    bp::nats::default_codec<std::string>::encode(s, out);
  }
  static point decode(std::span<const std::byte> in) {
    const auto s = bp::nats::default_codec<std::string>::decode(in);
    const auto comma = s.find(',');
    if (comma == std::string::npos) throw std::invalid_argument("point_codec: no comma");
    return {std::stoi(s.substr(0, comma)), std::stoi(s.substr(comma + 1))};
  }
};
static_assert(bp::nats::codec_for<point_codec, point>);

TEST_F(receiver_test, a_user_codec_carries_a_user_type) {
  sender<point, point_codec> tx(opts(4, overflow::block));
  receiver<point, point_codec> rx(opts(4, overflow::block));
  ASSERT_EQ(tx.send(point{3, -4}), status::ok);
  EXPECT_EQ(rx.recv_for(5s), (point{3, -4}));
}

// The Block strategy in one process: a slow consumer makes a fast producer wait, and the stream
// never holds more than its capacity.
TEST_F(receiver_test, slow_consumer_makes_the_producer_wait_within_capacity) {
  constexpr std::size_t cap = 5;
  constexpr int n = 40;
  sender<std::string> tx(opts(cap, overflow::block));
  receiver<std::string> rx(opts(cap, overflow::block));
  std::atomic<bool> done{false};
  std::uint64_t max_seen = 0;
  std::thread monitor([&] {
    while (!done) {
      max_seen = std::max<std::uint64_t>(max_seen, rx.state().messages);
      std::this_thread::sleep_for(5ms);
    }
  });
  std::vector<std::string> got;
  std::thread consumer([&] {
    for (int i = 0; i < n; ++i) {
      auto v = rx.recv_for(10s);
      if (!v) break;
      std::this_thread::sleep_for(20ms);
      got.push_back(*v);
    }
  });
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) ASSERT_EQ(tx.send_for(std::to_string(i), 20s), status::ok);
  const auto producer_time = std::chrono::steady_clock::now() - t0;
  consumer.join();
  done = true;
  monitor.join();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(got[i], std::to_string(i));
  EXPECT_LE(max_seen, cap);
  EXPECT_GT(tx.stats().send_waits, 0u);
  // n - cap sends had to wait for the consumer's 20 ms per item.
  EXPECT_GE(producer_time, (n - static_cast<int>(cap) - 5) * 20ms);
}

// Two receivers on one durable: the one that reads the end-of-stream marker does not end while
// the other still holds values sent before the close, and ends soon after they are acknowledged.
TEST_F(receiver_test, shared_durable_loop_ends_only_after_every_earlier_value_is_acknowledged) {
  auto o = opts(100, overflow::block);
  auto holder_opts = o;
  holder_opts.fetch_batch = 1;  // takes exactly what it holds
  sender<std::string> tx(o);
  receiver<std::string> holder(holder_opts);
  receiver<std::string> loop(o);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  EXPECT_EQ(tx.close(), status::ok);
  std::vector<bp::nats::delivery<std::string>> held;
  for (int i = 0; i < 3; ++i) {
    auto d = holder.recv_message_for(5s);
    ASSERT_TRUE(d);
    held.push_back(std::move(*d));
  }
  std::atomic<bool> ended{false};
  std::atomic<int> looped{0};
  std::thread t([&] {
    for (std::string v : loop) {
      (void)v;
      ++looped;
    }
    ended = true;
  });
  EXPECT_TRUE(bp::test::eventually([&] { return looped == 7; }, 5000ms)) << looped;
  std::this_thread::sleep_for(700ms);
  EXPECT_FALSE(ended) << "ended while 3 values sent before close were not acknowledged";
  for (auto& d : held) d.ack(true);
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(bp::test::eventually([&] { return ended.load(); }, 5000ms));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s) << "ends promptly after the last ack";
  loop.close();  // in case it did not end: lets the thread finish
  t.join();
  EXPECT_EQ(looped, 7);
  EXPECT_TRUE(bp::test::eventually([&] { return loop.size() == 0; }, 5000ms)) << loop.size();
}

// The normal case stays prompt: a loop that received everything ends right after the marker.
TEST_F(receiver_test, loop_ends_promptly_after_close_when_everything_is_acknowledged) {
  auto o = opts(1000, overflow::block);
  sender<std::string> tx(o);
  receiver<std::string> rx(o);
  for (int i = 0; i < 200; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  ASSERT_EQ(tx.close(), status::ok);
  int n = 0;
  std::optional<std::chrono::steady_clock::time_point> last;
  for (std::string v : rx) {
    (void)v;
    ++n;
    last = std::chrono::steady_clock::now();
  }
  ASSERT_TRUE(last);
  EXPECT_EQ(n, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - *last, 500ms);
}

// A receiver that dies holding values after the close, and a server restart (kill -9, file
// storage) while the loop waits for their redelivery: the loop still gets every value sent
// before the close, then ends.
TEST_F(receiver_test, loop_gets_a_dead_receivers_values_across_a_server_restart) {
  auto o = opts(100, overflow::block);
  o.ack_wait = 1s;
  o.reconnect_wait = 100ms;
  o.request_timeout = 1s;
  auto victim_opts = o;
  victim_opts.fetch_batch = 4;
  {
    sender<std::string> tx(o);
    for (int i = 0; i < 10; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
    ASSERT_EQ(tx.close(), status::ok);
  }
  receiver<std::string> loop(o);
  {
    receiver<std::string> victim(victim_opts);
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(victim.recv_message_for(5s));
  }  // destroyed without acknowledging: the 4 come back after ack_wait
  std::atomic<bool> ended{false};
  std::vector<std::string> got;
  std::mutex mu;
  std::thread t([&] {
    for (std::string v : loop) {
      std::lock_guard lock(mu);
      got.push_back(v);
    }
    ended = true;
  });
  ASSERT_TRUE(bp::test::eventually(
      [&] {
        std::lock_guard lock(mu);
        return got.size() >= 6;
      },
      5000ms));
  server_.stop(SIGKILL);
  server_.start();
  EXPECT_TRUE(bp::test::eventually([&] { return ended.load(); }, 30000ms));
  loop.close();
  t.join();
  // Every value at least once. recv() acknowledges without waiting for the server, so the
  // acknowledgements of values received just before the kill may be lost with it and those
  // values come again: duplicates are allowed here, gaps are not.
  std::set<std::string> unique(got.begin(), got.end());
  std::set<std::string> want;
  for (int i = 0; i < 10; ++i) want.insert(std::to_string(i));
  EXPECT_EQ(unique, want);
}

}  // namespace

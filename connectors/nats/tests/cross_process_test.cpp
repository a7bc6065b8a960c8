// Backpressure across processes: a producer process and a consumer process (bp_nats_peer) on
// one real nats-server; consumer crash; server restart with file storage.
#include <bp/nats/receiver.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
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
using bp::test::child;

class cross_process_test : public bp::test::nats_test {
 protected:
  std::vector<std::string> peer_args(const std::string& mode, std::size_t cap,
                                     const std::string& policy,
                                     std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{peer(),
                               mode,
                               "url=" + server_.url(),
                               "stream=BP",
                               "subject=bp.BP",
                               "capacity=" + std::to_string(cap),
                               "policy=" + policy,
                               "fetch_wait_ms=200"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

// "summary k=v k=v ..." -> map
std::map<std::string, double> summary(const std::string& out) {
  std::map<std::string, double> m;
  const auto pos = out.rfind("summary ");
  if (pos == std::string::npos) return m;
  std::istringstream in(out.substr(pos + 8, out.find('\n', pos) - pos - 8));
  std::string kv;
  while (in >> kv) {
    const auto eq = kv.find('=');
    if (eq != std::string::npos) m[kv.substr(0, eq)] = std::stod(kv.substr(eq + 1));
  }
  return m;
}

// The values of "v <value> <delivered>" lines, in order.
std::vector<std::string> values(const std::string& out) {
  std::vector<std::string> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("v ", 0) == 0) v.push_back(line.substr(2, line.find(' ', 2) - 2));
  return v;
}

std::vector<std::string> numbers(int from, int to) {
  std::vector<std::string> v;
  for (int i = from; i < to; ++i) v.push_back(std::to_string(i));
  return v;
}

TEST_F(cross_process_test, block_delivers_everything_in_order_then_ends) {
  child consumer(peer_args("consume", 10, "block", {"idle_ms=20000"}));
  ASSERT_TRUE(consumer.wait_for_output("ready", 20s)) << consumer.output();
  child producer(peer_args("produce", 10, "block", {"count=300", "close=1"}));
  ASSERT_EQ(producer.wait_for(60s), 0) << producer.output();
  ASSERT_EQ(consumer.wait_for(60s), 0) << consumer.output();
  EXPECT_EQ(summary(producer.output())["ok"], 300);
  EXPECT_EQ(values(consumer.output()), numbers(0, 300));
  EXPECT_EQ(summary(consumer.output())["closed"], 1) << "ended by the end-of-stream marker";
}

TEST_F(cross_process_test, reject_answers_full_in_the_producer_and_keeps_the_first) {
  child producer(peer_args("produce", 5, "reject", {"count=12"}));
  ASSERT_EQ(producer.wait_for(30s), 0) << producer.output();
  auto p = summary(producer.output());
  EXPECT_EQ(p["ok"], 5);
  EXPECT_EQ(p["full"], 7);
  child consumer(peer_args("consume", 5, "reject", {"idle_ms=1000"}));
  ASSERT_EQ(consumer.wait_for(30s), 0) << consumer.output();
  EXPECT_EQ(values(consumer.output()), numbers(0, 5));
}

TEST_F(cross_process_test, drop_newest_answers_dropped_in_the_producer) {
  child producer(peer_args("produce", 5, "drop_newest", {"count=12"}));
  ASSERT_EQ(producer.wait_for(30s), 0) << producer.output();
  EXPECT_EQ(summary(producer.output())["dropped"], 7);
  child consumer(peer_args("consume", 5, "drop_newest", {"idle_ms=1000"}));
  ASSERT_EQ(consumer.wait_for(30s), 0) << consumer.output();
  EXPECT_EQ(values(consumer.output()), numbers(0, 5));
}

TEST_F(cross_process_test, drop_oldest_keeps_the_newest_and_the_consumer_counts_evictions) {
  child producer(peer_args("produce", 5, "drop_oldest", {"count=12"}));
  ASSERT_EQ(producer.wait_for(30s), 0) << producer.output();
  EXPECT_EQ(summary(producer.output())["ok"], 12);
  child consumer(peer_args("consume", 5, "drop_oldest", {"idle_ms=1000"}));
  ASSERT_EQ(consumer.wait_for(30s), 0) << consumer.output();
  EXPECT_EQ(values(consumer.output()), numbers(7, 12));
  auto c = summary(consumer.output());
  EXPECT_EQ(c["evicted"], 7);
  EXPECT_EQ(c["received"], 5);
}

TEST_F(cross_process_test, block_with_a_producer_window_loses_nothing) {
  child consumer(peer_args("consume", 10, "block", {"idle_ms=20000", "quiet=0"}));
  ASSERT_TRUE(consumer.wait_for_output("ready", 20s)) << consumer.output();
  child producer(peer_args("produce", 10, "block", {"count=500", "window=64", "close=1"}));
  ASSERT_EQ(producer.wait_for(60s), 0) << producer.output();
  ASSERT_EQ(consumer.wait_for(60s), 0) << consumer.output();
  auto got = values(consumer.output());
  EXPECT_EQ(got.size(), 500u);
  std::set<std::string> unique(got.begin(), got.end());
  EXPECT_EQ(unique.size(), 500u);
}

// A slow consumer process makes a fast producer process wait: the producer's rate converges to
// the consumer's, and the stream never holds more than its capacity.
TEST_F(cross_process_test, slow_consumer_paces_the_producer_and_the_stream_stays_bounded) {
  constexpr int cap = 10, n = 150, delay_ms = 10;
  child consumer(peer_args("consume", cap, "block",
                           {"idle_ms=20000", "delay_ms=" + std::to_string(delay_ms), "quiet=1"}));
  ASSERT_TRUE(consumer.wait_for_output("ready", 20s)) << consumer.output();
  receiver<std::string> observer_setup(opts(cap, overflow::block));  // same stream, to read state
  std::atomic<bool> done{false};
  std::uint64_t max_seen = 0;
  int samples = 0;
  std::thread monitor([&] {
    while (!done) {
      max_seen = std::max<std::uint64_t>(max_seen, observer_setup.state().messages);
      ++samples;
      std::this_thread::sleep_for(3ms);
    }
  });
  child producer(peer_args("produce", cap, "block", {"count=" + std::to_string(n), "close=1"}));
  ASSERT_EQ(producer.wait_for(60s), 0) << producer.output();
  ASSERT_EQ(consumer.wait_for(60s), 0) << consumer.output();
  done = true;
  monitor.join();
  auto p = summary(producer.output());
  auto c = summary(consumer.output());
  EXPECT_EQ(p["ok"], n);
  EXPECT_EQ(c["received"], n);
  EXPECT_GT(p["waits"], 0);
  EXPECT_LE(max_seen, static_cast<std::uint64_t>(cap)) << samples << " samples";
  // The consumer needs >= n * delay; the producer could not finish much before it.
  const double consumer_floor = n * delay_ms / 1000.0;
  EXPECT_GE(p["seconds"], 0.8 * (n - cap) * delay_ms / 1000.0);
  EXPECT_GE(c["seconds"], consumer_floor);
  const double producer_rate = n / p["seconds"], consumer_rate = n / c["seconds"];
  EXPECT_LT(producer_rate, 1.5 * consumer_rate)
      << "producer " << producer_rate << "/s, consumer " << consumer_rate << "/s";
}

// A consumer killed without acknowledging loses nothing: after ack_wait a new consumer receives
// every unacknowledged message.
TEST_F(cross_process_test, consumer_crash_loses_nothing) {
  constexpr int n = 20;
  auto o = opts(100, overflow::block);
  // Long enough, even on a loaded machine, that the victim gets every value before any is
  // redelivered, so that the new receiver sees each value as a redelivery.
  o.ack_wait = 3s;
  {
    sender<std::string> tx(o);
    for (int i = 0; i < n; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  }
  child victim(peer_args("consume", 100, "block",
                         {"count=" + std::to_string(n), "ack=0", "ack_wait_ms=3000", "batch=8",
                          "max_ack_pending=100"}));
  ASSERT_TRUE(victim.wait_for_output("holding", 30s)) << victim.output();
  EXPECT_EQ(values(victim.output()).size(), static_cast<std::size_t>(n));
  victim.stop(SIGKILL);
  receiver<std::string> rx(o);
  std::set<std::string> got;
  const auto t0 = std::chrono::steady_clock::now();
  while (got.size() < static_cast<std::size_t>(n)) {
    auto v = rx.recv_message_for(10s);
    ASSERT_TRUE(v) << "only " << got.size() << " came back";
    EXPECT_GE(v->info().delivered, 2u);
    got.insert(v->value);
    v->ack(true);
  }
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 200ms);  // they waited for ack_wait
  EXPECT_EQ(got.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(rx.redelivered(), static_cast<std::uint64_t>(n));
  EXPECT_EQ(rx.size(), 0u);
}

// Every publish the server acknowledged survives a server restart with file storage, even a
// kill -9.
TEST_F(cross_process_test, server_restart_keeps_every_acknowledged_publish) {
  constexpr int n = 200;
  auto o = opts(1000, overflow::block);
  o.store = bp::nats::storage::file;
  child producer(peer_args("produce", 1000, "block", {"count=" + std::to_string(n)}));
  ASSERT_EQ(producer.wait_for(30s), 0) << producer.output();
  ASSERT_EQ(summary(producer.output())["ok"], n);
  server_.stop(SIGKILL);
  server_.start();
  receiver<std::string> rx(o);
  std::vector<std::string> got;
  while (auto v = rx.recv_for(2s)) got.push_back(*v);
  EXPECT_EQ(got, numbers(0, n));
}

// A sender keeps working across a server restart: sends during the outage wait (bounded by
// publish_retry_for), nothing acknowledged is lost, nothing is stored twice.
TEST_F(cross_process_test, sender_rides_out_a_server_restart) {
  auto o = opts(1000, overflow::block);
  o.publish_retry_for = 20s;
  o.reconnect_wait = 100ms;
  o.request_timeout = 1s;
  sender<std::string> tx(o);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  server_.stop(SIGTERM);
  std::thread restarter([&] {
    std::this_thread::sleep_for(500ms);
    server_.start();
  });
  for (int i = 50; i < 100; ++i) ASSERT_EQ(tx.send_for(std::to_string(i), 30s), status::ok);
  restarter.join();
  receiver<std::string> rx(o);
  std::vector<std::string> got;
  while (auto v = rx.recv_for(2s)) got.push_back(*v);
  EXPECT_EQ(got, numbers(0, 100));
}

TEST_F(cross_process_test, producer_window_rides_out_a_server_restart) {
  auto o = opts(1000, overflow::block);
  o.max_in_flight = 16;
  o.reconnect_wait = 100ms;
  o.request_timeout = 1s;
  sender<std::string> tx(o);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  ASSERT_EQ(tx.flush_for(10s), status::ok);
  server_.stop(SIGTERM);
  std::thread restarter([&] {
    std::this_thread::sleep_for(500ms);
    server_.start();
  });
  for (int i = 50; i < 100; ++i) ASSERT_EQ(tx.send_for(std::to_string(i), 30s), status::ok);
  restarter.join();
  EXPECT_EQ(tx.flush_for(30s), status::ok);
  receiver<std::string> rx(o);
  std::set<std::string> got;
  std::size_t n = 0;
  while (auto v = rx.recv_for(2s)) {
    got.insert(*v);
    ++n;
  }
  EXPECT_EQ(got.size(), 100u) << "every value arrived";
  EXPECT_EQ(n, 100u) << "none twice (message ids deduplicated the retries)";
}

// A consumer killed while holding unacknowledged values after the producer closed: a restarted
// consumer's plain loop gets every value sent before close() (the held ones after ack_wait)
// before it ends, as a loop over a closed channel does.
TEST_F(cross_process_test, restarted_consumer_loop_gets_every_value_sent_before_close) {
  constexpr int n = 50, held = 22;
  child producer(peer_args("produce", 100, "block",
                           {"count=" + std::to_string(n), "close=1", "ack_wait_ms=1000"}));
  ASSERT_EQ(producer.wait_for(30s), 0) << producer.output();
  child victim(peer_args("consume", 100, "block",
                         {"count=" + std::to_string(held), "ack=0", "ack_wait_ms=1000",
                          "batch=" + std::to_string(held), "max_ack_pending=100"}));
  ASSERT_TRUE(victim.wait_for_output("holding", 30s)) << victim.output();
  EXPECT_EQ(values(victim.output()), numbers(0, held));
  victim.stop(SIGKILL);
  const auto t0 = std::chrono::steady_clock::now();
  child restarted(peer_args("consume", 100, "block", {"range=1", "ack_wait_ms=1000"}));
  ASSERT_EQ(restarted.wait_for(30s), 0) << restarted.output();
  const auto took = std::chrono::steady_clock::now() - t0;
  auto got = values(restarted.output());
  std::sort(got.begin(), got.end(),
            [](const auto& a, const auto& b) { return std::stoi(a) < std::stoi(b); });
  EXPECT_EQ(got, numbers(0, n)) << restarted.output();
  auto c = summary(restarted.output());
  EXPECT_EQ(c["closed"], 1);
  EXPECT_EQ(c["redelivered"], held);
  EXPECT_LT(took, 15s) << "ended soon after the redelivery";
  // The marker was acknowledged last: the stream is empty.
  receiver<std::string> rx(opts(100, overflow::block));
  EXPECT_TRUE(bp::test::eventually([&] { return rx.size() == 0; }, 5000ms)) << rx.size();
}

}  // namespace

#include <bp/nats/publisher.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <bp/nats/sender.hpp>

#include "nats_fixture.hpp"
#if __has_include("probe.hpp")
#include "probe.hpp"  // tests/rs: the conformance suite's protocol-checking subscriber
#define BP_NATS_HAVE_RS_PROBE 1
#endif

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using bp::nats::sender;

// Records every signal; request() on demand from the test thread.
template <class T>
class recorder final : public bp::rs::subscriber<T> {
 public:
  void on_subscribe(std::shared_ptr<bp::rs::subscription> s) override {
    std::lock_guard lock(mu_);
    sub_ = std::move(s);
    ++subscribes_;
    cv_.notify_all();
  }
  void on_next(T v) override {
    std::lock_guard lock(mu_);
    values_.push_back(std::move(v));
    cv_.notify_all();
  }
  void on_error(std::exception_ptr e) override {
    std::lock_guard lock(mu_);
    error_ = e;
    cv_.notify_all();
  }
  void on_complete() override {
    std::lock_guard lock(mu_);
    completed_ = true;
    cv_.notify_all();
  }

  std::shared_ptr<bp::rs::subscription> subscription() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return sub_ != nullptr; });
    return sub_;
  }
  template <class Pred>
  bool wait(Pred p, std::chrono::milliseconds limit = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return p(*this); });
  }
  std::size_t count() {
    std::lock_guard lock(mu_);
    return values_.size();
  }

  std::vector<T> values_;
  std::exception_ptr error_;
  bool completed_ = false;
  int subscribes_ = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<bp::rs::subscription> sub_;
};

class publisher_test : public bp::test::nats_test {};

TEST_F(publisher_test, request_n_pulls_exactly_n_and_completes_after_close) {
  auto o = opts(100, overflow::block);
  o.fetch_batch = 4;
  sender<std::string> tx(o);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(o);
  auto rec = std::make_shared<recorder<std::string>>();
  pub->subscribe(rec);
  auto sub = rec->subscription();
  ASSERT_TRUE(sub);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(rec->count(), 0u) << "nothing before request (rule 1.1)";
  sub->request(3);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.values_.size() >= 3; }));
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(rec->count(), 3u) << "no more than requested";
  // The other 7 are still in the stream, not fetched into the client.
  EXPECT_TRUE(bp::test::eventually([&] { return tx.size() == 7; }, 5000ms)) << tx.size();
  sub->request(100);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.values_.size() >= 10; }));
  EXPECT_EQ(tx.close(), status::ok);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.completed_; }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(rec->values_[i], std::to_string(i));
  EXPECT_FALSE(rec->error_);
}

TEST_F(publisher_test, cancel_leaves_the_rest_for_the_next_subscriber) {
  auto o = opts(100, overflow::block);
  sender<std::string> tx(o);
  for (int i = 0; i < 6; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(o);
  auto first = std::make_shared<recorder<std::string>>();
  pub->subscribe(first);
  first->subscription()->request(2);
  ASSERT_TRUE(first->wait([](auto& r) { return r.values_.size() >= 2; }));
  first->subscription()->cancel();
  auto second = std::make_shared<recorder<std::string>>();
  pub->subscribe(second);
  second->subscription()->request(bp::rs::unbounded);
  ASSERT_TRUE(second->wait([](auto& r) { return r.values_.size() >= 4; }));
  EXPECT_EQ(second->values_, (std::vector<std::string>{"2", "3", "4", "5"}));
}

TEST_F(publisher_test, delivery_publisher_lets_the_subscriber_ack_or_nak) {
  auto o = opts(100, overflow::block);
  sender<std::string> tx(o);
  ASSERT_EQ(tx.send("a"), status::ok);
  auto pub = std::make_shared<bp::nats::delivery_publisher<std::string>>(o);
  auto rec = std::make_shared<recorder<bp::nats::delivery<std::string>>>();
  pub->subscribe(rec);
  rec->subscription()->request(2);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.values_.size() >= 1; }));
  rec->values_[0].nak();  // from the test thread: asynchronous processing
  ASSERT_TRUE(rec->wait([](auto& r) { return r.values_.size() >= 2; }));
  EXPECT_EQ(rec->values_[1].value, "a");
  EXPECT_EQ(rec->values_[1].info().delivered, 2u);
  rec->values_[1].ack(true);
  EXPECT_EQ(tx.size(), 0u);
}

TEST_F(publisher_test, request_zero_signals_invalid_argument) {
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(opts(10, overflow::block));
  auto rec = std::make_shared<recorder<std::string>>();
  pub->subscribe(rec);
  rec->subscription()->request(0);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.error_ != nullptr; }));
  EXPECT_THROW(std::rethrow_exception(rec->error_), std::invalid_argument);
}

TEST_F(publisher_test, null_subscriber_throws_and_missing_stream_is_on_error) {
  auto o = opts(10, overflow::block, "MISSING");
  o.setup = bp::nats::stream_setup::bind;
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(o);
  EXPECT_THROW(pub->subscribe(nullptr), std::invalid_argument);
  auto rec = std::make_shared<recorder<std::string>>();
  pub->subscribe(rec);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.error_ != nullptr; }));
  EXPECT_EQ(rec->subscribes_, 1) << "on_subscribe first (rule 1.9)";
  EXPECT_THROW(std::rethrow_exception(rec->error_), bp::nats::error);
}

#ifdef BP_NATS_HAVE_RS_PROBE
// The bp::rs conformance suite's probe flags every protocol violation it can see (more on_next
// than requested, signals after a terminal one, re-entrant signalling deeper than one level).
// One request(1) per on_next, made from inside on_next (rule 3.3), then completion.
TEST_F(publisher_test, the_rs_probe_sees_no_protocol_violation) {
  auto o = opts(100, overflow::block);
  sender<std::int64_t> tx(o);
  for (std::int64_t i = 0; i < 40; ++i) ASSERT_EQ(tx.send(i), status::ok);
  ASSERT_EQ(tx.close(), status::ok);
  auto pub = std::make_shared<bp::nats::publisher<std::int64_t>>(o);
  auto p = std::make_shared<bp::rs::test::probe<std::int64_t>>();
  p->initial_request = 1;
  p->on_next_hook = [](auto& self, const std::int64_t&) { self.request(1); };
  pub->subscribe(p);
  ASSERT_TRUE(p->await_complete(20s)) << p->count() << " items";
  EXPECT_EQ(p->violations(), "");
  const auto items = p->items();
  ASSERT_EQ(items.size(), 40u);
  for (std::int64_t i = 0; i < 40; ++i) EXPECT_EQ(items[static_cast<std::size_t>(i)], i);
  // Every message was acknowledged after its on_next (asynchronously: they leave soon after).
  EXPECT_TRUE(bp::test::eventually([&] { return tx.size() == 0; }, 5000ms)) << tx.size();
}
#endif

// on_complete needs no demand (rules 1.4-1.6): a subscriber that requested exactly what was sent
// is completed after the sender's close() without another request.
TEST_F(publisher_test, completes_without_outstanding_demand) {
  auto o = opts(100, overflow::block);
  o.fetch_wait = 1s;  // the idle check runs at once after the demand ran out, not after this
  sender<std::string> tx(o);
  for (int i = 0; i < 5; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  ASSERT_EQ(tx.close(), status::ok);
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(o);
  auto rec = std::make_shared<recorder<std::string>>();
  pub->subscribe(rec);
  rec->subscription()->request(5);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.values_.size() >= 5; }));
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(rec->wait([](auto& r) { return r.completed_; }, 5s)) << "no on_complete";
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 900ms) << "completed at once, not per poll";
  EXPECT_EQ(rec->values_, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
  EXPECT_FALSE(rec->error_);
}

// The end becomes known while the subscriber has no demand: close() after the subscriber took
// everything it asked for completes it within one fetch_wait.
TEST_F(publisher_test, completes_when_closed_while_idle_without_demand) {
  auto o = opts(100, overflow::block);
  sender<std::string> tx(o);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(o);
  auto rec = std::make_shared<recorder<std::string>>();
  pub->subscribe(rec);
  rec->subscription()->request(3);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.values_.size() >= 3; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(rec->completed_);
  ASSERT_EQ(tx.close(), status::ok);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.completed_; }, 5s)) << "no on_complete";
  EXPECT_EQ(rec->count(), 3u);
}

// Without demand a value waiting in the stream is not pulled, and a pending value keeps the end
// away: the subscriber is completed only after it asked for (and got) that value too.
TEST_F(publisher_test, no_completion_while_a_value_before_the_marker_waits_for_demand) {
  auto o = opts(100, overflow::block);
  sender<std::string> tx(o);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(tx.send(std::to_string(i)), status::ok);
  ASSERT_EQ(tx.close(), status::ok);
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(o);
  auto rec = std::make_shared<recorder<std::string>>();
  pub->subscribe(rec);
  rec->subscription()->request(2);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.values_.size() >= 2; }));
  std::this_thread::sleep_for(600ms);  // three idle checks at fetch_wait = 200 ms
  EXPECT_FALSE(rec->completed_);
  EXPECT_EQ(rec->count(), 2u);
  EXPECT_EQ(tx.size(), 2u) << "the third value and the marker are still in the stream";
  rec->subscription()->request(1);
  ASSERT_TRUE(rec->wait([](auto& r) { return r.completed_; }, 5s)) << "no on_complete";
  EXPECT_EQ(rec->values_, (std::vector<std::string>{"0", "1", "2"}));
}

}  // namespace

namespace {

// The process's virtual memory size (VmSize), in bytes.
std::size_t virtual_memory() {
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return 0;
  char line[256];
  std::size_t kb = 0;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::sscanf(line, "VmSize: %zu kB", &kb) == 1) break;
  }
  std::fclose(f);
  return kb * 1024;
}

// Cancels in on_subscribe: the subscription's worker ends as soon as it sees it.
class canceller final : public bp::rs::subscriber<std::string> {
 public:
  void on_subscribe(std::shared_ptr<bp::rs::subscription> s) override { s->cancel(); }
  void on_next(std::string) override {}
  void on_error(std::exception_ptr) override {}
  void on_complete() override {}
};

TEST_F(publisher_test, finished_subscriptions_do_not_pile_up_in_a_long_lived_publisher) {
  auto pub = std::make_shared<bp::nats::publisher<std::string>>(opts(10, overflow::block));
  // Each worker thread has a stack (8 MiB of address space by default) that stays mapped
  // until the thread is joined; a publisher that joined its workers only when destroyed held
  // one per subscription it ever had.
  pub->subscribe(std::make_shared<canceller>());
  std::this_thread::sleep_for(200ms);
  const std::size_t before = virtual_memory();
  constexpr int rounds = 30;
  for (int i = 0; i < rounds; ++i) {
    pub->subscribe(std::make_shared<canceller>());
    std::this_thread::sleep_for(30ms);  // the worker connects, sees the cancel and ends
  }
  const std::size_t grown = virtual_memory() - before;
  EXPECT_LT(grown, std::size_t{rounds} * (8u << 20) / 3)
      << "address space grew by " << (grown >> 20) << " MiB over " << rounds << " subscriptions";
}

}  // namespace

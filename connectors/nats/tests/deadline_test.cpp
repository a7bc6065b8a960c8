// bp-test-timeout: 240
// Every timed verb answers within its own deadline whatever the server does: gone (SIGKILL, not
// restarted), stalled (SIGSTOP: the TCP connection stays up, nothing answers) and restarting.
// The untimed sends answer within their retry budget (publish_retry_for), not after several
// request_timeouts.
//
// The promise is the deadline plus about 50 ms (a millisecond of rounding to nats.c's
// millisecond timeouts and the scheduler's wake-up latency); these tests allow `slack` because
// they share two cores with other builds.
#include <bp/nats/receiver.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include <bp/nats/sender.hpp>

#include "nats_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using bp::nats::receiver;
using bp::nats::sender;
using clk = std::chrono::steady_clock;

constexpr auto slack = 300ms;

class deadline_test : public bp::test::nats_test {
 protected:
  void TearDown() override {
    if (stopped_) server_.resume();
    nats_test::TearDown();
  }

  // Options as an outside caller would have them: the 5 s request_timeout of the defaults,
  // a 2 s retry budget.
  bp::nats::options deadline_opts() const {
    auto o = opts(100, overflow::block);
    o.request_timeout = 5s;
    o.publish_retry_for = 2s;
    o.reconnect_wait = 100ms;
    return o;
  }

  void stall() {
    stopped_ = true;
    ASSERT_TRUE(server_.pause());
  }
  void resume() {
    server_.resume();
    stopped_ = false;
  }

  // Runs `f` and checks it answered (value, status or exception) within `limit` + slack.
  static void within(const char* what, std::chrono::milliseconds limit,
                     const std::function<void()>& f) {
    const auto t0 = clk::now();
    try {
      f();
    } catch (const std::exception&) {  // an error is an answer too (an unreachable server)
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clk::now() - t0);
    EXPECT_LE(took, limit + slack)
        << what << " took " << took.count() << " ms, deadline " << limit.count() << " ms";
  }

  // Every timed verb of a synchronous sender, a windowed sender and a receiver, each with a
  // 1 s deadline; the untimed send with its 2 s retry budget.
  void check_every_verb(sender<std::string>& tx, sender<std::string>& window,
                        receiver<std::string>& rx) {
    within("send_for(1s)", 1s, [&] { EXPECT_NE(tx.send_for("x", 1s), status::ok); });
    within("send_until(now + 1s)", 1s,
           [&] { EXPECT_NE(tx.send_until("x", clk::now() + 1s), status::ok); });
    within("send_for(0)", 0ms, [&] { (void)tx.send_for("x", 0ms); });
    within("send() with publish_retry_for = 2s", 2s,
           [&] { EXPECT_THROW((void)tx.send("x"), bp::nats::error); });
    within("try_send() with publish_retry_for = 2s", 2s, [&] { (void)tx.try_send("x"); });
    // The window: fill it (answers are not awaited), then a timed send and a flush.
    for (int i = 0; i < 8; ++i) (void)window.send_for("w", 100ms);
    within("window send_for(1s)", 1s, [&] { (void)window.send_for("w", 1s); });
    within("window flush_for(1s)", 1s, [&] { EXPECT_NE(window.flush_for(1s), status::ok); });
    within("recv_for(1s)", 1s, [&] { EXPECT_EQ(rx.recv_for(1s), std::nullopt); });
    within("recv_until(now + 1s)", 1s,
           [&] { EXPECT_EQ(rx.recv_until(clk::now() + 1s), std::nullopt); });
    within("recv_message_for(1s)", 1s, [&] { EXPECT_FALSE(rx.recv_message_for(1s)); });
    within("try_recv()", 50ms, [&] { EXPECT_EQ(rx.try_recv(), std::nullopt); });
    std::string out;  // an unreachable server is not the end of stream
    within("recv_for(out, 1s)", 1s, [&] { EXPECT_EQ(rx.recv_for(out, 1s), status::timeout); });
  }

  bool stopped_ = false;
};

TEST_F(deadline_test, every_timed_verb_keeps_its_deadline_with_the_server_gone) {
  auto o = deadline_opts();
  auto wo = o;
  wo.max_in_flight = 8;
  sender<std::string> tx(o);
  sender<std::string> window(wo);
  receiver<std::string> rx(o);
  server_.stop(SIGKILL);
  check_every_verb(tx, window, rx);
  within("close_for(1s)", 1s, [&] { EXPECT_NE(tx.close_for(1s), status::ok); });
}

TEST_F(deadline_test, every_timed_verb_keeps_its_deadline_with_the_server_stalled) {
  auto o = deadline_opts();
  auto wo = o;
  wo.max_in_flight = 8;
  sender<std::string> tx(o);
  sender<std::string> window(wo);
  receiver<std::string> rx(o);
  stall();
  check_every_verb(tx, window, rx);
  within("close_for(1s)", 1s, [&] { EXPECT_NE(tx.close_for(1s), status::ok); });
  resume();
}

// While the server restarts, short deadlines are kept; once it is back the same verbs succeed.
TEST_F(deadline_test, timed_verbs_keep_their_deadlines_while_the_server_restarts) {
  auto o = deadline_opts();
  o.publish_retry_for = 10s;
  sender<std::string> tx(o);
  receiver<std::string> rx(o);
  server_.stop(SIGKILL);
  std::thread restarter([&] {
    std::this_thread::sleep_for(800ms);
    server_.start();
  });
  const auto t_end = clk::now() + 1500ms;
  int rounds = 0;
  while (clk::now() < t_end) {
    within("send_for(150ms)", 150ms, [&] { (void)tx.send_for("r", 150ms); });
    within("recv_for(150ms)", 150ms, [&] { (void)rx.recv_for(150ms); });
    within("try_recv()", 50ms, [&] { (void)rx.try_recv(); });
    ++rounds;
  }
  restarter.join();
  EXPECT_GE(rounds, 3);
  EXPECT_EQ(tx.send_for("after", 10s), status::ok);
  bool seen = false;
  const auto until = clk::now() + 15s;
  while (!seen && clk::now() < until)
    if (auto v = rx.recv_for(1s)) seen = (*v == "after");
  EXPECT_TRUE(seen) << "the receiver works again after the restart";
}

}  // namespace

// A 3-node JetStream cluster on loopback (three nats-server processes with routes): a stream
// with 3 replicas loses no acknowledged message when one node stops, and the channel keeps
// working on the other two.
// bp-test-timeout: 180
#include <bp/nats/sender.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include <bp/nats/receiver.hpp>

#include "nats_server.hpp"
#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;

class cluster {
 public:
  cluster() {
    std::vector<int> route_ports{bp::test::free_port(), bp::test::free_port(),
                                 bp::test::free_port()};
    for (int i = 0; i < 3; ++i) {
      std::string routes;
      for (int j = 0; j < 3; ++j)
        if (j != i) routes += (routes.empty() ? "" : ",") + route_url(route_ports[j]);
      nodes_.push_back(std::make_unique<bp::test::nats_server>(bp::test::nats_server::config{
          {"--cluster_name", "bp", "--cluster", route_url(route_ports[i]), "--routes", routes},
          "n" + std::to_string(i + 1)}));
    }
  }
  // Starts all three, then waits until each one's /healthz is 200 (JetStream meta leader up).
  void start() {
    std::vector<std::unique_ptr<std::thread>> starters;
    for (auto& n : nodes_)
      starters.push_back(std::make_unique<std::thread>([&n] { n->start(60s); }));
    for (auto& t : starters) t->join();
  }
  bp::test::nats_server& node(int i) { return *nodes_[static_cast<std::size_t>(i)]; }
  std::vector<std::string> urls() const {
    std::vector<std::string> u;
    for (const auto& n : nodes_) u.push_back(n->url());
    return u;
  }

 private:
  static std::string route_url(int port) { return "nats://127.0.0.1:" + std::to_string(port); }
  std::vector<std::unique_ptr<bp::test::nats_server>> nodes_;
};

TEST(cluster_test, stopping_one_of_three_nodes_loses_no_acknowledged_message) {
  bp::test::watchdog dog(170s, "cluster test");
  cluster c;
  ASSERT_NO_THROW(c.start());
  bp::nats::options o{.servers = c.urls(),
                      .request_timeout = 5s,
                      .stream = "ORDERS",
                      .subject = "orders",
                      .capacity = 1000,
                      .policy = overflow::block,
                      .replicas = 3,
                      .publish_retry_for = 30s,
                      .fetch_wait = 500ms};
  o.reconnect_wait = 100ms;
  // Right after a start or a node loss the cluster may be electing leaders: JetStream API calls
  // time out meanwhile, so setup is retried (as an application would).
  auto make = [&](auto& ptr) {
    using end = typename std::remove_reference_t<decltype(ptr)>::element_type;
    return bp::test::eventually(
        [&] {
          try {
            ptr = std::make_unique<end>(o);
            return true;
          } catch (const bp::nats::error& e) {
            std::fprintf(stderr, "setup retry: %s\n", e.what());
            std::this_thread::sleep_for(200ms);
            return false;
          }
        },
        60000ms);
  };
  std::unique_ptr<bp::nats::sender<std::string>> tx;
  ASSERT_TRUE(make(tx));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(tx->send(std::to_string(i)), status::ok);
  c.node(0).stop(SIGKILL);  // also the node most clients connect to first
  for (int i = 100; i < 200; ++i)
    ASSERT_EQ(tx->send_for(std::to_string(i), 30s), status::ok) << "value " << i;
  std::unique_ptr<bp::nats::receiver<std::string>> rx;
  ASSERT_TRUE(make(rx));
  std::vector<std::string> got;
  while (got.size() < 200) {
    auto v = rx->recv_for(10s);
    if (!v) break;
    got.push_back(*v);
  }
  ASSERT_EQ(got.size(), 200u);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(got[static_cast<std::size_t>(i)], std::to_string(i));
}

}  // namespace

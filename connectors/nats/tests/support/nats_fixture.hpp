// The gtest fixture of the bp::nats tests: one real nats-server per test, options for it, and
// a whole-test watchdog (no test can hang, whatever the server does).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>

#include <bp/nats/options.hpp>

#include "nats_server.hpp"
#include "test_util.hpp"

namespace bp::test {

class nats_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dog_ = std::make_unique<watchdog>(std::chrono::seconds(100), "bp::nats test");
    server_.start();
  }
  void TearDown() override {
    server_.stop();
    dog_.reset();
  }

  // Options for a fresh stream on this test's server.
  bp::nats::options opts(std::size_t capacity, bp::overflow policy,
                         const std::string& stream = "BP") const {
    bp::nats::options o;
    o.servers = {server_.url()};
    o.stream = stream;
    o.subject = "bp." + stream;
    o.capacity = capacity;
    o.policy = policy;
    o.request_timeout = std::chrono::seconds(3);
    o.connect_timeout = std::chrono::seconds(2);
    o.fetch_wait = std::chrono::milliseconds(200);
    return o;
  }

  static std::string peer() {
    const char* p = std::getenv("BP_NATS_PEER");
    if (p != nullptr && *p != '\0') return p;
#ifdef BP_NATS_PEER_PATH
    return BP_NATS_PEER_PATH;
#else
    return "bp_nats_peer";
#endif
  }

  nats_server server_;
  std::unique_ptr<watchdog> dog_;
};

}  // namespace bp::test

// Where a delivered message stands (delivery_info), read from its acknowledgement subject without
// nats.c's allocating natsMsg_GetMetaData: both subject forms servers send, a refusal for
// anything else (the caller then asks nats.c), and the answers for messages of a real server.
#include <chrono>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include <bp/nats/receiver.hpp>
#include <bp/nats/sender.hpp>

#include "nats_fixture.hpp"

namespace {

using namespace std::chrono_literals;
using bp::nats::delivery_info;
using bp::nats::detail::parse_ack_subject;

// Parses `reply` and checks the four numbers it carries.
void expect_reads(const char* reply, std::uint64_t delivered, std::uint64_t stream_seq,
                  std::uint64_t consumer_seq, std::uint64_t pending) {
  delivery_info d;
  ASSERT_TRUE(parse_ack_subject(reply, d)) << reply;
  EXPECT_EQ(d.delivered, delivered) << reply;
  EXPECT_EQ(d.stream_seq, stream_seq) << reply;
  EXPECT_EQ(d.consumer_seq, consumer_seq) << reply;
  EXPECT_EQ(d.pending, pending) << reply;
}

TEST(ack_subject, reads_the_short_form) {
  expect_reads("$JS.ACK.ORDERS.NEW.1.2.3.1587466354254920000.10", 1, 2, 3, 10);
  // Without the pending count (older servers): pending reads 0.
  expect_reads("$JS.ACK.S.C.4.18446744073709551615.6.7", 4, 18446744073709551615u, 6, 0);
}

TEST(ack_subject, reads_the_form_with_domain_and_account) {
  expect_reads("$JS.ACK.hub.ACCHASH.ORDERS.NEW.2.20.30.1587466354254920000.4", 2, 20, 30, 4);
  // With the trailing random token, and the "_" of no domain.
  expect_reads("$JS.ACK._.ACCHASH.S.C.5.6.7.8.9.rnd", 5, 6, 7, 9);
}

TEST(ack_subject, refuses_anything_else_and_leaves_the_answer_alone) {
  for (const char* bad :
       {"", "$JS.ACK", "$JS.ACK.S.C.1.2.3", "$JS.NAK.S.C.1.2.3.4.5", "_INBOX.abc.def.1.2.3.4.5",
        "$JS.ACK.S.C.x.2.3.4.5", "$JS.ACK.S.C.1.2.3.4.-5", "$JS.ACK.S.C.1..3.4.5",
        "$JS.ACK.D.A.S.C.1.2.3.4", "$JS.ACK.S.C.1.2.3.4.99999999999999999999"}) {
    delivery_info d;
    d.delivered = 42;
    EXPECT_FALSE(parse_ack_subject(bad, d)) << bad;
    EXPECT_EQ(d.delivered, 42u) << bad;
  }
}

class delivery_test : public bp::test::nats_test {};

// The server's own subjects: sequence numbers, pending counts and a redelivery's count.
TEST_F(delivery_test, info_reads_the_servers_subjects) {
  bp::nats::sender<std::string> tx(opts(16, bp::overflow::block));
  bp::nats::receiver<std::string> rx(opts(16, bp::overflow::block));
  for (const char* v : {"a", "b", "c"}) ASSERT_EQ(tx.send(v), bp::status::ok);
  for (std::uint64_t i = 1; i <= 3; ++i) {
    auto d = rx.recv_message_for(5s);
    ASSERT_TRUE(d.has_value());
    const delivery_info info = d->info();
    EXPECT_EQ(info.stream_seq, i);
    EXPECT_EQ(info.consumer_seq, i);
    EXPECT_EQ(info.delivered, 1u);
    EXPECT_EQ(info.pending, 3 - i);
    if (i == 3) {
      d->nak();
    } else {
      d->ack(true);
    }
  }
  auto again = rx.recv_message_for(5s);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->value, "c");
  EXPECT_EQ(again->info().stream_seq, 3u);
  EXPECT_EQ(again->info().delivered, 2u);
  again->ack(true);
}

}  // namespace

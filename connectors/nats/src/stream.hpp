// The work-queue stream as the byte sender and the byte receiver both see it: what options
// must hold, how the stream and the durable consumer are provisioned from them, and the header
// that marks the end of stream. Both ends provision, so either may start first.
//
// Mapping of bp's words to JetStream (see docs/distributed.md):
//   capacity / max_bytes  -> stream MaxMsgs / MaxBytes of a work-queue stream (acknowledged
//                            messages leave it, so "stored" == "buffered")
//   block                 -> DiscardNew; a publish refused with 10077 is retried with backoff
//   drop_newest / reject  -> DiscardNew; 10077 answers dropped / full at once
//   drop_oldest           -> DiscardOld; the receiver counts the gaps in stream sequences
//   max_in_flight         -> js_PublishMsgAsync with our own window (and MaxPending above it)
//   receiver              -> pull consumer on a durable, MaxAckPending, AckWait, Fetch(batch)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nats/nats.h>

#include <bp/nats/detail/transport.hpp>
#include <bp/nats/options.hpp>

#include "connection.hpp"

namespace bp::nats::detail {

// The header a sender's close() publishes with an empty payload; never handed out as a value.
inline constexpr const char* eos_header = "Bp-End-Of-Stream";

// --- options (options.cpp) ----------------------------------------------------------------------

// Throws std::invalid_argument naming the first field of `o` that cannot work.
void validate(const options& o);

// The durable consumer's name: options.durable, or "<stream>_bp".
std::string durable_of(const options& o);

// --- provisioning (provisioning.cpp) ------------------------------------------------------------

// JetStream API options: every request waits at most request_timeout.
jsOptions api_options(const options& o);

// What the ends learn about the stream during setup.
struct stream_facts {
  std::string subject;
  std::size_t capacity = 0;
};

// Creates or updates the stream (stream_setup::create), or checks that it exists and matches
// the policy (stream_setup::bind).
stream_facts ensure_stream(connection& c, const options& o);

// Creates the durable pull consumer, or updates its limits; returns the stream sequence of the
// last message it delivered (0 if none).
std::uint64_t ensure_consumer(connection& c, const options& o, const std::string& durable);

// One stream-info request.
stream_state read_state(connection& c, const options& o);

struct consumer_info_guard {
  jsConsumerInfo* p = nullptr;
  ~consumer_info_guard() { jsConsumerInfo_Destroy(p); }
};

}  // namespace bp::nats::detail

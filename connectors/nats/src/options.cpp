// Validation of bp::nats::options, before any connection is made: a mistake is reported as
// std::invalid_argument naming the field, rather than as a server's error code later (or as a
// stream without bounds, which would give no backpressure at all).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include <bp/nats/options.hpp>

#include "stream.hpp"

namespace bp::nats::detail {
namespace {

using std::chrono::milliseconds;

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw std::invalid_argument("bp::nats::options: " + field + " " + why);
}

bool valid_name(const std::string& n) {
  return !n.empty() && n.find_first_of(".*> \t\r\n") == std::string::npos;
}

}  // namespace

void validate(const options& o) {
  if (o.servers.empty()) invalid("servers", "is empty: give at least one nats:// URL");
  for (const auto& s : o.servers)
    if (s.empty()) invalid("servers", "contains an empty URL");
  if (!valid_name(o.stream))
    invalid("stream",
            "'" + o.stream + "' is not a stream name (non-empty, no '.', '*', '>' or space)");
  if (o.setup == stream_setup::create && o.subject.empty())
    invalid("subject", "is empty (needed to create the stream)");
  if (o.subject.find_first_of(" \t\r\n") != std::string::npos)
    invalid("subject", "'" + o.subject + "' contains white space");
  switch (o.policy) {
    case overflow::block:
    case overflow::drop_newest:
    case overflow::drop_oldest:
    case overflow::reject:
      break;
    default:
      invalid("policy", "is not a bp::overflow value");
  }
  if (o.setup == stream_setup::create && o.capacity == 0 && o.max_bytes == 0)
    invalid("capacity", "is 0 and max_bytes is 0: an unbounded stream gives no backpressure");
  if (o.capacity > static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max()))
    invalid("capacity", "is too large");
  if (o.max_bytes < 0) invalid("max_bytes", "is negative");
  if (o.max_message_size < 0) invalid("max_message_size", "is negative");
  if (o.replicas < 1 || o.replicas > 5) invalid("replicas", "must be 1..5");
  if (o.connect_timeout <= milliseconds(0)) invalid("connect_timeout", "must be positive");
  if (o.request_timeout <= milliseconds(0)) invalid("request_timeout", "must be positive");
  if (o.reconnect_wait < milliseconds(0)) invalid("reconnect_wait", "is negative");
  if (o.duplicate_window <= milliseconds(0)) invalid("duplicate_window", "must be positive");
  if (o.retry_backoff_min <= milliseconds(0)) invalid("retry_backoff_min", "must be positive");
  if (o.retry_backoff_max < o.retry_backoff_min)
    invalid("retry_backoff_max", "is smaller than retry_backoff_min");
  if (o.publish_retry_for < milliseconds(0)) invalid("publish_retry_for", "is negative");
  if (o.close_timeout < milliseconds(0)) invalid("close_timeout", "is negative");
  if (o.ack_wait <= milliseconds(0)) invalid("ack_wait", "must be positive");
  if (o.fetch_wait <= milliseconds(0)) invalid("fetch_wait", "must be positive");
  if (o.max_ack_pending < 1) invalid("max_ack_pending", "must be at least 1");
  if (o.max_deliver == 0 || o.max_deliver < -1) invalid("max_deliver", "must be -1 or positive");
  if (o.fetch_batch < 1) invalid("fetch_batch", "must be at least 1");
  if (!o.durable.empty() && !valid_name(o.durable))
    invalid("durable", "'" + o.durable + "' is not a consumer name");
  if (o.max_in_flight > 0 && o.policy != overflow::block && o.policy != overflow::drop_oldest)
    invalid("max_in_flight", "needs policy block or drop_oldest (" +
                                 std::string(to_string(o.policy)) +
                                 " must answer each send at once)");
  if (o.max_in_flight > (1u << 20)) invalid("max_in_flight", "is larger than 2^20");
}

std::string durable_of(const options& o) {
  return o.durable.empty() ? o.stream + "_bp" : o.durable;
}

}  // namespace bp::nats::detail

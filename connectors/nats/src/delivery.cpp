// One fetched JetStream message (raw_delivery): its bytes, where it stands in the stream, and
// its settlement (ack, nak, in progress, term). It owns the natsMsg and shares the connection,
// so a delivery can still be settled after the receiver that fetched it is gone; once settled,
// further settlements do nothing.
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include <nats/nats.h>

#include <bp/nats/detail/transport.hpp>

#include "stream.hpp"

namespace bp::nats::detail {

using std::chrono::milliseconds;

raw_delivery::raw_delivery(std::shared_ptr<connection> c, void* msg) noexcept
    : conn_(std::move(c)), msg_(msg) {}
raw_delivery::raw_delivery(raw_delivery&& o) noexcept
    : conn_(std::move(o.conn_)), msg_(std::exchange(o.msg_, nullptr)), settled_(o.settled_) {}
raw_delivery& raw_delivery::operator=(raw_delivery&& o) noexcept {
  if (this != &o) {
    discard();
    conn_ = std::move(o.conn_);
    msg_ = std::exchange(o.msg_, nullptr);
    settled_ = o.settled_;
  }
  return *this;
}
raw_delivery::~raw_delivery() {
  discard();
}
void raw_delivery::discard() noexcept {
  auto* m = static_cast<natsMsg*>(std::exchange(msg_, nullptr));
  if (conn_) {
    conn_->bin.put(m);
  } else {
    natsMsg_Destroy(m);
  }
}

std::span<const std::byte> raw_delivery::data() const noexcept {
  auto* m = static_cast<natsMsg*>(msg_);
  if (m == nullptr) return {};
  return {reinterpret_cast<const std::byte*>(natsMsg_GetData(m)),
          static_cast<std::size_t>(natsMsg_GetDataLength(m))};
}

bool raw_delivery::is_end_of_stream() const noexcept {
  auto* m = static_cast<natsMsg*>(msg_);
  const char* v = nullptr;
  // The marker has an empty payload (close() publishes no value), so a message with a payload
  // is a value without looking at its headers: reading one makes nats.c parse every header of
  // the message into a hash map (the Nats-Msg-Id of each value), per message.
  return m != nullptr && natsMsg_GetDataLength(m) == 0 &&
         natsMsgHeader_Get(m, eos_header, &v) == NATS_OK;
}

bool parse_ack_subject(std::string_view reply, delivery_info& out) noexcept {
  // At most 12 tokens matter: the longer form's and one more, to tell 11 from 12 and more.
  std::array<std::string_view, 13> tok{};
  std::size_t n = 0;
  while (n < tok.size()) {
    const auto dot = reply.find('.');
    tok[n++] = reply.substr(0, dot);
    if (dot == std::string_view::npos) {
      reply = {};
      break;
    }
    reply.remove_prefix(dot + 1);
  }
  if (n < 8 || tok[0] != "$JS" || tok[1] != "ACK") return false;
  std::size_t first;  // the index of <delivered>
  if (n == 8 || n == 9)
    first = 4;
  else if (n >= 11)
    first = 6;
  else
    return false;
  auto number = [](std::string_view t, std::uint64_t& v) {
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    return !t.empty() && ec == std::errc{} && end == t.data() + t.size();
  };
  delivery_info got;
  std::uint64_t time = 0;
  if (!number(tok[first], got.delivered) || !number(tok[first + 1], got.stream_seq) ||
      !number(tok[first + 2], got.consumer_seq) || !number(tok[first + 3], time))
    return false;
  if (first + 4 < n && !number(tok[first + 4], got.pending)) return false;
  out = got;
  return true;
}

delivery_info raw_delivery::info() const {
  delivery_info out;
  if (msg_ == nullptr) return out;
  // nats.c's natsMsg_GetMetaData reads the same subject but allocates its answer (and the
  // stream and consumer names) per message; the receiver asks this of every message.
  const char* reply = natsMsg_GetReply(static_cast<natsMsg*>(msg_));
  if (reply != nullptr && parse_ack_subject(reply, out)) return out;
  jsMsgMetaData* meta = nullptr;
  if (natsMsg_GetMetaData(&meta, static_cast<natsMsg*>(msg_)) == NATS_OK) {
    out.stream_seq = meta->Sequence.Stream;
    out.consumer_seq = meta->Sequence.Consumer;
    out.delivered = meta->NumDelivered;
    out.pending = meta->NumPending;
    jsMsgMetaData_Destroy(meta);
  }
  return out;
}

void raw_delivery::ack(bool wait_for_server) {
  if (settled_ || msg_ == nullptr) return;
  auto* m = static_cast<natsMsg*>(msg_);
  if (wait_for_server) {
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = natsMsg_AckSync(m, nullptr, &jerr);
    if (s != NATS_OK) throw_nats("acknowledgement not confirmed", s, jerr);
  } else {
    check(natsMsg_Ack(m, nullptr), "cannot acknowledge");
  }
  settled_ = true;
}

void raw_delivery::nak(milliseconds delay) {
  if (settled_ || msg_ == nullptr) return;
  auto* m = static_cast<natsMsg*>(msg_);
  check(
      delay.count() > 0 ? natsMsg_NakWithDelay(m, delay.count(), nullptr) : natsMsg_Nak(m, nullptr),
      "cannot nak");
  settled_ = true;
}

void raw_delivery::in_progress() {
  if (settled_ || msg_ == nullptr) return;
  check(natsMsg_InProgress(static_cast<natsMsg*>(msg_), nullptr), "cannot mark in progress");
}

void raw_delivery::term() {
  if (settled_ || msg_ == nullptr) return;
  check(natsMsg_Term(static_cast<natsMsg*>(msg_), nullptr), "cannot terminate");
  settled_ = true;
}

}  // namespace bp::nats::detail

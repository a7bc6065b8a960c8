// One fetched JetStream message (raw_delivery): its bytes, where it stands in the stream, and
// its settlement (ack, nak, in progress, term). It owns the natsMsg and shares the connection,
// so a delivery can still be settled after the receiver that fetched it is gone; once settled,
// further settlements do nothing.
#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
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
    natsMsg_Destroy(static_cast<natsMsg*>(msg_));
    conn_ = std::move(o.conn_);
    msg_ = std::exchange(o.msg_, nullptr);
    settled_ = o.settled_;
  }
  return *this;
}
raw_delivery::~raw_delivery() {
  natsMsg_Destroy(static_cast<natsMsg*>(msg_));
}

std::span<const std::byte> raw_delivery::data() const noexcept {
  auto* m = static_cast<natsMsg*>(msg_);
  if (m == nullptr) return {};
  return {reinterpret_cast<const std::byte*>(natsMsg_GetData(m)),
          static_cast<std::size_t>(natsMsg_GetDataLength(m))};
}

bool raw_delivery::is_end_of_stream() const noexcept {
  const char* v = nullptr;
  return msg_ != nullptr &&
         natsMsgHeader_Get(static_cast<natsMsg*>(msg_), eos_header, &v) == NATS_OK;
}

delivery_info raw_delivery::info() const {
  delivery_info out;
  jsMsgMetaData* meta = nullptr;
  if (msg_ != nullptr && natsMsg_GetMetaData(&meta, static_cast<natsMsg*>(msg_)) == NATS_OK) {
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

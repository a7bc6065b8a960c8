// The byte receiver: a pull subscription on the durable consumer, fetching in batches and
// handing out one raw_delivery at a time. It counts redeliveries and what drop_oldest evicted
// (gaps in the stream sequences of first deliveries), and it ends receiving at a sender's
// end-of-stream marker only once nothing sent before the marker can still come back (the
// comment above end_check_min says why and how).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include <nats/nats.h>

#include <bp/nats/detail/transport.hpp>
#include <bp/nats/error.hpp>

#include "stream.hpp"

namespace bp::nats::detail {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds try_recv_wait{50};  // the longest a try_recv waits for the server

}  // namespace

struct byte_receiver::impl {
  options o;
  std::string durable;
  std::shared_ptr<connection> conn;
  stream_facts facts;
  natsSubscription* sub = nullptr;
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> received{0}, evicted{0}, redelivered{0};

  std::mutex mu;                         // serializes receives
  std::deque<natsMsg*> batch;            // fetched, not yet handed out
  std::atomic<bool> end_seen{false};     // a sender's end-of-stream marker ended receiving
  std::optional<raw_delivery> held_end;  // a marker read, not yet known to end receiving
  milliseconds end_check{end_check_min};
  clock::time_point next_end_check = clock::time_point::min();
  std::uint64_t expected_seq = 1;  // next stream sequence a first delivery should carry

  explicit impl(const options& opts) : o(opts), durable(durable_of(opts)) {
    validate(o);
    jsOptions jo = api_options(o);
    conn = open_connection(o, &jo);
    facts = ensure_stream(*conn, o);
    // The durable has existed since the stream was created (the sender creates it too), so every
    // sequence after the last one it delivered is either delivered later or was evicted.
    expected_seq = ensure_consumer(*conn, o, durable) + 1;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = o.stream.c_str();
    so.Consumer = durable.c_str();
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s =
        js_PullSubscribe(&sub, conn->js, facts.subject.c_str(), durable.c_str(), &jo, &so, &jerr);
    if (s != NATS_OK) throw_nats("cannot bind to consumer '" + durable + "'", s, jerr);
  }

  ~impl() {
    // A held marker goes back at once for another receiver of the durable.
    if (held_end) {
      try {
        held_end->nak(milliseconds(0));
      } catch (...) {  // the server is gone: it comes back after ack_wait
      }
    }
    held_end.reset();
    for (auto* m : batch) natsMsg_Destroy(m);
    if (sub != nullptr) {
      natsSubscription_Unsubscribe(sub);  // the durable stays; nothing to check
      natsSubscription_Destroy(sub);
    }
  }

  // Fetches into `batch`; false when nothing came (timeout / nothing pending).
  bool fetch(bool may_wait, clock::time_point deadline, int max_batch) {
    // A batch above max_ack_pending could never fill: the server stops delivering there.
    const int cap = static_cast<int>(
        std::min<std::int64_t>(o.fetch_batch, std::max<std::int64_t>(1, o.max_ack_pending)));
    const int want = max_batch > 0 ? std::min(max_batch, cap) : cap;
    conn->bin.flush();  // the settled deliveries of the last batch, while we wait anyway
    natsMsgList list{nullptr, 0};
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s;
    if (may_wait) {
      s = natsSubscription_Fetch(&list, sub, want, millis_until(deadline, o.fetch_wait), &jerr);
    } else {
      jsFetchRequest req;
      jsFetchRequest_Init(&req);
      req.Batch = want;
      // no_wait: the server answers at once (404 when nothing is pending). nats.c 3.4 still
      // waits for the request's expiry when no message came, so the expiry bounds try_recv.
      req.NoWait = true;
      req.Expires = to_ns(std::min(o.request_timeout, try_recv_wait));
      s = natsSubscription_FetchRequest(&list, sub, &req);
    }
    if (s == NATS_OK) {
      for (int i = 0; i < list.Count; ++i) {
        batch.push_back(list.Msgs[i]);
        list.Msgs[i] = nullptr;
      }
      natsMsgList_Destroy(&list);
      return true;
    }
    natsMsgList_Destroy(&list);
    if (s == NATS_TIMEOUT || s == NATS_NOT_FOUND) return false;
    if (closed.load()) return false;
    // A write to a socket the server just closed fails with an IO error before nats.c notices
    // the disconnect: transient too, unless the connection is closed for good.
    const bool broken_pipe =
        s == NATS_IO_ERROR && natsConnection_Status(conn->nc) != NATS_CONN_STATUS_CLOSED;
    if (is_transient(s) || broken_pipe) {  // reconnecting: try again (within the deadline)
      sleep_until_or(may_wait ? deadline : clock::now(), std::min(o.fetch_wait, milliseconds(100)));
      return false;
    }
    throw_nats("fetch from consumer '" + durable + "' failed", s, jerr);
  }

  // The end-of-stream marker ends receiving only once no value sent before it can still come
  // back: a value delivered to a receiver that crashed (or has not acknowledged yet) is pending
  // on the server and is redelivered after ack_wait, and a loop over a closed channel must see
  // it (as a Go range over a closed channel sees every value sent before close). So the marker
  // is held here, unacknowledged, while this receiver keeps fetching; every few milliseconds
  // (doubling up to end_check_max) the durable's state is read:
  //   ack floor >= marker - 1   every message before the marker is acknowledged, or
  //   ack pending <= 1          nothing but the marker is out (what is left before it
  //                             exhausted max_deliver and will never come back),
  // and only then is the marker acknowledged and the end reported. Several receivers on one
  // durable: the one holding the marker waits for the others' acknowledgements; a marker held
  // by a receiver that dies comes back after ack_wait to another.
  static constexpr milliseconds end_check_min{2};
  static constexpr milliseconds end_check_max{250};

  // True when the held marker may end receiving (one consumer-info request, bounded by the
  // deadline and request_timeout). Transport failures answer false: try again later.
  bool end_confirmed(clock::time_point deadline) {
    const auto seq = held_end->info().stream_seq;
    jsOptions jo = api_options(o);
    jo.Wait = millis_until(deadline, o.request_timeout);
    consumer_info_guard ci;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_GetConsumerInfo(&ci.p, conn->js, o.stream.c_str(), durable.c_str(), &jo, &jerr);
    if (s != NATS_OK) {
      if (is_transient(s) || s == NATS_TIMEOUT) return false;
      throw_nats("cannot read consumer '" + durable + "' of stream '" + o.stream + "'", s, jerr);
    }
    return ci.p->AckFloor.Stream + 1 >= seq || ci.p->NumAckPending <= 1;
  }

  // Takes a marker just read: held until end_confirmed(). A redelivery of the marker already
  // held replaces it; a second sender's marker replaces the first (acknowledged).
  void hold_end(raw_delivery d) {
    if (held_end && held_end->info().stream_seq != d.info().stream_seq) held_end->ack(false);
    held_end.emplace(std::move(d));
    end_check = end_check_min;
    next_end_check = clock::time_point::min();
  }

  // With a marker held: checks whether it ends receiving now (and if so acknowledges it).
  bool settle_end(clock::time_point deadline) {
    if (!held_end) return end_seen.load();
    const auto now = clock::now();
    if (now < next_end_check) return false;
    if (end_confirmed(deadline)) {
      held_end->ack(false);
      held_end.reset();
      end_seen = true;
      return true;
    }
    // Keep the marker ours while we wait (its own ack_wait would send it to another receiver).
    try {
      held_end->in_progress();
    } catch (const error&) {  // the server is unreachable: the next check tells
    }
    next_end_check = clock::now() + end_check;
    end_check = std::min(end_check * 2, end_check_max);
    return false;
  }

  std::optional<raw_delivery> recv(bool may_wait, clock::time_point deadline, int max_batch,
                                   bool* ended) {
    std::lock_guard lock(mu);
    auto none = [ended](bool end) -> std::optional<raw_delivery> {
      if (ended != nullptr) *ended = end;
      return std::nullopt;
    };
    for (;;) {
      if (closed.load(std::memory_order_acquire)) return none(true);
      if (!batch.empty()) {
        raw_delivery d(conn, batch.front());
        batch.pop_front();
        if (d.is_end_of_stream()) {
          hold_end(std::move(d));
          continue;
        }
        const auto info = d.info();
        if (info.delivered > 1) {
          ++redelivered;
        } else if (info.stream_seq > 0) {
          if (info.stream_seq > expected_seq) evicted += info.stream_seq - expected_seq;
          expected_seq = std::max(expected_seq, info.stream_seq + 1);
        }
        return d;
      }
      if (end_seen) return none(true);
      if (held_end && settle_end(may_wait ? deadline : clock::now() + try_recv_wait))
        return none(true);
      // Holding the marker: fetch in short slices so the end is noticed soon after the last
      // acknowledgement, and redelivered values are taken meanwhile.
      const auto slice =
          held_end ? std::min(deadline, std::max(next_end_check, clock::now())) : deadline;
      const bool got = fetch(may_wait, slice, max_batch);
      if (!got && (!may_wait || expired(deadline)))
        return none(closed.load(std::memory_order_acquire));  // close() while fetching: the end
    }
  }

  // Whether the end of stream is known without taking a value: a held marker that may end now,
  // or, when the durable has exactly one undelivered message, nothing out, and that message is
  // the stream's last and an end-of-stream marker, that marker (fetched alone). Lets a
  // publisher complete without outstanding demand. Never fetches a value.
  bool peek_end(clock::time_point deadline) {
    std::lock_guard lock(mu);
    if (closed.load() || end_seen) return end_seen;
    if (!batch.empty()) return false;
    if (!held_end) {
      jsOptions jo = api_options(o);
      jo.Wait = millis_until(deadline, o.request_timeout);
      consumer_info_guard ci;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s =
          js_GetConsumerInfo(&ci.p, conn->js, o.stream.c_str(), durable.c_str(), &jo, &jerr);
      if (s != NATS_OK || ci.p->NumPending != 1 || ci.p->NumAckPending != 0) return false;
      natsMsg* last = nullptr;
      jo.Wait = millis_until(deadline, o.request_timeout);
      s = js_GetLastMsg(&last, conn->js, o.stream.c_str(), facts.subject.c_str(), &jo, &jerr);
      if (s != NATS_OK) return false;
      const char* v = nullptr;
      const bool is_end = natsMsgHeader_Get(last, eos_header, &v) == NATS_OK &&
                          natsMsg_GetSequence(last) > ci.p->Delivered.Stream;
      natsMsg_Destroy(last);
      if (!is_end) return false;
      if (!fetch(true, std::min(deadline, clock::now() + try_recv_wait), 1)) return false;
      const char* h = nullptr;
      // A value that came first after all stays in the batch for the next demand.
      if (batch.empty() || natsMsgHeader_Get(batch.front(), eos_header, &h) != NATS_OK)
        return false;
      raw_delivery d(conn, batch.front());
      batch.pop_front();
      hold_end(std::move(d));
    }
    next_end_check = clock::time_point::min();
    return settle_end(deadline);
  }
};

byte_receiver::byte_receiver(const options& o) : impl_(std::make_unique<impl>(o)) {}
byte_receiver::~byte_receiver() = default;
std::optional<raw_delivery> byte_receiver::recv(bool may_wait, clock::time_point deadline,
                                                int max_batch, bool* ended) {
  return impl_->recv(may_wait, deadline, max_batch, ended);
}
bool byte_receiver::peek_end(clock::time_point deadline) {
  return impl_->peek_end(deadline);
}
bool byte_receiver::end_seen() const noexcept {
  return impl_->end_seen.load();
}
void byte_receiver::close() {
  impl_->closed.store(true, std::memory_order_release);
}
bool byte_receiver::is_closed() const noexcept {
  return impl_->closed.load() || impl_->end_seen.load();
}
stream_state byte_receiver::state() const {
  return read_state(*impl_->conn, impl_->o);
}
std::size_t byte_receiver::capacity() const noexcept {
  return impl_->facts.capacity;
}
byte_receiver::counters byte_receiver::stats() const noexcept {
  return {impl_->received.load(), impl_->evicted.load(), impl_->redelivered.load()};
}
void byte_receiver::count_received() noexcept {
  ++impl_->received;
}

}  // namespace bp::nats::detail

// The byte sender: publishes payloads to the work-queue stream and answers each send with a
// bp::status under the overflow policy. The stream's limits are the buffer: the server refusing
// a publish for lack of room (10077) is what "full" means, and the sender only decides whether
// to wait and retry, drop or answer at once. Every publish carries a message id, so that a retry
// after a lost answer is deduplicated by the server rather than stored twice. With
// max_in_flight > 0 publishes are asynchronous within a window of our own, which a send also
// waits for (or, not waiting, answers full), and a thread publishes refused messages again
// after a backoff.
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>

#include <nats/nats.h>
#include <unistd.h>

#include <bp/detail/event_count.hpp>
#include <bp/detail/wait.hpp>
#include <bp/nats/detail/transport.hpp>
#include <bp/nats/error.hpp>

#include "stream.hpp"

namespace bp::nats::detail {
namespace {

using std::chrono::milliseconds;

constexpr int js_store_failed = 10077;  // "maximum messages/bytes exceeded" and the like
constexpr int js_msg_too_big = 10054;   // message size exceeds the stream's MaxMsgSize

}  // namespace

namespace {

// Acknowledgements arrive on nats.c's threads, and one may still be on its way (or running)
// when its sender is destroyed: a flush that timed out leaves publishes unacknowledged, and
// nats.c does not wait for a handler in progress when the connection goes. So the handler's
// closure is a sender's id, never its address, looked up here under a lock that the sender's
// destructor also takes to leave: once it has left, no handler touches it, and an
// acknowledgement for a sender that is gone only frees its message. Ids are never reused.
struct ack_registry {
  std::mutex mu;
  std::unordered_map<std::uint64_t, void*> live;  // id -> its byte_sender::impl
  std::uint64_t next_id = 1;

  // Never destroyed: a handler may run while the process's statics are being destroyed.
  static ack_registry& get() {
    static auto* r = new ack_registry;
    return *r;
  }
};

class ack_registration {
 public:
  explicit ack_registration(void* owner) {
    auto& r = ack_registry::get();
    std::lock_guard lock(r.mu);
    id_ = r.next_id++;
    r.live.emplace(id_, owner);
  }
  ack_registration(const ack_registration&) = delete;
  ack_registration& operator=(const ack_registration&) = delete;
  ~ack_registration() {
    auto& r = ack_registry::get();
    std::lock_guard lock(r.mu);
    r.live.erase(id_);
  }
  void* closure() const noexcept {
    return reinterpret_cast<void*>(static_cast<std::uintptr_t>(id_));
  }

 private:
  std::uint64_t id_ = 0;
};

}  // namespace

struct byte_sender::impl {
  options o;
  std::shared_ptr<connection> conn;
  stream_facts facts;
  std::string id_prefix;
  std::atomic<std::uint64_t> next_id{0};
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> sent{0}, dropped{0}, rejected{0}, send_waits{0}, retries{0}, failed{0};

  // Producer window (max_in_flight > 0): publishes not yet acknowledged, and publishes the
  // server refused for lack of room, to be published again after a backoff. Guarded by `mu`;
  // every change that frees room or empties the window is announced on `changed` after it is
  // made (senders and flush wait there for acknowledgements), every change of the retry
  // schedule on `retry_changed` (the retrier waits there for its moment).
  std::mutex mu;
  alignas(bp::detail::cache_line) bp::detail::event_count changed;
  // The retrier's own: a refusal, a moved retry schedule, stop. Apart from `changed` so that
  // the acknowledgements that free room (one per message) do not wake the retrier each time.
  alignas(bp::detail::cache_line) bp::detail::event_count retry_changed;
  std::size_t in_flight = 0;
  std::deque<natsMsg*> refused;
  clock::time_point retry_at{};
  milliseconds backoff{0};
  std::string last_async_error;
  bool stopping = false;
  std::thread retrier;  // window mode: publishes refused messages again after their backoff
  // A send waiting for room in a full window is woken once this many slots are free (an
  // eighth of the window), not at every acknowledgement: see on_async_ack.
  std::size_t wake_room = 1;
  // The server's max_payload when we connected: payloads up to it skip reading the current
  // value, which takes the connection's lock (see check_size).
  std::int64_t max_payload_at_connect = 0;
  // Acknowledged messages, freed in runs (see message_bin): before `acks`, so that it outlives
  // every acknowledgement handler that reaches us.
  message_bin bin;
  // Last member, so the first to go: from then on no acknowledgement handler reaches us.
  ack_registration acks{this};

  explicit impl(const options& opts) : o(opts) {
    validate(o);
    std::random_device rd;
    std::ostringstream id;
    id << std::hex << rd() << rd() << '-' << ::getpid() << '-';
    id_prefix = id.str();
    backoff = o.retry_backoff_min;
    wake_room = std::max<std::size_t>(1, o.max_in_flight / 8);
    if (o.max_in_flight > 0) {
      jsOptions jo = api_options(o);
      // Our window bounds the publishes; nats.c's own stall is a safety net above it.
      jo.PublishAsync.MaxPending = static_cast<std::int64_t>(o.max_in_flight) * 2;
      // A publish over that limit waits this long inside nats.c, then is queued for a retry:
      // short, so that a timed send keeps its deadline (the default is 200 ms).
      jo.PublishAsync.StallWait = 10;
      jo.PublishAsync.AckHandler = &impl::on_async_ack;
      jo.PublishAsync.AckHandlerClosure = acks.closure();
      conn = open_connection(o, &jo);
      retrier = std::thread([this] { retry_loop(); });
    } else {
      jsOptions jo = api_options(o);
      conn = open_connection(o, &jo);
    }
    max_payload_at_connect = natsConnection_GetMaxPayload(conn->nc);
    try {
      facts = ensure_stream(*conn, o);
    } catch (...) {
      stop_retrier();
      throw;
    }
    // The durable exists from the start: messages sent before any receiver runs are its to
    // receive (or count as evicted), and both ends agree on its limits.
    if (o.setup == stream_setup::create) {
      try {
        (void)ensure_consumer(*conn, o, durable_of(o));
      } catch (...) {
        stop_retrier();
        throw;
      }
    }
  }

  ~impl() {
    if (o.max_in_flight > 0) {
      // Let outstanding acknowledgements arrive (bounded), then drop what is left.
      (void)flush(clock::now() + o.request_timeout);
      stop_retrier();
      std::lock_guard lock(mu);
      for (auto* m : refused) natsMsg_Destroy(m);
      refused.clear();
    }
    conn.reset();  // before the members the acknowledgement handler uses go away
  }

  void stop_retrier() {
    {
      std::lock_guard lock(mu);
      stopping = true;
    }
    changed.notify_all();
    retry_changed.notify_all();
    if (retrier.joinable()) retrier.join();
  }

  void retry_loop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      if (!refused.empty() && clock::now() >= retry_at) {
        try {
          resend_refused(lock);
        } catch (const std::exception& e) {
          ++failed;
          last_async_error = e.what();
        }
        continue;
      }
      // A wait for a moment (the backoff), or for the schedule to change: no spin. Any refusal
      // moves retry_at, so a new one ends the wait and the moment is computed again.
      const bool idle = refused.empty();
      const auto seen = retry_at;
      const auto wake = idle ? clock::now() + std::chrono::seconds(1) : retry_at;
      lock.unlock();
      auto attempt = [&] {
        std::lock_guard relock(mu);
        return stopping || retry_at != seen || (idle && !refused.empty());
      };
      (void)bp::detail::wait_loop(retry_changed, wake, attempt, bp::detail::no_spin,
                                  bp::detail::always_settled{});
      lock.lock();
    }
  }

  // A message id: id_prefix (at most 28 characters: two 32-bit hex numbers, the pid, two
  // dashes) and a counter, formatted on the stack: publishing allocates no string for it.
  struct msg_id {
    char text[64];
  };
  msg_id next_msg_id() {
    msg_id id;
    const std::size_t n = std::min(id_prefix.size(), sizeof id.text - 21);
    std::memcpy(id.text, id_prefix.data(), n);
    char* end = std::to_chars(id.text + n, id.text + sizeof id.text - 1, next_id.fetch_add(1)).ptr;
    *end = '\0';
    return id;
  }

  // How long a publish whose answers are lost keeps trying: publish_retry_for, or one attempt of
  // request_timeout when that is 0.
  milliseconds retry_budget() const {
    return o.publish_retry_for > milliseconds(0) ? o.publish_retry_for : o.request_timeout;
  }

  // One synchronous publish with its retries. `force_wait`: the end-of-stream marker waits for
  // room whatever the policy.
  //
  // Deadlines: every attempt waits for the server's answer at most until the earliest of the
  // caller's deadline, the retry budget (publish_retry_for, counted from the start of the first
  // attempt whose answer was lost) and request_timeout, so a dead, stalled or restarting server
  // never makes a timed send overrun its deadline (by more than a millisecond of rounding and
  // the scheduler's latency) nor an untimed one its retry budget.
  status publish_sync(natsMsg* msg, std::size_t size, bool may_wait, clock::time_point deadline,
                      bool force_wait) {
    const msg_id id = next_msg_id();
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.text;
    milliseconds delay = o.retry_backoff_min;
    bool waited = false;
    clock::time_point give_up = clock::time_point::max();  // set by the first lost answer
    for (;;) {
      const auto attempt_start = clock::now();
      // A lost answer here starts the retry budget at attempt_start: wait no longer than it.
      const auto budget_end =
          give_up != clock::time_point::max() ? give_up : attempt_start + retry_budget();
      const auto wait_end = std::min(deadline, budget_end);
      if (wait_end <= attempt_start) {
        if (expired(deadline)) return status::timeout;
        throw_nats("publish to '" + facts.subject + "' not acknowledged within " +
                       std::to_string(o.publish_retry_for.count()) + " ms",
                   NATS_TIMEOUT);
      }
      po.MaxWait = millis_until(wait_end, o.request_timeout);
      jsErrCode jerr = static_cast<jsErrCode>(0);
      jsPubAck* pa = nullptr;
      natsStatus s = js_PublishMsg(&pa, conn->js, msg, &po, &jerr);
      jsPubAck_Destroy(pa);
      if (s == NATS_OK) return status::ok;
      if (jerr == js_store_failed) {
        give_up = clock::time_point::max();  // the server answered: the budget starts afresh
        const overflow p = force_wait ? overflow::block : o.policy;
        switch (p) {
          case overflow::reject:
            ++rejected;
            return status::full;
          case overflow::drop_newest:
            ++dropped;
            return status::dropped;
          case overflow::drop_oldest:  // the server evicts; refusing means the message itself
            throw_nats("stream '" + o.stream + "' refused a message of " + std::to_string(size) +
                           " bytes (larger than max_bytes?)",
                       s, jerr);
          case overflow::block:
            break;
        }
        if (!may_wait) {
          ++rejected;
          return status::full;
        }
        if (!waited) {
          waited = true;
          ++send_waits;
        }
        if (expired(deadline)) return status::timeout;
        sleep_until_or(deadline, delay);
        delay = std::min(delay * 2, o.retry_backoff_max);
        continue;
      }
      if (jerr == js_msg_too_big || s == NATS_MAX_PAYLOAD)
        throw_nats("message of " + std::to_string(size) + " bytes is larger than stream '" +
                       o.stream + "' or the server accepts",
                   s, jerr);
      if (is_transient(s)) {
        if (give_up == clock::time_point::max()) give_up = attempt_start + retry_budget();
        if (expired(deadline)) return status::timeout;
        if (clock::now() >= give_up)
          throw_nats("publish to '" + facts.subject + "' not acknowledged within " +
                         std::to_string(o.publish_retry_for.count()) + " ms",
                     s, jerr);
        ++retries;
        sleep_until_or(std::min(deadline, give_up), o.retry_backoff_max);
        continue;
      }
      throw_nats("publish to '" + facts.subject + "' failed", s, jerr);
    }
  }

  // Throws bp::nats::error for a payload above what the server accepts (its max_payload, which
  // the message's headers count towards too; nats.c refuses the rest at publish). Called once
  // per send, before any wait for room, so such a send fails at once instead of after waiting
  // for a slot. A payload within the limit seen at connect is not checked further, so the
  // common send takes no lock here; a larger one is checked against the current server's
  // limit (a reconnect may have reached a server with another one).
  void check_size(std::span<const std::byte> payload) const {
    if (payload.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      throw error("bp::nats: message of " + std::to_string(payload.size()) +
                  " bytes is larger than any NATS server accepts");
    if (static_cast<std::int64_t>(payload.size()) <= max_payload_at_connect) return;
    const std::int64_t max = natsConnection_GetMaxPayload(conn->nc);
    if (max > 0 && static_cast<std::int64_t>(payload.size()) > max)
      throw error("bp::nats: message of " + std::to_string(payload.size()) +
                  " bytes is larger than the server's max_payload of " + std::to_string(max) +
                  " bytes");
  }

  // A message of `payload`, whose size send() has checked (check_size).
  natsMsg* make_msg(std::span<const std::byte> payload) {
    natsMsg* m = nullptr;
    check(natsMsg_Create(&m, facts.subject.c_str(), nullptr,
                         reinterpret_cast<const char*>(payload.data()),
                         static_cast<int>(payload.size())),
          "cannot create a message");
    return m;
  }

  status send(std::span<const std::byte> payload, bool may_wait, clock::time_point deadline) {
    if (closed.load(std::memory_order_acquire)) return status::closed;
    check_size(payload);
    if (o.max_in_flight > 0) return send_windowed(payload, may_wait, deadline);
    natsMsg* m = make_msg(payload);
    status st;
    try {
      st = publish_sync(m, payload.size(), may_wait, deadline, false);
    } catch (...) {
      natsMsg_Destroy(m);
      throw;
    }
    bin.put(m);
    if (st == status::ok) ++sent;
    return st;
  }

  // --- producer window ----------------------------------------------------------------------

  static void on_async_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto& r = ack_registry::get();
    std::lock_guard registered(r.mu);
    auto it = r.live.find(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(closure)));
    if (it == r.live.end()) {  // its sender is gone: nobody waits for this answer any more
      natsMsg_Destroy(msg);
      return;
    }
    impl& self = *static_cast<impl*>(it->second);
    natsMsg* done = nullptr;  // freed after the locks: a sender waiting for them is not held up
    {
      std::lock_guard lock(self.mu);
      done = self.settle_async(msg, pa, pae);
      // Wake-ups only where they matter: the retrier when a message was refused, flush when the
      // window is empty, a sender waiting for room once wake_room slots are free. Waking that
      // sender at the first free slot would make a full window cost a thread wake-up (two
      // context switches) per message, each to publish one message; this way it publishes
      // wake_room in a row. A waiter never depends on this for progress: it also wakes by
      // itself (its deadline, retry_backoff_max, the retry time) and then takes any free slot.
      // Announced before the locks are released: the moment they are, the sender may be gone.
      const std::size_t used = self.in_flight + self.refused.size();
      const std::size_t room = self.o.max_in_flight - std::min(used, self.o.max_in_flight);
      if (done == nullptr || self.in_flight == 0 || room >= self.wake_room)
        self.changed.notify_all();
      if (done == nullptr) self.retry_changed.notify_all();
    }
    self.bin.put(done);  // still registered (r.mu is held), so `self` is alive
  }

  // Settles one answer of the window under `mu`; returns the message when it is finished with
  // (the caller frees it), nullptr when it was queued to be published again.
  natsMsg* settle_async(natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae) {
    --in_flight;
    if (pa != nullptr) {
      ++sent;
      backoff = o.retry_backoff_min;
      return msg;
    }
    if (pae != nullptr && ((pae->ErrCode == js_store_failed && o.policy == overflow::block) ||
                           is_transient(pae->Err))) {
      // Refused for lack of room (block), or never acknowledged (server restart, election):
      // publish it again later with the same id, which the server deduplicates.
      ++retries;
      refused.push_back(msg);
      retry_at = clock::now() + backoff;
      backoff = std::min(backoff * 2, o.retry_backoff_max);
      return nullptr;
    }
    ++failed;
    if (pae != nullptr)
      last_async_error = pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
    return msg;
  }

  // js_PublishMsgAsync for a message already counted in in_flight, called without the lock
  // (the acknowledgement handler and other senders are not held up by the publish). On
  // NATS_OK nats.c owns `m`; otherwise the caller does.
  natsStatus publish_counted(natsMsg* m) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    // A lost acknowledgement comes back as a timeout after MaxWait, and the message is
    // retried with its id: without it a lost answer would hold its slot in the window forever.
    po.MaxWait = o.request_timeout.count();
    return js_PublishMsgAsync(conn->js, &m, &po);
  }

  // After publish_counted failed, with the lock held. False when nats.c's own pending limit
  // stalled it (PublishAsync.StallWait): `m` is then queued with the refused messages, still in
  // the window, and published again after the backoff. Any other failure throws.
  bool requeue_or_fail(natsStatus s, natsMsg* m) {
    give_back_slot();
    if (s == NATS_TIMEOUT) {
      refused.push_front(m);
      retry_at = clock::now() + backoff;
      retry_changed.notify_all();
      return false;
    }
    natsMsg_Destroy(m);
    throw_nats("asynchronous publish to '" + facts.subject + "' failed", s);
  }

  // With the lock held: a message that took a slot is not in flight after all (it failed, or
  // waits among the refused ones, which count apart), announced to waiting senders and flush.
  void give_back_slot() {
    --in_flight;
    changed.notify_all();
  }

  // Publishes `m` into the window (the lock is released around the nats.c call); false when
  // stalled (see requeue_or_fail).
  bool publish_async(std::unique_lock<std::mutex>& lock, natsMsg* m) {
    ++in_flight;
    lock.unlock();
    const natsStatus s = publish_counted(m);
    lock.lock();
    return s == NATS_OK || requeue_or_fail(s, m);
  }

  // Republishes refused messages whose backoff has elapsed (block policy, lost answers), until
  // `deadline`: a timed send helps the retrier thread but never waits past its own deadline.
  void resend_refused(std::unique_lock<std::mutex>& lock,
                      clock::time_point deadline = clock::time_point::max()) {
    while (!refused.empty() && clock::now() >= retry_at && !expired(deadline)) {
      natsMsg* m = refused.front();
      refused.pop_front();
      if (!publish_async(lock, m)) return;
    }
  }

  clock::time_point next_wake(clock::time_point deadline) const {
    auto t = std::min(deadline, clock::now() + o.retry_backoff_max);
    if (!refused.empty()) t = std::min(t, retry_at);
    return t;
  }

  // Waits on `changed` until `ready()` (run under `lock`, which is held again on return) or
  // `deadline`. Each round republishes what is due first and wakes at the next retry moment
  // (next_wake) at the latest, since no acknowledgement may come before that republish.
  // False when the deadline passed.
  template <class Ready>
  bool wait_in_window(std::unique_lock<std::mutex>& lock, clock::time_point deadline, Ready ready) {
    for (;;) {
      const auto wake = next_wake(deadline);
      lock.unlock();
      std::exception_ptr failure;  // a republish that failed ends the wait, then is thrown
      auto attempt = [&] {
        lock.lock();
        try {
          resend_refused(lock, deadline);
        } catch (...) {
          failure = std::current_exception();
          return true;  // keeps the lock
        }
        if (ready()) return true;  // keeps the lock
        lock.unlock();
        return false;
      };
      if (bp::detail::wait_until(changed, wake, attempt)) {
        if (failure) std::rethrow_exception(failure);
        return true;
      }
      lock.lock();
      if (expired(deadline)) return false;
    }
  }

  status send_windowed(std::span<const std::byte> payload, bool may_wait,
                       clock::time_point deadline) {
    {
      std::unique_lock lock(mu);
      resend_refused(lock, deadline);
      auto has_room = [&] { return in_flight + refused.size() < o.max_in_flight; };
      if (!has_room()) {
        if (!may_wait) {
          ++rejected;
          return status::full;
        }
        ++send_waits;
        if (expired(deadline) || !wait_in_window(lock, deadline, has_room)) return status::timeout;
      }
      // The slot is taken here; the message is built (allocations, the id header) and
      // published outside the lock, so the acknowledgement handler never waits for that work.
      ++in_flight;
    }
    natsMsg* m = nullptr;
    try {
      m = make_msg(payload);
      const msg_id id = next_msg_id();
      const natsStatus s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.text);
      if (s != NATS_OK) throw_nats("cannot set the message id", s);
    } catch (...) {
      natsMsg_Destroy(m);
      std::lock_guard lock(mu);
      give_back_slot();
      throw;
    }
    const natsStatus s = publish_counted(m);
    if (s == NATS_OK) return status::ok;
    std::lock_guard lock(mu);
    (void)requeue_or_fail(s, m);  // stalled: queued for a retry, still in the window
    return status::ok;
  }

  status flush(clock::time_point deadline) {
    if (o.max_in_flight == 0) return status::ok;
    std::unique_lock lock(mu);
    resend_refused(lock, deadline);
    auto drained = [&] { return in_flight == 0 && refused.empty(); };
    if (drained()) return status::ok;
    if (expired(deadline) || !wait_in_window(lock, deadline, drained)) return status::timeout;
    return status::ok;
  }

  status close(clock::time_point deadline) {
    if (closed.exchange(true, std::memory_order_acq_rel)) return status::closed;
    if (deadline == clock::time_point::min()) deadline = clock::now() + o.close_timeout;
    if (flush(deadline) != status::ok) return status::timeout;
    natsMsg* m = make_msg({});
    status st;
    try {
      check(natsMsgHeader_Set(m, eos_header, "1"), "cannot mark end of stream");
      st = publish_sync(m, 0, true, deadline, true);
    } catch (...) {
      natsMsg_Destroy(m);
      throw;
    }
    natsMsg_Destroy(m);
    return st;
  }
};

byte_sender::byte_sender(const options& o) : impl_(std::make_unique<impl>(o)) {}
byte_sender::~byte_sender() = default;
status byte_sender::send(std::span<const std::byte> payload, bool may_wait,
                         clock::time_point deadline) {
  return impl_->send(payload, may_wait, deadline);
}
status byte_sender::flush(clock::time_point deadline) {
  return impl_->flush(deadline);
}
status byte_sender::close(clock::time_point deadline) {
  return impl_->close(deadline);
}
bool byte_sender::is_closed() const noexcept {
  return impl_->closed.load();
}
stream_state byte_sender::state() const {
  return read_state(*impl_->conn, impl_->o);
}
std::size_t byte_sender::capacity() const noexcept {
  return impl_->facts.capacity;
}
overflow byte_sender::policy() const noexcept {
  return impl_->o.policy;
}
byte_sender::counters byte_sender::stats() const noexcept {
  return {impl_->sent.load(),       impl_->dropped.load(), impl_->rejected.load(),
          impl_->send_waits.load(), impl_->retries.load(), impl_->failed.load()};
}

}  // namespace bp::nats::detail

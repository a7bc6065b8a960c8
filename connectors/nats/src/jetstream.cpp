// The byte-level JetStream sender and receiver: every nats.c call of bp::nats lives here.
//
// Mapping (see docs/distributed.md):
//   capacity / max_bytes  -> stream MaxMsgs / MaxBytes of a work-queue stream (acknowledged
//                            messages leave it, so "stored" == "buffered")
//   block                 -> DiscardNew; a publish refused with 10077 is retried with backoff
//   drop_newest / reject  -> DiscardNew; 10077 answers dropped / full at once
//   drop_oldest           -> DiscardOld; the receiver counts the gaps in stream sequences
//   max_in_flight         -> js_PublishMsgAsync with our own window (and MaxPending above it)
//   receiver              -> pull consumer on a durable, MaxAckPending, AckWait, Fetch(batch)
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nats/nats.h>
#include <unistd.h>

#include <bp/nats/detail/transport.hpp>
#include <bp/nats/error.hpp>

#include "internal.hpp"

namespace bp::nats::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr int js_store_failed = 10077;  // "maximum messages/bytes exceeded" and the like
constexpr int js_msg_too_big = 10054;   // message size exceeds the stream's MaxMsgSize
constexpr int js_stream_not_found = 10059;
constexpr int js_consumer_not_found = 10014;
constexpr const char* eos_header = "Bp-End-Of-Stream";
constexpr milliseconds try_recv_wait{50};  // the longest a try_recv waits for the server

std::int64_t to_ns(milliseconds d) {
  return std::chrono::duration_cast<nanoseconds>(d).count();
}

std::string describe(natsStatus s) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  const char* detail = nats_GetLastError(&last);
  if (detail != nullptr && *detail != '\0' && text != detail) text += std::string(": ") + detail;
  return text;
}

[[noreturn]] void fail(const std::string& what, natsStatus s,
                       jsErrCode js = static_cast<jsErrCode>(0)) {
  std::string msg = "bp::nats: " + what + ": " + describe(s);
  if (js != 0) msg += " (JetStream error " + std::to_string(static_cast<int>(js)) + ")";
  throw error(msg, static_cast<int>(s), static_cast<int>(js));
}

void check(natsStatus s, const std::string& what) {
  if (s != NATS_OK) fail(what, s);
}

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw std::invalid_argument("bp::nats::options: " + field + " " + why);
}

bool valid_name(const std::string& n) {
  return !n.empty() && n.find_first_of(".*> \t\r\n") == std::string::npos;
}

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

struct nats_options_guard {
  natsOptions* p = nullptr;
  ~nats_options_guard() { natsOptions_Destroy(p); }
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

}  // namespace

// --- connection ---------------------------------------------------------------------------------

// struct connection: internal.hpp (shared with rate.cpp).

namespace {

std::shared_ptr<connection> connect(const options& o, jsOptions* jso) {
  nats_options_guard no;
  check(natsOptions_Create(&no.p), "creating connection options");
  std::vector<const char*> urls;
  for (const auto& s : o.servers) urls.push_back(s.c_str());
  check(natsOptions_SetServers(no.p, urls.data(), static_cast<int>(urls.size())), "servers");
  if (!o.connection_name.empty())
    check(natsOptions_SetName(no.p, o.connection_name.c_str()), "connection_name");
  check(natsOptions_SetTimeout(no.p, o.connect_timeout.count()), "connect_timeout");
  check(natsOptions_SetAllowReconnect(no.p, o.max_reconnect != 0), "max_reconnect");
  check(natsOptions_SetMaxReconnect(no.p, o.max_reconnect), "max_reconnect");
  check(natsOptions_SetReconnectWait(no.p, o.reconnect_wait.count()), "reconnect_wait");
  if (o.send_asap) check(natsOptions_SetSendAsap(no.p, true), "send_asap");
  const auto& a = o.auth;
  if (!a.user.empty())
    check(natsOptions_SetUserInfo(no.p, a.user.c_str(), a.password.c_str()), "auth.user");
  if (!a.token.empty()) check(natsOptions_SetToken(no.p, a.token.c_str()), "auth.token");
  if (!a.credentials_file.empty())
    check(natsOptions_SetUserCredentialsFromFiles(no.p, a.credentials_file.c_str(), nullptr),
          "auth.credentials_file");
  if (!a.nkey_seed_file.empty())
    check(natsOptions_SetNKeyFromSeed(no.p, a.nkey_public.c_str(), a.nkey_seed_file.c_str()),
          "auth.nkey_seed_file");
  const auto& t = o.tls;
  if (t.enabled) check(natsOptions_SetSecure(no.p, true), "tls.enabled");
  if (!t.ca_file.empty())
    check(natsOptions_LoadCATrustedCertificates(no.p, t.ca_file.c_str()), "tls.ca_file");
  if (!t.cert_file.empty() || !t.key_file.empty())
    check(natsOptions_LoadCertificatesChain(no.p, t.cert_file.c_str(), t.key_file.c_str()),
          "tls.cert_file/key_file");
  if (!t.expected_hostname.empty())
    check(natsOptions_SetExpectedHostname(no.p, t.expected_hostname.c_str()),
          "tls.expected_hostname");
  if (t.skip_server_verification)
    check(natsOptions_SkipServerVerification(no.p, true), "tls.skip_server_verification");

  auto c = std::make_shared<connection>();
  natsStatus s = natsConnection_Connect(&c->nc, no.p);
  if (s != NATS_OK) fail("cannot connect to " + join(o.servers), s);
  s = natsConnection_JetStream(&c->js, c->nc, jso);
  if (s != NATS_OK) fail("cannot create a JetStream context", s);
  return c;
}

jsOptions api_options(const options& o) {
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.request_timeout.count();
  return jo;
}

struct stream_info_guard {
  jsStreamInfo* p = nullptr;
  ~stream_info_guard() { jsStreamInfo_Destroy(p); }
};

// What the ends learn about the stream during setup.
struct stream_facts {
  std::string subject;
  std::size_t capacity = 0;
};

// Whether an existing stream already has what we would set: then nothing is sent (an update
// needs the cluster's meta leader, which may be in an election right after a node loss).
bool same_stream_config(const jsStreamConfig& a, const jsStreamConfig& b) {
  return a.SubjectsLen == 1 && a.Subjects != nullptr && a.Subjects[0] != nullptr &&
         std::strcmp(a.Subjects[0], b.Subjects[0]) == 0 && a.Retention == b.Retention &&
         a.MaxMsgs == b.MaxMsgs && a.MaxBytes == b.MaxBytes && a.MaxMsgSize == b.MaxMsgSize &&
         a.Discard == b.Discard && a.Storage == b.Storage && a.Replicas == b.Replicas &&
         a.Duplicates == b.Duplicates;
}

stream_facts ensure_stream(connection& c, const options& o) {
  jsOptions jo = api_options(o);
  stream_info_guard si;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si.p, c.js, o.stream.c_str(), &jo, &jerr);
  const bool missing = (s == NATS_NOT_FOUND || jerr == js_stream_not_found);
  if (s != NATS_OK && !missing) fail("cannot read stream '" + o.stream + "'", s, jerr);

  if (o.setup == stream_setup::bind) {
    if (missing)
      throw error("bp::nats: stream '" + o.stream + "' not found (JetStream error " +
                      std::to_string(js_stream_not_found) +
                      "); create it or use stream_setup::create",
                  static_cast<int>(NATS_NOT_FOUND), js_stream_not_found);
    const auto& cfg = *si.p->Config;
    const bool discards_old = cfg.Discard == js_DiscardOld;
    if (discards_old != (o.policy == overflow::drop_oldest))
      throw error("bp::nats: stream '" + o.stream + "' discards " + (discards_old ? "old" : "new") +
                  " messages, which does not match policy " + std::string(to_string(o.policy)));
    stream_facts f;
    f.subject = !o.subject.empty()    ? o.subject
                : cfg.SubjectsLen > 0 ? cfg.Subjects[0]
                                      : throw error("bp::nats: stream '" + o.stream +
                                                    "' has no subject; set options.subject");
    f.capacity = cfg.MaxMsgs > 0 ? static_cast<std::size_t>(cfg.MaxMsgs) : 0;
    return f;
  }

  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  const char* subjects[] = {o.subject.c_str()};
  cfg.Name = o.stream.c_str();
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Retention = js_WorkQueuePolicy;
  cfg.MaxMsgs = o.capacity > 0 ? static_cast<std::int64_t>(o.capacity) : -1;
  cfg.MaxBytes = o.max_bytes > 0 ? o.max_bytes : -1;
  cfg.MaxMsgSize = o.max_message_size > 0 ? o.max_message_size : -1;
  cfg.Discard = o.policy == overflow::drop_oldest ? js_DiscardOld : js_DiscardNew;
  cfg.Storage = o.store == storage::file ? js_FileStorage : js_MemoryStorage;
  cfg.Replicas = o.replicas;
  cfg.Duplicates = to_ns(o.duplicate_window);
  if (!missing && same_stream_config(*si.p->Config, cfg)) return {o.subject, o.capacity};
  stream_info_guard out;
  jerr = static_cast<jsErrCode>(0);
  s = missing ? js_AddStream(&out.p, c.js, &cfg, &jo, &jerr)
              : js_UpdateStream(&out.p, c.js, &cfg, &jo, &jerr);
  if (s != NATS_OK && missing && jerr == 10058) {  // created concurrently by the other end
    jerr = static_cast<jsErrCode>(0);
    s = js_UpdateStream(&out.p, c.js, &cfg, &jo, &jerr);
  }
  if (s != NATS_OK)
    fail(std::string(missing ? "cannot create" : "cannot update") + " stream '" + o.stream + "'", s,
         jerr);
  return {o.subject, o.capacity};
}

struct consumer_info_guard {
  jsConsumerInfo* p = nullptr;
  ~consumer_info_guard() { jsConsumerInfo_Destroy(p); }
};

// Creates the durable pull consumer, or updates its limits; returns the stream sequence of the
// last message it delivered (0 if none).
std::uint64_t ensure_consumer(connection& c, const options& o, const std::string& durable) {
  jsOptions jo = api_options(o);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.DeliverPolicy = js_DeliverAll;
  cc.AckWait = to_ns(o.ack_wait);
  cc.MaxAckPending = o.max_ack_pending;
  cc.MaxDeliver = o.max_deliver;
  consumer_info_guard ci;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci.p, c.js, o.stream.c_str(), durable.c_str(), &jo, &jerr);
  const bool missing = (s == NATS_NOT_FOUND || jerr == js_consumer_not_found);
  if (s != NATS_OK && !missing)
    fail("cannot read consumer '" + durable + "' of stream '" + o.stream + "'", s, jerr);
  if (!missing) {
    const auto& have = *ci.p->Config;
    if (have.AckPolicy == cc.AckPolicy && have.AckWait == cc.AckWait &&
        have.MaxAckPending == cc.MaxAckPending && have.MaxDeliver == cc.MaxDeliver)
      return ci.p->Delivered.Stream;
  }
  consumer_info_guard out;
  jerr = static_cast<jsErrCode>(0);
  s = missing ? js_AddConsumer(&out.p, c.js, o.stream.c_str(), &cc, &jo, &jerr)
              : js_UpdateConsumer(&out.p, c.js, o.stream.c_str(), &cc, &jo, &jerr);
  if (s != NATS_OK)
    fail(std::string(missing ? "cannot create" : "cannot update") + " consumer '" + durable +
             "' of stream '" + o.stream + "'",
         s, jerr);
  return out.p->Delivered.Stream;
}

stream_state read_state(connection& c, const options& o) {
  jsOptions jo = api_options(o);
  stream_info_guard si;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si.p, c.js, o.stream.c_str(), &jo, &jerr);
  if (s != NATS_OK) fail("cannot read stream '" + o.stream + "'", s, jerr);
  stream_state st;
  st.messages = si.p->State.Msgs;
  st.bytes = si.p->State.Bytes;
  st.first_seq = si.p->State.FirstSeq;
  st.last_seq = si.p->State.LastSeq;
  st.consumers = si.p->State.Consumers;
  st.max_messages =
      si.p->Config->MaxMsgs > 0 ? static_cast<std::uint64_t>(si.p->Config->MaxMsgs) : 0;
  st.max_bytes = si.p->Config->MaxBytes > 0 ? si.p->Config->MaxBytes : 0;
  return st;
}

// Milliseconds from now to `deadline`, at least 1, at most `cap`.
std::int64_t ms_until(clock::time_point deadline, milliseconds cap) {
  if (deadline == clock::time_point::max()) return cap.count();
  const auto left = std::chrono::ceil<milliseconds>(deadline - clock::now());
  return std::clamp<std::int64_t>(left.count(), 1, cap.count());
}

bool expired(clock::time_point deadline) {
  return deadline != clock::time_point::max() && clock::now() >= deadline;
}

void sleep_until_or(clock::time_point deadline, milliseconds d) {
  const auto until = clock::now() + d;
  std::this_thread::sleep_until(std::min(until, deadline));
}

// A transport hiccup after which the same publish (same message id) may be retried.
bool transient(natsStatus s) {
  return s == NATS_TIMEOUT || s == NATS_NO_RESPONDERS || s == NATS_CONNECTION_DISCONNECTED ||
         s == NATS_STALE_CONNECTION;
}

}  // namespace

std::shared_ptr<connection> open_connection(const options& o, jsOptions* jso) {
  return connect(o, jso);
}
void throw_nats(const std::string& what, natsStatus s, int js) {
  fail(what, s, static_cast<jsErrCode>(js));
}
bool is_transient(natsStatus s) {
  return transient(s);
}
std::int64_t millis_until(clock::time_point deadline, milliseconds cap) {
  return ms_until(deadline, cap);
}

// --- deliveries ---------------------------------------------------------------------------------

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
    if (s != NATS_OK) fail("acknowledgement not confirmed", s, jerr);
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

// --- sender -------------------------------------------------------------------------------------

struct byte_sender::impl {
  options o;
  std::shared_ptr<connection> conn;
  stream_facts facts;
  std::string id_prefix;
  std::atomic<std::uint64_t> next_id{0};
  std::atomic<bool> closed{false};
  std::atomic<std::uint64_t> sent{0}, dropped{0}, rejected{0}, send_waits{0}, retries{0}, failed{0};

  // Producer window (max_in_flight > 0): publishes not yet acknowledged, and publishes the
  // server refused for lack of room, to be published again after a backoff.
  std::mutex mu;
  std::condition_variable cv;
  std::size_t in_flight = 0;
  std::deque<natsMsg*> refused;
  clock::time_point retry_at{};
  milliseconds backoff{0};
  std::string last_async_error;
  bool stopping = false;
  std::thread retrier;  // window mode: publishes refused messages again after their backoff

  explicit impl(const options& opts) : o(opts) {
    validate(o);
    std::random_device rd;
    std::ostringstream id;
    id << std::hex << rd() << rd() << '-' << ::getpid() << '-';
    id_prefix = id.str();
    backoff = o.retry_backoff_min;
    if (o.max_in_flight > 0) {
      jsOptions jo = api_options(o);
      // Our window bounds the publishes; nats.c's own stall is a safety net above it.
      jo.PublishAsync.MaxPending = static_cast<std::int64_t>(o.max_in_flight) * 2;
      // A publish over that limit waits this long inside nats.c, then is queued for a retry:
      // short, so that a timed send keeps its deadline (the default is 200 ms).
      jo.PublishAsync.StallWait = 10;
      jo.PublishAsync.AckHandler = &impl::on_async_ack;
      jo.PublishAsync.AckHandlerClosure = this;
      conn = connect(o, &jo);
      retrier = std::thread([this] { retry_loop(); });
    } else {
      jsOptions jo = api_options(o);
      conn = connect(o, &jo);
    }
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
    cv.notify_all();
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
      cv.wait_until(lock, refused.empty() ? clock::now() + std::chrono::seconds(1) : retry_at);
    }
  }

  std::string next_msg_id() { return id_prefix + std::to_string(next_id.fetch_add(1)); }

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
    const std::string id = next_msg_id();
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
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
        fail("publish to '" + facts.subject + "' not acknowledged within " +
                 std::to_string(o.publish_retry_for.count()) + " ms",
             NATS_TIMEOUT);
      }
      po.MaxWait = ms_until(wait_end, o.request_timeout);
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
            fail("stream '" + o.stream + "' refused a message of " + std::to_string(size) +
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
        fail("message of " + std::to_string(size) + " bytes is larger than stream '" + o.stream +
                 "' or the server accepts",
             s, jerr);
      if (transient(s)) {
        if (give_up == clock::time_point::max()) give_up = attempt_start + retry_budget();
        if (expired(deadline)) return status::timeout;
        if (clock::now() >= give_up)
          fail("publish to '" + facts.subject + "' not acknowledged within " +
                   std::to_string(o.publish_retry_for.count()) + " ms",
               s, jerr);
        ++retries;
        sleep_until_or(std::min(deadline, give_up), o.retry_backoff_max);
        continue;
      }
      fail("publish to '" + facts.subject + "' failed", s, jerr);
    }
  }

  natsMsg* make_msg(std::span<const std::byte> payload) {
    if (payload.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      throw error("bp::nats: message of " + std::to_string(payload.size()) +
                  " bytes is larger than any NATS server accepts");
    natsMsg* m = nullptr;
    check(natsMsg_Create(&m, facts.subject.c_str(), nullptr,
                         reinterpret_cast<const char*>(payload.data()),
                         static_cast<int>(payload.size())),
          "cannot create a message");
    return m;
  }

  status send(std::span<const std::byte> payload, bool may_wait, clock::time_point deadline) {
    if (closed.load(std::memory_order_acquire)) return status::closed;
    if (o.max_in_flight > 0) return send_windowed(payload, may_wait, deadline);
    natsMsg* m = make_msg(payload);
    status st;
    try {
      st = publish_sync(m, payload.size(), may_wait, deadline, false);
    } catch (...) {
      natsMsg_Destroy(m);
      throw;
    }
    natsMsg_Destroy(m);
    if (st == status::ok) ++sent;
    return st;
  }

  // --- producer window ----------------------------------------------------------------------

  static void on_async_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<impl*>(closure);
    std::lock_guard lock(self->mu);
    --self->in_flight;
    if (pa != nullptr) {
      ++self->sent;
      self->backoff = self->o.retry_backoff_min;
      natsMsg_Destroy(msg);
    } else if (pae != nullptr &&
               ((pae->ErrCode == js_store_failed && self->o.policy == overflow::block) ||
                transient(pae->Err))) {
      // Refused for lack of room (block), or never acknowledged (server restart, election):
      // publish it again later with the same id, which the server deduplicates.
      ++self->retries;
      self->refused.push_back(msg);
      self->retry_at = clock::now() + self->backoff;
      self->backoff = std::min(self->backoff * 2, self->o.retry_backoff_max);
    } else {
      ++self->failed;
      if (pae != nullptr)
        self->last_async_error =
            pae->ErrText != nullptr ? pae->ErrText : natsStatus_GetText(pae->Err);
      natsMsg_Destroy(msg);
    }
    self->cv.notify_all();
  }

  // Publishes `m` into the window (the lock is released around the nats.c call). False when
  // nats.c's own pending limit stalled it (PublishAsync.StallWait): `m` is then queued with the
  // refused messages, still in the window, and published again after the backoff.
  bool publish_async(std::unique_lock<std::mutex>& lock, natsMsg* m) {
    ++in_flight;
    lock.unlock();
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = o.request_timeout.count();
    natsStatus s = js_PublishMsgAsync(conn->js, &m, &po);
    lock.lock();
    if (s == NATS_OK) return true;
    --in_flight;
    if (s == NATS_TIMEOUT) {
      refused.push_front(m);
      retry_at = clock::now() + backoff;
      return false;
    }
    natsMsg_Destroy(m);
    fail("asynchronous publish to '" + facts.subject + "' failed", s);
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

  status send_windowed(std::span<const std::byte> payload, bool may_wait,
                       clock::time_point deadline) {
    std::unique_lock lock(mu);
    bool waited = false;
    for (;;) {
      resend_refused(lock, deadline);
      if (in_flight + refused.size() < o.max_in_flight) break;
      if (!may_wait) {
        ++rejected;
        return status::full;
      }
      if (!waited) {
        waited = true;
        ++send_waits;
      }
      if (expired(deadline)) return status::timeout;
      cv.wait_until(lock, next_wake(deadline));
    }
    natsMsg* m = make_msg(payload);
    const std::string id = next_msg_id();
    natsStatus s = natsMsgHeader_Set(m, "Nats-Msg-Id", id.c_str());
    if (s != NATS_OK) {
      natsMsg_Destroy(m);
      fail("cannot set the message id", s);
    }
    (void)publish_async(lock, m);  // stalled: queued for a retry, still in the window
    return status::ok;
  }

  status flush(clock::time_point deadline) {
    if (o.max_in_flight == 0) return status::ok;
    std::unique_lock lock(mu);
    for (;;) {
      resend_refused(lock, deadline);
      if (in_flight == 0 && refused.empty()) return status::ok;
      if (expired(deadline)) return status::timeout;
      cv.wait_until(lock, next_wake(deadline));
    }
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

// --- receiver -----------------------------------------------------------------------------------

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
    conn = connect(o, &jo);
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
    if (s != NATS_OK) fail("cannot bind to consumer '" + durable + "'", s, jerr);
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
    natsMsgList list{nullptr, 0};
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s;
    if (may_wait) {
      s = natsSubscription_Fetch(&list, sub, want, ms_until(deadline, o.fetch_wait), &jerr);
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
    if (transient(s)) {  // reconnecting: try again on the next round (within the deadline)
      sleep_until_or(may_wait ? deadline : clock::now(), std::min(o.fetch_wait, milliseconds(100)));
      return false;
    }
    fail("fetch from consumer '" + durable + "' failed", s, jerr);
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
    jo.Wait = ms_until(deadline, o.request_timeout);
    consumer_info_guard ci;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    const natsStatus s =
        js_GetConsumerInfo(&ci.p, conn->js, o.stream.c_str(), durable.c_str(), &jo, &jerr);
    if (s != NATS_OK) {
      if (transient(s) || s == NATS_TIMEOUT) return false;
      fail("cannot read consumer '" + durable + "' of stream '" + o.stream + "'", s, jerr);
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

  std::optional<raw_delivery> recv(bool may_wait, clock::time_point deadline, int max_batch) {
    std::lock_guard lock(mu);
    for (;;) {
      if (closed.load(std::memory_order_acquire)) return std::nullopt;
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
      if (end_seen) return std::nullopt;
      if (held_end && settle_end(may_wait ? deadline : clock::now() + try_recv_wait))
        return std::nullopt;
      // Holding the marker: fetch in short slices so the end is noticed soon after the last
      // acknowledgement, and redelivered values are taken meanwhile.
      const auto slice =
          held_end ? std::min(deadline, std::max(next_end_check, clock::now())) : deadline;
      const bool got = fetch(may_wait, slice, max_batch);
      if (!got && (!may_wait || expired(deadline))) return std::nullopt;
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
      jo.Wait = ms_until(deadline, o.request_timeout);
      consumer_info_guard ci;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s =
          js_GetConsumerInfo(&ci.p, conn->js, o.stream.c_str(), durable.c_str(), &jo, &jerr);
      if (s != NATS_OK || ci.p->NumPending != 1 || ci.p->NumAckPending != 0) return false;
      natsMsg* last = nullptr;
      jo.Wait = ms_until(deadline, o.request_timeout);
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
                                                int max_batch) {
  return impl_->recv(may_wait, deadline, max_batch);
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

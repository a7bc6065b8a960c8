// bp::nats::token_bucket: a GCRA whose state is one key of a JetStream key-value bucket.
//
// The value of the key (text, readable with `nats kv get`):
//   bp-gcra/1 rate_micro=<tokens per 10^6 s> burst=<n> origin=<server ns> tat=<tokens> w=<id>
// `tat` is the theoretical arrival time counted in tokens on the axis u(t) = floor((t -
// origin) * rate), t in the server's nanoseconds: integers only, so no rounding accumulates.
// A claim of n moves tat to max(tat, u(now)) + n and is granted once u(now) >= tat - burst.
// Writes are compare-and-set: a publish expecting the subject's last sequence (the key's
// revision), as kvStore_Update does; `w` names the writer and the write, so a process whose
// publish answer was lost can tell whether its write landed.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include <unistd.h>

#include <bp/detail/event_count.hpp>
#include <bp/detail/wait.hpp>
#include <bp/nats/token_bucket.hpp>

#include "connection.hpp"

namespace bp::nats {
namespace detail {
namespace {

__extension__ typedef __int128 i128;

using std::chrono::milliseconds;

constexpr int js_wrong_last_seq = 10071;
constexpr int js_no_message = 10037;
constexpr int js_stream_not_found = 10059;
constexpr int js_bucket_exists = 10058;                         // stream name already in use
constexpr std::int64_t ns_per_micro_s = 1'000'000'000'000'000;  // 10^9 ns * 10^6
constexpr std::int64_t forever_ns = std::numeric_limits<std::int64_t>::max() / 4;
constexpr const char* state_tag = "bp-gcra/1";

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
      .count();
}

[[noreturn]] void invalid(const std::string& field, const std::string& why) {
  throw std::invalid_argument("bp::nats::token_bucket_options: " + field + " " + why);
}

bool valid_key(const std::string& k) {
  if (k.empty() || k.front() == '.' || k.back() == '.' || k.find("..") != std::string::npos)
    return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.' ||
           c == '/' || c == '=';
  });
}

bool valid_bucket(const std::string& b) {
  return !b.empty() && std::all_of(b.begin(), b.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_';
  });
}

void validate(const token_bucket_options& o) {
  if (o.servers.empty()) invalid("servers", "is empty: give at least one nats:// URL");
  if (!valid_bucket(o.bucket)) invalid("bucket", "'" + o.bucket + "' is not a bucket name");
  if (!valid_key(o.key)) invalid("key", "'" + o.key + "' is not a key (letters, digits, -_./=)");
  if (!(o.rate_per_second > 0.0) || !std::isfinite(o.rate_per_second) || o.rate_per_second > 1e9 ||
      std::llround(o.rate_per_second * 1e6) < 1)
    invalid("rate_per_second",
            "must be finite and in [1e-6, 1e9], got " + std::to_string(o.rate_per_second));
  if (o.burst == 0 || o.burst > (std::size_t{1} << 40))
    invalid("burst", "must be in [1, 2^40], got " + std::to_string(o.burst));
  if (o.replicas < 1 || o.replicas > 5) invalid("replicas", "must be 1..5");
  if (o.connect_timeout <= milliseconds(0)) invalid("connect_timeout", "must be positive");
  if (o.request_timeout <= milliseconds(0)) invalid("request_timeout", "must be positive");
  if (o.clock_sync_interval <= milliseconds(0)) invalid("clock_sync_interval", "must be positive");
  switch (o.unreachable) {
    case when_unreachable::fail_closed:
    case when_unreachable::fail_open:
    case when_unreachable::raise:
      break;
    default:
      invalid("unreachable", "is not a when_unreachable value");
  }
}

options connection_options(const token_bucket_options& t) {
  options o;
  o.servers = t.servers;
  o.connection_name = t.connection_name;
  o.connect_timeout = t.connect_timeout;
  o.max_reconnect = t.max_reconnect;
  o.reconnect_wait = t.reconnect_wait;
  o.tls = t.tls;
  o.auth = t.auth;
  o.request_timeout = t.request_timeout;
  return o;
}

struct msg_guard {
  natsMsg* p = nullptr;
  ~msg_guard() { natsMsg_Destroy(p); }
};

}  // namespace

struct rate_impl {
  token_bucket_options o;
  std::shared_ptr<connection> conn;
  std::string stream, subject, clock_subject, writer;
  std::int64_t rate_micro = 0;
  std::int64_t burst = 0;
  milliseconds setup_cap{0};
  bool setup_done = false;

  std::mutex mu;  // serializes the round trips and guards the cache
  // The state as this process last read or wrote it. tat never decreases except by cancel(),
  // so a refusal computed from a stale cache is also the server's answer.
  bool cached = false;
  bool exists = false;    // the key holds a state (not missing, deleted or purged)
  std::uint64_t seq = 0;  // the key's revision (its subject's last stream sequence), 0: none
  std::int64_t origin = 0;
  std::int64_t tat = 0;
  std::uint64_t writes = 0;

  std::atomic<std::int64_t> offset{0};       // server ns - steady ns
  std::atomic<std::int64_t> uncertainty{0};  // half the round trip of the last measurement
  // The offset is measured again every clock_sync_interval by a thread of its own, so that
  // no grant waits for it. Not a wait for credit (a periodic timer and its stop): a plain cv.
  std::mutex sync_mu;
  std::condition_variable sync_cv;
  bool stopping = false;
  std::thread syncer;

  std::atomic<std::uint64_t> granted{0}, denied{0}, conflicts{0}, unreachable{0}, round_trips{0};

  // Waiting calls park on `wait_ec` until their moment or the close. seq_cst: `closed` is the
  // change a waiter re-checks after registering.
  std::atomic<bool> closed{false};
  alignas(bp::detail::cache_line) bp::detail::event_count wait_ec;

  void close() noexcept {
    closed.store(true);
    wait_ec.notify_all();
  }

  // Sleeps until steady time `act`; false if closed first. The credit is time itself (the
  // tokens were taken on the server for that moment), so the wait does not spin.
  bool wait_until(std::int64_t act) {
    const auto until = clock::time_point(
        std::chrono::duration_cast<clock::duration>(std::chrono::nanoseconds(act)));
    bool stopped = false;
    auto attempt = [&] {
      if (closed.load()) return stopped = true;
      return clock::now() >= until;
    };
    (void)bp::detail::wait_loop(wait_ec, until, attempt, bp::detail::no_spin,
                                bp::detail::always_settled{});
    return !stopped;
  }

  explicit rate_impl(const token_bucket_options& opts) : o(opts) {
    validate(o);
    rate_micro = std::llround(o.rate_per_second * 1e6);
    burst = static_cast<std::int64_t>(o.burst);
    stream = "KV_" + o.bucket;
    subject = "$KV." + o.bucket + "." + o.key;
    std::random_device rd;
    std::ostringstream id;
    id << std::hex << rd() << rd() << '-' << std::dec << ::getpid();
    writer = id.str();
    // Each process probes on a subject of its own, so that others' probes never push its probe
    // out of the bucket's history before it is read back; the destructor purges it (a killed
    // process leaves at most `History` small probe messages behind).
    clock_subject = "$KV." + o.bucket + "._bp_clock." + writer;

    // Setup (bucket, clock, key) may take longer than one grant: connect_timeout, at least.
    setup_cap = std::max(o.request_timeout, o.connect_timeout);
    const options co = connection_options(o);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = setup_cap.count();
    conn = open_connection(co, &jo);
    ensure_bucket();
    const auto deadline = clock::now() + setup_cap;
    if (!sync_clock(deadline, 5))
      throw error("bp::nats::token_bucket: cannot read the server's clock within " +
                      std::to_string(setup_cap.count()) + " ms",
                  static_cast<int>(NATS_TIMEOUT));
    // Read the key (creating it full if missing) so that a mismatched rate or burst is an error
    // here and not at the first grant.
    for (;;) {
      const natsStatus s = read(deadline);
      if (s != NATS_OK) throw_nats("cannot read key '" + o.key + "'", s);
      if (exists) break;
      const cas w = write(0, server_now(), deadline, nullptr);
      if (w == cas::written) break;
      if (w == cas::no_answer) throw_nats("cannot create key '" + o.key + "'", NATS_TIMEOUT);
      // lost the creation to another process: read theirs
    }
    setup_done = true;
    syncer = std::thread([this] { sync_loop(); });
  }

  ~rate_impl() {
    {
      std::lock_guard lock(sync_mu);
      stopping = true;
    }
    sync_cv.notify_all();
    if (syncer.joinable()) syncer.join();
    if (conn && connected()) {  // best effort: remove this process's clock probes
      jsOptions jo;
      jsOptions_Init(&jo);
      jo.Wait = o.request_timeout.count();
      jo.Stream.Purge.Subject = clock_subject.c_str();
      jsErrCode jerr = static_cast<jsErrCode>(0);
      (void)js_PurgeStream(conn->js, stream.c_str(), &jo, &jerr);
    }
  }

  void sync_loop() {
    std::unique_lock lock(sync_mu);
    for (;;) {
      if (sync_cv.wait_for(lock, o.clock_sync_interval, [this] { return stopping; })) return;
      lock.unlock();
      // On failure the last estimate stays (the server is not answering anyway).
      if (connected()) (void)sync_clock(clock::now() + o.request_timeout);
      lock.lock();
    }
  }

  void ensure_bucket() {
    kvStore* kv = nullptr;
    natsStatus s = js_KeyValue(&kv, conn->js, o.bucket.c_str());
    if (s == NATS_OK) {
      kvStore_Destroy(kv);
      return;
    }
    if (s != NATS_NOT_FOUND) throw_nats("cannot open key-value bucket '" + o.bucket + "'", s);
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = o.bucket.c_str();
    // A few revisions per key: the clock probe reads its own message back by sequence even
    // while other processes write.
    cfg.History = 8;
    cfg.StorageType = o.store == storage::file ? js_FileStorage : js_MemoryStorage;
    cfg.Replicas = o.replicas;
    s = js_CreateKeyValue(&kv, conn->js, &cfg);
    if (s != NATS_OK) {  // created concurrently by another process?
      s = js_KeyValue(&kv, conn->js, o.bucket.c_str());
      if (s != NATS_OK) throw_nats("cannot create key-value bucket '" + o.bucket + "'", s);
    }
    kvStore_Destroy(kv);
  }

  bool connected() const { return natsConnection_Status(conn->nc) == NATS_CONN_STATUS_CONNECTED; }

  std::int64_t server_now() const { return steady_ns() + offset.load(); }

  // Tokens accrued from the origin to server time t (floor), and the first server time at
  // which k tokens have accrued (ceil). Exact integers: the same answer in every process.
  std::int64_t units_at(std::int64_t t, std::int64_t org) const {
    const std::int64_t dt = t - org;
    if (dt <= 0) return 0;
    return static_cast<std::int64_t>(static_cast<i128>(dt) * rate_micro / ns_per_micro_s);
  }
  std::int64_t time_of(std::int64_t k, std::int64_t org) const {
    if (k <= 0) return org;
    const i128 dt = (static_cast<i128>(k) * ns_per_micro_s + rate_micro - 1) / rate_micro;
    if (dt > forever_ns) return forever_ns;
    return org + static_cast<std::int64_t>(dt);
  }

  // Each request waits at most until the call's deadline (and request_timeout; during the
  // setup, setup_cap).
  milliseconds cap() const { return setup_done ? o.request_timeout : setup_cap; }
  jsOptions request_options(clock::time_point deadline) const {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = millis_until(deadline, cap());
    return jo;
  }

  // Measures the offset of this process's steady clock to the server's: a probe message is
  // stored (the server stamps it between our send and its answer) and read back by sequence.
  // The stamp lies in [t0, t1] of our clock, so the midpoint errs by at most (t1 - t0) / 2;
  // of `probes` measurements the narrowest wins (a loaded machine stretches some round trips
  // to milliseconds, and each millisecond of error is worth rate / 1000 tokens).
  bool sync_clock(clock::time_point deadline, int probes = 3) {
    bool any = false;
    std::int64_t best_offset = 0, best_half = std::numeric_limits<std::int64_t>::max();
    for (int i = 0, tries = 0; i < probes && tries < 4 * probes && clock::now() < deadline;
         ++tries) {
      msg_guard m;
      if (natsMsg_Create(&m.p, clock_subject.c_str(), nullptr, writer.c_str(),
                         static_cast<int>(writer.size())) != NATS_OK)
        break;
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = millis_until(deadline, cap());
      jsPubAck* pa = nullptr;
      jsErrCode jerr = static_cast<jsErrCode>(0);
      const std::int64_t t0 = steady_ns();
      ++round_trips;
      natsStatus s = js_PublishMsg(&pa, conn->js, m.p, &po, &jerr);
      const std::int64_t t1 = steady_ns();
      if (s != NATS_OK) {
        jsPubAck_Destroy(pa);
        continue;  // the loop ends at the deadline
      }
      const std::uint64_t probe = pa->Sequence;
      jsPubAck_Destroy(pa);
      msg_guard back;
      jsOptions jo = request_options(deadline);
      ++round_trips;
      s = js_GetMsg(&back.p, conn->js, stream.c_str(), probe, &jo, &jerr);
      if (s != NATS_OK) continue;
      const std::int64_t half = (t1 - t0) / 2;
      if (half < best_half) {
        best_half = half;
        best_offset = natsMsg_GetTime(back.p) - (t0 + half);
      }
      any = true;
      ++i;
    }
    if (!any) return false;
    offset = best_offset;
    uncertainty = best_half;
    return true;
  }

  // A time stamp the server put on a stored message is in the past of the server's now: never
  // let the estimate lag behind it.
  void not_behind(std::int64_t stamped) {
    const std::int64_t now = steady_ns();
    if (stamped > now + offset.load()) offset = stamped - now;
  }

  [[noreturn]] void mismatch(std::int64_t their_rate, std::int64_t their_burst) const {
    throw error("bp::nats::token_bucket: key '" + o.key + "' of bucket '" + o.bucket +
                "' holds rate " + std::to_string(static_cast<double>(their_rate) / 1e6) +
                "/s burst " + std::to_string(their_burst) + "; this process asks for rate " +
                std::to_string(o.rate_per_second) + "/s burst " + std::to_string(o.burst) +
                " (every process sharing a key must agree; use another key for another limit)");
  }

  // Reads the key into the cache. NATS_OK (also when missing: exists = false), or the failure.
  // `stamp`, when given, receives the writer stamp of the value read.
  natsStatus read(clock::time_point deadline, std::string* stamp = nullptr) {
    msg_guard m;
    jsOptions jo = request_options(deadline);
    jsErrCode jerr = static_cast<jsErrCode>(0);
    ++round_trips;
    const natsStatus s = js_GetLastMsg(&m.p, conn->js, stream.c_str(), subject.c_str(), &jo, &jerr);
    if (s == NATS_NOT_FOUND || jerr == js_no_message) {
      cached = true;
      exists = false;
      seq = 0;
      return NATS_OK;
    }
    if (s != NATS_OK) {
      if (jerr == js_stream_not_found)
        throw_nats("key-value bucket '" + o.bucket + "' was deleted", s, jerr);
      return s;
    }
    cached = true;
    seq = natsMsg_GetSequence(m.p);
    not_behind(natsMsg_GetTime(m.p));
    const char* op = nullptr;
    if (natsMsgHeader_Get(m.p, "KV-Operation", &op) == NATS_OK) {  // DEL or PURGE
      exists = false;
      return NATS_OK;
    }
    const std::string text(natsMsg_GetData(m.p),
                           static_cast<std::size_t>(natsMsg_GetDataLength(m.p)));
    std::istringstream in(text);
    std::string tag, kv;
    in >> tag;
    if (tag != state_tag)
      throw error("bp::nats::token_bucket: key '" + o.key + "' of bucket '" + o.bucket +
                  "' holds something else than a bp::nats::token_bucket state: '" +
                  text.substr(0, 60) + "'");
    std::int64_t r = -1, b = -1, org = 0, t = 0;
    std::string w;
    while (in >> kv) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) continue;
      const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      if (k == "w") {
        w = v;
        continue;
      }
      std::int64_t x = 0;
      try {
        x = std::stoll(v);
      } catch (const std::exception&) {
        throw error("bp::nats::token_bucket: key '" + o.key + "' holds a malformed state: '" +
                    text.substr(0, 80) + "'");
      }
      if (k == "rate_micro") r = x;
      if (k == "burst") b = x;
      if (k == "origin") org = x;
      if (k == "tat") t = x;
    }
    if (r != rate_micro || b != burst) mismatch(r, b);
    exists = true;
    origin = org;
    tat = t;
    if (stamp != nullptr) *stamp = w;
    return NATS_OK;
  }

  enum class cas { written, conflict, no_answer };

  // Compare-and-set of the key to (new_tat, new_origin) expecting the cached revision:
  // written (cache updated), conflict (another process wrote first; cache dropped), or
  // no_answer (the write may or may not have landed; `stamp` names it).
  cas write(std::int64_t new_tat, std::int64_t new_origin, clock::time_point deadline,
            std::string* stamp) {
    const std::string w = writer + "." + std::to_string(++writes);
    const std::string text = std::string(state_tag) + " rate_micro=" + std::to_string(rate_micro) +
                             " burst=" + std::to_string(burst) +
                             " origin=" + std::to_string(new_origin) +
                             " tat=" + std::to_string(new_tat) + " w=" + w;
    if (stamp != nullptr) *stamp = w;
    msg_guard m;
    if (natsMsg_Create(&m.p, subject.c_str(), nullptr, text.data(),
                       static_cast<int>(text.size())) != NATS_OK)
      throw error("bp::nats::token_bucket: cannot create a message");
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = millis_until(deadline, cap());
    if (seq == 0)
      po.ExpectNoMessage = true;
    else
      po.ExpectLastSubjectSeq = seq;
    jsPubAck* pa = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    ++round_trips;
    const natsStatus s = js_PublishMsg(&pa, conn->js, m.p, &po, &jerr);
    if (s == NATS_OK) {
      seq = pa->Sequence;
      jsPubAck_Destroy(pa);
      exists = true;
      origin = new_origin;
      tat = new_tat;
      return cas::written;
    }
    jsPubAck_Destroy(pa);
    cached = false;
    if (jerr == js_wrong_last_seq) {
      ++conflicts;
      return cas::conflict;
    }
    if (s == NATS_TIMEOUT || is_transient(s)) return cas::no_answer;
    throw_nats("cannot write key '" + o.key + "'", s, jerr);
  }

  enum class outcome { granted, denied, unreachable };
  struct claim {
    outcome what = outcome::unreachable;
    std::int64_t act_steady = 0;  // when the tokens may be used (steady ns)
    std::int64_t tat_after = 0;
  };

  // Claims n tokens on the server if they can be used by `use_by` (steady ns; 0: only now,
  // forever_ns: any time), waiting for the server until `deadline`.
  claim take(std::int64_t n, std::int64_t use_by, clock::time_point deadline) {
    std::lock_guard lock(mu);
    if (!connected()) return {};
    std::string pending;  // a write whose answer was lost: did it land?
    for (;;) {
      if (clock::now() >= deadline) return {};
      if (!cached || !pending.empty()) {
        std::string found;
        if (read(deadline, &found) != NATS_OK) {
          if (!connected()) return {};
          std::this_thread::sleep_until(std::min(deadline, clock::now() + milliseconds(10)));
          continue;
        }
        if (!pending.empty()) {
          const bool landed = exists && found == pending;
          pending.clear();
          if (landed) {  // the write that lost its answer is the state now: granted
            granted += static_cast<std::uint64_t>(n);
            return {outcome::granted, time_of(tat - burst, origin) - offset.load(), tat};
          }
          // Not the last write: taken as not landed (had it landed and been overwritten
          // since, its tokens are lost to everyone: the fleet gets fewer, never more).
        }
      }
      const std::int64_t now_srv = server_now();
      const std::int64_t org = exists ? origin : now_srv;  // a missing key starts full, now
      const std::int64_t now_u = units_at(now_srv, org);
      const std::int64_t after = std::max(exists ? tat : 0, now_u) + n;
      const std::int64_t act = after - burst;
      const std::int64_t act_srv = act <= now_u ? now_srv : time_of(act, org);
      const std::int64_t act_steady = act_srv - offset.load();
      if (act > now_u && (use_by <= 0 || (use_by != forever_ns && act_steady > use_by))) {
        ++denied;
        return {outcome::denied, 0, 0};
      }
      std::string stamp;
      switch (write(after, org, deadline, &stamp)) {
        case cas::written:
          granted += static_cast<std::uint64_t>(n);
          return {outcome::granted, act_steady, after};
        case cas::conflict:
          break;  // read the winner's state and compute again
        case cas::no_answer:
          pending = stamp;
          if (!connected()) return {};
          break;
      }
    }
  }

  // ok (fail_open), timeout (fail_closed), or a throw (raise).
  status answer_unreachable(when_unreachable u) {
    ++unreachable;
    switch (u) {
      case when_unreachable::fail_open:
        return status::ok;
      case when_unreachable::raise:
        throw error("bp::nats::token_bucket: the server did not answer for key '" + o.key +
                        "' within the call's budget",
                    static_cast<int>(NATS_TIMEOUT));
      case when_unreachable::fail_closed:
      default:
        return status::timeout;
    }
  }

  // Gives back what a reservation took if its moment has not come (x/time/rate's CancelAt).
  void cancel(std::int64_t act_steady, std::int64_t tat_after, std::int64_t n) {
    std::lock_guard lock(mu);
    const auto deadline = clock::now() + o.request_timeout;
    while (clock::now() < deadline && connected()) {
      if (steady_ns() >= act_steady) return;  // already due: spent
      if (read(deadline) != NATS_OK) return;
      if (!exists) return;
      const std::int64_t later = tat - tat_after;  // claimed after this reservation
      const std::int64_t restore = n - later;
      if (later < 0 || restore <= 0) return;
      if (write(tat - restore, origin, deadline, nullptr) != cas::conflict) return;
    }
  }

  std::size_t available() {
    std::lock_guard lock(mu);
    const auto deadline = clock::now() + o.request_timeout;
    if (!connected() || read(deadline) != NATS_OK) return 0;
    if (!exists) return static_cast<std::size_t>(burst);
    const std::int64_t used = std::max<std::int64_t>(0, tat - units_at(server_now(), origin));
    return static_cast<std::size_t>(std::max<std::int64_t>(0, burst - used));
  }
};

}  // namespace detail

// --- reservation
// ----------------------------------------------------------------------------------

reservation::reservation(reservation&& o) noexcept {
  *this = std::move(o);
}
reservation& reservation::operator=(reservation&& o) noexcept {
  bucket_ = std::exchange(o.bucket_, nullptr);
  granted_open_ = std::exchange(o.granted_open_, false);
  act_steady_ns_ = o.act_steady_ns_;
  tat_after_ = o.tat_after_;
  n_ = o.n_;
  answer_ = o.answer_;
  return *this;
}
reservation::~reservation() = default;

std::chrono::nanoseconds reservation::delay() const noexcept {
  if (bucket_ == nullptr) return std::chrono::nanoseconds(0);
  const std::int64_t left = act_steady_ns_ - detail::steady_ns();
  return std::chrono::nanoseconds(left > 0 ? left : 0);
}

result reservation::wait() {
  if (!ok()) return answer_;
  if (bucket_ == nullptr || bucket_->wait_until(act_steady_ns_)) return status::ok;
  cancel();  // closed first: the tokens go back
  return answer_ = status::closed;
}

void reservation::cancel() {
  if (bucket_ != nullptr)
    bucket_->cancel(act_steady_ns_, tat_after_, static_cast<std::int64_t>(n_));
  bucket_ = nullptr;
  granted_open_ = false;
  answer_ = status::closed;
}

// --- token_bucket
// ---------------------------------------------------------------------------------

namespace {
std::int64_t checked(std::size_t n, std::size_t burst, const char* verb) {
  if (n > burst)
    throw std::invalid_argument(std::string("bp::nats::token_bucket::") + verb + ": n (" +
                                std::to_string(n) + ") exceeds burst (" + std::to_string(burst) +
                                ")");
  return static_cast<std::int64_t>(n);
}
}  // namespace

token_bucket::token_bucket(const token_bucket_options& o)
    : impl_(std::make_unique<detail::rate_impl>(o)), unreachable_(o.unreachable) {}
token_bucket::~token_bucket() = default;

result token_bucket::try_acquire(std::size_t n) {
  return try_acquire(n, unreachable_);
}

result token_bucket::try_acquire(std::size_t n, when_unreachable u) {
  const auto k = checked(n, burst(), "try_acquire");
  if (impl_->closed) return status::closed;
  if (k == 0) return status::ok;
  const auto c = impl_->take(k, 0, detail::clock::now() + impl_->o.request_timeout);
  if (c.what == detail::rate_impl::outcome::unreachable) return impl_->answer_unreachable(u);
  return c.what == detail::rate_impl::outcome::granted ? status::ok : status::full;
}

result token_bucket::acquire(std::size_t n) {
  return acquire(n, unreachable_);
}

result token_bucket::acquire(std::size_t n, when_unreachable u) {
  return acquire_for_ns(n, detail::forever_ns, u, "acquire");
}

result token_bucket::acquire_for_ns(std::size_t n, std::int64_t timeout_ns, when_unreachable u,
                                    const char* verb) {
  if (timeout_ns <= 0) {  // "now or never": try_acquire's budget
    const status r = try_acquire(n, u);
    return r == status::full ? status::timeout : r;
  }
  const auto k = checked(n, burst(), verb);
  if (impl_->closed) return status::closed;
  if (k == 0) return status::ok;
  const auto now = detail::clock::now();
  const bool unbounded = timeout_ns >= detail::forever_ns;
  const std::int64_t use_by = unbounded ? detail::forever_ns : detail::steady_ns() + timeout_ns;
  // The server part never outlasts the call's deadline (nor request_timeout when unbounded).
  const auto deadline =
      unbounded ? now + impl_->o.request_timeout : now + std::chrono::nanoseconds(timeout_ns);
  const auto c = impl_->take(k, use_by, deadline);
  if (c.what == detail::rate_impl::outcome::unreachable) return impl_->answer_unreachable(u);
  if (c.what == detail::rate_impl::outcome::denied) return status::timeout;
  if (impl_->wait_until(c.act_steady)) return status::ok;
  impl_->cancel(c.act_steady, c.tat_after, k);  // closed while waiting: give them back
  return status::closed;
}

reservation token_bucket::reserve(std::size_t n) {
  return reserve(n, unreachable_);
}

reservation token_bucket::reserve(std::size_t n, when_unreachable u) {
  const auto k = checked(n, burst(), "reserve");
  reservation r;
  if (impl_->closed) return r;  // answer(): closed
  r.n_ = n;
  if (k == 0) {
    r.granted_open_ = true;
    return r;
  }
  const auto c =
      impl_->take(k, detail::forever_ns, detail::clock::now() + impl_->o.request_timeout);
  if (c.what == detail::rate_impl::outcome::unreachable) {
    r.granted_open_ = impl_->answer_unreachable(u) == status::ok;
    r.answer_ = status::timeout;
    return r;
  }
  r.bucket_ = impl_.get();
  r.act_steady_ns_ = c.act_steady;
  r.tat_after_ = c.tat_after;
  return r;
}

void token_bucket::close() noexcept {
  impl_->close();
}
bool token_bucket::is_closed() const noexcept {
  return impl_->closed.load();
}

std::size_t token_bucket::available() {
  return impl_->available();
}
double token_bucket::rate() const noexcept {
  return impl_->o.rate_per_second;
}
std::size_t token_bucket::burst() const noexcept {
  return impl_->o.burst;
}
token_bucket::counters token_bucket::stats() const noexcept {
  counters c;
  c.granted = impl_->granted.load();
  c.denied = impl_->denied.load();
  c.conflicts = impl_->conflicts.load();
  c.unreachable = impl_->unreachable.load();
  c.round_trips = impl_->round_trips.load();
  return c;
}
std::chrono::nanoseconds token_bucket::clock_offset() const noexcept {
  return std::chrono::nanoseconds(impl_->offset.load());
}
std::chrono::nanoseconds token_bucket::clock_uncertainty() const noexcept {
  return std::chrono::nanoseconds(impl_->uncertainty.load());
}

}  // namespace bp::nats

// bp/nats/token_bucket.hpp: one rate limit shared by every process of a fleet, its state in a
// NATS JetStream key-value bucket.
//
//   bp::nats::token_bucket          the verbs and answers (bp::result) of bp::token_bucket
//                                   (try_acquire, acquire, acquire_for, acquire_until,
//                                   reserve), one rate and one burst for every process naming
//                                   the same key
//   bp::nats::token_bucket_options  connection, bucket, key, rate, burst, what to answer when
//                                   the server is unreachable
//   bp::nats::when_unreachable      fail_closed (deny), fail_open (grant) or raise (throw)
//   bp::nats::reservation           the answer of reserve(n): how long to wait, cancellable
//
// Example (every API-gateway process, on any machine):
//
//   bp::nats::token_bucket quota({.servers = {"nats://nats:4222"}, .key = "partner-api",
//                                 .rate_per_second = 1000, .burst = 100});
//   if (!quota.try_acquire()) return too_many_requests();       // one round trip
//   if (!quota.acquire_for(1, std::chrono::milliseconds(50))) return busy();
//   bp::result r = quota.acquire_for(1, std::chrono::milliseconds(50));
//   if (r == bp::status::timeout) ...  // no tokens within 50 ms, or the server did not answer
//
// The name is bp::token_bucket's because the verbs and answers are the same (as bp::nats::
// sender is a channel's sender): moving a limit from one process to a fleet changes its
// construction, not the code that takes tokens.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <bp/nats/error.hpp>
#include <bp/nats/options.hpp>
#include <bp/status.hpp>

namespace bp::nats {

// What a call answers when the server does not answer within the call's budget (or the
// connection is down at the call: then at once, without waiting).
enum class when_unreachable {
  fail_closed,  // not granted (`timeout`, !ok()): the limit is never exceeded (the default)
  fail_open,    // granted (`ok`, ok() with no delay): the service keeps running unlimited
  raise,        // throw bp::nats::error
};

struct token_bucket_options {
  // --- connection (as bp::nats::options) -------------------------------------------------------
  std::vector<std::string> servers{"nats://127.0.0.1:4222"};
  std::string connection_name{};
  std::chrono::milliseconds connect_timeout{2000};
  int max_reconnect = 60;
  std::chrono::milliseconds reconnect_wait{250};
  tls_options tls{};
  auth_options auth{};
  // The budget of the server part of one call: try_acquire, acquire, reserve, cancel and
  // available() wait at most this long for the server (timed verbs: at most their own
  // deadline). Then the call answers as `unreachable` says.
  std::chrono::milliseconds request_timeout{500};

  // --- where the state lives ---------------------------------------------------------------------
  std::string bucket = "bp_rate";  // key-value bucket (created if missing; stream KV_<bucket>)
  std::string key{};               // one limit per key: letters, digits, '-', '_', '.' ('.'
                                   // separates tokens, as in NATS subjects)
  storage store = storage::file;   // file: the limit survives a server restart
  int replicas = 1;

  // --- the limit (every process naming the key must give the same) ------------------------------
  double rate_per_second = 0;  // in (0, 1e9], resolution 1e-6 per second
  std::size_t burst = 1;       // in [1, 2^40]

  // --- failure
  // ------------------------------------------------------------------------------------
  when_unreachable unreachable = when_unreachable::fail_closed;
  // How often this process measures the offset of its clock to the server's (two round
  // trips); the estimate drifts by the clocks' rate difference (~10-100 ppm) in between.
  std::chrono::milliseconds clock_sync_interval{std::chrono::seconds(5)};
};

namespace detail {
struct rate_impl;
}

class token_bucket;

// The answer of token_bucket::reserve(n), as bp::reservation: the tokens are taken on the
// server for a moment that may lie in the future; delay() says how long until then. Move-only;
// must not outlive its bucket.
class reservation {
 public:
  reservation() noexcept = default;
  reservation(reservation&&) noexcept;
  reservation& operator=(reservation&&) noexcept;
  ~reservation();

  // False when refused: the server was unreachable with fail_closed, or the bucket is closed.
  [[nodiscard]] bool ok() const noexcept { return bucket_ != nullptr || granted_open_; }
  explicit operator bool() const noexcept { return ok(); }
  // Why it is not ok, or `ok`: `timeout` (the server was unreachable with fail_closed),
  // `closed` (the bucket is closed; also after cancel() or a wait() cut short by close()).
  [[nodiscard]] status answer() const noexcept { return ok() ? status::ok : answer_; }
  // Time left until the reserved moment (this process's clock); zero when due.
  [[nodiscard]] std::chrono::nanoseconds delay() const noexcept;
  [[nodiscard]] std::size_t tokens() const noexcept { return n_; }
  // Sleeps until the reserved moment: ok. Not ok: answer(). `closed` if the bucket is closed
  // first (the tokens are then given back and the reservation is no longer ok).
  result wait();
  // Gives the tokens back on the server unless their moment has come (as far as later
  // reservations leave room, as bp::reservation); best effort, at most request_timeout.
  void cancel();

 private:
  friend class token_bucket;
  detail::rate_impl* bucket_ = nullptr;
  bool granted_open_ = false;  // fail_open answer: nothing was taken on the server
  std::int64_t act_steady_ns_ = 0;
  std::int64_t tat_after_ = 0;
  std::size_t n_ = 0;
  status answer_ = status::closed;
};

// A token bucket whose state is one key of a JetStream key-value bucket: every process (on any
// machine) that names the same key shares one rate and one burst, so the fleet as a whole is
// granted at most rate * t + burst tokens from the key's creation to any time t.
//
// State: the GCRA theoretical arrival time, as an integer count of tokens on a time axis that
// starts at the key's creation (token k accrues at origin + k / rate, computed in integers: no
// drift whatever the number of grants), plus the rate and burst (a process asking for others
// gets bp::nats::error). A grant is a compare-and-set: a publish to the key expecting the
// revision it read (what kvStore_Update does; the calls are the same stream operations so
// that each takes its own deadline). A process caches the state it last wrote, so an
// uncontended grant is one round trip and a refusal that the cache already implies is none;
// a conflict costs one more read and write.
//
// Time: "now" is the server's clock, not this process's: every process estimates the offset
// of its steady clock to the time stamps the server puts on stored messages (a probe message,
// read back; error below half a round trip; again every clock_sync_interval, and never behind
// a time stamp it has read). Wall-clock skew between the processes therefore does not matter;
// what remains is the estimation error (~RTT/2, sub-millisecond on a LAN), worth rate * RTT/2
// tokens once, not per second. A jump of the server's own clock moves every process at once.
//
// Answers: each verb answers a bp::result (a bp::status that tests true only for `ok`), as
// bp::token_bucket's: try_acquire ok | full (the fleet has no tokens now) | timeout | closed;
// acquire ok | timeout | closed; acquire_for / acquire_until ok | timeout | closed. `timeout`
// from try_acquire and acquire means the server did not answer (fail_closed, below); from
// acquire_for also that the tokens cannot come within the timeout. `closed`: this object is
// closed (nothing taken).
//
// Unreachable server: every call has a budget (request_timeout, or the timed verb's own
// deadline); if the server does not answer within it, or the connection is down when the call
// starts (then at once), the call answers as options.unreachable (or the per-call argument)
// says: fail_closed (the default) refuses with `timeout`, fail_open grants (`ok`) without
// counting, raise throws bp::nats::error. A publish whose answer was lost may still have taken the
// tokens: such a call re-reads the key within its budget to learn whether its write landed.
//
// Crashes: there is no lock and no lease; a process killed at any point leaves a consistent
// state. It loses only the tokens it was granted and had not used (a pending reservation).
//
// When to use: one quota for many processes (a partner API's limit, a shared database's
// write budget, a fleet-wide retry budget), at up to a few thousand grants per second in total
// (each grant is a server round trip; docs/distributed.md has the numbers). When not to use:
// a limit per process (bp::token_bucket: nanoseconds per grant, no server), or very high rates
// (split the rate into per-process local buckets, or take tokens in batches with n > 1).
//
// Thread safety: every member may be called concurrently (calls of one object are serialized
// around the server round trips; use one object per thread for more concurrency), except the
// destructor (no call may be waiting then).
//
// Errors: invalid options throw std::invalid_argument naming the field (before any network
// traffic); an unreachable server at construction, a setup the server refuses, or a key
// holding another rate or burst throw bp::nats::error; n > burst throws std::invalid_argument.
class token_bucket {
 public:
  explicit token_bucket(const token_bucket_options& o);
  ~token_bucket();
  token_bucket(const token_bucket&) = delete;
  token_bucket& operator=(const token_bucket&) = delete;

  // Takes n tokens if the fleet has them now. Never waits for tokens; waits for the server at
  // most request_timeout (one round trip when uncontended, none when the cached state already
  // refuses). ok | full | timeout (unreachable) | closed.
  result try_acquire(std::size_t n = 1);
  result try_acquire(std::size_t n, when_unreachable u);

  // Waits until n tokens are granted: ok. The server part is bounded by request_timeout
  // (then timeout, ok or a throw as `unreachable` says); the wait for tokens is not (`closed`
  // if this object is closed meanwhile: the tokens are given back). ok | timeout | closed.
  result acquire(std::size_t n = 1);
  result acquire(std::size_t n, when_unreachable u);

  // As acquire, but answers `timeout` at once if the tokens cannot come within `timeout`; the
  // whole call, server included, answers within `timeout` (plus ~50 ms). ok | timeout | closed.
  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout) {
    return acquire_for_ns(n, to_ns(timeout), unreachable_);
  }
  template <class Rep, class Period>
  result acquire_for(std::size_t n, std::chrono::duration<Rep, Period> timeout,
                     when_unreachable u) {
    return acquire_for_ns(n, to_ns(timeout), u);
  }
  template <class Clock, class Duration>
  result acquire_until(std::size_t n, std::chrono::time_point<Clock, Duration> deadline) {
    return acquire_for(n, deadline - Clock::now());
  }

  // Takes n tokens now for a moment that may lie in the future; the reservation says how long
  // to wait. Not ok() only when the server was unreachable with fail_closed (answer()
  // `timeout`) or this object is closed (`closed`).
  [[nodiscard]] reservation reserve(std::size_t n = 1);
  [[nodiscard]] reservation reserve(std::size_t n, when_unreachable u);

  // This object stops granting (idempotent): waiting calls wake and answer `closed`, giving
  // their tokens back (best effort, one round trip), later calls answer `closed` / !ok(). The key
  // and the other processes are not affected. No call may be running when the object is destroyed.
  void close() noexcept;
  [[nodiscard]] bool is_closed() const noexcept;

  // Tokens the fleet could take now (one round trip; stale the moment it returns).
  [[nodiscard]] std::size_t available();
  [[nodiscard]] double rate() const noexcept;
  [[nodiscard]] std::size_t burst() const noexcept;

  struct counters {
    std::uint64_t granted = 0;      // tokens granted by the server
    std::uint64_t denied = 0;       // calls refused for lack of tokens
    std::uint64_t conflicts = 0;    // compare-and-set writes lost to another process
    std::uint64_t unreachable = 0;  // calls answered by the when_unreachable choice
    std::uint64_t round_trips = 0;  // requests to the server
  };
  [[nodiscard]] counters stats() const noexcept;
  // This process's estimate of (server clock - steady clock), and its uncertainty.
  [[nodiscard]] std::chrono::nanoseconds clock_offset() const noexcept;
  [[nodiscard]] std::chrono::nanoseconds clock_uncertainty() const noexcept;

 private:
  template <class Rep, class Period>
  static std::int64_t to_ns(std::chrono::duration<Rep, Period> d) {
    if (d <= d.zero()) return 0;
    using dsec = std::chrono::duration<double>;
    if (std::chrono::duration_cast<dsec>(d).count() > 1e9) return INT64_MAX / 4;  // forever
    return std::chrono::ceil<std::chrono::nanoseconds>(d).count();
  }
  result acquire_for_ns(std::size_t n, std::int64_t timeout_ns, when_unreachable u,
                        const char* verb = "acquire_for");

  std::unique_ptr<detail::rate_impl> impl_;
  when_unreachable unreachable_;
};

}  // namespace bp::nats

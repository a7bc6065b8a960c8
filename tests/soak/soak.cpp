// The soak: every bp primitive under one mixed, concurrent workload for minutes, watching what a
// short test cannot see: memory, descriptors or threads that creep up, latency that keeps
// growing, one value in millions lost or duplicated, a wait that never ends.
//
//   bp_soak [--seconds N] [--warmup S] [--stuck S] [--rss-slack-mib M] [--heap-slack-mib M]
//           [--heap-trend-mib M] [--trend-mib M] [--quiet]
//           [--inject heap|fd|thread|stall|lose|latency]
//
// --inject plants one fault of that kind in the workload, to show that the soak catches it
// (each must make the run fail; see tests/soak/RESULTS.md).
//
// Workloads. Each is a small group of threads that runs in cycles; a cycle ends with its
// primitives quiescent, checks their books, then destroys them and builds new ones.
//   channel  2 producers x 2 consumers on a fresh channel per cycle, rotating: block (capacity 8),
//            drop_newest, drop_oldest, reject (capacity 4), rendezvous (capacity 0); as a
//            bp::channel or as make_channel's sender/receiver ends; single operations or
//            send_n/recv_many; reservations whose permits are partly used, then dropped; and
//            three endings: the producers finish, close() mid-stream, the receivers leave with
//            values still buffered (those reach the drop handler when the channel dies).
//   misc     2 threads sharing a semaphore, a fixed and an AIMD concurrency_limiter, a
//            token_bucket and a leaky_bucket; every cycle ends with close() racing a waiter of
//            each kind (a lost wake-up would show as a wait that runs to its timeout).
//   budget   a producer and a consumer on three budgeted_channels (block, drop_oldest, reject)
//            and a watermark_buffer, all drawing on one memory_budget.
//   streams  bp::rs pipelines into to_iterable: range | map | filter (| limit_rate | take),
//            observe_on a worker, from_channel (a pump thread per run), early cancellation.
//   probe    one paced probe per primitive, p99 per second: send->recv through a block channel,
//            semaphore and limiter acquire, token bucket acquire, leaky bucket lateness, budget
//            reserve, watermark write+read, a short rs pipeline; and `sched`, the lateness of a
//            plain sleep, which measures the machine's noise rather than bp.
//
// Every second it prints one JSON line: RSS, live heap bytes (operator new is counted here),
// open descriptors, threads, operations per primitive in that second, p99 per probe.
//
// It fails (exit 1) on: a conservation violation in any cycle (a value lost, duplicated, moved
// when it was not taken; stats() disagreeing with what the threads saw; bytes or permits not
// given back; a rate bound exceeded; a close() that did not wake its waiter); RSS or live heap
// at the end above the warm-up level by more than the slack, or rising steadily over the second
// half (a least-squares fit); descriptors or threads above the warm-up level, or not back to
// their starting count once everything is joined; a probe whose p99 keeps growing (median of
// the last third of the run 1.5x that of the first, and faster than `sched`); or a
// worker that makes no progress for --stuck seconds (every blocking call has a timeout, so
// that is a hang: reported and the process exits 2 without waiting for it).
#include <bp/budgeted_channel.hpp>
#include <bp/channel.hpp>
#include <bp/concurrency_limiter.hpp>
#include <bp/memory_budget.hpp>
#include <bp/rate.hpp>
#include <bp/semaphore.hpp>
#include <bp/streams.hpp>
#include <bp/watermark_buffer.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

// --- live heap, counted at operator new/delete
// ---------------------------------------------------- RSS alone hides a slow leak behind the
// allocator's caching; live bytes do not.

namespace {
std::atomic<std::int64_t> g_heap_bytes{0};
std::atomic<std::int64_t> g_heap_blocks{0};

void* noted(void* p) noexcept {
  if (p) {
    g_heap_bytes.fetch_add(static_cast<std::int64_t>(malloc_usable_size(p)),
                           std::memory_order_relaxed);
    g_heap_blocks.fetch_add(1, std::memory_order_relaxed);
  }
  return p;
}
void unnote(void* p) noexcept {
  if (p) {
    g_heap_bytes.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)),
                           std::memory_order_relaxed);
    g_heap_blocks.fetch_sub(1, std::memory_order_relaxed);
  }
}
void* plain_alloc(std::size_t n) noexcept {
  return noted(std::malloc(n ? n : 1));
}
void* aligned_alloc_noted(std::size_t n, std::align_val_t a) noexcept {
  void* p = nullptr;
  const std::size_t al = std::max(sizeof(void*), static_cast<std::size_t>(a));
  if (posix_memalign(&p, al, n ? n : 1) != 0) return nullptr;
  return noted(p);
}
void* or_throw(void* p) {
  if (!p) throw std::bad_alloc();
  return p;
}
// Out of line: inlined into a replaced operator delete, GCC would see memory from operator new
// reach free() and warn (-Wmismatched-new-delete), not knowing this operator new is malloc.
[[gnu::noinline]] void release_noted(void* p) noexcept {
  unnote(p);
  std::free(p);
}
}  // namespace

void* operator new(std::size_t n) {
  return or_throw(plain_alloc(n));
}
void* operator new[](std::size_t n) {
  return or_throw(plain_alloc(n));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return plain_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return plain_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return or_throw(aligned_alloc_noted(n, a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return or_throw(aligned_alloc_noted(n, a));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return aligned_alloc_noted(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return aligned_alloc_noted(n, a);
}
void operator delete(void* p) noexcept {
  release_noted(p);
}
void operator delete[](void* p) noexcept {
  release_noted(p);
}
void operator delete(void* p, std::size_t) noexcept {
  release_noted(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  release_noted(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  release_noted(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  release_noted(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  release_noted(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  release_noted(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  release_noted(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  release_noted(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  release_noted(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  release_noted(p);
}

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;
using steady = std::chrono::steady_clock;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

template <class... A>
std::string str(const A&... a) {
  std::ostringstream os;
  (os << ... << a);
  return os.str();
}

// --- failures, stop flag ------------------------------------------------------------------------

std::atomic<bool> g_stop{false};
std::atomic<bool> g_failed{false};
std::mutex g_fail_m;
std::vector<std::string> g_failures;

void fail(const std::string& what) {
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  {
    std::lock_guard lock(g_fail_m);
    if (g_failures.size() < 32) g_failures.push_back(what);
  }
  g_failed.store(true);
  g_stop.store(true);
}

// The message is built only when the check fails.
#define SOAK_EXPECT(cond, msg)                                    \
  do {                                                            \
    if (!(cond)) fail(str(__func__, ": ", #cond, " -- ", (msg))); \
  } while (0)

bool stopping() {
  return g_stop.load(std::memory_order_relaxed);
}

// The fault planted by --inject (empty: none).
std::string g_inject;
bool injecting(const char* what) {
  return g_inject == what;
}

// Sleeps in short steps so that a stop request is seen soon.
void nap(std::chrono::microseconds d) {
  const auto end = steady::now() + d;
  while (!stopping() && steady::now() < end)
    std::this_thread::sleep_for(std::min<std::chrono::microseconds>(d, 20ms));
}

struct rng {
  std::uint64_t s;
  explicit rng(std::uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull | 1) {}
  std::uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  std::uint32_t below(std::uint64_t n) { return static_cast<std::uint32_t>(next() % n); }
};

// --- heartbeats: the watchdog's view of every worker --------------------------------------------

struct heartbeat {
  const char* name = "";
  std::atomic<bool> active{false};
  std::atomic<std::int64_t> at_ns{0};
  std::atomic<const char*> doing{""};
  void beat(const char* what) noexcept {
    doing.store(what, std::memory_order_relaxed);
    at_ns.store(now_ns(), std::memory_order_relaxed);
  }
};

enum slot : int {
  hb_chan_coord,
  hb_chan_p0,
  hb_chan_p1,
  hb_chan_c0,
  hb_chan_c1,
  hb_misc0,
  hb_misc1,
  hb_budget_coord,
  hb_budget_prod,
  hb_budget_cons,
  hb_rs,
  hb_probe,
  hb_echo,
  hb_count
};
constexpr std::array<const char*, hb_count> hb_names = {"channel.coordinator",
                                                        "channel.producer0",
                                                        "channel.producer1",
                                                        "channel.consumer0",
                                                        "channel.consumer1",
                                                        "misc0",
                                                        "misc1",
                                                        "budget.coordinator",
                                                        "budget.producer",
                                                        "budget.consumer",
                                                        "streams",
                                                        "probe",
                                                        "probe.echo"};
std::array<heartbeat, hb_count> g_beats;

// Marks a worker alive for the watchdog while in scope.
class on_duty {
 public:
  explicit on_duty(slot s) : h_(g_beats[s]) {
    // Named threads: `top -H` and a debugger show which workload is which.
    char name[16] = {};
    std::strncpy(name, h_.name, sizeof name - 1);
    pthread_setname_np(pthread_self(), name);
    h_.beat("start");
    h_.active.store(true);
  }
  ~on_duty() { h_.active.store(false); }
  on_duty(const on_duty&) = delete;
  on_duty& operator=(const on_duty&) = delete;
  heartbeat& operator*() { return h_; }
  heartbeat* operator->() { return &h_; }

 private:
  heartbeat& h_;
};

// --- operation counters and probes
// ----------------------------------------------------------------

enum op_kind : int {
  op_chan,
  op_sem,
  op_limiter,
  op_token,
  op_leaky,
  op_budgeted,
  op_watermark,
  op_rs,
  op_count
};
constexpr std::array<const char*, op_count> op_names = {
    "channel", "semaphore", "limiter", "token", "leaky", "budgeted", "watermark", "rs"};
std::array<std::atomic<std::uint64_t>, op_count> g_ops{};
void count_op(op_kind k, std::uint64_t n = 1) {
  g_ops[k].fetch_add(n, std::memory_order_relaxed);
}

enum probe_kind : int {
  pr_chan,
  pr_sem,
  pr_limiter,
  pr_token,
  pr_leaky,
  pr_budget,
  pr_watermark,
  pr_rs,
  pr_sched,
  pr_count
};
constexpr std::array<const char*, pr_count> probe_names = {
    "chan", "sem", "limiter", "token", "leaky", "budget", "watermark", "rs", "sched"};

struct probe_window {
  std::mutex m;
  std::vector<std::int64_t> ns;
  std::uint64_t timeouts = 0;
};
std::array<probe_window, pr_count> g_probe;

void record(probe_kind k, std::int64_t ns, bool timed_out = false) {
  auto& w = g_probe[k];
  std::lock_guard lock(w.m);
  w.ns.push_back(ns);
  if (timed_out) ++w.timeouts;
}

enum workload : int { wl_chan, wl_misc, wl_budget, wl_rs, wl_count };
constexpr std::array<const char*, wl_count> wl_names = {"channel", "misc", "budget", "streams"};
std::array<std::atomic<std::uint64_t>, wl_count> g_cycles{};

// --- the value that travels: knows its identity, counts its live instances ----------------------

struct item {
  std::atomic<std::int64_t>* live = nullptr;
  std::uint64_t id = 0;  // 0 once moved from
  std::string payload;

  item(std::atomic<std::int64_t>& l, std::uint64_t i, std::size_t bytes = 0)
      : live(&l), id(i), payload(bytes, static_cast<char>('a' + i % 26)) {
    live->fetch_add(1, std::memory_order_relaxed);
  }
  item(item&& o) noexcept
      : live(o.live), id(std::exchange(o.id, 0)), payload(std::move(o.payload)) {
    if (live) live->fetch_add(1, std::memory_order_relaxed);
  }
  item& operator=(item&& o) noexcept {
    if (this != &o) {
      if (live != o.live) {
        if (live) live->fetch_sub(1, std::memory_order_relaxed);
        live = o.live;
        if (live) live->fetch_add(1, std::memory_order_relaxed);
      }
      id = std::exchange(o.id, 0);
      payload = std::move(o.payload);
    }
    return *this;
  }
  item(const item&) = delete;
  item& operator=(const item&) = delete;
  ~item() {
    if (live) live->fetch_sub(1, std::memory_order_relaxed);
  }
};

// Where each value ended up; a second fate for one value is a duplicate.
enum class fate : std::uint8_t { none, received, evicted, undelivered, kept };
constexpr std::array<const char*, 5> fate_names = {"none", "received", "evicted", "undelivered",
                                                   "kept"};

class ledger {
 public:
  explicit ledger(std::size_t n) : f_(n) {}
  void mark(std::uint64_t id, fate f, const char* where) {
    if (id == 0 || id > f_.size()) {
      fail(str(where, ": value id ", id, " out of range (moved-from or corrupt)"));
      return;
    }
    const auto prev = f_[id - 1].exchange(static_cast<std::uint8_t>(f), std::memory_order_acq_rel);
    if (prev != 0)
      fail(str(where, ": value ", id, " has two fates: ", fate_names[prev], " then ",
               fate_names[static_cast<int>(f)]));
  }
  fate at(std::uint64_t id) const {
    return static_cast<fate>(f_[id - 1].load(std::memory_order_acquire));
  }

 private:
  std::vector<std::atomic<std::uint8_t>> f_;
};

// --- channel workload ---------------------------------------------------------------------------

constexpr int chan_producers = 2;
constexpr int chan_consumers = 2;
constexpr std::uint32_t chan_max_per_producer = 1u << 14;

struct chan_config {
  overflow policy;
  std::size_t capacity;
  bool ends;     // make_channel's sender/receiver instead of a bp::channel
  bool batched;  // send_n / recv_many mixed in
  int ending;    // 0 producers finish, 1 close mid-stream, 2 receivers leave
};

std::string describe(const chan_config& c) {
  static constexpr std::array<const char*, 3> endings = {"finish", "close", "receivers-leave"};
  return str(bp::to_string(c.policy), "/cap", c.capacity, c.ends ? "/ends" : "/channel",
             c.batched ? "/batched" : "/single", "/", endings[static_cast<std::size_t>(c.ending)]);
}

struct chan_tally {  // the answers producers got
  std::atomic<std::uint64_t> ok{0}, dropped{0}, full{0}, closed{0}, timeout{0}, unsent{0};
  std::atomic<std::uint64_t> permits{0}, permit_values{0}, kept{0};
  std::atomic<std::uint64_t> received{0}, evicted{0}, undelivered{0}, late{0};
};

template <class T>
auto& obj(T& x) {
  if constexpr (std::is_pointer_v<T>) {
    return *x;
  } else {
    return x;
  }
}
template <class T>
void let_go(T& x) {
  if constexpr (!std::is_pointer_v<T>) x.reset();
}

std::uint64_t chan_id(int producer, std::uint32_t seq) {
  return 1 + static_cast<std::uint64_t>(producer) * chan_max_per_producer + seq;
}

struct chan_shared {
  chan_config cfg;
  ledger led{chan_producers * chan_max_per_producer};
  chan_tally t;
  std::atomic<std::int64_t> live{0};
  std::atomic<bool> producers_done{false};
  std::atomic<bool> destroying{false};
  std::array<std::uint32_t, chan_producers> issued{};
  std::int64_t deadline_ns = 0;
  std::uint64_t leave_after = 0;
};

void keep(chan_shared& sh, item& v, std::atomic<std::uint64_t>& answer, const char* why) {
  SOAK_EXPECT(v.id != 0, str(describe(sh.cfg), ": a value answered ", why, " was moved from"));
  if (v.id != 0) sh.led.mark(v.id, fate::kept, "channel producer");
  answer.fetch_add(1, std::memory_order_relaxed);
  sh.t.kept.fetch_add(1, std::memory_order_relaxed);
}

void tally_refusal(chan_shared& sh, item& v, status s, bool& closed) {
  switch (s) {
    case status::dropped:
      keep(sh, v, sh.t.dropped, "dropped");
      break;
    case status::full:
      keep(sh, v, sh.t.full, "full");
      break;
    case status::closed:
      keep(sh, v, sh.t.closed, "closed");
      closed = true;
      break;
    case status::timeout:
      keep(sh, v, sh.t.timeout, "timeout");
      break;
    case status::ok:
      break;
    case status::cancelled:  // the soak gives no stop_token
      SOAK_EXPECT(false, "a send without a stop_token answered cancelled");
      break;
  }
}

template <class Tx>
void chan_produce(Tx tx, int p, chan_shared& sh) {
  on_duty hb(static_cast<slot>(hb_chan_p0 + p));
  rng r(static_cast<std::uint64_t>(now_ns()) + static_cast<std::uint64_t>(p));
  auto& ch = obj(tx);
  std::uint32_t seq = 0;
  bool closed = false;
  std::vector<item> batch;
  batch.reserve(8);
  int burst = 0;
  const auto make = [&] { return item(sh.live, chan_id(p, seq++)); };
  while (!closed && seq < chan_max_per_producer && now_ns() < sh.deadline_ns && !stopping()) {
    hb->beat("send");
    const auto dice = r.below(16);
    if (sh.cfg.capacity > 0 && dice == 0) {
      // A reservation: some of its slots used, the rest given back when the permit dies.
      const std::size_t k = 1 + r.below(std::min<std::size_t>(sh.cfg.capacity, 4));
      hb->beat("reserve_for");
      auto permit = ch.reserve_for(k, 50ms);
      if (!permit) {
        SOAK_EXPECT(permit.answer() == status::closed || permit.answer() == status::timeout,
                    str(describe(sh.cfg), ": reserve_for answered ", permit.answer()));
        if (permit.answer() == status::closed) closed = true;
      } else {
        sh.t.permits.fetch_add(1, std::memory_order_relaxed);
        const auto use = r.below(k + 1);
        for (std::uint32_t i = 0; i < use && seq < chan_max_per_producer; ++i) {
          hb->beat("permit.send");
          permit.send(make());
          sh.t.ok.fetch_add(1, std::memory_order_relaxed);
          sh.t.permit_values.fetch_add(1, std::memory_order_relaxed);
        }
      }
    } else if (sh.cfg.batched && dice < 8) {
      batch.clear();
      const auto n = 1 + r.below(8);
      for (std::uint32_t i = 0; i < n && seq < chan_max_per_producer; ++i) batch.push_back(make());
      hb->beat(dice < 6 ? "send_n_for" : "try_send_n");
      const auto res = dice < 6 ? ch.send_n_for(batch, 50ms) : ch.try_send_n(batch);
      SOAK_EXPECT(res.count <= batch.size(), describe(sh.cfg));
      sh.t.ok.fetch_add(res.count, std::memory_order_relaxed);
      for (std::size_t i = 0; i < res.count && i < batch.size(); ++i)
        SOAK_EXPECT(batch[i].id == 0, str(describe(sh.cfg), ": send_n took a value not moved"));
      SOAK_EXPECT((res.count == batch.size()) == (res.answer == status::ok),
                  str(describe(sh.cfg), ": send_n count ", res.count, " of ", batch.size(),
                      " with answer ", res.answer));
      if (res.count < batch.size()) {
        tally_refusal(sh, batch[res.count], res.answer, closed);
        for (std::size_t i = res.count + 1; i < batch.size(); ++i)
          keep(sh, batch[i], sh.t.unsent, "unsent (after the batch stopped)");
      }
    } else {
      item v = make();
      hb->beat(dice < 12 ? "send_for" : "try_send");
      const status s = dice < 12 ? ch.send_for(std::move(v), 50ms) : ch.try_send(std::move(v));
      if (s == status::ok) {
        sh.t.ok.fetch_add(1, std::memory_order_relaxed);
        SOAK_EXPECT(v.id == 0, str(describe(sh.cfg), ": a value sent ok was not moved"));
      } else {
        tally_refusal(sh, v, s, closed);
      }
    }
    count_op(op_chan);
    if (++burst == 16) {  // paced: the soak shares 2 cores with everything else
      burst = 0;
      std::this_thread::sleep_for(500us);
    }
  }
  sh.issued[static_cast<std::size_t>(p)] = seq;
  hb->beat("release sender");
  let_go(tx);
}

template <class Rx>
void chan_consume(Rx rx, int c, chan_shared& sh) {
  on_duty hb(static_cast<slot>(hb_chan_c0 + c));
  rng r(static_cast<std::uint64_t>(now_ns()) + 77 + static_cast<std::uint64_t>(c));
  auto& ch = obj(rx);
  std::array<std::uint32_t, chan_producers> next_seq{};  // FIFO per producer, as this one sees it
  std::vector<item> out;
  out.reserve(16);
  const auto take = [&](item& v) {
    if (v.id == 0) {
      fail(str(describe(sh.cfg), ": received a moved-from value"));
      return;
    }
    const auto idx = v.id - 1;
    const auto p = static_cast<std::size_t>(idx / chan_max_per_producer);
    const auto seq = static_cast<std::uint32_t>(idx % chan_max_per_producer);
    if (p < chan_producers) {
      SOAK_EXPECT(seq >= next_seq[p], str(describe(sh.cfg), ": producer ", p, "'s value ", seq,
                                          " after ", next_seq[p], " (FIFO broken)"));
      next_seq[p] = seq + 1;
    }
    static std::atomic<bool> lost_one{false};
    if (injecting("lose") && !lost_one.exchange(true)) return;  // received, then forgotten
    sh.led.mark(v.id, fate::received, "channel consumer");
    sh.t.received.fetch_add(1, std::memory_order_relaxed);
    count_op(op_chan);
  };
  for (;;) {
    hb->beat("recv");
    // No early exit when the run stops: the producers stop and the channel closes, and the
    // books below expect a drained channel. (Leaving here left values buffered at the end of a
    // run, which the drained check then reported as stranded.)
    if (sh.cfg.ending == 2 && (sh.t.received.load(std::memory_order_relaxed) >= sh.leave_after ||
                               now_ns() > sh.deadline_ns))
      break;  // the receivers leave; what is still buffered goes to the drop handler
    std::size_t got = 0;
    const auto dice = r.below(16);
    if (sh.cfg.batched && dice < 8) {
      out.clear();
      hb->beat(dice < 6 ? "recv_many_for" : "try_recv_many");
      got = dice < 6 ? ch.recv_many_for(out, 8, 20ms) : ch.try_recv_many(out, 8);
      SOAK_EXPECT(got == out.size() && got <= 8,
                  str(describe(sh.cfg), ": recv_many said ", got, " and appended ", out.size()));
      for (auto& v : out) take(v);
    } else {
      hb->beat(dice < 14 ? "recv_for" : "try_recv");
      auto v = dice < 14 ? ch.recv_for(20ms) : ch.try_recv();
      if (v) {
        take(*v);
        got = 1;
      }
    }
    if (got == 0 && ch.is_closed()) {
      // Closed and nothing came. Values can still arrive through permits taken before close:
      // only once the producers are gone does an empty receive mean drained.
      if (!sh.producers_done.load()) {
        std::this_thread::sleep_for(1ms);
        continue;
      }
      hb->beat("final recv_for");
      if (auto v = ch.recv_for(1ms)) {
        take(*v);
        continue;
      }
      break;
    }
  }
  hb->beat("release receiver");
  let_go(rx);
}

void chan_cycle(std::uint64_t k, heartbeat& hb) {
  static constexpr std::array<std::pair<overflow, std::size_t>, 5> kinds = {
      {{overflow::block, 8},
       {overflow::drop_newest, 4},
       {overflow::drop_oldest, 4},
       {overflow::reject, 4},
       {overflow::block, 0}}};
  auto sh = std::make_unique<chan_shared>();
  sh->cfg = {kinds[k % 5].first, kinds[k % 5].second, (k / 5) % 2 == 1, (k / 10) % 2 == 1,
             static_cast<int>((k / 20) % 3)};
  const auto cycle = 200ms;
  sh->deadline_ns = now_ns() + std::chrono::nanoseconds(cycle).count();
  sh->leave_after = 300 + k % 700;
  const std::string what = describe(sh->cfg);

  chan_shared& s = *sh;
  auto handler = [&s](item&& v) {
    const bool dying = s.destroying.load();
    s.led.mark(v.id, dying ? fate::undelivered : fate::evicted, "drop handler");
    (dying ? s.t.undelivered : s.t.evicted).fetch_add(1, std::memory_order_relaxed);
  };

  std::vector<std::thread> producers, consumers;
  bp::channel_stats st;
  std::size_t size_before = 0;
  bool closed_by_owners = true;

  // Both shapes run the same threads; only how the channel is held and closed differs.
  const auto run = [&](auto tx_for, auto rx_for, auto close, auto observe) {
    for (int c = 0; c < chan_consumers; ++c)
      consumers.emplace_back(
          [&, c, rx = rx_for()]() mutable { chan_consume(std::move(rx), c, s); });
    for (int p = 0; p < chan_producers; ++p)
      producers.emplace_back(
          [&, p, tx = tx_for()]() mutable { chan_produce(std::move(tx), p, s); });
    const auto join_all = [&](std::vector<std::thread>& ts) {
      for (auto& t : ts) t.join();
      ts.clear();
    };
    if (s.cfg.ending == 2) {
      hb.beat("join consumers (leaving)");
      join_all(consumers);
      close(false);
      hb.beat("join producers");
      join_all(producers);
    } else {
      if (s.cfg.ending == 1) {
        hb.beat("close mid-stream");
        nap(std::chrono::duration_cast<std::chrono::microseconds>(cycle / 2));
        close(true);
      }
      hb.beat("join producers");
      join_all(producers);
      close(false);
      s.producers_done.store(true);
      hb.beat("join consumers");
      join_all(consumers);
    }
    closed_by_owners = observe().is_closed();
    st = observe().stats();
    size_before = observe().size();
  };

  if (!s.cfg.ends) {
    auto ch = std::make_unique<bp::channel<item>>(s.cfg.capacity, s.cfg.policy, handler);
    bp::channel<item>* raw = ch.get();
    run([raw] { return raw; }, [raw] { return raw; }, [raw](bool) { raw->close(); },
        [raw]() -> bp::channel<item>& { return *raw; });
    s.destroying.store(true);
    ch.reset();
  } else {
    auto ends = bp::make_channel<item>(s.cfg.capacity, s.cfg.policy, handler);
    bp::sender<item> tx = std::move(ends.first);
    bp::receiver<item> rx = std::move(ends.second);
    // The coordinator keeps one end to read the books: the end whose owners must not be the
    // ones closing the channel (a sender when the receivers leave, else a receiver).
    if (s.cfg.ending == 2) {
      bp::receiver<item> rx0 = std::move(rx);
      run([&tx] { return tx; },
          [&rx0]() {
            bp::receiver<item> copy = rx0;
            return copy;
          },
          [&rx0](bool) { rx0.reset(); }, [&tx]() -> bp::sender<item>& { return tx; });
      // The consumers' copies are gone and the coordinator's was reset: the channel closed
      // itself when the last receiver left.
      s.destroying.store(true);
      tx.reset();
    } else {
      bp::sender<item> tx0 = std::move(tx);
      run(
          [&tx0]() {
            bp::sender<item> copy = tx0;
            return copy;
          },
          [&rx] { return rx; },
          [&tx0](bool mid_stream) {
            if (mid_stream) {
              tx0.close();  // close() mid-stream, through an end
            } else {
              tx0.reset();  // the producers' copies are gone by now: the last owner leaves
            }
          },
          [&rx]() -> bp::receiver<item>& { return rx; });
      s.destroying.store(true);
      tx0.reset();
      rx.reset();
    }
  }
  SOAK_EXPECT(closed_by_owners, str(what, ": not closed once its owners (or close) ended it"));

  // The books. Every count the threads saw must match stats(), and every value has one fate.
  const auto& t = s.t;
  SOAK_EXPECT(st.received == t.received.load(), str(what, ": stats.received ", st.received,
                                                    " but consumers got ", t.received.load()));
  SOAK_EXPECT(st.evicted == t.evicted.load(),
              str(what, ": stats.evicted ", st.evicted, " but the handler saw ", t.evicted.load()));
  SOAK_EXPECT(st.sent == st.received + size_before + st.evicted,
              str(what, ": sent ", st.sent, " != received ", st.received, " + size ", size_before,
                  " + evicted ", st.evicted));
  SOAK_EXPECT(st.dropped == t.dropped.load(),
              str(what, ": stats.dropped ", st.dropped, " but producers saw ", t.dropped.load()));
  SOAK_EXPECT(st.rejected == t.full.load(), str(what, ": stats.rejected ", st.rejected,
                                                " but producers saw full ", t.full.load()));
  SOAK_EXPECT(st.sent == t.ok.load(),
              str(what, ": stats.sent ", st.sent, " but producers saw ok ", t.ok.load()));
  SOAK_EXPECT(t.undelivered.load() == size_before,
              str(what, ": ", size_before, " buffered at the end but the drop handler got ",
                  t.undelivered.load(), " at destruction"));
  SOAK_EXPECT(st.high_watermark <= s.cfg.capacity,
              str(what, ": high_watermark ", st.high_watermark));
  if (s.cfg.ending != 2)
    SOAK_EXPECT(size_before == 0, str(what, ": ", size_before, " values left after draining"));
  if (s.cfg.capacity == 0)
    SOAK_EXPECT(st.sent == st.received && st.evicted == 0 && size_before == 0,
                str(what, ": rendezvous sent ", st.sent, " received ", st.received));
  SOAK_EXPECT(s.live.load() == 0,
              str(what, ": ", s.live.load(), " values alive after the channel died"));
  std::uint64_t issued = 0;
  std::array<std::uint64_t, 5> by_fate{};
  for (int p = 0; p < chan_producers; ++p) {
    for (std::uint32_t q = 0; q < chan_max_per_producer; ++q) {
      const fate f = s.led.at(chan_id(p, q));
      if (q < s.issued[static_cast<std::size_t>(p)]) {
        ++issued;
        ++by_fate[static_cast<std::size_t>(f)];
        if (f == fate::none) {
          fail(str(what, ": producer ", p, "'s value ", q, " was lost (no fate)"));
          break;
        }
      } else if (f != fate::none) {
        fail(str(what, ": a value never made has fate ", fate_names[static_cast<int>(f)]));
        break;
      }
    }
  }
  SOAK_EXPECT(by_fate[static_cast<int>(fate::kept)] == t.kept.load(), what);
  SOAK_EXPECT(t.kept.load() == t.dropped + t.full + t.closed + t.timeout + t.unsent, what);
  SOAK_EXPECT(issued == t.ok + t.kept,
              str(what, ": made ", issued, " but ok ", t.ok.load(), " + kept ", t.kept.load()));
}

void channel_workload() {
  on_duty hb(hb_chan_coord);
  for (std::uint64_t k = 0; !stopping(); ++k) {
    hb->beat("cycle");
    chan_cycle(k, *hb);
    g_cycles[wl_chan].fetch_add(1);
    if (injecting("heap")) {
      auto* leak = new char[4096];
      std::memset(leak, 1, 4096);
      static std::atomic<char*> sink;
      sink.store(leak);  // kept reachable for the compiler, lost for the program
    }
    if (injecting("fd") && k % 10 == 0) (void)::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (injecting("thread") && k % 50 == 49)
      std::thread([] { std::this_thread::sleep_for(1h); }).detach();
    hb->beat("between cycles");
    nap(20ms);
  }
}

// --- misc workload: semaphore, limiters, buckets
// --------------------------------------------------

constexpr std::size_t sem_cap = 4;
constexpr std::size_t fixed_cap = 3;
constexpr double token_rate = 2000;
constexpr std::size_t token_burst = 10;
constexpr double leaky_rate = 1000;
constexpr std::size_t leaky_cap = 8;

struct misc_state {
  std::unique_ptr<bp::semaphore> sem;
  std::unique_ptr<bp::concurrency_limiter> fixed;
  std::unique_ptr<bp::concurrency_limiter> aimd;
  std::unique_ptr<bp::token_bucket> tb;
  std::unique_ptr<bp::leaky_bucket> lb;
  std::int64_t born_ns = 0;
  std::atomic<std::int64_t> sem_held{0};
  std::atomic<std::int64_t> fixed_held{0};
  std::atomic<std::uint64_t> tb_granted{0}, lb_granted{0};
  std::atomic<std::uint64_t> sem_acquired{0}, sem_released{0};

  void build() {
    sem = std::make_unique<bp::semaphore>(sem_cap);
    fixed = std::make_unique<bp::concurrency_limiter>(bp::fixed_limit{fixed_cap});
    aimd = std::make_unique<bp::concurrency_limiter>(
        bp::aimd_limit({.initial_limit = 4,
                        .min_limit = 1,
                        .max_limit = 8,
                        .timeout = std::chrono::milliseconds(2)}));
    tb = std::make_unique<bp::token_bucket>(token_rate, token_burst);
    lb = std::make_unique<bp::leaky_bucket>(leaky_rate, leaky_cap);
    tb_granted = lb_granted = 0;
    sem_acquired = sem_released = 0;
    born_ns = now_ns();
  }
};

void hold_briefly(rng& r) {
  const auto spins = r.below(200);
  for (std::uint32_t i = 0; i < spins; ++i) std::atomic_signal_fence(std::memory_order_seq_cst);
}

void misc_op(misc_state& m, rng& r, heartbeat& hb) {
  const auto dice = r.below(10);
  if (dice < 3) {
    const std::size_t n = 1 + r.below(3);
    bool got = false;
    const int mode = static_cast<int>(r.below(4));
    hb.beat("semaphore.acquire");
    bp::permit held;
    if (mode == 0) {
      got = m.sem->try_acquire(n);
    } else if (mode == 1) {
      got = m.sem->acquire_for(n, 0ms);
    } else {
      held = m.sem->acquire_permit_for(n, 2ms);
      got = static_cast<bool>(held);
      if (got) SOAK_EXPECT(held.count() == n, str("permit of ", held.count(), " for ", n));
    }
    if (got) {
      m.sem_acquired.fetch_add(n);
      const auto now_held =
          m.sem_held.fetch_add(static_cast<std::int64_t>(n)) + static_cast<std::int64_t>(n);
      SOAK_EXPECT(now_held <= static_cast<std::int64_t>(sem_cap),
                  str(now_held, " semaphore permits held at once, capacity ", sem_cap));
      hold_briefly(r);
      m.sem_held.fetch_sub(static_cast<std::int64_t>(n));
      m.sem_released.fetch_add(n);
      if (mode < 2) m.sem->release(n);
      count_op(op_sem);
    }
  } else if (dice < 5) {
    const bool fixed = dice == 3;
    hb.beat(fixed ? "limiter(fixed).acquire_for" : "limiter(aimd).acquire");
    auto& lim = fixed ? *m.fixed : *m.aimd;
    auto t = r.below(2) ? lim.acquire_for(1ms) : lim.try_acquire();
    if (t) {
      SOAK_EXPECT(t.in_flight_at_start() >= 1, "token admitted with in_flight 0");
      if (fixed) {
        const auto h = m.fixed_held.fetch_add(1) + 1;
        SOAK_EXPECT(h <= static_cast<std::int64_t>(fixed_cap),
                    str(h, " fixed-limit tokens out at once, limit ", fixed_cap));
      }
      hold_briefly(r);
      if (fixed) m.fixed_held.fetch_sub(1);
      switch (r.below(4)) {
        case 0:
          t.on_dropped();
          break;
        case 1:
          t.on_ignore();
          break;
        default:
          t.on_success();
      }
      count_op(op_limiter);
    }
  } else if (dice < 7) {
    const std::size_t n = 1 + r.below(2);
    const auto mode = r.below(4);
    hb.beat("token_bucket");
    if (mode == 0) {
      if (m.tb->try_acquire(n)) m.tb_granted.fetch_add(n);
    } else if (mode == 1) {
      auto res = m.tb->reserve(n);
      SOAK_EXPECT(res.ok(), "token_bucket reserve refused while open");
      if (r.below(2)) {
        res.cancel();
      } else {
        m.tb_granted.fetch_add(n);
        std::this_thread::sleep_for(res.delay());
      }
    } else {
      if (m.tb->acquire_for(n, 2ms)) m.tb_granted.fetch_add(n);
    }
    count_op(op_token);
  } else if (dice < 9) {
    const auto mode = r.below(3);
    hb.beat("leaky_bucket");
    if (mode == 0) {
      if (m.lb->try_acquire()) m.lb_granted.fetch_add(1);
    } else if (mode == 1) {
      auto res = m.lb->reserve();
      if (res) {
        if (res.wait()) m.lb_granted.fetch_add(1);
      }
    } else {
      if (m.lb->acquire_for(1, 3ms)) m.lb_granted.fetch_add(1);
    }
    count_op(op_leaky);
  } else {
    hb.beat("pause");
    std::this_thread::sleep_for(200us);
  }
}

// close() must wake a parked waiter at once; if the wake-up were lost the waiter would run to
// its timeout (seconds), which is what is measured.
void misc_close_race(misc_state& m, int role, std::barrier<>& sync, heartbeat& hb) {
  constexpr auto long_wait = 3s;
  const auto lost = std::chrono::duration_cast<std::chrono::nanoseconds>(long_wait * 2 / 3).count();
  // Semaphore: role 0 holds every permit, role 1 waits, role 0 closes.
  if (role == 0) SOAK_EXPECT(m.sem->try_acquire(sem_cap), "semaphore not idle at cycle end");
  sync.arrive_and_wait();
  if (role == 1) {
    hb.beat("close race: semaphore.acquire_for");
    const auto t0 = now_ns();
    const bool got = m.sem->acquire_for(1, long_wait);
    const auto took = now_ns() - t0;
    SOAK_EXPECT(!got, "semaphore acquire succeeded although closed with every permit out");
    SOAK_EXPECT(took < lost, str("semaphore waiter woke ", took / 1000000, " ms after close"));
  } else {
    hb.beat("close race: semaphore.close");
    for (int i = 0; i < 100 && m.sem->waiting() == 0; ++i) std::this_thread::sleep_for(200us);
    m.sem->close();
    m.sem->release(sem_cap);
  }
  sync.arrive_and_wait();
  // Fixed limiter: role 0 takes every slot, role 1 waits, role 0 closes.
  std::vector<bp::concurrency_limiter::token> mine;
  if (role == 0)
    for (std::size_t i = 0; i < fixed_cap; ++i) {
      mine.push_back(m.fixed->try_acquire());
      SOAK_EXPECT(static_cast<bool>(mine.back()), "fixed limiter not idle at cycle end");
    }
  sync.arrive_and_wait();
  if (role == 1) {
    hb.beat("close race: limiter.acquire_for");
    const auto t0 = now_ns();
    auto t = m.fixed->acquire_for(long_wait);
    const auto took = now_ns() - t0;
    SOAK_EXPECT(!t, "limiter admitted although closed with every slot taken");
    SOAK_EXPECT(took < lost, str("limiter waiter woke ", took / 1000000, " ms after close"));
  } else {
    hb.beat("close race: limiter.close");
    std::this_thread::sleep_for(2ms);
    m.fixed->close();
    mine.clear();
  }
  sync.arrive_and_wait();
}

void misc_workload() {
  misc_state m;
  m.build();
  std::barrier sync(2);
  std::atomic<bool> quit{false};  // decided by role 0 so that both roles leave together
  std::unique_ptr<bp::token_bucket> slow;
  const auto body = [&](int role) {
    on_duty hb(static_cast<slot>(hb_misc0 + role));
    rng r(static_cast<std::uint64_t>(now_ns()) + 1000 + static_cast<std::uint64_t>(role));
    const auto born = now_ns();
    for (;;) {
      if (injecting("stall") && role == 1 && now_ns() - born > 15'000'000'000)
        std::this_thread::sleep_for(1h);  // a wait without a timeout that never ends
      const auto until = now_ns() + std::chrono::nanoseconds(400ms).count();
      while (now_ns() < until && !stopping()) misc_op(m, r, *hb);
      hb->beat("cycle end");
      sync.arrive_and_wait();
      if (role == 0) {
        // Quiescent: the books must balance.
        const auto elapsed_s = static_cast<double>(now_ns() - m.born_ns) * 1e-9;
        SOAK_EXPECT(m.sem->available() == sem_cap && m.sem->waiting() == 0,
                    str("semaphore idle with ", m.sem->available(), " available, ",
                        m.sem->waiting(), " waiting"));
        SOAK_EXPECT(m.sem_acquired.load() == m.sem_released.load() && m.sem_held.load() == 0,
                    "semaphore permits not all given back");
        SOAK_EXPECT(m.fixed->in_flight() == 0 && m.aimd->in_flight() == 0,
                    str("limiters idle with ", m.fixed->in_flight(), " and ", m.aimd->in_flight(),
                        " in flight"));
        SOAK_EXPECT(m.aimd->limit() >= 1 && m.aimd->limit() <= 8,
                    str("aimd limit ", m.aimd->limit(), " outside [1, 8]"));
        const auto tb_bound = std::floor(token_rate * elapsed_s) + token_burst + 1;
        SOAK_EXPECT(static_cast<double>(m.tb_granted.load()) <= tb_bound,
                    str("token bucket granted ", m.tb_granted.load(), " in ", elapsed_s,
                        " s: above rate*t + burst = ", tb_bound));
        const auto lb_bound = std::floor(leaky_rate * elapsed_s) + 2;
        SOAK_EXPECT(static_cast<double>(m.lb_granted.load()) <= lb_bound,
                    str("leaky bucket let ", m.lb_granted.load(), " out in ", elapsed_s,
                        " s: above rate*t + 1 = ", lb_bound));
        slow = std::make_unique<bp::token_bucket>(0.5, 1);
        SOAK_EXPECT(slow->try_acquire(), "a new bucket starts full");
        quit.store(stopping());
      }
      sync.arrive_and_wait();
      if (quit.load()) break;
      misc_close_race(m, role, sync, *hb);
      // Token bucket close race (uses `slow`, built by role 0 above).
      if (role == 1) {
        hb->beat("close race: token_bucket.acquire_for");
        const auto t0 = now_ns();
        const bool got = slow->acquire_for(1, 5s);
        const auto took = now_ns() - t0;
        SOAK_EXPECT(!got, "token bucket waiter got a token although the bucket was closed");
        SOAK_EXPECT(took < 1'500'000'000,
                    str("token bucket waiter woke ", took / 1000000, " ms after close"));
      } else {
        hb->beat("close race: token_bucket.close");
        std::this_thread::sleep_for(2ms);
        slow->close();
      }
      sync.arrive_and_wait();
      if (role == 0) {
        m.build();
        g_cycles[wl_misc].fetch_add(1);
      }
      sync.arrive_and_wait();
    }
  };
  std::thread other([&] { body(1); });
  body(0);
  other.join();
}

// --- budget workload: budgeted channels and a watermark buffer on one memory budget -----------

constexpr std::size_t budget_bytes = 256 * 1024;
constexpr std::uint32_t budget_max_items = 1u << 16;

struct budget_cycle_state {
  bp::memory_budget& budget;
  std::atomic<std::int64_t> live{0};
  ledger led{budget_max_items};
  std::atomic<std::uint32_t> next_id{1};
  std::atomic<bool> producer_done{false};
  std::atomic<std::uint64_t> evicted{0}, wm_drains{0};
  // Per target: ok, dropped, full, timeout, closed answers; received.
  struct tally {
    std::atomic<std::uint64_t> ok{0}, dropped{0}, full{0}, timeout{0}, closed{0}, received{0};
  };
  std::array<tally, 4> t;  // block, drop_oldest, reject, watermark
  std::atomic<std::uint64_t> wm_over_high{0};

  bp::budgeted_channel<item> a{budget,
                               {.capacity = 64,
                                .policy = overflow::block,
                                .size = [](const item& v) { return v.payload.size(); },
                                .max_block = 20ms}};
  bp::budgeted_channel<item> b{budget,
                               {.capacity = 64,
                                .policy = overflow::drop_oldest,
                                .size = [](const item& v) { return v.payload.size(); },
                                .on_undelivered =
                                    [this](item&& v) {
                                      led.mark(v.id, fate::evicted, "budgeted drop handler");
                                      evicted.fetch_add(1);
                                    }}};
  bp::budgeted_channel<item> c{
      budget, {.capacity = 32, .policy = overflow::reject, .size = [](const item& v) {
                 return v.payload.size();
               }}};
  bp::watermark_buffer<item> w{{.high_watermark = 16 * 1024,
                                .low_watermark = 4 * 1024,
                                .size = [](const item& v) { return v.payload.size(); },
                                .on_drain = [this] { wm_drains.fetch_add(1); },
                                .budget = &budget}};

  explicit budget_cycle_state(bp::memory_budget& b) : budget(b) {}
};

void check_payload(const item& v, const char* where) {
  const char expect = static_cast<char>('a' + v.id % 26);
  SOAK_EXPECT(!v.payload.empty() && v.payload.front() == expect && v.payload.back() == expect,
              str(where, ": value ", v.id, " arrived with a damaged payload"));
}

void budget_produce(budget_cycle_state& s, std::int64_t until) {
  on_duty hb(hb_budget_prod);
  rng r(static_cast<std::uint64_t>(now_ns()) + 5);
  int burst = 0;
  while (now_ns() < until && !stopping()) {
    const auto id = s.next_id.fetch_add(1);
    if (id >= budget_max_items) break;
    item v(s.live, id, 64 + r.below(4000));
    const auto target = r.below(4);
    auto& t = s.t[target];
    status answer = status::ok;
    if (target == 3) {
      hb->beat("watermark.write_for");
      const auto res =
          r.below(4) == 0 ? s.w.try_write(std::move(v)) : s.w.write_for(std::move(v), 10ms);
      answer = res.status;
      if (answer == status::ok && !res.keep_writing) {
        s.wm_over_high.fetch_add(1);
        hb->beat("watermark.wait_drain_for");
        const auto d = s.w.wait_drain_for(10ms);
        SOAK_EXPECT(d == status::ok || d == status::timeout || d == status::closed,
                    str("wait_drain_for answered ", d));
      }
    } else {
      auto& ch = target == 0 ? s.a : target == 1 ? s.b : s.c;
      hb->beat("budgeted.send");
      const bool try_only = r.below(4) == 0;
      answer = try_only      ? ch.try_send(std::move(v))
               : target == 0 ? ch.send_for(std::move(v), 10ms)
                             : ch.send(std::move(v));
      if (target == 2 && !try_only)
        SOAK_EXPECT(answer != status::timeout, "a reject channel answered timeout");
    }
    switch (answer) {
      case status::ok:
        SOAK_EXPECT(v.id == 0, "a budgeted value sent ok was not moved");
        t.ok.fetch_add(1);
        break;
      case status::dropped:
        t.dropped.fetch_add(1);
        break;
      case status::full:
        t.full.fetch_add(1);
        break;
      case status::timeout:
        t.timeout.fetch_add(1);
        break;
      case status::closed:
        t.closed.fetch_add(1);
        break;
      case status::cancelled:  // the soak gives no stop_token
        SOAK_EXPECT(false, "a budgeted send without a stop_token answered cancelled");
        break;
    }
    if (answer != status::ok) {
      SOAK_EXPECT(v.id == id, str("value answered ", answer, " was not left with the caller"));
      if (v.id != 0) s.led.mark(v.id, fate::kept, "budget producer");
    }
    count_op(target == 3 ? op_watermark : op_budgeted);
    if (++burst == 8) {
      burst = 0;
      std::this_thread::sleep_for(250us);
    }
  }
  hb->beat("close");
  s.producer_done.store(true);
  s.a.close();
  s.b.close();
  s.c.close();
  s.w.close();
}

void budget_consume(budget_cycle_state& s) {
  on_duty hb(hb_budget_cons);
  rng r(static_cast<std::uint64_t>(now_ns()) + 9);
  const auto take = [&](item& v, std::size_t target, const char* where) {
    check_payload(v, where);
    s.led.mark(v.id, fate::received, where);
    s.t[target].received.fetch_add(1);
    count_op(target == 3 ? op_watermark : op_budgeted);
  };
  int idle_rounds = 0;
  for (;;) {
    std::size_t got = 0;
    hb->beat("budgeted.recv");
    for (std::size_t target = 0; target < 3; ++target) {
      auto& ch = target == 0 ? s.a : target == 1 ? s.b : s.c;
      auto v = r.below(2) ? ch.try_recv() : ch.recv_for(200us);
      if (v) {
        take(*v, target, "budgeted consumer");
        ++got;
      }
    }
    hb->beat("watermark.read");
    if (auto v = r.below(2) ? s.w.try_read() : s.w.read_for(200us)) {
      take(*v, 3, "watermark reader");
      ++got;
    }
    if (got == 0) {
      if (s.producer_done.load() && s.a.is_closed() && s.w.is_closed()) {
        if (++idle_rounds > 2) break;  // closed and a few rounds found nothing: drained
      }
      std::this_thread::sleep_for(100us);
    } else {
      idle_rounds = 0;
      if (r.below(8) == 0) std::this_thread::sleep_for(300us);  // a slower consumer: bytes run out
    }
  }
}

void budget_workload(bp::memory_budget& budget) {
  on_duty hb(hb_budget_coord);
  for (std::uint64_t k = 0; !stopping(); ++k) {
    {
      auto s = std::make_unique<budget_cycle_state>(budget);
      const auto until = now_ns() + std::chrono::nanoseconds(500ms).count();
      std::thread prod([&] { budget_produce(*s, until); });
      hb->beat("consume");
      budget_consume(*s);
      hb->beat("join producer");
      prod.join();
      // Drained: every channel's books balance, and no bytes are held.
      for (std::size_t target = 0; target < 3; ++target) {
        auto& ch = target == 0 ? s->a : target == 1 ? s->b : s->c;
        const auto st = ch.stats();
        const auto& t = s->t[target];
        const auto evicted = target == 1 ? s->evicted.load() : 0;
        const std::string what = str("budgeted ", bp::to_string(ch.policy()));
        SOAK_EXPECT(ch.size() == 0 && ch.bytes() == 0,
                    str(what, ": drained yet size ", ch.size(), ", bytes ", ch.bytes()));
        SOAK_EXPECT(
            st.sent == t.ok.load() && st.received == t.received.load() && st.evicted == evicted &&
                st.sent == st.received + st.evicted,
            str(what, ": stats sent/received/evicted ", st.sent, "/", st.received, "/", st.evicted,
                " vs seen ", t.ok.load(), "/", t.received.load(), "/", evicted));
        SOAK_EXPECT(st.dropped == t.dropped.load() && st.rejected == t.full.load(),
                    str(what, ": stats dropped/rejected ", st.dropped, "/", st.rejected,
                        " vs seen ", t.dropped.load(), "/", t.full.load()));
      }
      const auto ws = s->w.stats();
      const auto& wt = s->t[3];
      SOAK_EXPECT(
          ws.writes == wt.ok.load() && ws.reads == wt.received.load() && ws.writes == ws.reads,
          str("watermark writes/reads ", ws.writes, "/", ws.reads, " vs seen ", wt.ok.load(), "/",
              wt.received.load()));
      SOAK_EXPECT(ws.refused == wt.full + wt.timeout + wt.closed,
                  str("watermark refused ", ws.refused));
      SOAK_EXPECT(
          ws.buffered_bytes == 0 && s->w.budget_stream().in_use() == 0 && !s->w.need_drain(),
          str("watermark drained yet ", ws.buffered_bytes, " bytes buffered, ",
              s->w.budget_stream().in_use(), " held"));
      SOAK_EXPECT(ws.drains == s->wm_drains.load() && ws.drains <= ws.over_high &&
                      ws.over_high == s->wm_over_high.load(),
                  str("watermark drains ", ws.drains, " callbacks ", s->wm_drains.load(),
                      " over_high ", ws.over_high, " seen ", s->wm_over_high.load()));
      // The high watermark is advice; the budget is the hard bound.
      SOAK_EXPECT(ws.peak_bytes <= budget_bytes,
                  str("watermark peak ", ws.peak_bytes, " beyond the budget"));
      const auto made = s->next_id.load() - 1;
      for (std::uint32_t id = 1; id <= made && id < budget_max_items; ++id) {
        if (s->led.at(id) == fate::none) {
          fail(str("budget workload: value ", id, " was lost (no fate)"));
          break;
        }
      }
    }
    // The cycle's channels, buffer and items are gone.
    const auto bs = budget.stats();
    SOAK_EXPECT(bs.streams <= 1,
                str("budget has ", bs.streams, " streams open, expected the probe's only"));
    SOAK_EXPECT(bs.in_use <= 1024 && bs.peak <= budget_bytes,
                str("budget in_use ", bs.in_use, " after the cycle, peak ", bs.peak));
    g_cycles[wl_budget].fetch_add(1);
    hb->beat("between cycles");
    nap(20ms);
  }
}

// --- streams workload ---------------------------------------------------------------------------

void rs_workload() {
  using namespace bp::rs;
  on_duty hb(hb_rs);
  worker w;  // observe_on's thread, for the whole run
  for (std::uint64_t k = 0; !stopping(); ++k) {
    const std::int64_t n = 500 + static_cast<std::int64_t>(k % 1500);
    const auto kind = k % 5;
    std::int64_t sum = 0;
    std::int64_t count = 0;
    std::int64_t expect_sum = 0;
    std::int64_t expect_count = 0;
    try {
      if (kind == 4) {
        // Block -> Signal: a full channel, closed by its last sender, drained by from_channel.
        hb->beat("from_channel");
        auto [tx, rx] = bp::make_channel<std::int64_t>(64);
        for (std::int64_t i = 0; i < 64; ++i)
          SOAK_EXPECT(tx.try_send(i) == status::ok, "from_channel feed refused");
        tx.reset();
        auto pub = from_channel(std::move(rx)) | map([](std::int64_t v) { return v + 1; });
        for (std::int64_t v : to_iterable(pub, 16, 2s)) {
          sum += v;
          ++count;
        }
        expect_sum = 64 * 65 / 2;
        expect_count = 64;
      } else {
        const auto base = range(0, n) | map([](std::int64_t v) { return v * 3; }) |
                          filter([](std::int64_t v) { return v % 2 == 0; });
        publisher_ptr<std::int64_t> pub = base;
        std::int64_t limit = -1;
        if (kind == 1) {
          hb->beat("limit_rate | take");
          limit = n / 4;
          pub = base | limit_rate(32) | take(limit);
        } else if (kind == 2) {
          hb->beat("observe_on");
          pub = base | observe_on(w, 32);
        } else {
          hb->beat("range | map | filter");
        }
        // Early cancellation half the time on kind 3: leaving the loop cancels upstream.
        const std::int64_t stop_after = kind == 3 ? n / 6 : -1;
        {
          auto it = to_iterable(pub, 64, 2s);
          for (std::int64_t v : it) {
            sum += v;
            ++count;
            if (count == stop_after) break;
          }
        }
        for (std::int64_t v = 0; v < n; ++v) {
          if ((v * 3) % 2 != 0) continue;
          if (limit >= 0 && expect_count == limit) break;
          if (stop_after >= 0 && expect_count == stop_after) break;
          expect_sum += v * 3;
          ++expect_count;
        }
      }
    } catch (const timeout_error& e) {
      fail(str("streams kind ", kind, ": ", e.what()));
    } catch (const std::exception& e) {
      fail(str("streams kind ", kind, ": exception ", e.what()));
    }
    SOAK_EXPECT(sum == expect_sum && count == expect_count,
                str("streams kind ", kind, " n ", n, ": got ", count, " values summing to ", sum,
                    ", expected ", expect_count, " summing to ", expect_sum));
    count_op(op_rs, static_cast<std::uint64_t>(count));
    g_cycles[wl_rs].fetch_add(1);
    hb->beat("between runs");
    std::this_thread::sleep_for(10ms);
  }
}

// --- probes -------------------------------------------------------------------------------------

void probe_workload(bp::memory_budget& budget) {
  on_duty hb(hb_probe);
  auto [tx, rx] = bp::make_channel<std::int64_t>(16);
  bp::semaphore sem(1);
  bp::concurrency_limiter lim(bp::aimd_limit({.initial_limit = 2, .max_limit = 4}));
  bp::token_bucket tb(1e5, 100);
  bp::leaky_bucket lb(1000.0, 8);
  auto stream = budget.open_stream();
  bp::watermark_buffer<std::string> wm({.high_watermark = 4096});
  std::thread echo([rx = std::move(rx), &sem] {
    on_duty ehb(hb_echo);
    for (;;) {
      ehb->beat("recv_for");
      auto v = rx.recv_for(200ms);
      if (!v) {
        if (rx.is_closed()) break;
        continue;
      }
      record(pr_chan, now_ns() - *v);
      // A second user of the probe's semaphore, so its acquire sees some contention.
      ehb->beat("semaphore.acquire_for");
      if (sem.acquire_for(1, 100ms)) sem.release();
    }
  });
  const auto timed = [](probe_kind k, auto&& op) {
    const auto t0 = now_ns();
    const bool ok = op();
    record(k, now_ns() - t0, !ok);
  };
  const auto born = now_ns();
  for (std::uint64_t i = 0; !stopping(); ++i) {
    hb->beat("chan");
    {
      const auto s = tx.send_for(now_ns(), 100ms);
      if (s != status::ok) record(pr_chan, 100'000'000, true);
    }
    hb->beat("sem");
    timed(pr_sem, [&] {
      if (!sem.acquire_for(1, 100ms)) return false;
      if (injecting("latency"))  // a hold that grows 100 us per second of the run
        std::this_thread::sleep_for(std::chrono::nanoseconds((now_ns() - born) / 10'000));
      sem.release();
      return true;
    });
    hb->beat("limiter");
    timed(pr_limiter, [&] {
      auto t = lim.acquire_for(100ms);
      if (!t) return false;
      t.on_success();
      return true;
    });
    hb->beat("token");
    timed(pr_token, [&] { return tb.acquire_for(1, 100ms); });
    hb->beat("leaky");
    {
      const auto t0 = now_ns();
      auto res = lb.reserve();
      const auto due = t0 + res.delay().count();
      const bool ok = res && res.wait();
      record(pr_leaky, std::max<std::int64_t>(0, now_ns() - due), !ok);
    }
    hb->beat("budget");
    timed(pr_budget, [&] {
      auto r = stream.reserve_for(1024, 100ms);
      return static_cast<bool>(r);
    });
    hb->beat("watermark");
    timed(pr_watermark, [&] {
      const auto res = wm.write(std::string(100, 'w'));
      auto back = wm.try_read();
      return res.status == status::ok && back.has_value();
    });
    if (i % 8 == 0) {
      hb->beat("rs");
      timed(pr_rs, [&] {
        using namespace bp::rs;
        std::int64_t got = 0;
        try {
          for (std::int64_t v : to_iterable(range(0, 32) | map([](std::int64_t x) {
                                              return x + 1;
                                            }) | filter([](std::int64_t x) { return x % 2 == 0; }),
                                            16, 1s))
            got += v;
        } catch (const std::exception&) {
          return false;
        }
        return got == 272;
      });
    }
    hb->beat("sched");
    {
      const auto t0 = now_ns();
      std::this_thread::sleep_for(200us);
      record(pr_sched, std::max<std::int64_t>(0, now_ns() - t0 - 200'000));
    }
    std::this_thread::sleep_for(2ms);
  }
  hb->beat("join echo");
  tx.reset();  // the echo's receive loop ends
  echo.join();
}

// --- sampling -----------------------------------------------------------------------------------

struct proc_sample {
  long rss_kib = 0;
  long threads = 0;
  long fds = 0;
};

proc_sample read_proc() {
  proc_sample s;
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f)) {
      if (std::strncmp(line, "VmRSS:", 6) == 0) s.rss_kib = std::strtol(line + 6, nullptr, 10);
      if (std::strncmp(line, "Threads:", 8) == 0) s.threads = std::strtol(line + 8, nullptr, 10);
    }
    std::fclose(f);
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    long n = 0;
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++n;
    closedir(d);
    s.fds = n - 1;  // the directory's own descriptor
  }
  return s;
}

double percentile(std::vector<std::int64_t>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Least-squares slope of y over x = 0, 1, 2, ... (per sample, i.e. per second).
double slope(const std::vector<double>& y) {
  const auto n = static_cast<double>(y.size());
  if (y.size() < 3) return 0;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const auto x = static_cast<double>(i);
    sx += x;
    sy += y[i];
    sxx += x * x;
    sxy += x * y[i];
  }
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

struct second {
  double t = 0;
  proc_sample proc;
  double heap_kib = 0;
  std::array<double, pr_count> p99_us{};
  std::array<std::uint64_t, op_count> ops{};
};

struct options {
  int seconds = 600;
  int warmup = -1;  // default: a quarter of the run, within [10, 60] s
  int stuck = 30;
  double rss_slack_mib = 8;
  // Live heap swings by tens of KiB with the work in flight (measured): 1 MiB, and 0.5 MiB of
  // trend over the second half, catch a leak of ~10 KiB/s within two minutes.
  double heap_slack_mib = 1;
  double heap_trend_mib = 0.5;
  double trend_mib = 4;
  bool quiet = false;
  // A latency trend needs a machine whose load stays the same for the whole run: two minutes
  // beside other tests that start and stop (CI) cannot tell a creep from their coming and going.
  bool latency_trend = true;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> double {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "soak: %s needs a value\n", a.c_str());
        std::exit(64);
      }
      return std::atof(argv[++i]);
    };
    if (a == "--seconds") {
      o.seconds = static_cast<int>(value());
    } else if (a == "--warmup") {
      o.warmup = static_cast<int>(value());
    } else if (a == "--stuck") {
      o.stuck = static_cast<int>(value());
    } else if (a == "--rss-slack-mib") {
      o.rss_slack_mib = value();
    } else if (a == "--heap-slack-mib") {
      o.heap_slack_mib = value();
    } else if (a == "--trend-mib") {
      o.trend_mib = value();
    } else if (a == "--heap-trend-mib") {
      o.heap_trend_mib = value();
    } else if (a == "--quiet") {
      o.quiet = true;
    } else if (a == "--no-latency-trend") {
      o.latency_trend = false;
    } else if (a == "--inject" && i + 1 < argc) {
      g_inject = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: soak [--seconds N] [--warmup S] [--stuck S] [--rss-slack-mib M] "
                   "[--heap-slack-mib M] [--heap-trend-mib M] [--trend-mib M] [--quiet] "
                   "[--no-latency-trend] "
                   "[--inject heap|fd|thread|stall|lose|latency]\n");
      std::exit(64);
    }
  }
  if (o.seconds < 20) o.seconds = 20;
  if (o.warmup < 0) o.warmup = std::clamp(o.seconds / 4, 10, 60);
  if (o.warmup > o.seconds / 2) o.warmup = o.seconds / 2;
  return o;
}

void print_second(const second& s) {
  std::string line = str("{\"t\":", s.t, ",\"rss_kib\":", s.proc.rss_kib,
                         ",\"heap_kib\":", static_cast<long>(s.heap_kib), ",\"fds\":", s.proc.fds,
                         ",\"threads\":", s.proc.threads, ",\"ops\":{");
  for (int k = 0; k < op_count; ++k)
    line += str(k ? "," : "", "\"", op_names[static_cast<std::size_t>(k)],
                "\":", s.ops[static_cast<std::size_t>(k)]);
  line += "},\"p99_us\":{";
  for (int k = 0; k < pr_count; ++k) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", s.p99_us[static_cast<std::size_t>(k)]);
    line += str(k ? "," : "", "\"", probe_names[static_cast<std::size_t>(k)], "\":", buf);
  }
  line += "}}";
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Reports who has not made progress, then exits without joining (a stuck thread never would).
[[noreturn]] void stuck_exit(const std::string& why) {
  std::fprintf(stderr, "FAIL: %s\n", why.c_str());
  const auto now = now_ns();
  for (int i = 0; i < hb_count; ++i) {
    const auto& h = g_beats[static_cast<std::size_t>(i)];
    if (!h.active.load()) continue;
    std::fprintf(stderr, "  %-20s last progress %.1f s ago, in %s\n",
                 hb_names[static_cast<std::size_t>(i)],
                 static_cast<double>(now - h.at_ns.load()) * 1e-9, h.doing.load());
  }
  std::printf("{\"summary\":true,\"result\":\"FAIL\",\"reason\":\"stuck\"}\n");
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  const options opt = parse(argc, argv);
  for (int i = 0; i < hb_count; ++i)
    g_beats[static_cast<std::size_t>(i)].name = hb_names[static_cast<std::size_t>(i)];
  const proc_sample at_start = read_proc();
  const auto heap_at_start = g_heap_bytes.load();
  std::fprintf(
      stderr,
      "soak: %d s, warm-up %d s, stuck after %d s; start rss %ld KiB, %ld fds, %ld threads\n",
      opt.seconds, opt.warmup, opt.stuck, at_start.rss_kib, at_start.fds, at_start.threads);

  std::vector<second> seconds;
  seconds.reserve(static_cast<std::size_t>(opt.seconds) + 8);
  std::array<std::uint64_t, op_count> ops_total{};
  std::array<std::uint64_t, pr_count> probe_samples{}, probe_timeouts{};
  std::array<double, pr_count> probe_max_us{};
  std::array<std::vector<std::int64_t>, pr_count> window;
  for (auto& w : window) w.reserve(4096);

  {
    auto budget = std::make_unique<bp::memory_budget>(budget_bytes);
    std::vector<std::thread> workers;
    workers.emplace_back(channel_workload);
    workers.emplace_back(misc_workload);
    workers.emplace_back([&] { budget_workload(*budget); });
    workers.emplace_back(rs_workload);
    workers.emplace_back([&] { probe_workload(*budget); });

    const auto t0 = steady::now();
    std::array<std::uint64_t, op_count> ops_prev{};
    for (int s = 1; s <= opt.seconds && !g_stop.load(); ++s) {
      const auto tick = t0 + std::chrono::seconds(s);
      while (steady::now() < tick && !g_stop.load()) std::this_thread::sleep_for(50ms);
      if (g_stop.load()) break;
      second row;
      row.t = std::chrono::duration<double>(steady::now() - t0).count();
      row.proc = read_proc();
      row.heap_kib = static_cast<double>(g_heap_bytes.load()) / 1024.0;
      for (int k = 0; k < op_count; ++k) {
        const auto now = g_ops[static_cast<std::size_t>(k)].load();
        row.ops[static_cast<std::size_t>(k)] = now - ops_prev[static_cast<std::size_t>(k)];
        ops_prev[static_cast<std::size_t>(k)] = now;
      }
      for (int k = 0; k < pr_count; ++k) {
        const auto ku = static_cast<std::size_t>(k);
        auto& w = window[ku];
        w.clear();
        {
          std::lock_guard lock(g_probe[ku].m);
          std::swap(w, g_probe[ku].ns);
          probe_timeouts[ku] += std::exchange(g_probe[ku].timeouts, 0);
        }
        probe_samples[ku] += w.size();
        row.p99_us[ku] = percentile(w, 0.99) / 1000.0;
        if (!w.empty())
          probe_max_us[ku] =
              std::max(probe_max_us[ku],
                       static_cast<double>(*std::max_element(w.begin(), w.end())) / 1000.0);
      }
      if (!opt.quiet || s % 10 == 0) print_second(row);
      seconds.push_back(row);
      // The watchdog: every blocking call has a timeout, so silence means a hang.
      const auto now = now_ns();
      for (int i = 0; i < hb_count; ++i) {
        const auto& h = g_beats[static_cast<std::size_t>(i)];
        if (h.active.load() && now - h.at_ns.load() > std::int64_t{opt.stuck} * 1'000'000'000)
          stuck_exit(str(hb_names[static_cast<std::size_t>(i)], " made no progress for ", opt.stuck,
                         " s (in ", h.doing.load(), ")"));
      }
    }
    ops_total = ops_prev;
    g_stop.store(true);
    // Joining has its own watchdog: a worker that cannot finish is a hang too.
    std::atomic<bool> joined{false};
    std::thread shutdown_dog([&] {
      const auto end = steady::now() + std::chrono::seconds(opt.stuck);
      while (!joined.load() && steady::now() < end) std::this_thread::sleep_for(10ms);
      if (!joined.load()) stuck_exit("workers did not stop within the stuck limit");
    });
    for (auto& t : workers) t.join();
    joined.store(true);
    shutdown_dog.join();
    const auto bs = budget->stats();
    SOAK_EXPECT(bs.in_use == 0 && bs.streams == 0,
                str("budget at the end: ", bs.in_use, " bytes in use, ", bs.streams, " streams"));
  }

  // --- after the run: everything joined and destroyed ------------------------------------------
  // Detached pump threads of from_channel end within milliseconds of their stream's end.
  proc_sample at_end = read_proc();
  for (int i = 0; i < 200 && at_end.threads > at_start.threads; ++i) {
    std::this_thread::sleep_for(10ms);
    at_end = read_proc();
  }
  SOAK_EXPECT(
      at_end.threads == at_start.threads,
      str(at_end.threads, " threads after joining everything, ", at_start.threads, " at start"));
  SOAK_EXPECT(at_end.fds == at_start.fds,
              str(at_end.fds, " descriptors open at the end, ", at_start.fds, " at start"));

  const auto n = seconds.size();
  const auto warm = std::min<std::size_t>(static_cast<std::size_t>(opt.warmup), n);
  const bool long_enough = n >= warm + 10;
  double rss_warm = 0, rss_end = 0, heap_warm = 0, heap_end = 0, rss_trend = 0, heap_trend = 0;
  long fds_warm = 0, fds_late = 0, thr_warm = 0, thr_late = 0;
  std::array<std::array<double, 3>, pr_count> thirds{};
  if (long_enough) {
    // Levels: the warm-up's highest against the end's (median of the last 5 seconds for RSS,
    // highest of the last 10 for the live heap, whose level swings with the work in flight).
    for (std::size_t i = 0; i < warm; ++i) {
      rss_warm = std::max(rss_warm, static_cast<double>(seconds[i].proc.rss_kib));
      heap_warm = std::max(heap_warm, seconds[i].heap_kib);
      fds_warm = std::max(fds_warm, seconds[i].proc.fds);
      thr_warm = std::max(thr_warm, seconds[i].proc.threads);
    }
    std::vector<double> last5;
    for (std::size_t i = n - 5; i < n; ++i)
      last5.push_back(static_cast<double>(seconds[i].proc.rss_kib));
    rss_end = median(last5);
    for (std::size_t i = n - 10; i < n; ++i) heap_end = std::max(heap_end, seconds[i].heap_kib);
    for (std::size_t i = warm; i < n; ++i) {
      fds_late = std::max(fds_late, seconds[i].proc.fds);
      thr_late = std::max(thr_late, seconds[i].proc.threads);
    }
    // Trends over the second half, as growth over that half (KiB).
    std::vector<double> rss_half, heap_half;
    for (std::size_t i = n / 2; i < n; ++i) {
      rss_half.push_back(static_cast<double>(seconds[i].proc.rss_kib));
      heap_half.push_back(seconds[i].heap_kib);
    }
    rss_trend = slope(rss_half) * static_cast<double>(rss_half.size());
    heap_trend = slope(heap_half) * static_cast<double>(heap_half.size());

    const double rss_slack = std::max(opt.rss_slack_mib * 1024, 0.10 * rss_warm);
    SOAK_EXPECT(rss_end <= rss_warm + rss_slack,
                str("RSS grew from ", rss_warm, " KiB (warm-up) to ", rss_end, " KiB"));
    SOAK_EXPECT(rss_trend <= opt.trend_mib * 1024,
                str("RSS rises steadily: +", rss_trend, " KiB over the second half"));
    const double heap_slack = std::max(opt.heap_slack_mib * 1024, 0.10 * heap_warm);
    SOAK_EXPECT(heap_end <= heap_warm + heap_slack,
                str("live heap grew from ", heap_warm, " KiB (warm-up) to ", heap_end, " KiB"));
    SOAK_EXPECT(heap_trend <= opt.heap_trend_mib * 1024,
                str("live heap rises steadily: +", heap_trend, " KiB over the second half"));
    SOAK_EXPECT(fds_late <= fds_warm,
                str("descriptors rose from ", fds_warm, " (warm-up) to ", fds_late));
    SOAK_EXPECT(thr_late <= thr_warm + 2,
                str("threads rose from ", thr_warm, " (warm-up) to ", thr_late));
    // Latency: medians of each third of the time after warm-up. A p99 that keeps growing
    // (each third above the one before, the last 1.5x the first and 300 us more) fails
    // unless the machine's own noise (`sched`) grew as much.
    const auto m = n - warm;
    for (int k = 0; k < pr_count; ++k) {
      for (int third = 0; third < 3; ++third) {
        std::vector<double> part;
        for (std::size_t i = warm + m * static_cast<std::size_t>(third) / 3;
             i < warm + m * static_cast<std::size_t>(third + 1) / 3; ++i)
          part.push_back(seconds[i].p99_us[static_cast<std::size_t>(k)]);
        thirds[static_cast<std::size_t>(k)][static_cast<std::size_t>(third)] = median(part);
      }
    }
    const auto& sched = thirds[pr_sched];
    const double noise_growth = std::max(1.0, sched[2] / std::max(sched[0], 1.0));
    for (int k = 0; k < pr_sched; ++k) {
      const auto& th = thirds[static_cast<std::size_t>(k)];
      const double a = std::max(th[0], 1.0);
      // A linear creep from the start gives a last/first ratio below 2.3 here (less with the
      // scheduling noise added to it): 1.5x, guarded by the 300 us floor, monotony and `sched`.
      const bool growing = th[1] > 1.25 * a && th[2] > th[1] && th[2] > 1.5 * noise_growth * a &&
                           th[2] - th[0] > 300.0;
      if (growing && !opt.latency_trend) {
        std::fprintf(stderr, "soak: p99 of %s grew %.0f -> %.0f -> %.0f us (not judged)\n",
                     probe_names[static_cast<std::size_t>(k)], th[0], th[1], th[2]);
        continue;
      }
      SOAK_EXPECT(!growing, str("p99 of ", probe_names[static_cast<std::size_t>(k)],
                                " keeps growing: ", th[0], " -> ", th[1], " -> ", th[2],
                                " us (sched noise x", noise_growth, ")"));
    }
  } else {
    fail(str("run too short to judge trends: ", n, " samples, warm-up ", warm));
  }

  // --- summary ----------------------------------------------------------------------------------
  const bool ok = !g_failed.load();
  std::printf("\n=== soak summary: %s (%zu s, warm-up %zu s)\n", ok ? "PASS" : "FAIL", n, warm);
  std::printf("%-22s %12s %12s %12s\n", "", "start", "warm-up", "end");
  std::printf("%-22s %12ld %12.0f %12.0f   (second-half trend %+.0f KiB)\n", "RSS KiB",
              at_start.rss_kib, rss_warm, rss_end, rss_trend);
  std::printf("%-22s %12.0f %12.0f %12.0f   (second-half trend %+.0f KiB)\n", "live heap KiB",
              static_cast<double>(heap_at_start) / 1024.0, heap_warm, heap_end, heap_trend);
  std::printf("%-22s %12ld %12ld %12ld   (after join: %ld)\n", "descriptors", at_start.fds,
              fds_warm, fds_late, at_end.fds);
  std::printf("%-22s %12ld %12ld %12ld   (after join: %ld)\n", "threads (max)", at_start.threads,
              thr_warm, thr_late, at_end.threads);
  std::printf("\n%-10s %10s %9s %12s %12s %12s %12s\n", "probe", "samples", "timeouts",
              "p99 1/3 us", "p99 2/3 us", "p99 3/3 us", "max us");
  for (int k = 0; k < pr_count; ++k) {
    const auto ku = static_cast<std::size_t>(k);
    std::printf("%-10s %10llu %9llu %12.1f %12.1f %12.1f %12.1f\n", probe_names[ku],
                static_cast<unsigned long long>(probe_samples[ku]),
                static_cast<unsigned long long>(probe_timeouts[ku]), thirds[ku][0], thirds[ku][1],
                thirds[ku][2], probe_max_us[ku]);
  }
  std::printf("\n%-10s %14s\n", "primitive", "operations");
  for (int k = 0; k < op_count; ++k)
    std::printf("%-10s %14llu\n", op_names[static_cast<std::size_t>(k)],
                static_cast<unsigned long long>(ops_total[static_cast<std::size_t>(k)]));
  std::printf("\n%-10s %14s\n", "workload", "cycles");
  for (int k = 0; k < wl_count; ++k)
    std::printf("%-10s %14llu\n", wl_names[static_cast<std::size_t>(k)],
                static_cast<unsigned long long>(g_cycles[static_cast<std::size_t>(k)].load()));
  {
    std::lock_guard lock(g_fail_m);
    for (const auto& f : g_failures) std::printf("failure: %s\n", f.c_str());
  }
  std::string json =
      str("{\"summary\":true,\"result\":\"", ok ? "PASS" : "FAIL", "\",\"seconds\":", n,
          ",\"warmup\":", warm, ",\"rss_kib\":{\"start\":", at_start.rss_kib,
          ",\"warm\":", rss_warm, ",\"end\":", rss_end, ",\"trend\":", static_cast<long>(rss_trend),
          "},\"heap_kib\":{\"warm\":", static_cast<long>(heap_warm),
          ",\"end\":", static_cast<long>(heap_end), ",\"trend\":", static_cast<long>(heap_trend),
          "},\"fds\":{\"start\":", at_start.fds, ",\"late\":", fds_late, ",\"end\":", at_end.fds,
          "},\"threads\":{\"warm\":", thr_warm, ",\"late\":", thr_late, ",\"end\":", at_end.threads,
          "},\"ops\":{");
  for (int k = 0; k < op_count; ++k)
    json += str(k ? "," : "", "\"", op_names[static_cast<std::size_t>(k)],
                "\":", ops_total[static_cast<std::size_t>(k)]);
  json += "},\"p99_us_last_third\":{";
  for (int k = 0; k < pr_count; ++k)
    json += str(k ? "," : "", "\"", probe_names[static_cast<std::size_t>(k)],
                "\":", static_cast<long>(thirds[static_cast<std::size_t>(k)][2]));
  json += "}}";
  std::printf("%s\n", json.c_str());
  return ok ? 0 : 1;
}

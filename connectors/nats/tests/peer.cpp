// bp_nats_peer: a producer or consumer process for the cross-process tests and the bench.
//
//   bp_nats_peer produce url=... stream=S subject=s capacity=10 policy=block count=100
//                [window=0] [send_asap=0] [close=1] [timeout_ms=0] [size=0]
//                [storage=file|memory]
//     sends "0", "1", ... (padded to `size` bytes) and prints one line per answer that is not
//     ok ("full 7"), then "summary ok=.. full=.. dropped=.. timeout=.. closed=.. seconds=.."
//   bp_nats_peer consume url=... stream=S subject=s capacity=10 policy=block [count=N]
//                [delay_ms=0] [ack=1] [ack_wait_ms=30000] [batch=32] [idle_ms=10000] [quiet=0]
//     receives until the end of stream, `count` values, or `idle_ms` without a message;
//     prints "v <value> <delivered>" per value, then "summary received=.. evicted=.. ...
//     seconds=.." (seconds from the first message to the last).
//     With ack=0 it never acknowledges and, after `count` values, prints "holding" and waits
//     to be killed (the crash test).
//   bp_nats_peer rate url=... key=K rate=1000 burst=100 start_ns=S end_ns=E [verb=acquire_for|try]
//     takes tokens of the fleet-wide bp::nats::token_bucket `K` from steady-clock time S to E
//     (CLOCK_MONOTONIC nanoseconds, shared by the processes of one machine): acquire_for(1, time
//     left) or try_acquire in a loop; prints "g <count>" per grant, then "summary granted=..
//     conflicts=.. round_trips=.. unreachable=.. offset_ns=.. uncertainty_ns=.. late_ms=.."
//     (late_ms: how long after S it was ready, 0 if in time).
//     With range=1 it is the plain loop `for (std::string v : rx)` instead (receives and
//     acknowledges until the end of stream; count, delay_ms, ack and idle_ms do not apply).
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <thread>

#include <bp/nats/receiver.hpp>
#include <bp/nats/sender.hpp>
#include <bp/nats/token_bucket.hpp>

namespace {

using namespace std::chrono;

std::map<std::string, std::string> parse(int argc, char** argv) {
  std::map<std::string, std::string> kv;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("argument without '=': " + a);
    kv[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return kv;
}

long num(const std::map<std::string, std::string>& kv, const std::string& k, long def) {
  const auto it = kv.find(k);
  return it == kv.end() ? def : std::stol(it->second);
}

std::string str(const std::map<std::string, std::string>& kv, const std::string& k,
                const std::string& def) {
  const auto it = kv.find(k);
  return it == kv.end() ? def : it->second;
}

bp::overflow policy_of(const std::string& p) {
  if (p == "block") return bp::overflow::block;
  if (p == "drop_newest") return bp::overflow::drop_newest;
  if (p == "drop_oldest") return bp::overflow::drop_oldest;
  if (p == "reject") return bp::overflow::reject;
  throw std::invalid_argument("unknown policy " + p);
}

bp::nats::options options_of(const std::map<std::string, std::string>& kv) {
  bp::nats::options o;
  o.servers = {str(kv, "url", "nats://127.0.0.1:4222")};
  o.stream = str(kv, "stream", "BP");
  o.subject = str(kv, "subject", "bp.test");
  o.capacity = static_cast<std::size_t>(num(kv, "capacity", 10));
  o.policy = policy_of(str(kv, "policy", "block"));
  o.store =
      str(kv, "storage", "file") == "memory" ? bp::nats::storage::memory : bp::nats::storage::file;
  o.max_in_flight = static_cast<std::size_t>(num(kv, "window", 0));
  o.ack_wait = milliseconds(num(kv, "ack_wait_ms", 30000));
  o.fetch_batch = static_cast<int>(num(kv, "batch", o.fetch_batch));
  o.max_ack_pending = std::max<long>(num(kv, "max_ack_pending", 1024), o.fetch_batch);
  o.fetch_wait = milliseconds(num(kv, "fetch_wait_ms", 1000));
  o.send_asap = num(kv, "send_asap", o.send_asap ? 1 : 0) != 0;
  return o;
}

int produce(const std::map<std::string, std::string>& kv) {
  bp::nats::sender<std::string> tx(options_of(kv));
  const long count = num(kv, "count", 100);
  const long timeout_ms = num(kv, "timeout_ms", 0);
  const std::size_t size = static_cast<std::size_t>(num(kv, "size", 0));
  std::map<bp::status, long> answers;
  // One buffer for every value: the producer loop allocates nothing per message, as the raw
  // nats.c loop of bench_nats, so the bench compares the connector and not this loop.
  std::string v;
  v.reserve(std::max<std::size_t>(size, 32));
  const auto t0 = steady_clock::now();
  for (long i = 0; i < count; ++i) {
    char digits[24];
    v.assign(digits, std::to_chars(digits, digits + sizeof digits, i).ptr);
    if (v.size() < size) v.resize(size, '.');
    const bp::status st = timeout_ms > 0 ? tx.send_for(v, milliseconds(timeout_ms)) : tx.send(v);
    ++answers[st];
    if (st != bp::status::ok) std::printf("%s %ld\n", std::string(to_string(st)).c_str(), i);
  }
  if (tx.flush_for(seconds(30)) != bp::status::ok) std::printf("flush timeout\n");
  const double secs = duration<double>(steady_clock::now() - t0).count();
  if (num(kv, "close", 0) != 0) (void)tx.close();
  std::printf(
      "summary ok=%ld full=%ld dropped=%ld timeout=%ld closed=%ld waits=%llu seconds=%.6f\n",
      answers[bp::status::ok], answers[bp::status::full], answers[bp::status::dropped],
      answers[bp::status::timeout], answers[bp::status::closed],
      static_cast<unsigned long long>(tx.stats().send_waits), secs);
  std::fflush(stdout);
  return 0;
}

int consume(const std::map<std::string, std::string>& kv) {
  bp::nats::receiver<std::string> rx(options_of(kv));
  const long count = num(kv, "count", -1);
  const long delay_ms = num(kv, "delay_ms", 0);
  const bool ack = num(kv, "ack", 1) != 0;
  const bool quiet = num(kv, "quiet", 0) != 0;
  const milliseconds idle(num(kv, "idle_ms", 10000));
  long n = 0;
  auto t0 = steady_clock::now();  // restarts at the first message
  std::printf("ready\n");
  std::fflush(stdout);
  if (num(kv, "range", 0) != 0) {
    for (std::string v : rx) {
      if (n++ == 0) t0 = steady_clock::now();
      if (!quiet) std::printf("v %s\n", v.c_str());
      std::fflush(stdout);
    }
    std::printf("summary received=%llu redelivered=%llu closed=%d seconds=%.6f\n",
                static_cast<unsigned long long>(rx.stats().received),
                static_cast<unsigned long long>(rx.redelivered()), rx.is_closed() ? 1 : 0,
                duration<double>(steady_clock::now() - t0).count());
    std::fflush(stdout);
    return 0;
  }
  while (count < 0 || n < count) {
    auto d = rx.recv_message_for(idle);
    if (!d) break;
    if (n == 0) t0 = steady_clock::now();
    if (delay_ms > 0) std::this_thread::sleep_for(milliseconds(delay_ms));
    if (!quiet)
      std::printf("v %s %llu\n", d->value.c_str(),
                  static_cast<unsigned long long>(d->info().delivered));
    if (ack) d->ack();
    ++n;
  }
  const double secs = duration<double>(steady_clock::now() - t0).count();
  if (!ack) {
    std::printf("holding %ld\n", n);
    std::fflush(stdout);
    std::this_thread::sleep_for(minutes(10));  // until killed
  }
  const auto s = rx.stats();
  std::printf("summary received=%llu evicted=%llu redelivered=%llu closed=%d seconds=%.6f\n",
              static_cast<unsigned long long>(s.received),
              static_cast<unsigned long long>(s.evicted),
              static_cast<unsigned long long>(rx.redelivered()), rx.is_closed() ? 1 : 0, secs);
  std::fflush(stdout);
  return 0;
}

steady_clock::time_point at_ns(long long ns) {
  return steady_clock::time_point(duration_cast<steady_clock::duration>(nanoseconds(ns)));
}

int rate(const std::map<std::string, std::string>& kv) {
  bp::nats::token_bucket_options o;
  o.servers = {str(kv, "url", "nats://127.0.0.1:4222")};
  o.key = str(kv, "key", "fleet");
  o.rate_per_second = std::stod(str(kv, "rate", "1000"));
  o.burst = static_cast<std::size_t>(num(kv, "burst", 100));
  bp::nats::token_bucket tb(o);
  const auto start = at_ns(std::stoll(str(kv, "start_ns", "0")));
  const auto end = at_ns(std::stoll(str(kv, "end_ns", "0")));
  const bool try_verb = str(kv, "verb", "acquire_for") == "try";
  const bool quiet = num(kv, "quiet", 0) != 0;
  // Ready after the start: the tokens of the time missed beyond the burst are lost to this
  // process (reported, so that a caller can tell a slow start from a slow limiter).
  const long long late_ms = duration_cast<milliseconds>(steady_clock::now() - start).count();
  std::printf("ready\n");
  std::fflush(stdout);
  std::this_thread::sleep_until(start);
  long granted = 0;
  while (steady_clock::now() < end) {
    bool ok;
    if (try_verb) {
      ok = tb.try_acquire();
    } else {
      ok = tb.acquire_for(1, end - steady_clock::now());
      if (!ok) break;  // the next token comes after the end
    }
    if (ok && steady_clock::now() <= end + milliseconds(1)) {
      ++granted;
      if (!quiet) {
        std::printf("g %ld\n", granted);
        std::fflush(stdout);
      }
    }
  }
  const auto s = tb.stats();
  std::printf(
      "summary granted=%ld conflicts=%llu round_trips=%llu unreachable=%llu offset_ns=%lld "
      "uncertainty_ns=%lld late_ms=%lld\n",
      granted, static_cast<unsigned long long>(s.conflicts),
      static_cast<unsigned long long>(s.round_trips),
      static_cast<unsigned long long>(s.unreachable),
      static_cast<long long>(tb.clock_offset().count()),
      static_cast<long long>(tb.clock_uncertainty().count()), late_ms > 0 ? late_ms : 0);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s produce|consume|rate key=value...\n", argv[0]);
    return 2;
  }
  try {
    const auto kv = parse(argc, argv);
    const std::string mode = argv[1];
    if (mode == "produce") return produce(kv);
    if (mode == "consume") return consume(kv);
    if (mode == "rate") return rate(kv);
    std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
    return 2;
  } catch (const std::exception& e) {
    std::printf("error %s\n", e.what());
    std::fflush(stdout);
    return 1;
  }
}

// bench_nats: cross-process throughput of bp::nats beside raw nats.c, in the same run, against
// a nats-server it starts on loopback (and stops by PID at the end).
//
//   bench_nats [count=20000] [size=128] [storage=file|memory] [peer=PATH] [rows=REGEX]
//
// Every figure is messages per second over `count` messages of `size` bytes, each side in its
// own process (bp_nats_peer for bp::nats, this program re-executed for raw nats.c):
//   publish   a producer alone, stream large enough (no backpressure): the cost of a publish,
//             synchronous (wait for each ack) and with producer windows of 16 and 256
//   block     producer and consumer at once, stream capacity 100, policy block: the producer
//             waits (retries on 10077) whenever the consumer falls behind
//   pull      a consumer alone draining `count` preloaded messages with fetch batches 1/32/256,
//             acknowledging each message
// "buffered" rows leave nats.c's default (publishes and pull requests flushed by its background
// thread); "send_asap" rows send each at once (bp::nats's default).
// "raw with ..." rows give raw nats.c part of what bp::nats does per message, to isolate its
// cost: msg ids (a Nats-Msg-Id header, deduplicated by the server), MaxWait (nats.c tracks a
// deadline per asynchronous publish), bp's safety (both, and an acknowledgement handler).
// Prints a Markdown table (docs/distributed.md keeps one).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nats/nats.h>

#include <bp/nats/sender.hpp>

#include "nats_server.hpp"
#include "process.hpp"

namespace {

using namespace std::chrono;
using kv_t = std::map<std::string, std::string>;

kv_t parse(int argc, char** argv, int from) {
  kv_t kv;
  for (int i = from; i < argc; ++i) {
    std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq != std::string::npos) kv[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return kv;
}
long num(const kv_t& kv, const std::string& k, long def) {
  const auto it = kv.find(k);
  return it == kv.end() ? def : std::stol(it->second);
}
std::string str(const kv_t& kv, const std::string& k, const std::string& def = "") {
  const auto it = kv.find(k);
  return it == kv.end() ? def : it->second;
}

void die(const char* what, natsStatus s) {
  std::printf("error %s: %s\n", what, natsStatus_GetText(s));
  std::fflush(stdout);
  std::exit(1);
}

// --- raw nats.c peers ---------------------------------------------------------------------------

natsConnection* raw_connect(const kv_t& kv) {
  natsOptions* o = nullptr;
  natsOptions_Create(&o);
  natsOptions_SetURL(o, str(kv, "url").c_str());
  if (num(kv, "send_asap", 0) != 0) natsOptions_SetSendAsap(o, true);
  natsConnection* nc = nullptr;
  natsStatus s = natsConnection_Connect(&nc, o);
  natsOptions_Destroy(o);
  if (s != NATS_OK) die("connect", s);
  return nc;
}

// ackhandler=1: what a producer needs to learn that an asynchronous publish was refused or
// timed out (bp::nats retries those): every acknowledgement is parsed and handed to a handler,
// which counts it under a lock, as bp::nats's window does.
struct ack_counter {
  std::mutex mu;
  long ok = 0, failed = 0;
};
void on_raw_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr*, void* closure) {
  auto* c = static_cast<ack_counter*>(closure);
  {
    std::lock_guard lock(c->mu);
    ++(pa != nullptr ? c->ok : c->failed);
  }
  natsMsg_Destroy(msg);
}

int raw_produce(const kv_t& kv) {
  const long count = num(kv, "count", 1000);
  const long window = num(kv, "window", 0);
  std::string payload(static_cast<std::size_t>(num(kv, "size", 128)), 'x');
  const std::string subject = str(kv, "subject");
  natsConnection* nc = raw_connect(kv);
  jsOptions jo;
  jsOptions_Init(&jo);
  if (window > 0) jo.PublishAsync.MaxPending = window;
  ack_counter acks;
  if (num(kv, "ackhandler", 0) != 0) {
    jo.PublishAsync.AckHandler = &on_raw_ack;
    jo.PublishAsync.AckHandlerClosure = &acks;
  }
  jsCtx* js = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js, nc, &jo); s != NATS_OK) die("jetstream", s);
  long waits = 0;
  const bool msgid = num(kv, "msgid", 0) != 0;  // a Nats-Msg-Id per message, as bp::nats sends
  jsPubOptions po;
  jsPubOptions_Init(&po);
  // maxwait=ms (asynchronous publishes): nats.c times out an acknowledgement that does not
  // come (bp::nats sets request_timeout, so that a lost answer is retried, not waited forever).
  po.MaxWait = num(kv, "maxwait", 0);
  const bool with_options = msgid || po.MaxWait > 0;
  std::string id;
  const auto t0 = steady_clock::now();
  for (long i = 0; i < count; ++i) {
    if (msgid) {
      id = "bench-" + std::to_string(i);
      po.MsgId = id.c_str();
    }
    if (window > 0) {
      natsStatus s =
          js_PublishAsync(js, subject.c_str(), payload.data(), static_cast<int>(payload.size()),
                          with_options ? &po : nullptr);
      if (s != NATS_OK) die("publish async", s);
      continue;
    }
    // The block strategy by hand: retry on 10077 with the same backoff bp::nats uses.
    milliseconds delay(1);
    for (;;) {
      jsErrCode jerr = static_cast<jsErrCode>(0);
      natsStatus s =
          js_Publish(nullptr, js, subject.c_str(), payload.data(), static_cast<int>(payload.size()),
                     with_options ? &po : nullptr, &jerr);
      if (s == NATS_OK) break;
      if (jerr != 10077) die("publish", s);
      ++waits;
      std::this_thread::sleep_for(delay);
      delay = std::min(delay * 2, milliseconds(50));
    }
  }
  if (window > 0) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = 60000;
    if (natsStatus s = js_PublishAsyncComplete(js, &po); s != NATS_OK) die("complete", s);
  }
  const double secs = duration<double>(steady_clock::now() - t0).count();
  if (acks.failed > 0) die("acknowledgements", NATS_ERR);
  std::printf("summary ok=%ld waits=%ld seconds=%.6f\n", count, waits, secs);
  std::fflush(stdout);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return 0;
}

int raw_consume(const kv_t& kv) {
  const long count = num(kv, "count", 1000);
  const int batch = static_cast<int>(num(kv, "batch", 1));
  natsConnection* nc = raw_connect(kv);
  jsCtx* js = nullptr;
  if (natsStatus s = natsConnection_JetStream(&js, nc, nullptr); s != NATS_OK) die("jetstream", s);
  const std::string stream = str(kv, "stream"), durable = stream + "_bp";
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream.c_str();
  so.Consumer = durable.c_str();
  natsSubscription* sub = nullptr;
  if (natsStatus s = js_PullSubscribe(&sub, js, str(kv, "subject").c_str(), durable.c_str(),
                                      nullptr, &so, nullptr);
      s != NATS_OK)
    die("pull subscribe", s);
  std::printf("ready\n");
  std::fflush(stdout);
  long n = 0;
  auto t0 = steady_clock::now();
  auto idle_since = steady_clock::now();
  while (n < count) {
    natsMsgList list{nullptr, 0};
    natsStatus s = natsSubscription_Fetch(&list, sub, batch, 1000, nullptr);
    if (s == NATS_TIMEOUT) {
      if (steady_clock::now() - idle_since > seconds(20)) break;
      continue;
    }
    if (s != NATS_OK) die("fetch", s);
    idle_since = steady_clock::now();
    for (int i = 0; i < list.Count; ++i) {
      if (n == 0) t0 = steady_clock::now();
      natsMsg_Ack(list.Msgs[i], nullptr);
      ++n;
    }
    natsMsgList_Destroy(&list);
  }
  const double secs = duration<double>(steady_clock::now() - t0).count();
  std::printf("summary received=%ld seconds=%.6f\n", n, secs);
  std::fflush(stdout);
  natsSubscription_Destroy(sub);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  return 0;
}

// --- the driver ---------------------------------------------------------------------------------

std::map<std::string, double> summary(const std::string& out) {
  std::map<std::string, double> m;
  const auto pos = out.rfind("summary ");
  if (pos == std::string::npos) return m;
  std::istringstream in(out.substr(pos + 8, out.find('\n', pos) - pos - 8));
  std::string kv;
  while (in >> kv) {
    const auto eq = kv.find('=');
    if (eq != std::string::npos) m[kv.substr(0, eq)] = std::stod(kv.substr(eq + 1));
  }
  return m;
}

struct driver {
  std::string self, peer, url, storage;
  long count, size;
  int streams = 0;

  // A fresh stream (and its durable) for one measurement.
  std::vector<std::string> make_stream(std::size_t capacity) {
    const std::string name = "BENCH" + std::to_string(++streams);
    bp::nats::options o;
    o.servers = {url};
    o.stream = name;
    o.subject = "bench." + name;
    o.capacity = capacity;
    o.max_ack_pending = 4096;
    o.store = storage == "memory" ? bp::nats::storage::memory : bp::nats::storage::file;
    bp::nats::sender<std::string> create(o);
    return {"url=" + url,
            "stream=" + name,
            "subject=bench." + name,
            "capacity=" + std::to_string(capacity),
            "storage=" + storage,
            "max_ack_pending=4096"};
  }

  std::vector<std::string> cmd(bool raw, const std::string& mode,
                               const std::vector<std::string>& stream,
                               std::vector<std::string> extra) {
    std::vector<std::string> a{raw ? self : peer, (raw ? "raw-" : "") + mode};
    a.insert(a.end(), stream.begin(), stream.end());
    a.push_back("count=" + std::to_string(count));
    a.push_back("size=" + std::to_string(size));
    if (mode == "consume") a.push_back("quiet=1");
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  static std::map<std::string, double> finish(bp::test::child& c, const char* what) {
    const auto rc = c.wait_for(seconds(300));
    auto s = summary(c.output());
    if (rc != 0 || s.empty()) {
      std::fprintf(stderr, "%s failed (%d): %s\n", what, rc ? *rc : -999, c.output().c_str());
      return {};
    }
    return s;
  }

  double rate(const std::map<std::string, double>& s) const {
    const auto it = s.find("seconds");
    return it == s.end() || it->second <= 0 ? 0 : count / it->second;
  }

  double publish(bool raw, std::vector<std::string> extra) {
    const auto stream = make_stream(static_cast<std::size_t>(count) + 10);
    bp::test::child p(cmd(raw, "produce", stream, std::move(extra)));
    return rate(finish(p, "producer"));
  }

  // Producer and consumer at once on a small block stream: end-to-end rate.
  std::pair<double, double> block(bool raw, std::vector<std::string> producer_extra) {
    const auto stream = make_stream(100);
    bp::test::child c(cmd(raw, "consume", stream, {"batch=32", "send_asap=1"}));
    c.wait_for_output("ready", seconds(30));
    bp::test::child p(cmd(raw, "produce", stream, std::move(producer_extra)));
    const auto ps = finish(p, "producer");
    const auto cs = finish(c, "consumer");
    const auto w = ps.find("waits");
    return {std::min(rate(ps), rate(cs)), w == ps.end() ? 0 : w->second};
  }

  double pull(bool raw, int batch, bool asap) {
    const auto stream = make_stream(static_cast<std::size_t>(count) + 10);
    bp::test::child p(cmd(false, "produce", stream, {"window=256"}));
    finish(p, "preload");
    bp::test::child c(
        cmd(raw, "consume", stream,
            {"batch=" + std::to_string(batch), asap ? "send_asap=1" : "send_asap=0"}));
    return rate(finish(c, "consumer"));
  }
};

void row(const std::string& what, double bp_rate, double raw_rate, const std::string& note = "") {
  std::printf("| %-66s | %10.0f | %10.0f | %5.2f | %s\n", what.c_str(), bp_rate, raw_rate,
              raw_rate > 0 ? bp_rate / raw_rate : 0.0, note.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "raw-produce") return raw_produce(parse(argc, argv, 2));
  if (mode == "raw-consume") return raw_consume(parse(argc, argv, 2));
  const auto kv = parse(argc, argv, 1);
  bp::test::nats_server server;
  server.start();
  driver d;
  d.self = argv[0];
  d.peer = str(kv, "peer", BP_NATS_PEER_PATH);
  d.url = server.url();
  d.storage = str(kv, "storage", "file");
  d.count = num(kv, "count", 20000);
  d.size = num(kv, "size", 128);
  std::printf("bench_nats: %ld messages of %ld bytes, %s storage, nats-server on loopback\n\n",
              d.count, d.size, d.storage.c_str());
  std::printf("| %-66s | %10s | %10s | %5s | note\n", "scenario (msg/s)", "bp::nats", "raw nats.c",
              "ratio");
  std::printf("|%s|%s|%s|%s|---\n", std::string(68, '-').c_str(), std::string(12, '-').c_str(),
              std::string(12, '-').c_str(), std::string(7, '-').c_str());
  // rows=REGEX: only the rows whose name matches (the others are not measured).
  const std::regex only(str(kv, "rows", "."));
  const auto want = [&](const std::string& name) { return std::regex_search(name, only); };
  // One row: bp::nats in bp_nats_peer, then raw nats.c with `raw` extra arguments.
  const auto publish_row = [&](const std::string& name, const std::vector<std::string>& bp_args,
                               const std::vector<std::string>& raw_args) {
    if (want(name)) row(name, d.publish(false, bp_args), d.publish(true, raw_args));
  };
  publish_row("publish, synchronous (wait for each ack)", {}, {});
  publish_row("publish, synchronous, raw with msg ids", {}, {"msgid=1"});
  // "raw with bp's safety": message ids (exactly once on retry), MaxWait (a lost acknowledgement
  // times out instead of holding its slot) and an acknowledgement handler (a refused publish is
  // seen): what bp::nats's window does per message besides its own bookkeeping.
  const std::vector<std::string> safety{"msgid=1", "maxwait=5000", "ackhandler=1"};
  const auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  for (int w : {16, 256}) {
    const std::string ws = "window=" + std::to_string(w);
    const std::string name = "publish, window " + std::to_string(w);
    const std::vector<std::string> buffered{ws, "send_asap=0"}, asap{ws, "send_asap=1"};
    publish_row(name + ", buffered", buffered, buffered);
    publish_row(name + ", buffered, raw with bp's safety", buffered, with(buffered, safety));
    publish_row(name + ", send_asap", asap, asap);
    publish_row(name + ", send_asap, raw with msg ids", asap, with(asap, {"msgid=1"}));
    publish_row(name + ", send_asap, raw with msg ids + MaxWait", asap,
                with(asap, {"msgid=1", "maxwait=5000"}));
    publish_row(name + ", send_asap, raw with bp's safety", asap, with(asap, safety));
  }
  // nats.c 3.4 keeps each MaxWait deadline after its acknowledgement and, when it passes,
  // queues a timeout message that its handler then discards: a cost per publish that a run
  // shorter than MaxWait (5 s above) never sees. With 100 ms it falls inside the run.
  publish_row("publish, window 256, send_asap, raw with msg ids + MaxWait 100 ms",
              {"window=256", "send_asap=1"},
              {"window=256", "send_asap=1", "msgid=1", "maxwait=100"});
  if (want("block, cap 100, sync producer + pull 32")) {
    const auto b = d.block(false, {"send_asap=1"});
    const auto r = d.block(true, {"send_asap=1"});
    row("block, cap 100, sync producer + pull 32", b.first, r.first,
        "waits bp " + std::to_string(static_cast<long>(b.second)) + ", raw " +
            std::to_string(static_cast<long>(r.second)));
  }
  for (int w : {256, 64}) {
    const std::string name = "block, cap 100, window " + std::to_string(w) + " + pull 32 (bp only)";
    if (want(name))
      row(name, d.block(false, {"window=" + std::to_string(w), "send_asap=1"}).first, 0);
  }
  for (bool asap : {false, true})
    for (int batch : {1, 32, 256}) {
      const std::string name =
          "pull, batch " + std::to_string(batch) + (asap ? ", send_asap" : ", buffered");
      if (want(name)) row(name, d.pull(false, batch, asap), d.pull(true, batch, asap));
    }
  server.stop();
  return 0;
}

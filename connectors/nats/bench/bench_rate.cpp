// bench_rate: what a fleet-wide bp::nats::token_bucket costs beside a local bp::token_bucket,
// against a nats-server it starts on loopback (and stops by PID at the end).
//
//   bench_rate [seconds=3] [processes=1,2,4,8]
//
// Rows:
//   local       bp::token_bucket::try_acquire in one thread, a rate that never binds: the cost
//               of a grant without a server
//   contention  P processes (bp_nats_peer rate verb=try) calling try_acquire on one key as fast
//               as they can, a rate that never binds: grants per second of the whole fleet,
//               compare-and-set conflicts per grant, round trips per grant
//   accuracy    P processes calling acquire_for on one key limited to 1000/s (burst 100):
//               granted / (rate * seconds + burst), the fleet's accuracy under contention
// Prints a Markdown table (docs/distributed.md keeps one).
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <bp/rate.hpp>

#include "nats_server.hpp"
#include "process.hpp"

namespace {

using namespace std::chrono;
using kv_t = std::map<std::string, std::string>;

kv_t parse(int argc, char** argv) {
  kv_t kv;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq != std::string::npos) kv[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return kv;
}

double field(const std::string& out, const std::string& name) {
  const auto pos = out.rfind("summary ");
  if (pos == std::string::npos) return -1;
  const auto f = out.find(" " + name + "=", pos);
  if (f == std::string::npos) return -1;
  return std::stod(out.substr(f + name.size() + 2));
}

long long ns(steady_clock::time_point t) {
  return duration_cast<nanoseconds>(t.time_since_epoch()).count();
}

struct fleet_result {
  double granted = 0, conflicts = 0, round_trips = 0;
  bool ok = true;
  bool late = false;  // a peer was ready only after the start (a loaded machine): row invalid
};

fleet_result run_fleet(const std::string& peer, const std::string& url, const std::string& key,
                       int processes, double rate, long burst, const std::string& verb,
                       seconds run) {
  const auto start = steady_clock::now() + 4s, end = start + run;
  std::vector<std::unique_ptr<bp::test::child>> procs;
  std::ostringstream r;
  r << rate;
  for (int i = 0; i < processes; ++i)
    procs.push_back(std::make_unique<bp::test::child>(std::vector<std::string>{
        peer, "rate", "url=" + url, "key=" + key, "rate=" + r.str(),
        "burst=" + std::to_string(burst), "start_ns=" + std::to_string(ns(start)),
        "end_ns=" + std::to_string(ns(end)), "verb=" + verb, "quiet=1"}));
  fleet_result f;
  for (auto& p : procs) {
    if (p->wait_for(run + 60s) != 0) {
      std::printf("peer failed: %s\n", p->output().c_str());
      f.ok = false;
      continue;
    }
    f.granted += field(p->output(), "granted");
    f.conflicts += field(p->output(), "conflicts");
    f.round_trips += field(p->output(), "round_trips");
    if (field(p->output(), "late_ms") > 0) f.late = true;
  }
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  const auto kv = parse(argc, argv);
  const seconds run(kv.count("seconds") ? std::stol(kv.at("seconds")) : 3);
  std::vector<int> counts{1, 2, 4, 8};
  if (kv.count("processes")) {
    counts.clear();
    std::istringstream in(kv.at("processes"));
    std::string p;
    while (std::getline(in, p, ',')) counts.push_back(std::stoi(p));
  }
  const std::string peer = kv.count("peer") ? kv.at("peer") : BP_NATS_PEER_PATH;

  // Local bucket: one thread, a rate that never binds.
  double local_rate = 0;
  {
    bp::token_bucket tb(1e9, std::size_t{1} << 40);
    long n = 0;
    const auto t0 = steady_clock::now();
    while (steady_clock::now() - t0 < 1s)
      for (int i = 0; i < 1000; ++i) n += tb.try_acquire() ? 1 : 0;
    local_rate = n / duration<double>(steady_clock::now() - t0).count();
  }

  bp::test::nats_server server;
  server.start();
  std::printf("bench_rate: %lld s per row, nats-server on loopback, file storage\n\n",
              static_cast<long long>(run.count()));
  std::printf("| %-44s | %12s | %10s | %10s |\n", "scenario", "grants/s", "conflicts/g", "trips/g");
  std::printf("|%s|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(14, '-').c_str(),
              std::string(12, '-').c_str(), std::string(12, '-').c_str());
  std::printf("| %-44s | %12.0f | %10s | %10s |\n", "local bp::token_bucket, 1 thread", local_rate,
              "-", "-");
  for (int p : counts) {
    const auto f = run_fleet(peer, server.url(), "contention-" + std::to_string(p), p, 1e9,
                             std::int64_t{1} << 40, "try", run);
    const double secs = duration<double>(run).count();
    std::printf("| %-44s | %12.0f | %10.2f | %10.2f |%s\n",
                ("fleet, try_acquire, " + std::to_string(p) + " process(es)").c_str(),
                f.granted / secs, f.granted > 0 ? f.conflicts / f.granted : 0.0,
                f.granted > 0 ? f.round_trips / f.granted : 0.0,
                f.ok ? (f.late ? " (a peer started late)" : "") : " (a peer failed)");
    std::fflush(stdout);
  }
  std::printf("\n| %-44s | %12s | %10s |\n", "limit 1000/s, burst 100, acquire_for", "granted",
              "/ expected");
  std::printf("|%s|%s|%s|\n", std::string(46, '-').c_str(), std::string(14, '-').c_str(),
              std::string(12, '-').c_str());
  for (int p : counts) {
    const auto f = run_fleet(peer, server.url(), "accuracy-" + std::to_string(p), p, 1000, 100,
                             "acquire_for", run);
    const double expected = 1000 * duration<double>(run).count() + 100;
    std::printf("| %-44s | %12.0f | %10.4f |%s\n", (std::to_string(p) + " process(es)").c_str(),
                f.granted, f.granted / expected,
                f.ok ? (f.late ? " (a peer started late)" : "") : " (a peer failed)");
    std::fflush(stdout);
  }
  server.stop();
  return 0;
}

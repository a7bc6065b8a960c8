// bp-console: the interactive backpressure console, and its headless runs.
//
//   bp-console [serve] [--bind 127.0.0.1] [--port 8080]      the single-page UI and JSON API
//              [--request-timeout 10] [--idle-timeout 5] [--stall-timeout 10]
//              [--max-connections 1024] [--max-streams 256]
//   bp-console run --preset overload --strategy drop_oldest --seconds 10 --out DIR
//   bp-console compare --preset overload --seconds 10 --out DIR
//
// Ctrl-C (SIGINT) or SIGTERM stops the server, or ends a headless run early (what was recorded
// so far is still written).
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "engine.hpp"
#include "report.hpp"
#include "server.hpp"

namespace {

using namespace bp::console;

// Signals are taken by one thread with sigtimedwait, never by a handler: the thread can call
// anything (server.stop()) and ends when the program is done.
class signal_watch {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread and in every thread it creates later: main()
  // calls it first, so that no engine or server thread takes them with the default action.
  static void block_stop_signals(sigset_t& set) {
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  explicit signal_watch(std::function<void()> on_signal) {
    block_stop_signals(set_);
    thread_ = std::thread([this, f = std::move(on_signal)] {
      const timespec tick{0, 200'000'000};
      while (!done_) {
        if (sigtimedwait(&set_, nullptr, &tick) > 0) {
          fired_ = true;
          f();
        }
      }
    });
  }
  ~signal_watch() {
    done_ = true;
    thread_.join();
  }
  [[nodiscard]] bool fired() const noexcept { return fired_; }

 private:
  sigset_t set_{};
  std::atomic<bool> done_{false}, fired_{false};
  std::thread thread_;
};

struct scenario_flags {
  std::string preset = "overload";
  std::string strategy = "block";
  double producer_rate = 0, consumer_rate = 0;  // 0: the preset's
  long capacity = -1;                           // -1: the preset's
  int producers = 0, consumers = 0;             // 0: the preset's
  long payload_bytes = -1;
  double scale = 1;  // multiplies both rates (the presets' rates are a few per second, to watch)

  void add(CLI::App& app, bool with_strategy) {
    app.add_option("--preset", preset, "overload | balanced | burst")->capture_default_str();
    if (with_strategy)
      app.add_option("--strategy", strategy,
                     "block | drop_newest | drop_oldest | reject | unbounded | signal | throttle")
          ->capture_default_str();
    app.add_option("--producer-rate", producer_rate, "items/s (default: the preset's)");
    app.add_option("--consumer-rate", consumer_rate, "items/s (default: the preset's)");
    app.add_option("--capacity", capacity, "buffer slots (default: the preset's)");
    app.add_option("--producers", producers, "producer threads 1..8");
    app.add_option("--consumers", consumers, "consumer threads 1..8");
    app.add_option("--payload-bytes", payload_bytes, "bytes each item carries (default 16384)");
    app.add_option("--scale", scale, "multiply both rates (e.g. 1000: overload at 5000:1000/s)")
        ->capture_default_str();
  }

  // Settings for `strategy`, or the reason they are invalid.
  std::string build(strategy_kind k, settings& out) const {
    const bp::console::preset* p = find_preset(preset);
    if (!p) return "--preset: unknown preset '" + preset + "' (overload, balanced, burst)";
    settings s = p->values;
    s.strategy = k;
    if (producer_rate > 0) s.producer_rate = producer_rate;
    if (consumer_rate > 0) s.consumer_rate = consumer_rate;
    s.producer_rate *= scale;
    s.consumer_rate *= scale;
    if (capacity >= 0) s.capacity = static_cast<std::size_t>(capacity);
    if (producers) s.producers = producers;
    if (consumers) s.consumers = consumers;
    if (payload_bytes >= 0) s.payload_bytes = static_cast<std::size_t>(payload_bytes);
    if (auto why = validate(s); !why.empty()) return why;
    out = s;
    return {};
  }
};

// The progress bar: redrawn in place on a terminal, one line every 2 s otherwise.
progress_fn terminal_progress(const std::string& label, double seconds) {
  const bool tty = isatty(STDERR_FILENO);
  auto last = std::make_shared<double>(-10);
  return [=](double elapsed, const snapshot& s) {
    if (!tty && elapsed - *last < 2 && elapsed < seconds) return;
    *last = elapsed;
    std::fprintf(stderr, "%s%s%s", tty ? "\r\033[K" : "",
                 progress_line(label, elapsed, seconds, s).c_str(), tty ? "" : "\n");
    std::fflush(stderr);
  };
}

int serve(const server_options& opt) {
  // Whoever started us may have closed our stdout (a test reads the banner, then closes the
  // pipe): the final "stopped" line must not kill the process with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  engine eng;
  http_server server(eng, opt);
  try {
    server.bind();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bp-console: %s\n", e.what());
    return 1;
  }
  // Made after bind(), so that the listening socket happens-before the watcher's stop() (and a
  // Ctrl-C that came meanwhile waits, blocked, until the watcher takes it).
  signal_watch signals([&] { server.stop(); });
  const std::string host = opt.bind == "0.0.0.0" ? "127.0.0.1" : opt.bind;
  std::printf("bp-console: serving on http://%s:%d/  (Ctrl-C stops)\n", host.c_str(),
              server.port());
  std::fflush(stdout);
  server.run();
  eng.shutdown();
  std::printf("bp-console: stopped\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t stop_signals;
  signal_watch::block_stop_signals(stop_signals);
  CLI::App app{"bp-console: the interactive backpressure console (bp library)"};
  app.require_subcommand(0, 1);

  server_options serve_opt;
  double request_timeout_s = 10, idle_timeout_s = 5, stall_timeout_s = 10;
  auto* serve_cmd = app.add_subcommand("serve", "serve the console UI and API (the default)");
  for (CLI::App* a : {&app, serve_cmd}) {
    a->add_option("--bind", serve_opt.bind, "address to listen on (loopback by default)")
        ->capture_default_str();
    a->add_option("--port", serve_opt.port, "TCP port (0: any free port)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    a->add_option("--request-timeout", request_timeout_s,
                  "seconds a request (head and body) may take to arrive, from its first byte")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    a->add_option("--idle-timeout", idle_timeout_s, "seconds an idle keep-alive connection stays")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    a->add_option("--stall-timeout", stall_timeout_s,
                  "seconds a client may leave an answer or a stream unread before it is dropped")
        ->check(CLI::Range(0.1, 3600.0))
        ->capture_default_str();
    a->add_option("--max-connections", serve_opt.max_connections,
                  "open connections at most (beyond, the oldest idle one is closed)")
        ->check(CLI::Range(8, 1 << 20))
        ->capture_default_str();
    a->add_option("--max-streams", serve_opt.max_streams, "/api/stream clients at most")
        ->check(CLI::Range(1, 1 << 20))
        ->capture_default_str();
    a->add_option("--workers", serve_opt.workers,
                  "unused: one event-loop thread serves every connection (kept for old scripts)");
  }

  scenario_flags run_flags;
  double run_seconds = 10;
  std::string run_out = "out/run";
  auto* run_cmd = app.add_subcommand("run", "run one scenario headless; write JSON/CSV/HTML");
  run_flags.add(*run_cmd, true);
  run_cmd->add_option("--seconds", run_seconds, "duration")
      ->check(CLI::Range(0.5, 3600.0))
      ->capture_default_str();
  run_cmd->add_option("--out", run_out, "output directory")->capture_default_str();

  scenario_flags cmp_flags;
  double cmp_seconds = 10;
  std::string cmp_out = "out/compare";
  std::vector<std::string> cmp_strategies;
  auto* cmp_cmd =
      app.add_subcommand("compare", "run every strategy on one scenario; side-by-side report");
  cmp_flags.add(*cmp_cmd, false);
  cmp_cmd->add_option("--seconds", cmp_seconds, "duration of each run")
      ->check(CLI::Range(0.5, 600.0))
      ->capture_default_str();
  cmp_cmd->add_option("--out", cmp_out, "output directory")->capture_default_str();
  cmp_cmd->add_option("--strategies", cmp_strategies, "subset to run (default: all)")
      ->delimiter(',');

  std::string render_in, render_out;
  auto* render_cmd =
      app.add_subcommand("render", "re-render the HTML report of a series.json or compare.json");
  render_cmd->add_option("--json", render_in, "series.json or compare.json")->required();
  render_cmd->add_option("--out", render_out, "HTML file to write")->required();

  CLI11_PARSE(app, argc, argv);

  if (*render_cmd) {
    try {
      std::ifstream in(render_in);
      if (!in) throw std::runtime_error("cannot read " + render_in);
      const std::string html = render_html(json::parse(in));
      std::ofstream out(render_out, std::ios::binary);
      out << html;
      if (!out) throw std::runtime_error("cannot write " + render_out);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bp-console: %s\n", e.what());
      return 1;
    }
    std::printf("bp-console: wrote %s\n", render_out.c_str());
    return 0;
  }

  if (*run_cmd || *cmp_cmd) {
    std::atomic<bool> interrupted{false};
    signal_watch signals([&] { interrupted = true; });
    std::vector<strategy_kind> kinds;
    if (*run_cmd) {
      auto k = strategy_from_string(run_flags.strategy);
      if (!k) {
        std::fprintf(stderr, "bp-console: --strategy: unknown strategy '%s'\n",
                     run_flags.strategy.c_str());
        return 2;
      }
      kinds.push_back(*k);
    } else if (cmp_strategies.empty()) {
      kinds.assign(std::begin(all_strategies), std::end(all_strategies));
    } else {
      for (const auto& n : cmp_strategies) {
        auto k = strategy_from_string(n);
        if (!k) {
          std::fprintf(stderr, "bp-console: --strategies: unknown strategy '%s'\n", n.c_str());
          return 2;
        }
        kinds.push_back(*k);
      }
    }
    const scenario_flags& flags = *run_cmd ? run_flags : cmp_flags;
    const double seconds = *run_cmd ? run_seconds : cmp_seconds;
    std::vector<run_result> results;
    for (strategy_kind k : kinds) {
      settings s;
      if (auto why = flags.build(k, s); !why.empty()) {
        if (!is_available(k) && *cmp_cmd) {  // listed as coming in the report
          run_result r;
          r.cfg.strategy = k;
          r.available = false;
          results.push_back(r);
          std::fprintf(stderr, "%-12s coming: not in this build yet\n",
                       std::string(to_string(k)).c_str());
          continue;
        }
        std::fprintf(stderr, "bp-console: %s\n", why.c_str());
        return 2;
      }
      char label[32];
      std::snprintf(label, sizeof label, "%-12s", std::string(to_string(k)).c_str());
      results.push_back(run_scenario(s, seconds, terminal_progress(label, seconds), interrupted));
      std::fprintf(stderr, "\n");
      if (interrupted) break;
    }
    try {
      if (*run_cmd) {
        write_run(run_out, results.front());
        std::printf("bp-console: wrote %s/{series.json,series.csv,events.txt,report.html}\n",
                    run_out.c_str());
      } else {
        write_compare(cmp_out, results);
        std::printf("bp-console: wrote %s/{compare.json,compare.csv,compare.html}\n",
                    cmp_out.c_str());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bp-console: %s\n", e.what());
      return 1;
    }
    return interrupted ? 130 : 0;
  }
  const auto ms = [](double s) { return std::chrono::milliseconds(std::lround(s * 1000)); };
  serve_opt.request_timeout = ms(request_timeout_s);
  serve_opt.idle_timeout = ms(idle_timeout_s);
  serve_opt.stall_timeout = ms(stall_timeout_s);
  return serve(serve_opt);
}

#include "report.hpp"

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "assets.hpp"

namespace bp::console {

using namespace std::chrono_literals;

run_result run_scenario(const settings& cfg, double seconds, const progress_fn& progress,
                        const std::atomic<bool>& interrupted) {
  run_result r;
  r.cfg = cfg;
  if (!is_available(cfg.strategy)) {
    r.available = false;
    return r;
  }
  malloc_trim(0);  // give back what an earlier run freed, so that RSS starts comparable
  engine::options opt;
  opt.series_limit = static_cast<std::size_t>(seconds * 20) + 100;
  opt.event_limit = 5000;
  engine eng(cfg, opt);
  eng.start_all();
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t seq = 0;
  for (;;) {
    const snapshot s = eng.wait_next(seq, 200ms);
    seq = s.seq;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) progress(std::min(elapsed, seconds), s);
    if (elapsed >= seconds || interrupted) break;
  }
  eng.stop_producer();
  eng.stop_consumer();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.series = eng.series();
  r.events = eng.events_since(0, opt.event_limit);
  eng.shutdown();
  return r;
}

namespace {

double lost_of(const snapshot& s) {
  return double(s.dropped + s.evicted + s.rejected + s.capped);
}

std::string verdict(const run_result& r, const snapshot& last) {
  if (!r.available) return "coming: not in this build yet";
  switch (r.cfg.strategy) {
    case strategy_kind::block:
      return "nothing lost; the producer waits (memory bounded, latency bounded by the buffer)";
    case strategy_kind::drop_newest:
      return "producer never waits; new items are lost while the buffer is full";
    case strategy_kind::drop_oldest:
      return "producer never waits; old items are evicted, the freshest data is kept";
    case strategy_kind::reject:
      return "producer never waits; it is told `full` and gives the item up";
    case strategy_kind::unbounded:
      return last.capped ? "no backpressure: memory grew until the safety cap stopped it"
                         : "no backpressure: the queue, memory and latency grow without limit";
    case strategy_kind::signal:
      return "the consumer pulls with request(n); the producer emits only against demand";
    case strategy_kind::throttle:
      return "the token bucket caps the producer's rate whatever the consumer does";
  }
  return "";
}

std::string read_asset(std::string_view path) {
  const asset* a = find_asset(path);
  if (!a) throw std::runtime_error("missing embedded asset " + std::string(path));
  return std::string(a->data);
}

void replace_all(std::string& s, std::string_view what, const std::string& with) {
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
    s.replace(at, what.size(), with);
}

// A self-contained page: uPlot, the report script and the data inline.
std::string html_report(const std::string& title, const json& data) {
  std::string page = read_asset("/report.html");
  std::string payload = data.dump();
  replace_all(payload, "</", "<\\/");  // keep "</script>" out of the inline data
  replace_all(page, "__TITLE__", title);
  replace_all(page, "/*__UPLOT_CSS__*/", read_asset("/vendor/uPlot.min.css"));
  replace_all(page, "/*__STYLE_CSS__*/", read_asset("/report.css"));
  replace_all(page, "/*__UPLOT_JS__*/", read_asset("/vendor/uPlot.iife.min.js"));
  replace_all(page, "/*__REPORT_JS__*/", read_asset("/report.js"));
  replace_all(page, "/*__DATA__*/", "window.BP_REPORT = " + payload + ";");
  return page;
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::binary);
  f << text;
  if (!f) throw std::runtime_error("cannot write " + p.string());
}

}  // namespace

json summary_json(const run_result& r) {
  json j{{"strategy", to_string(r.cfg.strategy)}, {"available", r.available}};
  if (!r.available || r.series.empty()) {
    j["verdict"] = verdict(r, snapshot{});
    return j;
  }
  const snapshot& last = r.series.back();
  std::size_t peak_depth = 0, peak_buffered = 0, peak_rss = 0;
  for (const auto& s : r.series) {
    peak_depth = std::max(peak_depth, s.depth);
    peak_buffered = std::max(peak_buffered, s.buffered_bytes);
    peak_rss = std::max(peak_rss, s.rss_bytes);
  }
  const double secs = std::max(last.t, 1e-9);
  auto ms = [](double v) { return v < 0 ? json(nullptr) : json(v); };
  j.update({{"seconds", last.t},
            {"produced", last.produced},
            {"accepted", last.accepted},
            {"consumed", last.consumed},
            {"dropped", last.dropped},
            {"evicted", last.evicted},
            {"rejected", last.rejected},
            {"capped", last.capped},
            {"lost", lost_of(last)},
            {"loss_share", last.produced ? lost_of(last) / double(last.produced) : 0.0},
            {"in_flight", last.in_flight},
            {"produce_rate", double(last.produced) / secs},
            {"consume_rate", double(last.consumed) / secs},
            {"wait_share", last.wait_share_total},
            {"latency_p50_ms", ms(last.latency_all_p50_ms)},
            {"latency_p99_ms", ms(last.latency_all_p99_ms)},
            {"peak_depth", peak_depth},
            {"capacity", last.capacity},
            {"peak_buffered_bytes", peak_buffered},
            {"peak_rss_bytes", peak_rss},
            {"verdict", verdict(r, last)}});
  return j;
}

json run_json(const run_result& r) {
  json cols;
  auto col = [&](const char* name, auto get) {
    json a = json::array();
    for (const auto& s : r.series) a.push_back(get(s));
    cols[name] = std::move(a);
  };
  auto ms = [](double v) { return v < 0 ? json(nullptr) : json(v); };
  col("t", [](const snapshot& s) { return s.t; });
  col("depth", [](const snapshot& s) { return s.depth; });
  col("produced", [](const snapshot& s) { return s.produced; });
  col("consumed", [](const snapshot& s) { return s.consumed; });
  col("lost", [](const snapshot& s) { return lost_of(s); });
  col("produce_rate", [](const snapshot& s) { return s.produce_rate; });
  col("consume_rate", [](const snapshot& s) { return s.consume_rate; });
  col("wait_share", [](const snapshot& s) { return s.wait_share; });
  col("latency_p50_ms", [&](const snapshot& s) { return ms(s.latency_p50_ms); });
  col("latency_p99_ms", [&](const snapshot& s) { return ms(s.latency_p99_ms); });
  col("rss_bytes", [](const snapshot& s) { return s.rss_bytes; });
  col("buffered_bytes", [](const snapshot& s) { return s.buffered_bytes; });
  json events = json::array();
  for (const auto& e : r.events) events.push_back(to_json(e));
  return {{"settings", to_json(r.cfg)},
          {"summary", summary_json(r)},
          {"series", cols},
          {"events", events}};
}

void write_run(const std::filesystem::path& dir, const run_result& r) {
  std::filesystem::create_directories(dir);
  json data = run_json(r);
  data["kind"] = "run";
  write_file(dir / "series.json", data.dump(1));
  write_file(dir / "series.csv", series_csv(r.series));
  std::string log;
  char t[32];
  for (const auto& e : r.events) {
    std::snprintf(t, sizeof t, "%8.2f s  ", e.t);
    log += t + e.text + "\n";
  }
  write_file(dir / "events.txt", log);
  write_file(dir / "report.html",
             html_report("bp-console run: " + std::string(to_string(r.cfg.strategy)), data));
}

void write_compare(const std::filesystem::path& dir, const std::vector<run_result>& runs) {
  std::filesystem::create_directories(dir);
  json data{{"kind", "compare"}, {"runs", json::array()}};
  std::string csv =
      "strategy,available,produced,consumed,lost,loss_share,produce_rate,consume_rate,"
      "wait_share,latency_p50_ms,latency_p99_ms,peak_depth,peak_buffered_bytes,peak_rss_bytes\n";
  for (const auto& r : runs) {
    json rj = run_json(r);
    rj["events"] = json::array();  // the side-by-side page shows totals and charts only
    data["runs"].push_back(rj);
    const json s = rj["summary"];
    auto v = [&](const char* k) { return s.contains(k) && !s[k].is_null() ? s[k].dump() : ""; };
    csv += std::string(to_string(r.cfg.strategy)) + "," + (r.available ? "true" : "false") + "," +
           v("produced") + "," + v("consumed") + "," + v("lost") + "," + v("loss_share") + "," +
           v("produce_rate") + "," + v("consume_rate") + "," + v("wait_share") + "," +
           v("latency_p50_ms") + "," + v("latency_p99_ms") + "," + v("peak_depth") + "," +
           v("peak_buffered_bytes") + "," + v("peak_rss_bytes") + "\n";
    if (r.available)
      write_file(dir / (std::string(to_string(r.cfg.strategy)) + ".csv"), series_csv(r.series));
  }
  if (!runs.empty()) data["settings"] = to_json(runs.front().cfg);
  write_file(dir / "compare.json", data.dump(1));
  write_file(dir / "compare.csv", csv);
  write_file(dir / "compare.html", html_report("bp-console compare", data));
}

std::string render_html(const json& data) {
  const bool compare = data.value("kind", "") == "compare";
  std::string title = "bp-console compare";
  if (!compare && data.contains("summary"))
    title = "bp-console run: " + data["summary"].value("strategy", std::string("?"));
  return html_report(title, data);
}

std::string progress_line(const std::string& label, double elapsed, double total, const snapshot& s,
                          int width) {
  const double f = total > 0 ? std::clamp(elapsed / total, 0.0, 1.0) : 1.0;
  const int n = static_cast<int>(f * width);
  std::string bar = label;  // appended piecewise: g++ 12 -O2 misreads `"[" + std::string(...)`
  bar += " [";
  bar.append(static_cast<std::size_t>(n), '#');
  bar.append(static_cast<std::size_t>(width - n), '.');
  bar += ']';
  char buf[256];
  std::snprintf(buf, sizeof buf,
                " %5.1f/%.0f s  produced %llu  consumed %llu  lost %.0f  depth %zu/%zu  waiting "
                "%3.0f%%",
                elapsed, total, (unsigned long long)s.produced, (unsigned long long)s.consumed,
                lost_of(s), s.depth, s.capacity, s.wait_share * 100);
  return bar + buf;
}

}  // namespace bp::console

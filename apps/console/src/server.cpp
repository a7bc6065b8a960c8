#include "server.hpp"

#include <algorithm>
#include <atomic>
#include <map>
#include <stdexcept>
#include <thread>
#include <vector>

#include <bp/prometheus/exporter.hpp>

#include "assets.hpp"
#include "http_loop.hpp"
#include "json_io.hpp"

namespace bp::console {

using namespace std::chrono_literals;

namespace {

http_response reply(int status, const json& body) {
  http_response r;
  r.status = status;
  r.body = body.dump();
  return r;
}

http_response fail(int status, const std::string& why) {
  return reply(status, json{{"error", why}});
}

// Parses a JSON request body; the 400 answer when it is not JSON.
std::optional<http_response> parse_body(const http_request& req, json& out) {
  out = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded())
    return fail(400, req.body.empty() ? "body: expected a JSON object, got nothing"
                                      : "body: malformed JSON");
  return std::nullopt;
}

// One snapshot with the event log's last lines, turned into stream frames on demand: a frame
// for a client depends only on how many of these events it has not had yet, so clients at the
// same point share one serialized frame.
struct feed_tick {
  snapshot snap;
  std::vector<event> events;  // the most recent (at most 50), oldest first
  json snap_json;             // built once, on the first frame asked for
  std::map<std::size_t, std::shared_ptr<const std::string>> frames;  // by count of new events

  std::shared_ptr<const std::string> frame(std::uint64_t& cursor) {
    const auto first =
        std::find_if(events.begin(), events.end(), [&](const event& e) { return e.id > cursor; });
    const auto fresh = static_cast<std::size_t>(events.end() - first);
    if (fresh > 0) cursor = events.back().id;
    auto& f = frames[fresh];
    if (f) return f;
    if (snap_json.is_null()) snap_json = to_json(snap);
    json list = json::array();
    for (auto e = first; e != events.end(); ++e) list.push_back(to_json(*e));
    f = std::make_shared<const std::string>(
        http_chunk("data: " + json{{"snapshot", snap_json}, {"events", list}}.dump() + "\n\n"));
    return f;
  }
};

http_loop_options loop_options(const server_options& o) {
  http_loop_options l;
  l.bind = o.bind;
  l.port = o.port;
  l.limits.max_body_bytes = o.max_body_bytes;
  l.request_timeout = o.request_timeout;
  l.idle_timeout = o.idle_timeout;
  l.stall_timeout = o.stall_timeout;
  l.max_connections = o.max_connections;
  l.max_streams = static_cast<std::size_t>(std::max(0, o.max_streams));
  return l;
}

}  // namespace

struct http_server::impl {
  engine& eng;
  server_options opt;
  http_loop loop;
  std::atomic<bool> stopping{false};
  std::thread ticker;

  impl(engine& e, server_options o)
      : eng(e),
        opt(std::move(o)),
        loop(loop_options(opt), [this](const http_request& req) { return route(req); }) {}

  json state_json() const {
    return {{"settings", to_json(eng.current())},
            {"snapshot", to_json(eng.latest())},
            {"strategies", strategies_json()},
            {"presets", presets_json()},
            {"scenarios", scenarios_json()},
            {"pipeline", pipeline_json()},
            {"limits",
             {{"min_rate", min_rate},
              {"max_rate", max_rate},
              {"max_capacity", max_capacity},
              {"max_threads", max_threads},
              {"max_payload_bytes", max_payload_bytes},
              {"min_stage_ms", min_stage_ms},
              {"max_stage_ms", max_stage_ms},
              {"max_stage_parallelism", max_stage_parallelism},
              {"max_pipeline_capacity", max_pipeline_capacity}}}};
  }

  // The pipeline scenario's report, or null while the channel scenario runs.
  json pipeline_json() const {
    auto r = eng.pipeline_now();
    return r ? to_json(*r) : json(nullptr);
  }

  // Prometheus's text exposition format of the scenario's primitives (docs/metrics.md).
  http_response metrics_text() const {
    http_response r;
    r.status = 200;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.headers.emplace_back("Cache-Control", "no-store");
    r.body = bp::prometheus::to_text(eng.metrics().snapshot());
    return r;
  }

  http_response route(const http_request& req) {
    const std::string& path = req.path;
    if (req.method == "GET") {
      if (path == "/api/state") return reply(200, state_json());
      if (path == "/api/pipeline")
        return reply(
            200, {{"scenario", to_string(eng.current().scenario)}, {"pipeline", pipeline_json()}});
      if (path == "/api/series") return series(req);
      if (path == "/api/events") return events(req);
      if (path == "/api/stream") return stream();
      if (path == "/metrics") return metrics_text();
      // Everything else: an embedded asset by its exact path, or 404. A Range header is
      // ignored (RFC 9110 allows it): the whole asset, once, is the only answer.
      const asset* a = find_asset(path == "/" ? "/index.html" : path);
      if (!a) return fail(404, "not found");
      http_response r;
      r.headers.emplace_back("Cache-Control", "no-cache");
      r.content_type = a->content_type;
      r.static_body = a->data;
      return r;
    }
    if (req.method != "POST") return fail(404, "not found");
    if (path == "/api/settings") {
      json patch;
      if (auto bad = parse_body(req, patch)) return *bad;
      settings next;
      if (auto why = settings_from_json(patch, eng.current(), next); !why.empty())
        return fail(400, why);
      if (auto why = eng.configure(next); !why.empty()) return fail(400, why);
      return reply(200, state_json());
    }
    if (path == "/api/preset") {
      json body;
      if (auto bad = parse_body(req, body)) return *bad;
      if (!body.is_object() || !body.contains("name") || !body["name"].is_string())
        return fail(400, "name: expected {\"name\": \"overload\" | \"balanced\" | \"burst\"}");
      if (auto why = eng.apply_preset(body["name"].get<std::string>()); !why.empty())
        return fail(400, why);
      return reply(200, state_json());
    }
    // Verbs without a body: start/stop of each side, both, and reset.
    static constexpr std::pair<const char*, void (engine::*)()> verbs[] = {
        {"/api/producer/start", &engine::start_producer},
        {"/api/producer/stop", &engine::stop_producer},
        {"/api/consumer/start", &engine::start_consumer},
        {"/api/consumer/stop", &engine::stop_consumer},
        {"/api/start", &engine::start_all},
        {"/api/reset", &engine::reset},
    };
    for (const auto& [name, fn] : verbs)
      if (path == name) {
        (eng.*fn)();
        return reply(200, state_json());
      }
    if (path == "/api/stop") {
      eng.stop_producer();
      eng.stop_consumer();
      return reply(200, state_json());
    }
    return fail(404, "not found");
  }

  http_response series(const http_request& req) const {
    std::size_t max = 900;
    if (const std::string* v = req.param("max")) {
      if (v->empty() || v->size() > 5 || v->find_first_not_of("0123456789") != std::string::npos)
        return fail(400, "max: expected a whole number 1..9000");
      max = std::stoul(*v);
      if (max < 1 || max > 9000) return fail(400, "max: expected a whole number 1..9000");
    }
    json a = json::array();
    for (const auto& s : eng.series(max)) a.push_back(to_json(s));
    return reply(200, a);
  }

  http_response events(const http_request& req) const {
    std::uint64_t since = 0;
    if (const std::string* v = req.param("since")) {
      if (v->empty() || v->size() > 18 || v->find_first_not_of("0123456789") != std::string::npos)
        return fail(400, "since: expected an event id (a whole number)");
      since = std::stoull(*v);
    }
    json a = json::array();
    for (const auto& e : eng.events_since(since)) a.push_back(to_json(e));
    return reply(200, a);
  }

  // The stream's answer; its frames come from the ticker through the loop.
  http_response stream() const {
    http_response r;
    r.stream = true;
    r.content_type = "text/event-stream";
    r.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    // Start with the recent events only, not the whole log.
    std::uint64_t cursor = 0;
    if (auto recent = eng.events_since(0, 1); !recent.empty()) cursor = recent.back().id;
    r.stream_cursor = cursor > 50 ? cursor - 50 : 0;
    return r;
  }

  // Waits on the engine for each new snapshot and hands it to the loop (which serializes it
  // once per distinct frame and fans it out); a ping when none came within 250 ms.
  void tick_loop() {
    static const auto ping = std::make_shared<const stream_tick>();
    std::uint64_t seq = 0;
    while (!stopping) {
      const snapshot s = eng.wait_next(seq, 250ms);
      if (stopping) break;
      if (s.seq <= seq) {
        loop.publish(ping);
        continue;
      }
      seq = s.seq;
      auto data = std::make_shared<feed_tick>();
      data->snap = s;
      data->events = eng.events_since(0, 50);
      auto t = std::make_shared<stream_tick>();
      t->seq = s.seq;
      t->frame = [data](std::uint64_t& cursor) { return data->frame(cursor); };
      loop.publish(std::move(t));
    }
  }
};

http_server::http_server(engine& eng, server_options opt)
    : p_(std::make_unique<impl>(eng, std::move(opt))) {}

http_server::~http_server() {
  stop();
  if (p_->ticker.joinable()) p_->ticker.join();
}

void http_server::bind() {
  p_->loop.bind();
}

int http_server::port() const noexcept {
  return p_->loop.port();
}

void http_server::run() {
  if (!p_->stopping) p_->ticker = std::thread([this] { p_->tick_loop(); });
  p_->loop.run();
  p_->stopping = true;
  if (p_->ticker.joinable()) p_->ticker.join();
}

void http_server::stop() {
  p_->stopping = true;
  p_->loop.stop();
}

}  // namespace bp::console

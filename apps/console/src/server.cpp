#include "server.hpp"

#include <httplib.h>
#include <bp/channel.hpp>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "assets.hpp"
#include "json_io.hpp"

namespace bp::console {

using namespace std::chrono_literals;

namespace {

// httplib's own thread pool queues accepted connections without limit. This one is a bounded
// bp::channel with the block policy: when every worker is busy and the queue is full, the
// accept loop waits (backpressure down to the kernel's listen backlog), so a flood of requests
// cannot grow memory.
class bounded_pool final : public httplib::TaskQueue {
 public:
  bounded_pool(int workers, std::size_t queued) : jobs_(queued, overflow::block) {
    for (int i = 0; i < workers; ++i)
      threads_.emplace_back([this] {
        while (auto job = jobs_.recv()) (*job)();
      });
  }
  ~bounded_pool() override { shutdown(); }

  void enqueue(std::function<void()> fn) override { (void)jobs_.send(std::move(fn)); }

  void shutdown() override {
    jobs_.close();  // queued connections are still served, then the workers end
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  channel<std::function<void()>> jobs_;
  std::vector<std::thread> threads_;
};

void reply(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void fail(httplib::Response& res, int status, const std::string& why) {
  reply(res, status, json{{"error", why}});
}

// Parses a JSON request body; answers 400 and returns false when it is not JSON.
bool parse_body(const httplib::Request& req, httplib::Response& res, json& out) {
  out = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (out.is_discarded()) {
    fail(res, 400,
         req.body.empty() ? "body: expected a JSON object, got nothing" : "body: malformed JSON");
    return false;
  }
  return true;
}

}  // namespace

struct http_server::impl {
  engine& eng;
  server_options opt;
  httplib::Server svr;
  int port = -1;
  std::atomic<bool> stopping{false};
  std::atomic<int> streams{0};

  impl(engine& e, server_options o) : eng(e), opt(std::move(o)) {
    svr.new_task_queue = [this] { return new bounded_pool(opt.workers, opt.queued_connections); };
    svr.set_payload_max_length(opt.max_body_bytes);
    svr.set_read_timeout(5s);
    svr.set_write_timeout(5s);
    svr.set_keep_alive_max_count(100);
    routes();
  }

  json state_json() const {
    return {{"settings", to_json(eng.current())},
            {"snapshot", to_json(eng.latest())},
            {"strategies", strategies_json()},
            {"presets", presets_json()},
            {"limits",
             {{"min_rate", min_rate},
              {"max_rate", max_rate},
              {"max_capacity", max_capacity},
              {"max_threads", max_threads},
              {"max_payload_bytes", max_payload_bytes}}}};
  }

  void routes() {
    svr.Get("/api/state", [this](const httplib::Request&, httplib::Response& res) {
      reply(res, 200, state_json());
    });

    svr.Post("/api/settings", [this](const httplib::Request& req, httplib::Response& res) {
      json patch;
      if (!parse_body(req, res, patch)) return;
      settings next;
      if (auto why = settings_from_json(patch, eng.current(), next); !why.empty())
        return fail(res, 400, why);
      if (auto why = eng.configure(next); !why.empty()) return fail(res, 400, why);
      reply(res, 200, state_json());
    });

    svr.Post("/api/preset", [this](const httplib::Request& req, httplib::Response& res) {
      json body;
      if (!parse_body(req, res, body)) return;
      if (!body.is_object() || !body.contains("name") || !body["name"].is_string())
        return fail(res, 400, "name: expected {\"name\": \"overload\" | \"balanced\" | \"burst\"}");
      if (auto why = eng.apply_preset(body["name"].get<std::string>()); !why.empty())
        return fail(res, 400, why);
      reply(res, 200, state_json());
    });

    // Verbs without a body: start/stop of each side, both, and reset.
    auto verb = [this](const char* path, void (engine::*fn)()) {
      svr.Post(path, [this, fn](const httplib::Request&, httplib::Response& res) {
        (eng.*fn)();
        reply(res, 200, state_json());
      });
    };
    verb("/api/producer/start", &engine::start_producer);
    verb("/api/producer/stop", &engine::stop_producer);
    verb("/api/consumer/start", &engine::start_consumer);
    verb("/api/consumer/stop", &engine::stop_consumer);
    verb("/api/start", &engine::start_all);
    verb("/api/reset", &engine::reset);
    svr.Post("/api/stop", [this](const httplib::Request&, httplib::Response& res) {
      eng.stop_producer();
      eng.stop_consumer();
      reply(res, 200, state_json());
    });

    svr.Get("/api/series", [this](const httplib::Request& req, httplib::Response& res) {
      std::size_t max = 900;
      if (req.has_param("max")) {
        const std::string v = req.get_param_value("max");
        if (v.empty() || v.size() > 5 || v.find_first_not_of("0123456789") != std::string::npos)
          return fail(res, 400, "max: expected a whole number 1..9000");
        max = std::stoul(v);
        if (max < 1 || max > 9000) return fail(res, 400, "max: expected a whole number 1..9000");
      }
      json a = json::array();
      for (const auto& s : eng.series(max)) a.push_back(to_json(s));
      reply(res, 200, a);
    });

    svr.Get("/api/events", [this](const httplib::Request& req, httplib::Response& res) {
      std::uint64_t since = 0;
      if (req.has_param("since")) {
        const std::string v = req.get_param_value("since");
        if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
          return fail(res, 400, "since: expected an event id (a whole number)");
        since = std::stoull(v);
      }
      json a = json::array();
      for (const auto& e : eng.events_since(since)) a.push_back(to_json(e));
      reply(res, 200, a);
    });

    svr.Get("/api/stream", [this](const httplib::Request&, httplib::Response& res) {
      if (streams.fetch_add(1) >= opt.max_streams) {
        streams.fetch_sub(1);
        return fail(res, 503, "too many open streams");
      }
      struct cursor {
        std::uint64_t seq = 0;
        std::uint64_t event = 0;
      };
      auto at = std::make_shared<cursor>();
      // Start with the recent events only, not the whole log.
      if (auto recent = eng.events_since(0, 1); !recent.empty()) at->event = recent.back().id;
      at->event = at->event > 50 ? at->event - 50 : 0;
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, at](std::size_t, httplib::DataSink& sink) {
            if (stopping) return false;
            const snapshot s = eng.wait_next(at->seq, 250ms);
            if (stopping) return false;
            if (s.seq <= at->seq) {
              static constexpr char ping[] = ": ping\n\n";
              return sink.write(ping, sizeof ping - 1);
            }
            at->seq = s.seq;
            json events = json::array();
            for (const auto& e : eng.events_since(at->event, 50)) {
              at->event = e.id;
              events.push_back(to_json(e));
            }
            const std::string msg =
                "data: " + json{{"snapshot", to_json(s)}, {"events", events}}.dump() + "\n\n";
            return sink.write(msg.data(), msg.size());
          },
          [this](bool) { streams.fetch_sub(1); });
    });

    // Everything else: an embedded asset by its exact path, or 404.
    svr.Get(R"(/.*)", [](const httplib::Request& req, httplib::Response& res) {
      const asset* a = find_asset(req.path == "/" ? "/index.html" : req.path);
      if (!a) return fail(res, 404, "not found");
      res.set_header("Cache-Control", "no-cache");
      res.set_content(a->data.data(), a->data.size(), std::string(a->content_type).c_str());
    });

    // Statuses httplib sets itself (no route: 404; body too large: 413; ...) answer JSON too.
    svr.set_error_handler(
        httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
          if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
          const char* why = res.status == 404   ? "not found"
                            : res.status == 413 ? "request body too large"
                            : res.status == 400 ? "bad request"
                                                : "error";
          reply(res, res.status, json{{"error", why}});
          return httplib::Server::HandlerResponse::Handled;
        }));
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                 std::exception_ptr) { fail(res, 500, "internal error"); });
  }
};

http_server::http_server(engine& eng, server_options opt)
    : p_(std::make_unique<impl>(eng, std::move(opt))) {}

http_server::~http_server() {
  stop();
}

void http_server::bind() {
  if (p_->opt.port == 0)
    p_->port = p_->svr.bind_to_any_port(p_->opt.bind);
  else
    p_->port = p_->svr.bind_to_port(p_->opt.bind.c_str(), p_->opt.port) ? p_->opt.port : -1;
  if (p_->port <= 0)
    throw std::runtime_error("cannot listen on " + p_->opt.bind + ":" +
                             std::to_string(p_->opt.port) + " (in use, or not a local address?)");
}

int http_server::port() const noexcept {
  return p_->port;
}

void http_server::run() {
  p_->svr.listen_after_bind();
}

void http_server::stop() {
  p_->stopping = true;
  p_->svr.stop();
}

}  // namespace bp::console

// HTTP-level test of bp-console: starts the real binary on a free loopback port and exercises
// the API: validation (400 + JSON reason), 404, no path traversal, body cap, the SSE stream,
// and a flood of control requests that must not grow the server.
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "raw_client.hpp"
#include "test_util.hpp"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

// The binary under test, started once for the whole suite on port 0 (any free port).
using bp::test::raw::console_process;

class Http : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { proc_ = new console_process(BP_CONSOLE_EXE, {}); }
  static void TearDownTestSuite() {
    delete proc_;
    proc_ = nullptr;
  }
  void SetUp() override {
    ASSERT_GT(proc_->port(), 0) << "bp-console did not announce its port: " << proc_->banner();
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", proc_->port());
    c.set_connection_timeout(5s);
    c.set_read_timeout(10s);
    c.set_write_timeout(5s);
    return c;
  }

  static json state() {
    auto r = client().Get("/api/state");
    if (!r || r->status != 200) return json();
    return json::parse(r->body);
  }

  static inline console_process* proc_ = nullptr;
  bp::test::watchdog dog_{std::chrono::seconds(60), "http test"};
};

TEST_F(Http, ServesThePageAndItsBundledAssets) {
  auto c = client();
  auto page = c.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Type").find("text/html"), std::string::npos);
  EXPECT_NE(page->body.find("/vendor/uPlot.iife.min.js"), std::string::npos);
  EXPECT_EQ(page->body.find("src=\"http"), std::string::npos) << "nothing from the internet";
  auto lib = c.Get("/vendor/uPlot.iife.min.js");
  ASSERT_TRUE(lib);
  EXPECT_EQ(lib->status, 200);
  EXPECT_GT(lib->body.size(), 10000u);
  EXPECT_EQ(c.Get("/app.js")->status, 200);
}

TEST_F(Http, UnknownPathsAre404WithAJsonReason) {
  auto c = client();
  for (const char* path : {"/nope", "/api/nope", "/vendor/", "/index.htm"}) {
    auto r = c.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
    EXPECT_EQ(json::parse(r->body).value("error", ""), "not found") << path;
  }
  auto r = c.Post("/api/nope", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
}

// GET /metrics: the scenario's primitives in Prometheus's text format; like the other GET
// routes, another method is 404 with a JSON reason.
TEST_F(Http, MetricsAreServedInPrometheusTextFormat) {
  auto c = client();
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain; version=0.0.4"),
            std::string::npos);
  const std::string strategy = state()["settings"].value("strategy", "block");
  EXPECT_NE(r->body.find("# TYPE bp_channel_sent_total counter\n"), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("bp_channel_sent_total{channel=\"" + strategy + "\"}"), std::string::npos)
      << r->body;
  EXPECT_NE(r->body.find("# TYPE bp_channel_send_wait_seconds histogram\n"), std::string::npos);
  EXPECT_NE(r->body.find("le=\"+Inf\""), std::string::npos);
  auto post = c.Post("/metrics", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 404);
  EXPECT_EQ(json::parse(post->body).value("error", ""), "not found");
}

TEST_F(Http, NoPathTraversal) {
  auto c = client();
  for (const char* path : {"/../../../../etc/passwd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                           "/vendor/../../CMakeLists.txt", "/..%2f..%2f..%2fetc%2fpasswd",
                           "//etc/passwd", "/vendor/..%2F..%2Fsrc%2Fmain.cpp"}) {
    auto r = c.Get(path);
    if (!r) continue;  // refusing the connection is fine too
    EXPECT_TRUE(r->status == 404 || r->status == 400) << path << " -> " << r->status;
    EXPECT_EQ(r->body.find("root:"), std::string::npos) << path;
    EXPECT_EQ(r->body.find("cmake_minimum_required"), std::string::npos) << path;
  }
}

TEST_F(Http, BadSettingsAre400AndChangeNothing) {
  auto c = client();
  const json before = state()["settings"];
  ASSERT_FALSE(before.is_null());
  const std::pair<const char*, const char*> cases[] = {
      {R"({"capacity": 20000})", "capacity"},
      {R"({"capacity": -3})", "capacity"},
      {R"({"producer_rate": 0})", "producer_rate"},
      {R"({"consumer_rate": 1e6})", "consumer_rate"},
      {R"({"producers": 0})", "producers"},
      {R"({"strategy": "yolo"})", "strategy"},
      {R"({"capacity": "12"})", "capacity"},
      {R"({"whatever": 1})", "unknown field"},
      {R"({"capacity": 0, "strategy": "reject"})", "capacity"},
      {R"({"scenario": "conveyor"})", "scenario"},
      {R"({"pipeline_slow_parallelism": 0})", "pipeline_slow_parallelism"},
      {R"({"pipeline_slow_parallelism": 2.5})", "pipeline_slow_parallelism"},
      {R"({"pipeline_slow_ms": -1})", "pipeline_slow_ms"},
      {R"({"pipeline_stage_ms": null})", "pipeline_stage_ms"},
      {R"({"pipeline_capacity": 5000})", "pipeline_capacity"},
      {R"([1, 2])", "object"},
      {R"({"capacity": )", "malformed"},
      {"", "body"},
  };
  for (const auto& [body, word] : cases) {
    auto r = c.Post("/api/settings", body, "application/json");
    ASSERT_TRUE(r) << body;
    EXPECT_EQ(r->status, 400) << body;
    const json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r->body;
    EXPECT_NE(j.value("error", "").find(word), std::string::npos) << body << " -> " << r->body;
  }
  EXPECT_EQ(state()["settings"], before);
  auto r = c.Post("/api/preset", R"({"name": "meltdown"})", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(c.Get("/api/events?since=abc")->status, 400);
  EXPECT_EQ(c.Get("/api/series?max=0")->status, 400);
}

TEST_F(Http, ThePipelineScenarioReportsItsBottleneck) {
  auto c = client();
  auto r = c.Post("/api/settings", R"({"scenario": "pipeline", "pipeline_slow_ms": 8})",
                  "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["settings"]["scenario"], "pipeline");
  json p;
  const auto end = std::chrono::steady_clock::now() + 10s;
  do {
    std::this_thread::sleep_for(100ms);
    auto g = c.Get("/api/pipeline");
    ASSERT_TRUE(g);
    ASSERT_EQ(g->status, 200);
    p = json::parse(g->body)["pipeline"];
    // The depths are an instant: wait for a report with both the name and the fuller link.
  } while (!(p.is_object() && p["bottleneck"] == "enrich" && p["links"].size() == 3 &&
             p["links"][1]["depth"].get<double>() > p["links"][2]["depth"].get<double>()) &&
           std::chrono::steady_clock::now() < end);
  ASSERT_TRUE(p.is_object());
  EXPECT_EQ(p["bottleneck"], "enrich") << p.dump();
  ASSERT_EQ(p["links"].size(), 3u);
  EXPECT_GT(p["links"][1]["depth"].get<double>(), p["links"][2]["depth"].get<double>()) << p.dump();
  EXPECT_TRUE(state()["pipeline"].is_object());

  r = c.Post("/api/settings", R"({"scenario": "channel"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_TRUE(json::parse(r->body)["pipeline"].is_null());
}

TEST_F(Http, OversizedBodiesAreRefused) {
  auto c = client();
  const std::string big(200 * 1024, ' ');
  auto r = c.Post("/api/settings", big, "application/json");
  if (r) {  // or the connection is closed on us: fine too
    EXPECT_EQ(r->status, 413);
  }
}

TEST_F(Http, ControlsWorkAndTheStreamDeliversSnapshots) {
  auto c = client();
  auto r = c.Post("/api/settings", R"({"strategy": "drop_newest"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  r = c.Post("/api/preset", R"({"name": "overload"})", "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["settings"]["producer_rate"], 5.0);
  r = c.Post("/api/settings", R"({"producer_rate": 500, "consumer_rate": 50})", "application/json");
  ASSERT_EQ(r->status, 200);

  // Read SSE messages for a while: they come 10-20 times a second.
  std::string buffer;
  int messages = 0;
  json last;
  const auto t0 = std::chrono::steady_clock::now();
  auto sc = client();
  sc.Get("/api/stream", [&](const char* data, std::size_t n) {
    buffer.append(data, n);
    for (auto at = buffer.find("\n\n"); at != std::string::npos; at = buffer.find("\n\n")) {
      const std::string msg = buffer.substr(0, at);
      buffer.erase(0, at + 2);
      if (msg.rfind("data: ", 0) == 0) {
        last = json::parse(msg.substr(6));
        ++messages;
      }
    }
    return std::chrono::steady_clock::now() - t0 < 2s;
  });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(messages / secs, 8.0) << messages << " messages in " << secs << " s";
  EXPECT_LE(messages / secs, 25.0);
  ASSERT_TRUE(last.contains("snapshot"));
  EXPECT_GT(last["snapshot"]["produced"].get<int>(), 0);
  EXPECT_GT(last["snapshot"]["dropped"].get<int>(), 0) << "drop_newest under overload";
  EXPECT_TRUE(last["events"].is_array());

  EXPECT_EQ(c.Post("/api/stop")->status, 200);
  const json s = state();
  EXPECT_FALSE(s["snapshot"]["producer_running"].get<bool>() &&
               s["settings"]["strategy"] == "block");
  auto ev = c.Get("/api/events?since=0");
  ASSERT_TRUE(ev);
  EXPECT_NE(ev->body.find("dropped: drop-newest"), std::string::npos);
}

TEST_F(Http, AFloodOfControlRequestsDoesNotGrowTheServer) {
  const auto rss_before = state()["snapshot"]["rss_bytes"].get<double>();
  std::atomic<int> ok{0}, answered{0};
  std::vector<std::thread> flood;
  for (int t = 0; t < 8; ++t)
    flood.emplace_back([&, t] {
      auto c = client();
      c.set_keep_alive(true);
      for (int i = 0; i < 150; ++i) {
        auto r = (i + t) % 3 == 0 ? c.Post("/api/producer/start")
                 : (i + t) % 3 == 1
                     ? c.Post("/api/settings", R"({"consumer_rate": 3})", "application/json")
                     : c.Post("/api/settings", R"({"consumer_rate": -1})", "application/json");
        if (r) {
          ++answered;
          if (r->status == 200 || r->status == 400) ++ok;
        }
      }
    });
  for (auto& t : flood) t.join();
  EXPECT_EQ(ok.load(), answered.load()) << "every answer is 200 or 400";
  EXPECT_GT(answered.load(), 1000);
  std::this_thread::sleep_for(300ms);
  const json after = state();
  ASSERT_TRUE(after.is_object()) << "still serving";
#if defined(__SANITIZE_ADDRESS__)
  const double slack = 400.0 * (1 << 20);  // ASan keeps freed memory in a 256 MiB quarantine
#else
  const double slack = 64.0 * (1 << 20);
#endif
  EXPECT_LT(after["snapshot"]["rss_bytes"].get<double>() - rss_before, slack);
  EXPECT_LE(after["settings"]["consumer_rate"].get<double>(), 3.0);
}

// Last (gtest runs tests in order within a file): Ctrl-C stops the server cleanly.
TEST_F(Http, ZzInterruptStopsCleanly) {
  auto c = client();
  // An open stream must not keep the server alive.
  std::thread reader([] {
    auto sc = client();
    sc.Get("/api/stream", [](const char*, std::size_t) { return true; });
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(proc_->signal_and_wait(SIGINT, 10s));
  reader.join();
}

}  // namespace

// Tests of the console's pipeline scenario at the engine level: the real bp::pipeline's report
// names the slow stage as the bottleneck, the link in front of it fills while the one after it
// stays low, and the bottleneck moves when the slow stage gets more workers or less time per
// item. Every wait polls against a deadline.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <thread>

#include "engine.hpp"
#include "json_io.hpp"
#include "pipeline_scenario.hpp"
#include "test_util.hpp"

namespace bp::console {
namespace {

using namespace std::chrono_literals;

settings pipeline_settings() {
  settings s;
  s.scenario = scenario_kind::pipeline;
  s.pipeline_stage_ms = 2;  // parse and write: 500 items/s
  s.pipeline_slow_ms = 8;   // enrich on one worker: 125 items/s
  s.pipeline_slow_parallelism = 1;
  s.pipeline_capacity = 16;
  return s;
}

const link_report* input_of(const pipeline_report& r, std::string_view stage) {
  for (const auto& s : r.stages)
    if (s.name == stage && s.input) return &*s.input;
  return nullptr;
}

std::string bottleneck_name(const pipeline_report& r) {
  const stage_report* b = r.bottleneck_stage();
  return b ? b->name : std::string("(none)");
}

// Polls the engine's pipeline report until `ok` holds (at least `settle` after the call, so
// that the report covers some work), or `limit` passes; answers the last report.
template <class Ok>
std::optional<pipeline_report> wait_report(const engine& e, Ok ok,
                                           std::chrono::milliseconds settle = 300ms,
                                           std::chrono::milliseconds limit = 8s) {
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(settle);
  std::optional<pipeline_report> r;
  for (;;) {
    r = e.pipeline_now();
    if (r && ok(*r)) return r;
    if (std::chrono::steady_clock::now() - start > limit) return r;
    std::this_thread::sleep_for(50ms);
  }
}

TEST(Pipeline, NoPipelineRunsInTheChannelScenario) {
  bp::test::watchdog dog(30s);
  engine e;
  EXPECT_FALSE(e.pipeline_now().has_value());
}

TEST(Pipeline, TheSlowStageIsTheBottleneckAndTheLinkInFrontOfItFills) {
  bp::test::watchdog dog(60s);
  engine e(pipeline_settings());
  // The link figures of one report: a link's size is an instant, so the wait asks for all of
  // them in the same report.
  auto links_ok = [](const pipeline_report& p) {
    const link_report* before = input_of(p, "enrich");
    const link_report* after = input_of(p, "write");
    return before && after && before->size >= before->capacity / 2 && before->size > after->size &&
           before->average_fill > after->average_fill &&
           before->high_watermark > after->high_watermark;
  };
  const auto r = wait_report(e, [&](const pipeline_report& p) {
    return bottleneck_name(p) == pipeline_slow_stage && links_ok(p);
  });
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(bottleneck_name(*r), pipeline_slow_stage) << r->to_string();
  ASSERT_EQ(r->stages.size(), 4u);
  EXPECT_EQ(r->stages[0].name, pipeline_source_name);
  const link_report* before = input_of(*r, "enrich");
  const link_report* after = input_of(*r, "write");
  ASSERT_NE(before, nullptr);
  ASSERT_NE(after, nullptr);
  EXPECT_GE(before->size, before->capacity / 2) << r->to_string();
  EXPECT_GT(before->size, after->size) << r->to_string();
  EXPECT_GT(before->average_fill, after->average_fill) << r->to_string();
  EXPECT_GT(before->high_watermark, after->high_watermark) << r->to_string();
  // parse is held back by the full link in front of enrich, enrich by nothing; write waits for
  // input more than enrich does. (Relative figures: on a loaded machine the sleeps overrun and
  // the absolute shares move.)
  EXPECT_GT(r->stages[1].blocked_fraction(), r->stages[2].blocked_fraction()) << r->to_string();
  EXPECT_GT(r->stages[3].idle_fraction(), r->stages[2].idle_fraction()) << r->to_string();

  // The same figures through the JSON the front end reads.
  const json j = to_json(*r);
  EXPECT_EQ(j["bottleneck"], "enrich");
  ASSERT_EQ(j["links"].size(), 3u);
  EXPECT_EQ(j["links"][1]["from"], "parse");
  EXPECT_EQ(j["links"][1]["to"], "enrich");
  EXPECT_TRUE(j["stages"][2]["bottleneck"].get<bool>());
}

TEST(Pipeline, MoreWorkersOnTheSlowStageMoveTheBottleneck) {
  bp::test::watchdog dog(60s);
  engine e(pipeline_settings());
  auto r = wait_report(e, [](const pipeline_report& p) { return bottleneck_name(p) == "enrich"; });
  ASSERT_TRUE(r && bottleneck_name(*r) == "enrich") << (r ? r->to_string() : "no report");

  // 8 workers at 8 ms: 1000 items/s, faster than parse (500/s), which now limits.
  settings s = e.current();
  s.pipeline_slow_parallelism = 8;
  ASSERT_EQ(e.configure(s), "");
  r = wait_report(e, [](const pipeline_report& p) { return bottleneck_name(p) == "parse"; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(bottleneck_name(*r), "parse") << r->to_string();
  EXPECT_EQ(r->stages[2].parallelism, 8u);
  // The link in front of enrich no longer fills.
  const link_report* before = input_of(*r, "enrich");
  ASSERT_NE(before, nullptr);
  EXPECT_LT(before->average_fill, 0.5) << r->to_string();
}

TEST(Pipeline, ASpeedierSlowStageMovesTheBottleneckAndBackAgain) {
  bp::test::watchdog dog(60s);
  engine e(pipeline_settings());
  settings s = e.current();
  s.pipeline_slow_ms = 0.5;  // 2000 items/s on one worker: parse limits
  ASSERT_EQ(e.configure(s), "");
  auto r = wait_report(e, [](const pipeline_report& p) { return bottleneck_name(p) == "parse"; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(bottleneck_name(*r), "parse") << r->to_string();

  s.pipeline_slow_ms = 20;
  ASSERT_EQ(e.configure(s), "");
  r = wait_report(e, [](const pipeline_report& p) { return bottleneck_name(p) == "enrich"; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(bottleneck_name(*r), "enrich") << r->to_string();
}

TEST(Pipeline, BackToTheChannelScenarioStopsThePipeline) {
  bp::test::watchdog dog(30s);
  engine e(pipeline_settings());
  ASSERT_TRUE(e.pipeline_now().has_value());
  settings s = e.current();
  s.scenario = scenario_kind::channel;
  ASSERT_EQ(e.configure(s), "");
  EXPECT_FALSE(e.pipeline_now().has_value());
}

TEST(Pipeline, ASlowStageOfASecondPerItemStopsPromptly) {
  bp::test::watchdog dog(30s);
  settings s = pipeline_settings();
  s.pipeline_slow_ms = 1000;
  auto e = std::make_unique<engine>(s);
  std::this_thread::sleep_for(100ms);
  const auto t0 = std::chrono::steady_clock::now();
  e.reset();
  e.reset();
  e.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  e.reset();
}

TEST(Pipeline, BadPipelineSettingsAreRefusedWithTheirReason) {
  const settings base;
  settings out;
  auto why = [&](const json& patch) { return settings_from_json(patch, base, out); };
  EXPECT_EQ(why(json{{"scenario", "pipeline"}, {"pipeline_slow_parallelism", 4}}), "");
  EXPECT_EQ(out.scenario, scenario_kind::pipeline);
  EXPECT_EQ(out.pipeline_slow_parallelism, 4);
  EXPECT_NE(why(json{{"scenario", "conveyor"}}).find("unknown scenario"), std::string::npos);
  EXPECT_NE(why(json{{"scenario", 1}}).find("scenario: expected a string"), std::string::npos);
  EXPECT_NE(why(json{{"pipeline_slow_parallelism", 0}}).find("pipeline_slow_parallelism"),
            std::string::npos);
  EXPECT_NE(why(json{{"pipeline_slow_parallelism", 9}}).find("out of range"), std::string::npos);
  EXPECT_NE(why(json{{"pipeline_slow_parallelism", 1.5}}).find("whole"), std::string::npos);
  EXPECT_NE(why(json{{"pipeline_slow_ms", 0}}).find("pipeline_slow_ms"), std::string::npos);
  EXPECT_NE(why(json{{"pipeline_slow_ms", 5000}}).find("pipeline_slow_ms"), std::string::npos);
  EXPECT_NE(why(json{{"pipeline_stage_ms", "2"}}).find("expected a number"), std::string::npos);
  EXPECT_NE(why(json{{"pipeline_capacity", 0}}).find("pipeline_capacity"), std::string::npos);
  EXPECT_NE(why(json{{"pipeline_capacity", 100000}}).find("pipeline_capacity"), std::string::npos);
  EXPECT_EQ(out.pipeline_slow_parallelism, 4) << "a refused patch leaves `out` as it was";
}

}  // namespace
}  // namespace bp::console

// bp-fuzz-sources: apps/console/src/json_io.cpp
// bp-fuzz-sources: apps/console/src/settings.cpp
// bp-fuzz-link: nlohmann_json::nlohmann_json
//
// Differential fuzz target: the console's settings parser (settings_from_json, the body of
// POST /api/settings) against a model written from docs/console.md and json_io.hpp: a patch is
// a JSON object holding any subset of the sixteen known fields; an unknown field, a wrong type
// (rates are numbers, counts whole numbers that fit their field, the strategy a known name) or
// an out-of-range result is refused with a reason naming the field, and then nothing changes;
// otherwise the fields present replace the current ones. Inputs are arbitrary bytes parsed as
// JSON, JSON text with duplicate keys, and objects built from the known keys with values of every
// type and at every edge (negative, zero, huge, non-finite, fractional, long strings, nested).
// Also: the parser never throws, accepted settings are within the limits settings.hpp documents
// (the `limits` of GET /api/state), to_json -> settings_from_json is the identity, and `{}`
// changes nothing.
//
// Sources: json_io.cpp and settings.cpp (validation). Their one other dependency is
// is_available() from strategy.cpp, which needs the whole strategy machinery and a compile
// definition per build; it is defined below as the console build has it (bp/streams.hpp is in
// the library, so every strategy is available).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "../../apps/console/src/json_io.hpp"
#include "fuzz_input.hpp"

namespace bp::console {
bool is_available(strategy_kind) noexcept {
  return true;
}
}  // namespace bp::console

namespace {

using bp::console::json;
using bp::console::settings;
using bp::console::strategy_kind;
namespace con = bp::console;

const char* const known_keys[] = {
    "producer_rate",     "consumer_rate",       "capacity",
    "producers",         "consumers",           "strategy",
    "payload_bytes",     "unbounded_cap_bytes", "throttle_rate",
    "throttle_burst",    "consumer_delay_s",    "scenario",
    "pipeline_stage_ms", "pipeline_slow_ms",    "pipeline_slow_parallelism",
    "pipeline_capacity"};

bool is_known(std::string_view k) {
  for (const char* x : known_keys)
    if (k == x) return true;
  return false;
}

// The documented limits (settings.hpp, GET /api/state's `limits`), checked field by field
// without calling validate().
bool within_limits(const settings& s) {
  auto stage_ms = [](double ms) {
    return std::isfinite(ms) && ms >= con::min_stage_ms && ms <= con::max_stage_ms;
  };
  auto rate = [](double r) { return std::isfinite(r) && r >= con::min_rate && r <= con::max_rate; };
  return rate(s.producer_rate) && rate(s.consumer_rate) && s.capacity <= con::max_capacity &&
         s.producers >= 1 && s.producers <= con::max_threads && s.consumers >= 1 &&
         s.consumers <= con::max_threads && s.payload_bytes <= con::max_payload_bytes &&
         s.unbounded_cap_bytes >= (std::size_t{1} << 20) &&
         s.unbounded_cap_bytes <= con::max_unbounded_cap_bytes &&
         (s.throttle_rate == 0 || rate(s.throttle_rate)) && s.throttle_burst >= 1 &&
         s.throttle_burst <= con::max_throttle_burst && std::isfinite(s.consumer_delay_s) &&
         s.consumer_delay_s >= 0 && s.consumer_delay_s <= con::max_consumer_delay_s &&
         (s.capacity > 0 || s.strategy == strategy_kind::block ||
          s.strategy == strategy_kind::unbounded || s.strategy == strategy_kind::throttle) &&
         con::is_available(s.strategy) && stage_ms(s.pipeline_stage_ms) &&
         stage_ms(s.pipeline_slow_ms) && s.pipeline_slow_parallelism >= 1 &&
         s.pipeline_slow_parallelism <= con::max_stage_parallelism && s.pipeline_capacity >= 1 &&
         s.pipeline_capacity <= con::max_pipeline_capacity;
}

// A whole JSON number that fits an integer field of [lo, hi]: the value, else nullopt.
template <class Int>
std::optional<Int> whole(const json& v) {
  constexpr auto lo = std::numeric_limits<Int>::min();
  constexpr auto hi = std::numeric_limits<Int>::max();
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(hi)) return std::nullopt;
    return static_cast<Int>(u);
  }
  if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if (i < 0 && (lo == 0 || i < static_cast<std::int64_t>(lo))) return std::nullopt;
    if (i > 0 && static_cast<std::uint64_t>(i) > static_cast<std::uint64_t>(hi))
      return std::nullopt;
    return static_cast<Int>(i);
  }
  if (!v.is_number_float()) return std::nullopt;
  const double d = v.get<double>();
  if (!std::isfinite(d) || d != std::floor(d)) return std::nullopt;
  // hi + 1 is a power of two, exact as a double; lo is 0 or a power of two's negation.
  const double above = std::ldexp(1.0, std::numeric_limits<Int>::digits);
  if (d < static_cast<double>(lo) || d >= above) return std::nullopt;
  return static_cast<Int>(d);
}

// The model's answer: the new settings, or the field (or "body") that makes the patch wrong.
struct expected {
  bool ok = false;
  settings s;
  std::string bad_key;                // the first wrong field found, or "" for a validation failure
  std::vector<std::string> bad_keys;  // every field the library may name instead
};

expected model(const json& patch, const settings& base) {
  expected e;
  e.s = base;
  if (!patch.is_object()) {
    e.bad_keys.push_back("body");
    return e;
  }
  for (const auto& [k, v] : patch.items())
    if (!is_known(k)) e.bad_keys.push_back(k);
  if (!e.bad_keys.empty()) return e;
  auto number = [&](const char* k, double& out) {
    auto it = patch.find(k);
    if (it == patch.end()) return;
    if (it->is_number())
      out = it->get<double>();
    else
      e.bad_keys.push_back(k);
  };
  auto count = [&](const char* k, auto& out) {
    auto it = patch.find(k);
    if (it == patch.end()) return;
    if (auto w = whole<std::remove_reference_t<decltype(out)>>(*it))
      out = *w;
    else
      e.bad_keys.push_back(k);
  };
  number("producer_rate", e.s.producer_rate);
  number("consumer_rate", e.s.consumer_rate);
  count("capacity", e.s.capacity);
  count("producers", e.s.producers);
  count("consumers", e.s.consumers);
  count("payload_bytes", e.s.payload_bytes);
  count("unbounded_cap_bytes", e.s.unbounded_cap_bytes);
  number("throttle_rate", e.s.throttle_rate);
  count("throttle_burst", e.s.throttle_burst);
  number("consumer_delay_s", e.s.consumer_delay_s);
  number("pipeline_stage_ms", e.s.pipeline_stage_ms);
  number("pipeline_slow_ms", e.s.pipeline_slow_ms);
  count("pipeline_slow_parallelism", e.s.pipeline_slow_parallelism);
  count("pipeline_capacity", e.s.pipeline_capacity);
  if (auto it = patch.find("scenario"); it != patch.end()) {
    std::optional<con::scenario_kind> k;
    if (it->is_string()) k = con::scenario_from_string(it->get<std::string>());
    if (k)
      e.s.scenario = *k;
    else
      e.bad_keys.push_back("scenario");
  }
  if (auto it = patch.find("strategy"); it != patch.end()) {
    std::optional<strategy_kind> k;
    if (it->is_string()) k = con::strategy_from_string(it->get<std::string>());
    if (k)
      e.s.strategy = *k;
    else
      e.bad_keys.push_back("strategy");
  }
  if (!e.bad_keys.empty()) return e;
  e.ok = within_limits(e.s);
  return e;
}

// Calls the parser; it must not throw (the server turns its answer into a 400).
std::string parse(const json& patch, const settings& base, settings& out) {
  try {
    return con::settings_from_json(patch, base, out);
  } catch (const std::exception& x) {
    std::fprintf(stderr, "settings_from_json threw: %s\n", x.what());
  } catch (...) {
    std::fprintf(stderr, "settings_from_json threw\n");
  }
  BP_FUZZ_CHECK(!"settings_from_json must not throw");
  return {};
}

// What a reason quotes of a long name: its first 64 bytes at most, whole characters only.
std::string quoted(const std::string& k) {
  std::size_t n = std::min<std::size_t>(k.size(), 64);
  while (n > 0 && n < k.size() && (static_cast<unsigned char>(k[n]) & 0xC0) == 0x80) --n;
  return k.substr(0, n);
}

void check(const json& patch, const settings& base) {
  const settings sentinel = [] {
    settings s;
    s.producer_rate = 1234.5;  // no patch yields exactly this with every other field default
    s.capacity = 7777;
    return s;
  }();
  settings out = sentinel;
  const std::string why = parse(patch, base, out);
  // The server answers {"error": why}: the reason must be valid UTF-8 for that to serialize.
  try {
    (void)json(why).dump();
  } catch (const json::exception&) {
    std::fprintf(stderr, "reason is not UTF-8: %s\n", why.c_str());
    BP_FUZZ_CHECK(!"the reason is valid UTF-8");
  }
  const expected want = model(patch, base);
  if (want.ok) {
    if (!why.empty()) std::fprintf(stderr, "refused: %s\n", why.c_str());
    BP_FUZZ_CHECK(why.empty());
    BP_FUZZ_CHECK(out == want.s);
    BP_FUZZ_CHECK(within_limits(out));
    // Round trips: the settings as JSON values and as JSON text read back to themselves, over
    // any current settings.
    settings again = sentinel;
    BP_FUZZ_CHECK(parse(con::to_json(out), settings{}, again).empty());
    BP_FUZZ_CHECK(again == out);
    settings text = sentinel;
    BP_FUZZ_CHECK(parse(json::parse(con::to_json(out).dump()), base, text).empty());
    BP_FUZZ_CHECK(text == out);
    return;
  }
  if (why.empty())
    std::fprintf(stderr, "accepted: %s\n",
                 patch.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 300).c_str());
  BP_FUZZ_CHECK(!why.empty());
  BP_FUZZ_CHECK(out == sentinel);  // nothing changed
  // The reason names the offending field: one the model found wrong, or, when every field
  // read well, the one validate() names (possibly a current field the patch made invalid,
  // as capacity 0 with a strategy other than block).
  bool named = false;
  for (const auto& k : want.bad_keys) named = named || why.find(quoted(k)) != std::string::npos;
  if (want.bad_keys.empty()) named = why == con::validate(want.s) && !why.empty();
  if (!named) std::fprintf(stderr, "reason: %s\n", why.c_str());
  BP_FUZZ_CHECK(named);
}

// Up to `max` characters of valid UTF-8 (as a parsed body holds), multi-byte ones included.
std::string text(bp::fuzz::input& in, std::size_t max) {
  const char* pieces[] = {
      "a", "k", "_", " ", "\"", "\\", "\n", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
  std::string s;
  for (std::size_t n = in.in_range<std::size_t>(0, max); n > 0; --n)
    s += pieces[in.pick(std::size(pieces))];
  return s;
}

// A value for a settings field: every JSON type, and numbers at and around every edge.
json value(bp::fuzz::input& in, int depth = 0) {
  switch (in.pick(24)) {
    case 0:
      return nullptr;
    case 1:
      return in.boolean();
    case 2:
      return in.in_range<std::int64_t>(-3, 20);
    case 3:
      return std::numeric_limits<std::int64_t>::min();
    case 4:
      return std::numeric_limits<std::uint64_t>::max() - in.in_range<std::uint64_t>(0, 1);
    case 5:
      return std::numeric_limits<std::int64_t>::max();
    case 6:
      return std::numeric_limits<double>::quiet_NaN();
    case 7:
      return (in.boolean() ? 1 : -1) * std::numeric_limits<double>::infinity();
    case 8:
      return -0.0;
    case 9:
      return std::ldexp(1.0, in.in_range<int>(0, 70)) - in.in_range<int>(0, 1);
    case 10:
      return in.in_range<int>(0, 400) / 4.0;
    case 11: {  // the documented edges, and one step beyond
      const double edges[] = {con::min_rate,
                              con::max_rate,
                              double(con::max_capacity),
                              double(con::max_threads),
                              double(con::max_payload_bytes),
                              double(con::max_unbounded_cap_bytes),
                              1 << 20,
                              double(con::max_throttle_burst),
                              con::max_consumer_delay_s};
      const double e = edges[in.pick(std::size(edges))];
      switch (in.pick(3)) {
        case 0:
          return e;
        case 1:
          return std::nextafter(e, 1e300);
        default:
          return e + 1;
      }
    }
    case 12:
      return in.in_range<std::uint32_t>(0, 0xffffffffu);
    case 13: {
      const char* names[] = {"block",  "drop_newest", "drop_oldest", "reject",   "unbounded",
                             "signal", "throttle",    "Block",       "",         "NaN",
                             "1e3",    "-1",          "channel",     "pipeline", "Pipeline"};
      return names[in.pick(std::size(names))];
    }
    case 14:
      return std::string(in.in_range<std::size_t>(60, 5000), static_cast<char>('a' + in.pick(26)));
    case 15:
      return text(in, 16);
    case 16:
      if (depth < 3) return json::array({value(in, depth + 1), value(in, depth + 1)});
      return json::array();
    case 17:
      if (depth < 3) return json::object({{"capacity", value(in, depth + 1)}});
      return json::object();
    case 18:
      return 1e300 * (in.boolean() ? 1 : -1);
    case 19:
      return std::numeric_limits<double>::denorm_min();
    case 20:
      return std::ldexp(1.0, 64);  // one past SIZE_MAX
    default:
      return in.in_range<std::int64_t>(-5, 200000) / (in.boolean() ? 1.0 : 8.0);
  }
}

std::string key(bp::fuzz::input& in) {
  if (in.pick(8) != 0) return known_keys[in.pick(std::size(known_keys))];
  switch (in.pick(3)) {
    case 0:  // long, with a multi-byte character across the 64th byte
      return std::string(in.in_range<std::size_t>(50, 70), 'k') + text(in, 40);
    case 1:
      return std::string(known_keys[in.pick(std::size(known_keys))]) + " ";
    default:
      return text(in, 12);
  }
}

// Current settings: a preset, the defaults, or any valid combination.
settings current(bp::fuzz::input& in) {
  settings s;
  const auto p = con::presets();
  switch (in.pick(3)) {
    case 0:
      s = p[in.pick(p.size())].values;
      break;
    case 1:
      break;
    default:
      s.producer_rate = in.in_range<int>(1, 200000) / 2.0;
      s.consumer_rate = in.in_range<int>(1, 200000) / 2.0;
      s.capacity = in.in_range<std::size_t>(0, con::max_capacity);
      s.producers = in.in_range<int>(1, con::max_threads);
      s.consumers = in.in_range<int>(1, con::max_threads);
      s.payload_bytes = in.in_range<std::size_t>(0, con::max_payload_bytes);
      s.unbounded_cap_bytes = in.in_range<std::size_t>(1 << 20, con::max_unbounded_cap_bytes);
      s.throttle_rate = in.boolean() ? 0.0 : in.in_range<int>(1, 200000) / 2.0;
      s.throttle_burst = in.in_range<std::size_t>(1, con::max_throttle_burst);
      s.consumer_delay_s = in.in_range<int>(0, 600) / 10.0;
      break;
  }
  s.strategy = con::all_strategies[in.pick(std::size(con::all_strategies))];
  if (!con::validate(s).empty()) s.strategy = strategy_kind::block;
  BP_FUZZ_CHECK(con::validate(s).empty());
  return s;
}

void run(bp::fuzz::input& in) {
  const settings base = current(in);
  // `{}` changes nothing; the current settings read back to themselves.
  {
    settings out;
    BP_FUZZ_CHECK(parse(json::object(), base, out).empty());
    BP_FUZZ_CHECK(out == base);
    settings back;
    BP_FUZZ_CHECK(parse(con::to_json(base), settings{}, back).empty());
    BP_FUZZ_CHECK(back == base);
  }
  switch (in.pick(3)) {
    case 0: {  // arbitrary bytes, as the HTTP body would bring them
      const json j = json::parse(in.rest(), nullptr, /*allow_exceptions=*/false);
      if (!j.is_discarded()) check(j, base);
      break;
    }
    case 1: {  // an object built field by field
      json j = json::object();
      for (std::size_t n = in.in_range<std::size_t>(0, 12); n > 0; --n) j[key(in)] = value(in);
      check(j, base);
      break;
    }
    default: {  // JSON text with duplicate keys: the parser keeps the last of each
      std::string text = "{";
      for (std::size_t n = in.in_range<std::size_t>(0, 12); n > 0; --n) {
        if (text.size() > 1) text += ',';
        text += json(key(in)).dump() + ":" + value(in).dump();
      }
      text += '}';
      const json j = json::parse(text, nullptr, false);
      if (!j.is_discarded()) check(j, base);
      break;
    }
  }
}

// An input that starts with '{' is a request body as it stands (the committed seeds are such
// bodies, from docs/console.md): it is checked over the defaults, each preset, and a rendezvous.
void run_body(std::string_view body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  std::vector<settings> bases{settings{}};
  for (const auto& p : con::presets()) bases.push_back(p.values);
  settings rendezvous;
  rendezvous.capacity = 0;
  bases.push_back(rendezvous);
  for (const settings& base : bases) check(j, base);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 0 && data[0] == '{') {
    run_body(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
  }
  bp::fuzz::input in(data, size);
  run(in);
  return 0;
}

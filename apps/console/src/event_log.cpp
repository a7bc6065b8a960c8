// event_log.cpp: the event log's storage, its per-kind throttle and the summary lines of what
// the throttle held back (see event_log.hpp).
#include "event_log.hpp"

#include <algorithm>

#include "event_text.hpp"

namespace bp::console {

namespace {
constexpr std::int64_t one_second_ns = 1'000'000'000;
}  // namespace

std::string_view kind_name(event_kind k) noexcept {
  using K = event_kind;
  switch (k) {
    case K::watermark:
      return "watermark";
    case K::wait:
    case K::wait_token:  // rate-limited apart from `wait`, shown alike
    case K::wait_demand:
      return "wait";
    case K::resume:
      return "resume";
    case K::drop:
      return "drop";
    case K::evict:
      return "evict";
    case K::reject:
      return "reject";
    case K::cap:
      return "cap";
    case K::drain:
      return "drain";
    case K::demand:
      return "demand";
    case K::control:
    case K::count_:
      break;
  }
  return "control";
}

// --- event_log -----------------------------------------------------------------------------------

void event_log::post(event_kind k, std::string text, double t) {
  events_.push_back({next_id_++, t, std::string(kind_name(k)), std::move(text)});
  while (events_.size() > limit_) events_.pop_front();
}

std::vector<event> event_log::since(std::uint64_t after_id, std::size_t max) const {
  auto first =
      std::find_if(events_.begin(), events_.end(), [&](const event& e) { return e.id > after_id; });
  const auto n = static_cast<std::size_t>(events_.end() - first);
  if (n > max) first = events_.end() - static_cast<std::ptrdiff_t>(max);
  return {first, events_.end()};
}

// --- event_throttle ------------------------------------------------------------------------------

bool event_throttle::suppress(event_kind k, std::int64_t now_ns) noexcept {
  const int i = static_cast<int>(k);
  if (now_ns < quiet_until_ns_[i].load(std::memory_order_relaxed)) {
    suppressed_[i].fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  return false;
}

void event_throttle::posted(event_kind k, std::int64_t now_ns) noexcept {
  const int i = static_cast<int>(k);
  if (now_ns - window_start_[i] >= one_second_ns) {
    window_start_[i] = now_ns;
    lines_in_window_[i] = 0;
  }
  if (++lines_in_window_[i] >= lines_per_second)
    quiet_until_ns_[i].store(window_start_[i] + one_second_ns, std::memory_order_relaxed);
}

std::uint64_t event_throttle::take_suppressed(event_kind k, std::int64_t now_ns) noexcept {
  const int i = static_cast<int>(k);
  if (now_ns < quiet_until_ns_[i].load(std::memory_order_relaxed)) return 0;
  return suppressed_[i].exchange(0, std::memory_order_relaxed);
}

std::string suppressed_summary(event_kind k, std::uint64_t n, strategy_kind strategy) {
  std::string what;
  switch (k) {
    case event_kind::drop:
      what = fmt("%llu more items dropped: %s", (unsigned long long)n,
                 std::string(log_name(strategy)).c_str());
      break;
    case event_kind::evict:
      what = fmt("%llu more items evicted: drop-oldest", (unsigned long long)n);
      break;
    case event_kind::reject:
      what = fmt("%llu more items rejected: buffer full", (unsigned long long)n);
      break;
    case event_kind::wait:
      what = fmt("the producer waited %llu more times: buffer full", (unsigned long long)n);
      break;
    case event_kind::wait_token:
      what = fmt("the producer waited %llu more times: no token", (unsigned long long)n);
      break;
    case event_kind::wait_demand:
      what = fmt("the producer waited %llu more times: no demand", (unsigned long long)n);
      break;
    default:
      what = fmt("%llu more %s events", (unsigned long long)n, std::string(kind_name(k)).c_str());
      break;
  }
  return "... and " + what + " in the last second";
}

}  // namespace bp::console

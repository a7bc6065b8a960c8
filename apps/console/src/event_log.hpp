// event_log.hpp: the console's event log, the running commentary under the charts ("queue at
// 83%: approaching the high watermark", "item 41 dropped: drop-newest").
//
//   console::event           one line, numbered so that a client can ask for what is new.
//   console::event_kind      what a line is about; the UI colours lines by kind.
//   console::event_log       the last N lines. Not locked itself: the engine guards it with
//                            the mutex that also guards its snapshots (engine::state_m_).
//   console::event_throttle  at most a few lines per kind and second.
//
// Under overload the producers may drop or wait thousands of times a second; one line each
// would flood the log, hide everything else and make the hot paths pay for text nobody reads.
// The throttle therefore decides with one atomic load whether a line is wanted, before its
// text is built, counts the lines it holds back, and the sampler later sums them up in one
// line ("... and 120 more items dropped: drop-newest in the last second").
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "settings.hpp"

namespace bp::console {

struct event {
  std::uint64_t id = 0;
  double t = 0;      // seconds since the scenario (re)started
  std::string kind;  // watermark, wait, resume, drop, evict, reject, cap, drain, control, ...
  std::string text;
};

enum class event_kind : int {
  watermark,
  wait,         // buffer full
  wait_token,   // throttle: no token
  wait_demand,  // signal: no demand
  resume,
  drop,
  evict,
  reject,
  cap,
  drain,
  demand,
  control,
  count_
};

inline constexpr int event_kinds = static_cast<int>(event_kind::count_);

// The kind as the API and the UI name it (event::kind). The three waits are rate-limited apart
// (a throttled producer waiting for tokens must not silence a full buffer) but shown alike.
[[nodiscard]] std::string_view kind_name(event_kind k) noexcept;

class event_log {
 public:
  explicit event_log(std::size_t limit) : limit_(limit) {}

  // Appends a line, forgetting the oldest beyond the limit.
  void post(event_kind k, std::string text, double t);
  // Lines with id > after_id, oldest first, at most `max` (the most recent ones).
  [[nodiscard]] std::vector<event> since(std::uint64_t after_id, std::size_t max) const;

 private:
  std::size_t limit_;
  std::deque<event> events_;
  std::uint64_t next_id_ = 1;
};

// Rate limiting of the event log, per kind, for one scenario. suppress() is for the hot paths
// and touches only atomics; posted() runs under the lock that guards the log.
class event_throttle {
 public:
  // At most this many lines per kind and second; the rest are counted and summarized.
  static constexpr int lines_per_second = 4;

  // True when kind `k` has said enough this second: the line is counted, not posted.
  bool suppress(event_kind k, std::int64_t now_ns) noexcept;
  // A line of kind `k` is being posted (log lock held).
  void posted(event_kind k, std::int64_t now_ns) noexcept;
  // The lines of kind `k` held back, once `k` may speak again (and from zero after that);
  // 0 while it is still quiet.
  std::uint64_t take_suppressed(event_kind k, std::int64_t now_ns) noexcept;

 private:
  std::array<std::atomic<std::int64_t>, event_kinds> quiet_until_ns_{};
  std::array<std::atomic<std::uint64_t>, event_kinds> suppressed_{};
  std::array<int, event_kinds> lines_in_window_{};        // log lock held
  std::array<std::int64_t, event_kinds> window_start_{};  // log lock held
};

// The line that sums up `n` held-back lines of kind `k` in a scenario running `strategy`.
[[nodiscard]] std::string suppressed_summary(event_kind k, std::uint64_t n, strategy_kind strategy);

}  // namespace bp::console

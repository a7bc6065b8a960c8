// event_text.hpp: the wording helpers of the event log's lines.
//
// Event lines are plain English built with printf-style formats: they are short, their numbers
// need fixed precision ("waiting 0.25 s", "3.1 MiB"), and a format string keeps each sentence
// readable in one piece at the place that posts it. The lines are built only when the event log
// will keep them (see event_throttle), so their cost stays off the hot paths.
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>
#include <string_view>

#include "settings.hpp"

namespace bp::console {

// printf into a std::string; event lines are short, longer text is cut at 255 characters.
std::string fmt(const char* f, auto... a) {
  char buf[256];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

inline std::string mib(std::size_t bytes) {
  return fmt("%.1f MiB", double(bytes) / (1 << 20));
}

// A strategy's name in prose: the two drop policies read "drop-newest" and "drop-oldest" in a
// sentence; the others as to_string spells them.
inline std::string_view log_name(strategy_kind k) {
  switch (k) {
    case strategy_kind::drop_newest:
      return "drop-newest";
    case strategy_kind::drop_oldest:
      return "drop-oldest";
    default:
      return to_string(k);
  }
}

}  // namespace bp::console

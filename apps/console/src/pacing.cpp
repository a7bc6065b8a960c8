// pacing.cpp: the pacer's schedule (see pacing.hpp for why it is per thread and why it limits
// catching up).
#include "pacing.hpp"

#include <algorithm>
#include <thread>

namespace bp::console {

using namespace std::chrono_literals;

bool pacer::due(double rate) {
  const auto period =
      std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(1.0 / rate));
  const auto when = last + period;
  const auto now = clock_type::now();
  if (now < when) {
    std::this_thread::sleep_until(std::min(when, now + slice));
    return false;
  }
  // Lateness up to this is made up (a thread woken late by a busy machine keeps its rate);
  // beyond it the schedule restarts from now.
  const auto catch_up = std::max<clock_type::duration>(100ms, period);
  last = now - when > catch_up ? now : when;
  return true;
}

}  // namespace bp::console

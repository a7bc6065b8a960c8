// Test helper: CPU time consumed so far, to show that a waiting thread (or an idle pool) parks
// instead of spinning.
#pragma once

#include <ctime>

namespace bp::test {

// CLOCK_THREAD_CPUTIME_ID (the calling thread) or CLOCK_PROCESS_CPUTIME_ID (every thread).
inline double cpu_seconds(clockid_t clock = CLOCK_THREAD_CPUTIME_ID) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

}  // namespace bp::test

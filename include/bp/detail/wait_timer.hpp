// Internal: timing a wait for a primitive's wait histogram. A primitive starts one only on its
// blocking branch, after the attempt that did not need to wait has failed, so an operation that
// completes at once never reads the clock for it.
#pragma once

#include <chrono>

#include "deadline.hpp"

namespace bp::detail {

// Histogram: anything with record(duration), in practice bp::wait_histogram (detail/ does not
// include the public headers).
template <class Histogram>
class wait_timer {
 public:
  explicit wait_timer(Histogram& into) noexcept : into_(into), start_(clock::now()) {}
  wait_timer(const wait_timer&) = delete;
  wait_timer& operator=(const wait_timer&) = delete;
  // Every way out of the wait (granted, timeout, closed, an exception) is a wait that happened.
  ~wait_timer() { into_.record(clock::now() - start_); }

 private:
  Histogram& into_;
  clock::time_point start_;
};

}  // namespace bp::detail

// pacing.cpp: the pacer's schedule and the run switch (see pacing.hpp for why the schedule is
// per thread, why it limits catching up, and why pausing is a stop_token).
#include "pacing.hpp"

#include <algorithm>

namespace bp::console {

using namespace std::chrono_literals;

clock_type::time_point pacer::next_due(double rate) const {
  return last + std::chrono::duration_cast<clock_type::duration>(
                    std::chrono::duration<double>(1.0 / rate));
}

void pacer::take(double rate, clock_type::time_point now) {
  const auto when = next_due(rate);
  const auto period = when - last;
  // Lateness up to this is made up (a thread woken late by a busy machine keeps its rate);
  // beyond it the schedule restarts from now.
  const auto catch_up = std::max<clock_type::duration>(100ms, period);
  last = now - when > catch_up ? now : when;
}

void run_switch::update(const std::atomic<bool>& on) {
  {
    std::lock_guard lock(m_);
    const bool want = !closed_ && on.load();
    if (want && !on_) period_ = std::stop_source{};
    if (!want && on_) period_.request_stop();  // wakes the period's waits, in bp verbs too
    on_ = want;
    changes_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
}

void run_switch::close() {
  {
    std::lock_guard lock(m_);
    closed_ = true;
    on_ = false;
    period_.request_stop();
    changes_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
}

std::optional<std::stop_token> run_switch::wait_on(const std::stop_token& st) {
  std::unique_lock lock(m_);
  if (!cv_.wait(lock, st, [&] { return on_ || closed_; }) || closed_) return std::nullopt;
  return period_.get_token();
}

void run_switch::wait_until(clock_type::time_point when, std::uint64_t seen,
                            const std::stop_token& period) {
  std::unique_lock lock(m_);
  cv_.wait_until(lock, period, when,
                 [&] { return changes_.load(std::memory_order_relaxed) != seen; });
}

void run_switch::wait_stopped(const std::stop_token& period) {
  std::unique_lock lock(m_);
  cv_.wait(lock, period, [] { return false; });
}

bool wait_slot(pacer& pace, run_switch& sw, const std::atomic<double>& rate, int threads,
               const std::stop_token& period) {
  for (;;) {
    if (period.stop_requested()) return false;
    const auto seen = sw.generation();
    const double r = rate.load(std::memory_order_relaxed) / threads;
    const auto when = pace.next_due(r);
    const auto now = clock_type::now();
    if (now >= when) {
      pace.take(r, now);
      return true;
    }
    sw.wait_until(when, seen, period);  // a rate change wakes it to read the new rate
  }
}

}  // namespace bp::console

// One primitive of each kind the metrics registry reads, registered under one name: what the
// registry's tests and its benchmark snapshot.
#pragma once

#include <bp/metrics.hpp>

#include <string>
#include <vector>

namespace bp::test {

struct all_primitives {
  channel<int> ch{4};
  unbounded_channel<int> uch;
  semaphore sem{2};
  token_bucket tb{100.0, 5};
  leaky_bucket lb{100.0, 5};
  concurrency_limiter lim;
  memory_budget mb{1024};
  watermark_buffer<std::string> wb{watermark_buffer_options<std::string>{}};

  // Every primitive under `name` (a kind takes each name once, so one name serves all).
  [[nodiscard]] std::vector<metrics::registration> register_all(metrics::registry& reg,
                                                                const std::string& name) const {
    std::vector<metrics::registration> r;
    r.push_back(reg.add(name, ch));
    r.push_back(reg.add(name, uch));
    r.push_back(reg.add(name, sem));
    r.push_back(reg.add(name, tb));
    r.push_back(reg.add(name, lb));
    r.push_back(reg.add(name, lim));
    r.push_back(reg.add(name, mb));
    r.push_back(reg.add(name, wb));
    return r;
  }
};

}  // namespace bp::test

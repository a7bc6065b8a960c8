// scn_tbb: oneTBB's concurrent_bounded_queue (push waits while full, pop while empty). Its
// abort() ends waiters with an exception, so the driver ends consumers with poison values.
#include <tbb/concurrent_queue.h>

#include "driver.hpp"

namespace {

using bench::u64;

struct tbb_queue {
  static constexpr bool has_close = false;
  static constexpr bool spsc_only = false;
  explicit tbb_queue(std::size_t capacity) {
    q.set_capacity(static_cast<std::ptrdiff_t>(capacity));
  }
  void send(u64 v) { q.push(v); }
  bool recv(u64& v) {
    q.pop(v);
    return true;
  }
  bool try_recv(u64& v) { return q.try_pop(v); }
  tbb::concurrent_bounded_queue<u64> q;
};

}  // namespace

int main(int argc, char** argv) {
  return bench::run<tbb_queue>("tbb", argc, argv);
}

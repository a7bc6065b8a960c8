// scn_atomic_queue: atomic_queue::AtomicQueueB (runtime capacity, 0 is its empty marker: our
// items never are 0). Its push and pop spin until they succeed; it has no close.
#include <atomic_queue/atomic_queue.h>

#include "driver.hpp"

namespace {

using bench::u64;

struct aq {
  static constexpr bool has_close = false;
  static constexpr bool spsc_only = false;
  explicit aq(std::size_t capacity) : q(static_cast<unsigned>(capacity)) {}
  void send(u64 v) { q.push(v); }
  bool recv(u64& v) {
    v = q.pop();
    return true;
  }
  bool try_recv(u64& v) { return q.try_pop(v); }
  atomic_queue::AtomicQueueB<u64> q;
};

}  // namespace

int main(int argc, char** argv) {
  return bench::run<aq>("atomic_queue", argc, argv);
}

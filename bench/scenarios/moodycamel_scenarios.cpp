// scn_moodycamel_bcq and scn_moodycamel_rwcb: moodycamel's BlockingConcurrentQueue (MPMC) and
// BlockingReaderWriterCircularBuffer (SPSC). Both wait on moodycamel's LightweightSemaphore,
// which spins briefly before it sleeps.
//
// BlockingConcurrentQueue has no bound (its capacity is a preallocation: enqueue allocates
// when it runs out), so the adapter adds one the way folly's BoundedQueue does: a second
// LightweightSemaphore counting free slots. The circular buffer is bounded by itself.
#include <concurrentqueue/blockingconcurrentqueue.h>
#include <readerwriterqueue/readerwritercircularbuffer.h>

#include "driver.hpp"

namespace {

using bench::u64;

struct bcq {
  static constexpr bool has_close = false;
  static constexpr bool spsc_only = false;
  explicit bcq(std::size_t capacity)
      : q(capacity), free_slots(static_cast<moodycamel::LightweightSemaphore::ssize_t>(capacity)) {}
  void send(u64 v) {
    free_slots.wait();
    q.enqueue(v);
  }
  bool recv(u64& v) {
    q.wait_dequeue(v);
    free_slots.signal();
    return true;
  }
  bool try_recv(u64& v) {
    if (!q.try_dequeue(v)) return false;
    free_slots.signal();
    return true;
  }
  moodycamel::BlockingConcurrentQueue<u64> q;
  moodycamel::LightweightSemaphore free_slots;
};

struct rwcb {
  static constexpr bool has_close = false;
  static constexpr bool spsc_only = true;
  explicit rwcb(std::size_t capacity) : q(capacity) {}
  void send(u64 v) { q.wait_enqueue(v); }
  bool recv(u64& v) {
    q.wait_dequeue(v);
    return true;
  }
  bool try_recv(u64& v) { return q.try_dequeue(v); }
  moodycamel::BlockingReaderWriterCircularBuffer<u64> q;
};

}  // namespace

int main(int argc, char** argv) {
#ifdef BENCH_MOODYCAMEL_RWCB
  return bench::run<rwcb>("moodycamel_rwcb", argc, argv);
#else
  return bench::run<bcq>("moodycamel_bcq", argc, argv);
#endif
}

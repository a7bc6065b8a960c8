// scn_fiber: Boost.Fiber's buffered_channel, used from plain threads (each thread's main fiber
// waits in the channel; a fiber on another thread wakes it through the remote ready queue).
// Its capacity must be a power of two and one slot stays empty, so "capacity 1024" holds 1023
// items, and the ping-pong's capacity 1 is buffered_channel(2).
#include <boost/fiber/buffered_channel.hpp>

#include "driver.hpp"

namespace {

using bench::u64;

std::size_t fiber_capacity(std::size_t capacity) {
  std::size_t c = 2;
  while (c < capacity) c *= 2;
  return capacity == 1 ? 2 : c;
}

struct fiber_channel {
  static constexpr bool has_close = true;
  static constexpr bool spsc_only = false;
  explicit fiber_channel(std::size_t capacity) : ch(fiber_capacity(capacity)) {}
  void send(u64 v) { (void)ch.push(v); }
  bool recv(u64& v) { return ch.pop(v) == boost::fibers::channel_op_status::success; }
  bool try_recv(u64& v) { return ch.try_pop(v) == boost::fibers::channel_op_status::success; }
  void close() { ch.close(); }
  boost::fibers::buffered_channel<u64> ch;
};

}  // namespace

int main(int argc, char** argv) {
  return bench::run<fiber_channel>("fiber", argc, argv);
}

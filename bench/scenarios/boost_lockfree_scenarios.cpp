// scn_boost_spsc and scn_boost_queue: Boost.Lockfree's spsc_queue and queue. Neither can wait:
// send and recv spin (with a CPU pause) until they succeed, as their users do.
#include <boost/lockfree/queue.hpp>
#include <boost/lockfree/spsc_queue.hpp>

#include "driver.hpp"

namespace {

using bench::u64;

template <class Lockfree, bool Spsc>
struct spinning {
  static constexpr bool has_close = false;
  static constexpr bool spsc_only = Spsc;
  explicit spinning(std::size_t capacity) : q(capacity) {}
  void send(u64 v) {
    while (!q.push(v)) bench::pause();
  }
  bool recv(u64& v) {
    while (!q.pop(v)) bench::pause();
    return true;
  }
  bool try_recv(u64& v) { return q.pop(v); }
  Lockfree q;
};

// boost::lockfree::queue's runtime capacity is its node pool; fixed_sized makes it a bound.
using boost_spsc = spinning<boost::lockfree::spsc_queue<u64>, true>;
using boost_queue =
    spinning<boost::lockfree::queue<u64, boost::lockfree::fixed_sized<true>>, false>;

}  // namespace

int main(int argc, char** argv) {
#ifdef BENCH_BOOST_SPSC
  return bench::run<boost_spsc>("boost_spsc", argc, argv);
#else
  return bench::run<boost_queue>("boost_queue", argc, argv);
#endif
}
